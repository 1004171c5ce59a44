// Package core is the companion agent: a loop per service that probes every
// instance, evaluates what it sees, plans, acts through a driver and verifies.
//
// # The loop
//
// Every probe interval, and at once when a driver that is a [driver.Watcher]
// reports an exit or a node change, the agent lists the service's instances through
// the driver (the driver's own view: running or exited, and the nodes' states) and
// probes each
// running one: liveness, readiness and the health document (latency, utilization,
// heap, goroutines). The document comes first: a selfheal health document carries
// the liveness and readiness verdicts in its health.ProbesHeader, and then it is the
// whole probe, one request instead of three (the configured liveness and readiness
// paths are asked only of documents without it). Each instance has a [decide.Tracker]: a start-up grace period,
// consecutive failure and success thresholds and a minimum unhealthy time.
//
// A round has four stages, each in its own file: probe (probe.go, the only I/O
// toward the instances), judge (judge.go: the driver's list and the probe results
// update each instance's tracker and samples, and the service becomes a
// [decide.Snapshot]), plan ([decide.Plan], a pure function from that snapshot to a
// list of [decide.Action] with their reasons, tested as tables) and act (act.go:
// driver calls in the background, events, incidents, and the state the next round
// verifies against). A rolling update is stepped after the plan.
//
// The plan, in this order:
//
//   - An exited instance (a crash, or its node went down) is forgotten and a
//     replacement started on the least loaded ready node (its own node winning a
//     tie), after a restart backoff with jitter and a cap (the loop wakes when
//     the backoff is due, not at its next round). Escalation: a
//     replacement that fails again within the monitor window after it healed is
//     replaced on another node; a crash loop makes the agent give up and report.
//     Exits caused by a node failure count toward neither.
//   - An unhealthy instance (hung, or failing liveness) is replaced: a new instance
//     is started, and the old one stopped once the new one is ready.
//   - A not-ready instance (its readiness fails while its liveness passes) leaves
//     the front door's rotation at the probe that sees it, with an event naming it
//     and the reason it gives, in an incident that heals when it is ready again.
//     If it is still not ready after health.notReadyTimeout (30 s by default) it is
//     replaced, surge first: it keeps counting as a replica until its replacement
//     is ready, so capacity never drops. When most instances are not ready at once
//     the cause is likely shared (a dependency down) and the agent holds still.
//     The status reports ready instances apart from running ones.
//   - Outlier detection, as Envoy does it (fleet file outliers): an instance whose
//     mean latency or error rate through the front door (its per-backend counters
//     over the window) stands far from its peers' median, over at least
//     minRequests requests, is ejected from the front door for baseEjection times
//     its ejections, with events that name it and the numbers; at its
//     replaceAfter-th ejection it is replaced, surge first. The count of
//     ejections decays by one for every baseEjection the instance then stays in
//     the front door (as Envoy's ejection multiplier), so an instance ejected
//     now and then over a long life is not ejected for ever longer nor replaced
//     for it. Never more than
//     maxEjected of the fleet (1/3, at least one of 3) is ejected at once. Scaling
//     reads the median instance, not the mean, and ignores ejected instances, so
//     one slow instance never scales the fleet out.
//   - Preventive healing: an instance whose heap or goroutine count trends to its
//     limit within the horizon is replaced the same way, one at a time; so is each
//     instance on a node that reports itself degraded (the node is drained).
//   - The replica count is kept: missing instances are started, extra ones
//     stopped, worst first (ejected outliers, not ready, then those on nodes that
//     are not ready, then old versions, then the newest).
//   - A rolling update replaces instances Parallelism at a time, each new instance
//     monitored for the Monitor window, with Delay between batches; when new
//     instances fail (exit, not ready within StartTimeout, or unhealthy), the
//     FailureAction applies: rollback (the update is reversed the same way), pause
//     or continue.
//   - Autoscaling: a load ratio (the median instance's p99 latency over its
//     target, or its utilization over its target, whichever is higher) goes through a
//     [decide.Scaler]: a tolerance band, scale-up and scale-down stabilization
//     windows, and an early scale-out when the trend crosses the band within the
//     scale-up window. Overload scales out; it never restarts anything.
//
// # Safety
//
// Stopping a live instance (replacing a hung or leaking one, draining) spends the
// fleet's disruption budget. When most of a service's instances look broken by
// their probes at once, the agent holds still and says so: the fault is then more
// likely in a shared dependency or in the agent's own view. (Exits reported by the
// driver are facts, not views, and are always handled.) In dry-run mode every
// decision is logged and nothing is done.
//
// The replica count counts an instance and its replacement once: the old
// instance while it runs (surge first), the replacement once the old one left,
// even while the replacement is still starting; an exit during a replacement
// never starts another instance besides.
//
// With an Orchestrator driver (Docker Swarm, Kubernetes), the same planner
// (decide.Plan with Snapshot.Orchestrated) decides, and the agent hands the
// orchestrator what it does natively: restarting exited instances, the replica
// count, placement, and rolling updates with rollback. An exit is reported in an
// incident healed when the count is met by ready instances again; an instance the
// agent would replace (unhealthy, not ready past its timeout, an outlier again) is
// evicted, stopped for the orchestrator to replace; outliers are ejected from the
// front door; the autoscaler sets the orchestrator's count. An instance whose heap
// or goroutines trend to their limit is evicted before it fails, one at a time and
// not while the orchestrator owes a replacement (the agent cannot surge first:
// evicted, it leaves the front door at once and drains, where its failure would
// drop what it serves); a degraded node is the driver's to drain.
//
// Every observation, decision and action goes to the event log (package eventlog),
// with an incident id that ties a fault to its healing and the time both took.
package core
