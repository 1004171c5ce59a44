// Package docker is the agent's Docker Swarm driver: it runs a service as a Swarm
// service through the Docker Engine API, and implements driver.Orchestrator,
// driver.NodeController and driver.Adopter.
//
// # What Swarm does, what the agent adds
//
// Swarm keeps the declared replica count, restarts an exited container by its restart
// policy (condition "any", Config.RestartDelay), replaces a container whose Docker
// HEALTHCHECK fails, and runs rolling updates with parallelism, delay, a monitor
// window, a maximum failure ratio and an automatic rollback. The driver hands all of
// that to Swarm (Apply, Scale, Rollback) and never re-implements it.
//
// What Swarm cannot see is the service's own health document: latency, saturation,
// breaker and supervisor state. The agent reads it from every instance's Addr and
// acts through the driver: Stop stops an instance that is unhealthy by its document
// (Swarm then starts a replacement in the same replica slot), Scale scales on
// latency and saturation, SetNodeState drains a node that reports itself degraded.
// Watch reports what Swarm and the engine did on their own (restarts, health
// changes, rollout states, node changes) for the agent's event log.
//
// # Instances, slots and ports
//
// Instances use host networking and listen on 127.0.0.1, one port per replica slot:
// slot n listens on ServiceSpec.BasePort+n-1. Swarm expands templates only in a
// task's environment (never in its command) and its templates cannot add, so the
// driver writes the port of every slot into the service's labels
// (selfheal.port.<slot>) and sets PORT to the template
//
//	{{index .Service.Labels (printf "selfheal.port.%s" .Task.Slot)}}
//
// Tasks also get SLOT, INSTANCE_ID (the task id), NODE, SERVICE, VERSION and
// BASE_PORT. Rolling updates stop an old task before starting its successor
// (stop-first), since both would bind the same port; so that a batch never stops
// every task at once, Swarm gets an update and rollback parallelism of at most
// replicas-1 (the asked-for value stays in the labels selfheal.update-parallelism
// and selfheal.rollback-parallelism, and Scale recomputes the cap).
//
// Docker runs a health check command without a shell and Swarm does not template it,
// so the service's probe mode must expand $PORT itself: DefaultProbeCommand is
//
//	/service -probe http://127.0.0.1:${PORT}/livez
//
// Instances maps tasks to driver.Instance (ID is the task id); Tasks adds the slot,
// Swarm's own task states and Docker's health status of each container.
//
// # Writes
//
// Every write re-reads the object and writes with the version index it read; when
// Swarm refuses the write as stale (another writer came first), the driver re-reads
// and tries again, up to Config.WriteAttempts times, then returns an error matching
// ErrStaleVersion. A write that would change nothing is not sent. Writes return as
// soon as Swarm accepted them and never wait for the swarm to converge (the CLI's
// blocking `docker service scale` can hang for many minutes): callers follow
// progress with Rollout and Instances, polling with their own deadline. Every call
// is bounded by Config.CallTimeout.
//
// # No registry, no pulls
//
// Services are created and updated with QueryRegistry false (the API's
// --no-resolve-image), so the image reference is never resolved against a
// registry; the image must already be on the engine. BuildImage makes one FROM
// scratch from a static binary with the classic builder: no base image, no pull.
// Its HEALTHCHECK runs the binary itself in probe mode (DefaultProbeCommand), since a
// scratch image has no shell and no curl.
//
// # Hosts that die: RemoveNode and NodeGuard
//
// Swarm notices a lost worker only on its own heartbeat schedule: it reports the node
// down 11-14 s after the host died (default 5 s heartbeat), and only then reschedules
// its tasks. Draining a dead node gains nothing; removing it does: RemoveNode removes
// a worker by force (`docker node rm --force`) and Swarm reschedules its tasks at once.
// RemoveNode refuses a manager (ErrManagerNode), so the last manager is never removed.
//
// NodeGuard decides when: every 250 ms it probes, by TCP, every running instance and
// the gossip port (7946) of every node at its swarm address. A connection or a refusal
// is the host answering; a timeout or no route is silence. A worker silent for 3
// consecutive rounds while Swarm reports it ready (1 round once Swarm reports it down)
// is removed, and the incident (NodeIncident: node, reason, instances, when silent,
// confirmed, removed) recorded; never on a single missed round, never a manager,
// never when another node is silent too or no node answered (the fault is more likely
// the guard's own network), and at most one node per Cooldown. A removed host that
// comes back must leave the swarm and join it again.
//
// On the test-host lab (.ci/docker/lab.sh: hosts in network namespaces, each with its
// own engine), a killed worker's replicas served elsewhere 2.8-3.9 s after the kill
// with the guard, 17-20 s with Swarm alone, on a loaded 2-core machine. lab_test.go
// runs these cases; CI starts the lab through .ci/services.d/lab.sh.
//
// # A pool of nodes: replacements, spreading, preventive drains
//
// With MinNodes and Provision set, the guard asks for a node (runs Provision: the
// lab's add-host, a cloud's autoscaling call) whenever fewer nodes are ready and
// active, one call at a time. With Spread set, a worker that joins after the guard's
// first round (a provisioned node, a lost host that came back as a new node) gets
// replicas: the guard rolls every managed service (Driver.Spread, a forced update
// under the service's update configuration), since Swarm places new tasks on a new
// node but never moves running ones. It waits until every managed service is settled
// (as many tasks running as replicas, each for SpreadSettle, 5 s, so that the front
// door has them in rotation; no update or rollback in progress): a node that joins
// while Swarm still reschedules a lost node's tasks would otherwise see a stop-first
// roll stop the only tasks that serve while their replacements start.
//
// Preventive drains: a node reports how much of a resource it uses in node labels
// selfheal.pressure.<resource>=<percent> (LabelPressure). Docker reports no disk or
// memory use of a node by itself; the label is written through a manager by something
// on the host (an exporter's hook; on the lab, `lab.sh pressure NAME disk 87`). The
// guard keeps the changes of each value over 10 minutes and drains a ready, active
// node whose use is at DrainAt (90%) or more, or has risen at a rate that reaches
// 100% within Horizon (2 min); the incident gives the figures ("disk 70% used and
// rising 13.4%/s (from 40% 2s ago): full in about 2s"). One node at a time (not while
// a node it drained is still drained), never the last schedulable node, and it never
// activates a node again: that is the operator's call.
//
// # Errors
//
// A missing or restarting engine is an error matching ErrEngineUnavailable (an
// *EngineError naming the address), an engine outside swarm mode one matching
// ErrNotManager. Unknown services, tasks and nodes match driver.ErrNotFound. The
// driver holds no state that an engine restart invalidates: after the engine is back,
// the next call simply works.
//
// # Concurrency
//
// A Driver is safe for concurrent use. New starts no goroutines; Watch runs on the
// caller's goroutine until its context is done.
package docker
