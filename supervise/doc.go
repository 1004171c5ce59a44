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
//	intensity 0                       Config.MaxRestarts: NoRestarts
//	significant, auto_shutdown        ChildConfig.Significant, Config.AutoShutdown
//	supervisor:start_child            Supervisor.Add
//	terminate_child, restart_child    Supervisor.StopChild, Supervisor.RestartChild
//	terminate_child + delete_child    Supervisor.Remove
//	supervisor:which_children         Supervisor.Snapshot
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
// # Configuration
//
// A supervisor is made by [New] from a [Config], and a child added by
// [Supervisor.Add] with a [ChildConfig]: in both, the zero value is valid and
// every field documents its default. Config.MaxRestarts and Config.StopTimeout
// accept [Off] to turn their limit off; MaxRestarts also accepts [NoRestarts],
// OTP's intensity 0. Other negative values, and any other invalid field, make
// New or Add return a *[ConfigError] ([ErrInvalidConfig]). A plain function
// becomes a Service with [Func]. The [ChildID] that Add returns belongs to
// that supervisor: another supervisor answers [ErrUnknownChild] for it.
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
// backoff delay with jitter (Config.Backoff, a [Backoff]; by default
// [DefaultBackoff], exponential from 100ms to 10s). The first restart after a
// stable run (Config.BackoffReset) is immediate, as in OTP. The wait runs on
// the child's own goroutine and timer, so a child in backoff never delays the
// restart of a sibling.
//
// # Panics, stops and abandoned children
//
// A panic in a child is recovered, recorded as a *[PanicError] with the stack
// of the panicking goroutine, and treated as a failure (Config.NoRecover turns
// recovery off).
//
// A child never runs twice at once. Go cannot kill a goroutine, so a child
// that ignores its cancelled context past its shutdown timeout is abandoned:
// the supervisor stops waiting for it, reports it ([EventAbandoned], with the
// stack of its goroutine, and a *[StopTimeoutError]), and never starts that
// child again while the abandoned copy still runs. What follows depends on why
// the child was being stopped:
//
//   - For a group restart (OneForAll, RestForOne), the supervisor cannot
//     restart the group without running two copies of the child, so it gives
//     up: it stops its other children and its Serve returns an
//     *[EscalationError] ([ErrGaveUp], and [ErrStopTimeout] through its Err)
//     naming the child. Its parent then restarts the subtree or gives up in
//     turn, as for any failure.
//   - When the supervisor is served again (a parent restarting it), its other
//     children start at once; the abandoned child waits, backing-off, and
//     starts as soon as its abandoned copy returns ([EventReturned], then
//     [EventStarted]).
//   - After [Supervisor.StopChild], the child stays stopped;
//     [Supervisor.RestartChild] returns [ErrRunning] until the copy returns.
//   - After [Supervisor.Remove] or a stop of the whole supervisor, nothing
//     is restarted; the copy is reported until it returns.
//
// The copies still running show in the snapshot (ChildSnapshot.Abandoned,
// Snapshot.Abandoned) and in the gauge selfheal.supervise.children.abandoned,
// and their return is reported (EventReturned). An abandoned copy keeps only
// its own goroutine and what it references; the supervisor forgets it when it
// returns.
//
// Stopping a whole supervisor (when Serve's context is cancelled, it gives up
// or it shuts down on its own) stops the children one by one in reverse start
// order, each within its shutdown timeout, and all of them within
// Config.StopTimeout (25s by default, under Kubernetes' 30-second grace
// period): once that has passed, the children still running are cancelled at
// once and abandoned, so ten stuck children do not take ten shutdown
// timeouts.
//
// # Stopping and restarting children by ID
//
// [Supervisor.StopChild] stops a child and keeps it listed, stopped; no
// restart strategy starts it again until [Supervisor.RestartChild] does (or
// the supervisor is served afresh). [Supervisor.Remove] stops it and forgets
// it; the supervisor then holds no reference to it.
//
// # Significant children and automatic shutdown
//
// A supervisor whose job is done when some of its children finish (a batch,
// a migration next to its helpers) marks those children significant
// (ChildConfig.Significant; they must be Transient or Temporary) and sets
// Config.AutoShutdown to AnySignificant or AllSignificant, as in OTP 24. When
// one (or every) significant child has ended on its own and is not restarted,
// the supervisor stops its other children ([EventAutoShutdown]) and its Serve
// returns nil, so a parent that added it as Transient treats it as done.
//
// # Observing a tree
//
// [Supervisor.Snapshot] returns a race-free copy of the state of the whole
// tree (per child: ID, state, restarts, last error, uptime, abandoned copy,
// nested children), with no side effects; the heal package turns it into a
// health check. Every start, failure, restart, stop, abandonment, return of an
// abandoned copy, automatic shutdown and escalation is an [Event] delivered to
// Config.Hook and logged to Config.Logger, the metrics
// selfheal.supervise.restarts, selfheal.supervise.children.running and
// selfheal.supervise.children.abandoned go to Config.MeterProvider, and every
// restart (a selfheal.supervise.restart span, with the error.type of the
// failure that caused it) and giving up (selfheal.supervise.gave_up) is a span
// of Config.TracerProvider's, a child of the span in the context given to
// Serve. Metrics, spans and log records share the attribute keys
// selfheal.supervisor.name, selfheal.child.name and selfheal.restart.cause
// (the root package's TELEMETRY.md lists every key).
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
// backs off per child, without delaying siblings; never starts a child while
// an abandoned copy of it still runs (suture starts it again); reports starts
// and stops as well as failures; and exposes the tree's snapshot. Like
// suture, it bounds the stop of a whole supervisor (Config.StopTimeout).
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
