// Package breaker provides circuit breakers: a [Breaker] watches the outcomes of the
// calls it runs and, when they go bad, rejects calls for a while instead of running
// them, so that a failing downstream gets room to recover and callers fail fast.
//
// The package follows the API conventions of the selfheal module: [New] takes a
// [Config] whose zero value is valid and whose Name field names the breaker; invalid
// settings are reported as a [*ConfigError] matching [ErrInvalidConfig]; [Off] turns
// off the features that can be turned off; [Breaker.Snapshot] reads without side
// effects; [Config.Classify] judges calls as [selfheal.Success], [selfheal.Failure] or
// [selfheal.Ignored].
//
// # States
//
// A breaker is closed, open or half-open ([State]):
//
//   - Closed: every call runs. After each call that fails or is slow, the trip rules
//     are checked; when one is met the breaker opens.
//   - Open: every call is rejected at once, for the open wait: [Config.OpenDuration]
//     (default 60s) the first time. When the breaker opens again without having
//     closed in between, the wait can grow, by [Config.OpenBackoff] up to
//     [Config.MaxOpenDuration], with [Config.OpenJitter] (resilience4j's
//     waitIntervalFunctionInOpenState, Polly's BreakDurationGenerator); by default it
//     is constant.
//   - Half-open: the first call after the open wait moves the breaker to half-open.
//     It lets [Config.HalfOpenProbes] probe calls through (default 1) and rejects the
//     others with [ErrTooManyRequests]. When that many probes have succeeded it
//     closes; the first probe that fails (or is slow, when a slow-call rule is set)
//     opens it again. If the probes have not decided within [Config.MaxHalfOpenWait]
//     (default 60s), the next call or probe outcome opens it again.
//
// Every state change empties the counts. [Breaker.ForceOpen] and [Breaker.ForceClosed]
// pin the breaker open or closed, suspending the rules, until [Breaker.Reset], which
// also returns a breaker to a fresh closed state.
//
// A breaker starts no goroutines and has no timers of its own: it changes state only
// in a call ([Breaker.Do], [Call], [Breaker.Allow] or a done function of Allow) that
// finds a rule met or a wait passed, and in ForceOpen, ForceClosed and Reset. Reading
// it ([Breaker.Snapshot], [Group.Snapshot], the telemetry) never changes it: an open
// breaker whose wait has passed reads as open until a call comes.
//
// # Trip rules
//
// The zero [Config] trips after 5 consecutive failures. The rules, any of which trips
// the breaker:
//
//   - Consecutive failures ([Config.ConsecutiveFailures]).
//   - Failure rate ([Config.FailureRate]): the failed share of the calls in a sliding
//     window, once the window holds [Config.MinimumCalls] calls.
//   - Slow-call rate ([Config.SlowCallDuration], [Config.SlowCallRate]): the share of
//     calls that took at least SlowCallDuration, as in resilience4j. A slow call may
//     also have failed; it counts for both rules.
//
// Only a failure can trip the consecutive-failure and failure-rate rules, and only a
// slow call the slow-call rule: a fast success never trips a breaker, even when it
// brings the window to MinimumCalls.
//
// The window is count-based, the last [Config.WindowSize] calls (default 100), or
// time-based, the calls that ended in the last [Config.WindowDuration], divided into
// [Config.WindowBuckets] buckets that leave the window one at a time. Every rule uses
// the same window.
//
// # Classification
//
// Each call is judged a success, a failure, or ignored (counted neither way; an
// ignored probe frees its slot):
//
//   - the caller's own cancellation, the ctx passed to [Breaker.Do] (or [Call],
//     [Breaker.Allow]) done and the error matching context.Canceled, is ignored: it
//     says nothing about the downstream;
//   - a panic is a failure, and is raised again once recorded;
//   - anything else is what [Config.Classify] says of the call's result and error;
//     the default, [DefaultClassify], makes a nil error a success and any other error
//     a failure.
//
// A deadline that expires, even the caller's own, is a failure by default: the
// downstream was too slow for it.
//
// # Guarantees
//
//   - A time-based window is exactly [Config.WindowDuration] long for every rule: a
//     call that ended at t counts at most until t+WindowDuration (and at least until
//     t+WindowDuration-WindowDuration/WindowBuckets).
//   - The half-open state cannot last forever: probes that never return, or permits
//     of [Breaker.Allow] that are never reported, hold their slots only until
//     [Config.MaxHalfOpenWait] has passed, unless it is Off.
//   - The outcome of a call let through in one state (or before ForceOpen,
//     ForceClosed or Reset) is dropped if the breaker has changed state since: a late
//     call of the closed state is not taken for a probe.
//   - A done function of [Breaker.Allow] counts once, however often it is called.
//   - A [Group] never evicts an open breaker to make room while enough closed or
//     half-open ones are live: a flood of new keys cannot close a breaker.
//   - Reading a breaker has no side effects (see States above).
//
// # Errors
//
// A rejected call returns an [*OpenError] that matches [ErrOpen] (open or forced open)
// or [ErrTooManyRequests] (half-open with every probe slot taken) with [errors.Is]. It
// names the breaker, and [OpenError.Until] and [OpenError.RetryAfter] tell how long
// the breaker stays open, so that a retry policy outside the breaker can give up at
// once when that is longer than it may wait. [New] and [NewGroup] return a
// [*ConfigError] matching [ErrInvalidConfig] that names the offending field.
//
// # Two-step calls
//
// A caller that cannot wrap its call in a function, such as a stream that ends later
// on another goroutine, asks for a permit with [Breaker.Allow] and reports the outcome
// with the done function it returns (gobreaker's TwoStepCircuitBreaker).
//
// # Groups
//
// A [Group] holds one breaker per key, for example per downstream host, created on
// first use with the same Config. It is bounded: breakers idle for
// [GroupConfig.IdleTimeout] are evicted, and when [GroupConfig.MaxKeys] keys are live
// the group evicts to make room, closed breakers first, least recently used first.
// Looking up an existing key is lock-free and allocates nothing.
//
// # Hooks, logs and telemetry
//
// [Config.OnStateChange] and [Config.Logger] see every state change, in order, called
// outside the breaker's locks on the goroutine of the call (or of ForceOpen,
// ForceClosed, Reset) that made the change. Through the OpenTelemetry API
// ([Config.MeterProvider] and [Config.TracerProvider], default the global providers)
// a breaker reports, with the attribute keys of the scheme shared by every selfheal
// package (the root package's TELEMETRY.md lists them all):
//
//   - selfheal.breaker.calls, a counter of calls by selfheal.policy.name and
//     selfheal.outcome (success, failure, excluded, rejected); it is an observable
//     counter: the breaker counts in atomics and the meter reads them when it
//     collects, so a call costs an atomic add whether or not an SDK is installed (a
//     synchronous SDK counter would cost more than the breaker itself). A breaker
//     that a [Group] evicts stops reporting;
//   - selfheal.breaker.state, a gauge: 0 closed, 1 half-open, 2 open;
//   - selfheal.breaker.transitions, a counter by selfheal.state.previous and
//     selfheal.state;
//   - a selfheal.breaker.state_change span of its own (a root: the call that made the
//     change is not its cause) for each state change;
//   - a selfheal.breaker.rejected event on the caller's span when a call is rejected,
//     if that span is recording, with selfheal.state, selfheal.forced and
//     selfheal.retry_after (seconds).
//
// The log record of a state change uses the same keys.
//
// Attribute sets are built when a breaker is created, so a call allocates nothing for
// telemetry.
//
// # Cost
//
// The state machine is the package's own (it replaced sony/gobreaker v2, whose open
// wait is fixed, whose half-open state has no bound, and whose State moves an open
// breaker to half-open). A call through a closed breaker takes its mutex twice, reads
// the clock only when a slow-call rule or a time-based window needs it, and allocates
// nothing ([Call] boxes its value only when a Classify is set). A rejection by an
// open breaker takes no lock, reads only the monotonic clock and allocates nothing:
// the [*OpenError] of an open period is built once, when the breaker opens, and
// computes the time left when asked. [Breaker.Allow] allocates its done function.
// Looking up an existing key of a [Group] is a map lookup in a read-only snapshot.
// The internal/peerbench module of the repository measures all of this against
// gobreaker and failsafe-go.
package breaker
