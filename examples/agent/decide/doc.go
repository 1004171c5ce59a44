// Package decide holds the agent's decision logic, free of I/O: every function takes
// the current time as an argument, so that the rules are tested as tables with
// testing/synctest and never with sleeps.
//
//   - [Tracker] is the state machine of one instance: a start-up grace period,
//     consecutive failure and success thresholds, and a minimum unhealthy time before
//     an instance counts as unhealthy.
//   - [Backoff] spaces the restarts of a service (exponential, with jitter and a cap)
//     and detects a crash loop, after which the agent gives up and reports.
//   - [Scaler] turns a load ratio (observed / target) into a replica count, with a
//     tolerance band and separate scale-up and scale-down stabilization windows (the
//     Kubernetes HPA rules), and scales out early when the trend of the ratio will
//     cross the band within the scale-up window.
//   - [Budget] bounds disruptive actions (stopping a live instance) per time window.
//   - [Series] is a short history of one measurement with a least-squares trend,
//     used to predict when a heap, a goroutine count or a latency reaches its limit.
//   - [Broken] says when so many instances look broken at once that the agent should
//     hold still: the fault is then more likely in a shared dependency or in the
//     agent's own view than in the instances.
//
// [Plan] puts them together: a pure function from a [Snapshot] of one service (its
// instances with their verdicts and traffic, the node states, the clock) to the
// [Action]s of one round with their reasons, in order: exits, unhealthy and
// not-ready instances, outliers (see [OutlierConfig]) and the decay of their
// ejection counts, preventive replacements, replacements that became ready, the
// autoscaler, the replica count and, last, the step of a rolling update
// ([Rollout]: batches, monitor window, delay, rollback). It reads and returns
// values and changes
// nothing, so every decision is a table test. It plans for every driver: with
// [Snapshot.Orchestrated] it leaves restarts, the count and placement to the
// orchestrator and evicts what it would replace.
//
// Nothing in this package is safe for concurrent use; the agent calls it from one
// goroutine per service.
package decide
