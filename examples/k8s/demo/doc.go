// Command demo plays the classic self-healing demonstration on Kubernetes, on the
// two-node cluster of .ci/k8s/cluster.sh, twice: with the agent (examples/agent's
// core on the kubernetes driver of package k8s, its front door, the driver's node
// guard and rollout monitor), and with Kubernetes alone (a front door that routes
// as a Service does, to the pods Kubernetes reports ready). Clients send requests
// through the front door the whole time. The steps:
//
//   - 3 replicas over 2 nodes;
//   - a crash: one pod's process exits (the test service's /fault/crash). The
//     kubelet restarts the container in the same pod; the agent takes the pod out
//     of its front door as soon as its probes fail and replaces nothing (the
//     driver reports a container the kubelet restarts as starting);
//   - a hang: one pod stops answering, its probes and health document included,
//     while its process lives (/fault/hang). The agent's probes time out (3
//     failures, at least 2 s) and it deletes the pod for its ReplicaSet to
//     replace; Kubernetes alone takes it out of its endpoints after 3 failed
//     readiness probes and restarts it after its liveness probe's 3 x 10 s;
//   - a memory leak: one pod's heap grows 16 MB/s toward its 128 MiB memory limit
//     (/fault/leak), its health document shows the heap. The agent sees the trend
//     reach its heap limit (112 MiB) within its horizon and deletes the pod before
//     it dies; Kubernetes alone lets the kernel OOM-kill the container at the
//     limit (the last megabytes come slowly, as the kernel reclaims the cgroup's
//     pages first) and the kubelet restarts it;
//   - a node killed (cluster.sh kill-node: kill -9 of its kubelet, containerd, shims
//     and pods, its link cut) and its pods running on the other node; then the node
//     is restarted;
//   - scale 3 -> 12;
//   - a rolling update v1 -> v2, 3 at a time (maxSurge 3, maxUnavailable 0) with
//     minReadySeconds as the delay;
//   - a bad version v3-bad: its pods pass their probes, so Kubernetes counts them
//     ready, but they serve 500 and report fail in their health documents; the
//     agent's driver rolls back to v2.
//
// Each step is timed (detect, heal) and the clients' success counted, then the two
// passes are printed side by side:
//
//	go run ./examples/k8s/demo [-passes agent,kubernetes] [-steps crash,hang,leak,node,scale,update,rollback] [-interval 500ms] [-rps 40]
//
// The test service serves the crash, hang and leak faults only with FAULTS=on, which
// both passes set.
//
// It needs root. It uses the cluster SELFHEAL_K8S_KUBECONFIG names, or starts one
// (cluster.sh start, cached binaries: about 30 s) and stops it at the end. The pod
// IPs are reachable only inside the cluster's bridge namespace, so the demo runs
// itself again there (ip netns exec shk8sbr), as an agent deployed in the cluster
// would run; cluster.sh runs in the namespaces of the demo outside (nsenter).
//
// Kubernetes alone runs with its defaults: a node is marked NotReady after
// node-monitor-grace-period (50 s) and its pods are evicted after the 300 s
// not-ready/unreachable toleration; the demo gives it -node-deadline (60 s) to run
// them elsewhere, so its node step reports the detection and no heal.
//
// `go run ./examples/demo -driver kubernetes` builds and runs this command (the
// examples module must not import client-go).
package main
