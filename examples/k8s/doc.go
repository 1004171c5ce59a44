// Package k8s is the agent's Kubernetes driver, on client-go: it implements
// driver.Orchestrator, driver.NodeController, driver.Adopter and driver.Watcher over
// Deployments. It lives in a module of its own so that the rest of the examples do
// not depend on client-go.
//
// # What Kubernetes does, what the agent adds
//
// Kubernetes keeps the replica count, restarts a crashed container (the kubelet, in
// the same pod), takes an unready pod out of its Service, and rolls a Deployment out
// with its strategy. The driver hands all of that to Kubernetes. What Kubernetes does
// not see is each pod's health document; and it reacts to a lost node late: about
// 40-50 s to mark it NotReady, then a 300 s toleration before its pods are evicted.
// The driver adds:
//
//   - Health reads each pod's health document directly (pod IP and port, through
//     Config.Dial), and the rollout monitor does so for every new pod of a rollout:
//     more than UpdatePolicy.MaxFailureRatio of them reporting fail rolls the
//     Deployment back to its previous revision (what `kubectl rollout undo` does),
//     even though Kubernetes counted the pods ready.
//   - Scale goes through the Deployment's scale subresource, and refuses (ErrHPAOwned,
//     logged) when a HorizontalPodAutoscaler targets the Deployment: the autoscaler
//     owns the count and the agent stays out of scaling. Apply leaves replicas alone
//     then too.
//   - Stop deletes a pod (its ReplicaSet starts a replacement). A container the
//     kubelet is restarting is reported StateStarting with ExitReason
//     "restarting (kubelet): ...", never StateExited, and so is one it restarted
//     less than 30 s ago that it does not count ready yet ("restarted (kubelet)"),
//     so that the agent does not replace a pod the kubelet already restarts.
//   - The pods get a liveness probe (Config.LivenessPath, every 10 s, 3 failures:
//     Kubernetes' defaults), by which the kubelet restarts a container that stops
//     answering, and a memory limit when Config.MemoryLimit is set. The agent,
//     reading the health documents, replaces a hung pod or one whose heap trends
//     to its limit before either comes into play.
//   - SetNodeState drained cordons the node and evicts its pods through the Eviction
//     API, so PodDisruptionBudgets hold (a protected pod is retried every second);
//     ready uncordons; down takes the node as lost.
//   - The node guard probes every kubelet's /healthz every 250 ms; a node silent for 3
//     rounds while another answers is cordoned and its pods deleted with grace 0 (a
//     dead kubelet never confirms a graceful deletion), so their ReplicaSets start them
//     on the other nodes within seconds. In the same rounds, a node that reports
//     memory, disk or pid pressure (NodeDegraded) is drained before it fails:
//     cordoned and its pods evicted as its PodDisruptionBudgets allow; it is
//     uncordoned when the pressure ends. Incidents records each case.
//
// # Mapping
//
// A service is a Deployment of the same name (selector selfheal.io/service=<name>
// when the driver creates it; an adopted Deployment keeps its own). Its pods are the
// instances: ID is the pod name, Version the label selfheal.io/version, Addr the pod
// IP and the container's first port. UpdatePolicy.Parallelism is maxSurge (with
// maxUnavailable 0) and UpdatePolicy.Delay is minReadySeconds.
//
// Instances, Nodes and Rollout read the informers' caches (pods, nodes,
// Deployments, ReplicaSets): nothing is polled. Watch signals every change.
//
// # The test cluster
//
// .ci/k8s/cluster.sh builds Kubernetes offline and runs a control plane and two
// nodes in network namespaces; see .ci/k8s/README.md. The tests reach it through a
// dialer that makes its sockets inside the cluster's bridge namespace.
package k8s
