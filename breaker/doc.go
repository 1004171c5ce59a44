// Package breaker provides circuit breakers: a [Breaker] watches the outcomes of the
// calls it runs and, when they go bad, rejects calls for a while instead of running
// them, so that a failing downstream gets room to recover and callers fail fast.
//
// The state machine is github.com/sony/gobreaker/v2's. This package adds contexts,
// classification, rate and slow-call rules, manual control, hooks outside the locks,
// rejection errors that tell which breaker rejected a call and until when, keyed
// groups of breakers, and OpenTelemetry instruments.
//
// # States
//
// A breaker is closed, open or half-open ([State]):
//
//   - Closed: every call runs. After each call that fails or is slow, the trip rules
//     are checked; when one is met the breaker opens.
//   - Open: every call is rejected at once, for [Config.OpenDuration] (default 60s).
//   - Half-open: the first call after the open duration moves the breaker to
//     half-open. It lets [Config.HalfOpenProbes] probe calls through (default 1) and
//     rejects the others with [ErrTooManyRequests]. When that many probes have
//     succeeded it closes; the first probe that fails (or is slow, when a slow-call
//     rule is set) opens it again for another open duration.
//
// Every state change empties the counts. [Breaker.ForceOpen] and [Breaker.ForceClosed]
// pin the breaker open or closed, suspending the rules, until [Breaker.Reset], which
// also returns a breaker to a fresh closed state.
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
// time-based, the calls of the last [Config.WindowDuration], which gobreaker's rolling
// window divides into [Config.WindowBuckets] buckets that leave the window one at a
// time.
//
// # Classification
//
// A call that returns nil succeeds. A call that returns an error fails, unless
//
//   - the error is the caller's own cancellation: the ctx passed to [Breaker.Do] is
//     done and the error matches context.Canceled. The call counts neither way, since
//     it says nothing about the downstream (and it frees its probe slot);
//   - [Config.IsFailure] returns false for it: the call counts as a success (the
//     downstream answered, for example "not found").
//
// A deadline that expires, even the caller's own, is a failure: the downstream was too
// slow for it. A panic is a failure and is raised again once recorded.
//
// # Errors
//
// A rejected call returns an [*OpenError] that matches [ErrOpen] (open or forced open)
// or [ErrTooManyRequests] (half-open with every probe slot taken) with [errors.Is]. It
// names the breaker, and [OpenError.Until] and [OpenError.RetryAfter] tell how long
// the breaker stays open. [New] and [NewGroup] return errors matching
// [ErrInvalidConfig] that name the offending field.
//
// # Groups
//
// A [Group] holds one breaker per key, for example per downstream host, created on
// first use with the same Config. It is bounded: breakers idle for
// [GroupConfig.IdleTimeout] are evicted, and when [GroupConfig.MaxKeys] keys are live
// the least recently used are evicted to make room. Looking up an existing key is
// lock-free and allocates nothing.
//
// # Hooks, logs and telemetry
//
// [Config.OnStateChange] and [Config.Logger] see every state change, in order, called
// outside the breaker's locks on the goroutine of a call (or of [Breaker.State]) that
// saw the change. Through
// the OpenTelemetry API ([Config.MeterProvider], default the global provider) a
// breaker reports:
//
//   - selfheal.breaker.calls, a counter of calls by breaker.name and breaker.outcome
//     (success, failure, excluded, rejected); it is an observable counter: the
//     breaker counts in atomics and the meter reads them when it collects, so a call
//     costs an atomic add whether or not an SDK is installed (a synchronous SDK
//     counter would cost more than the breaker itself). A breaker that a [Group]
//     evicts stops reporting;
//   - selfheal.breaker.state, a gauge: 0 closed, 1 half-open, 2 open;
//   - selfheal.breaker.transitions, a counter by breaker.from and breaker.to;
//   - a breaker.rejected event on the caller's span when a call is rejected, if the
//     span is recording.
//
// Attribute sets are built when a breaker is created, so a call allocates nothing for
// telemetry.
//
// # Cost
//
// A call through a closed breaker costs one gobreaker Execute and a few nanoseconds
// more, and allocates nothing. A rejection by an open breaker takes no lock, reads only
// the monotonic clock and allocates nothing: the [*OpenError] of an open period is
// built once, when the breaker opens, and computes the time left when asked. The clock
// is read around a call only when a slow-call rule is set. Looking up an existing key
// of a [Group] is a map lookup in a read-only snapshot. The internal/peerbench module
// of the repository measures all of this against gobreaker and failsafe-go.
package breaker
