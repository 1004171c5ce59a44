// Package supervise runs goroutines under supervision trees, with the
// semantics of Erlang/OTP supervisors and the shape of Go's context.
//
// # The model
//
// A [Service] is anything with a Serve(ctx) error method: a consumer, a
// poller, a server. A [Supervisor] runs services as its children, each on a
// goroutine of its own, and when a child ends it decides, from the child's
// [RestartType] and the supervisor's [Strategy], what to restart. A
// *Supervisor is itself a Service, so supervisors nest into a tree: the leaves
// do the work, the inner nodes only restart.
//
// The OTP concepts map to Go like this:
//
//	OTP                               supervise
//	process, exit reason normal       Service.Serve returning nil
//	abnormal exit                     Serve returning an error, or panicking
//	exit(Child, shutdown)             cancelling the child's context
//	shutdown timeout, brutal_kill     per-child shutdown timeout, then abandon
//	one_for_one, one_for_all,         OneForOne, OneForAll, RestForOne
//	  rest_for_one
//	permanent, transient, temporary   Permanent, Transient, Temporary
//	intensity, period                 Config.MaxRestarts, Config.Period
//	supervisor:start_child,           Supervisor.Add, Supervisor.Remove
//	  terminate_child + delete_child
//	supervisor:which_children         Supervisor.Status
//
// Children start in the order they were added; a group restart (OneForAll,
// RestForOne) stops the affected children one by one in reverse start order
// and starts them again in start order; and when the supervisor stops, it
// stops all its children in reverse start order, each within its shutdown
// timeout. "Started" means that the child's goroutine has been launched: a
// child has no way to say it is ready, so start order is an order of calls,
// not of readiness. A nested supervisor, though, counts as started only once
// it has launched its own children, as in OTP, so the siblings after it start
// after its whole subtree.
//
// # Restart intensity and escalation
//
// When restarting would make more than Config.MaxRestarts restarts within
// Config.Period, the supervisor gives up: it stops every child in reverse
// order and its Serve returns an *[EscalationError] ([ErrGaveUp]). Its parent
// sees that as the failure of a child, and restarts the whole subtree, or
// gives up in turn. A root supervisor that gives up returns the error to its
// caller, which should usually exit the process and leave the next level of
// healing (a process supervisor, an orchestrator, the selfheal agent) to act.
//
// Between the restarts of a child that keeps failing, the supervisor waits a
// backoff delay with jitter (Config.Backoff, by default exponential from
// 100ms to 10s, from github.com/cenkalti/backoff). The first restart after a
// stable run (Config.BackoffReset) is immediate, as in OTP. The wait runs on
// the child's own goroutine and timer, so a child in backoff never delays the
// restart of a sibling.
//
// # Panics, stops and abandoned children
//
// A panic in a child is recovered, recorded as a *[PanicError] with the stack
// of the panicking goroutine, and treated as a failure (Config.NoRecover turns
// recovery off). Go cannot kill a goroutine: a child that ignores its
// cancelled context past its shutdown timeout is reported ([EventAbandoned],
// with the stack of its goroutine) and abandoned, so it never blocks the tree.
//
// # Observing a tree
//
// [Supervisor.Status] returns a race-free snapshot of the whole tree (per
// child: state, restarts, last error, uptime, nested children), which the heal
// package turns into a health check. Every start, failure, restart, stop,
// abandonment and escalation is an [Event] delivered to Config.Hook and logged
// to Config.Logger, and the metrics selfheal.supervise.restarts and
// selfheal.supervise.children.running go to Config.MeterProvider.
//
// # Differences from suture
//
// The Service interface is the same as github.com/thejerf/suture/v4's, so
// services port over unchanged. Beyond suture, supervise has the OneForAll and
// RestForOne strategies; stops children in reverse start order rather than
// all at once (children's contexts are cancelled one by one, not through the
// parent's context); treats a nil return as "done" for Transient and Temporary
// children instead of always as a failure; gives up and escalates after the
// restart intensity, as OTP does, where suture pauses the whole supervisor;
// backs off per child, without delaying siblings; reports starts and stops as
// well as failures; and exposes the tree's status.
//
// # Cost
//
// A one-for-one restart happens in place: the child's own goroutine records
// the failure under the supervisor's lock and calls Serve again, instead of
// messaging the supervisor's goroutine, which would start a new goroutine. On
// the reference machine that takes about a quarter of suture's time and
// memory per restart (2 allocations, for the run's context); after a panic,
// under a tenth, because only the program counters of the panicking stack are
// recorded and the text is made when [PanicError.Stack] is first called. The
// benchmarks live in internal/peerbench.
package supervise
