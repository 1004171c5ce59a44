// Command demo plays selfheal's classic self-healing demo on this machine: it
// builds the demo service, starts the agent with the local driver (3 replicas over
// 2 virtual nodes) and a load generator through the agent's front door, then:
// a replica crashes and is restarted; a replica hangs and is replaced; a node fails
// and its replicas are rescheduled; latency is injected and the service scales out,
// then back in when relieved; latency creeps up and the service scales out early, on
// the trend, before it crosses its target; the service is scaled to 12; a new version rolls out
// 3 at a time with a delay; a bad version is rolled back; a replica that leaks
// memory is replaced before it dies.
//
// It prints the timeline as it goes, then per step the time to detect, the time to
// heal and the clients' success rate, and exits 1 if any step missed its deadline.
//
//	go run ./examples/demo [-interval 250ms] [-rps 40] [-events events.jsonl] [-steps crash,hang]
//
// With -driver docker it plays on Docker Swarm instead, at the engine that
// SELFHEAL_DOCKER_HOST names (bash .ci/docker/engine.sh start, then
// eval "$(bash .ci/docker/engine.sh env)"): Swarm restarts a crashed task; the agent
// replaces a task that is unhealthy by its health document; the service is scaled to
// 12 and back to 3; a new version rolls out 3 at a time with a delay and a bad one is
// rolled back by Swarm; the only node is drained (its tasks go pending) and
// activated again. A real node failure cannot be shown on one engine.
//
// With -driver swarm-lab (Linux, as root) it plays the classic demonstration on
// the test-host lab (.ci/docker/lab.sh: a Swarm of 3 hosts in network namespaces,
// each its own Docker engine): 3 replicas over the 3 hosts; a worker host
// terminated (its link cut, kill -9 of its engine and tasks) and its replica
// rescheduled; a replacement host joining; scale to 12; a rolling update 3 at a
// time with -update-delay between batches; a bad version rolled back. It plays the
// steps twice, with the agent (its front door, node guard and node pool) and with
// Swarm alone (a front door that routes as Swarm's ingress mesh would), and prints
// them side by side. It uses the lab SELFHEAL_LAB_MANAGER names, or starts one and
// stops it at the end (nothing left behind); it runs itself again inside the
// manager host's network namespace, where the hosts' addresses are reachable.
//
//	go run ./examples/demo -driver swarm-lab [-update-delay 10s] [-passes agent,swarm]
//
// With -driver kubernetes (Linux, as root) it plays the classic demonstration on
// the offline two-node Kubernetes of .ci/k8s/cluster.sh: it builds and runs
// examples/k8s/demo (a module of its own: this one does not import client-go) with
// -interval, -rps, -update-delay, -passes (agent, kubernetes) and -steps (crash, hang,
// leak, node, scale, update, rollback) when they are set, this process's standard
// input and outputs, and returns its exit code; an interrupt reaches it as SIGINT.
//
//	go run ./examples/demo -driver kubernetes [-passes agent,kubernetes] [-steps crash,hang,leak]
package main
