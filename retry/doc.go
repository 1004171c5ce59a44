// Package retry retries calls that fail for a reason that may pass: a dropped
// connection, an overloaded server, a leader election. It retries safely: never a retry
// storm, never a sleep past the caller's deadline, never a retry of what cannot succeed.
//
// # The model
//
// A [Policy] runs a call as a sequence of attempts. After each attempt it asks, in this
// order:
//
//  1. Is the attempt a failure? Errors marked [Permanent] never are; then
//     [Config.Classify] judges the attempt's error and (through [Call]) its result, by
//     default [DefaultClassify]: [selfheal.Failure] is retried, [selfheal.Success] and
//     [selfheal.Ignored] are returned as they are. The default retries every error but
//     [Permanent] ones and [context.Canceled]; a [context.DeadlineExceeded] is retried,
//     because an attempt that ran into a deadline of its own (a per-attempt timeout)
//     may well succeed next time.
//  2. Is the caller still waiting? Once ctx is done nothing is retried, whatever the
//     classification: an attempt that failed with the caller's own deadline ends the
//     call.
//  3. Is an attempt left? [Config.MaxAttempts] counts the first attempt too.
//  4. How long to wait? A delay the server asked for ([After], [DelayHint],
//     [ParseRetryAfter], an open circuit breaker) wins; a request longer than
//     [Config.MaxServerDelay] ends the retries at once ([ReasonServerDelay]) instead of
//     being shortened, because retrying earlier than asked only fails again (or is
//     rejected by the breaker), and waiting longer would block the caller for what may
//     be a minute. Otherwise the [Config.Backoff] strategy decides: by default
//     [Exponential] backoff from 100ms, doubling up to 10s, spread by a [Jitter]
//     strategy (full, equal or decorrelated, as in the AWS note "Exponential Backoff
//     And Jitter"); or [Constant], or any [Backoff].
//  5. Can the wait end in time? A wait that would not end before ctx's deadline, or
//     after [Config.MaxElapsedTime], is not started: the policy returns at once instead
//     of sleeping only to fail.
//  6. Does the [Budget] allow a retry? A budget shared across calls keeps retries to a
//     share of recent calls, so that a downstream in a full outage sees its load grow by
//     that share (20% by default), not by MaxAttempts.
//
// Then it calls [Config.OnRetry], adds a "retry" event to the current span if it is
// recording, logs, waits on a timer (returning early if ctx is done), and tries again.
// When a limit of 3, 4, 5 or 6 stops it, it calls [Config.OnGiveUp] and returns an
// [*ExhaustedError] (a "selfheal.retry.exhausted" event on a recording span).
//
// # Composition
//
// These rules make the zero [Config] compose with the policies it wraps (heal.Chain):
//
//   - around a per-attempt timeout, a timed-out attempt is retried while the caller's
//     context is alive;
//   - around a circuit breaker, whose open error is a [DelayHint] of the rest of its
//     open time: a breaker that stays open longer than MaxServerDelay (a breaker's
//     default open time is 60s, the policy's cap 30s) or past the caller's deadline
//     ends the call at once with the breaker's error inside an [*ExhaustedError]; one
//     that closes sooner is waited for, exactly, and the call retried.
//
// # Guarantees
//
//   - Never a sleep past the caller's deadline, and never a wait after ctx is done.
//   - Never a retry earlier than a server asked for, nor a wait longer than
//     MaxServerDelay for it.
//   - Never a retry of an error marked [Permanent], nor after the caller gave up.
//   - At most MaxAttempts attempts; with a [Budget], retries bounded by its share.
//   - No goroutine started; a panic in fn is recorded and continues.
//
// # Errors
//
// When a limit stops the retries, the error is an [*ExhaustedError] that matches
// [ErrExhausted], tells the number of attempts and the [Reason], and wraps the last
// attempt's error ([ErrFailedResult] when the last attempt's result was judged a
// failure). A budget refusal also matches [ErrBudgetExhausted]; a wait that could not
// end before the deadline also matches [context.DeadlineExceeded]. When ctx is done the
// error matches ctx.Err() and wraps (or is) the last attempt's error. [New] and
// [NewBudget] report an invalid configuration with a *[ConfigError] that matches
// [ErrInvalidConfig].
//
// # Configuration
//
// Zero means the documented default in every field. [Off] turns off what can be turned
// off: server-requested delays ([Config.MaxServerDelay]) and the budget's floor
// ([BudgetConfig.MinPerSecond]); other negative values are invalid.
//
// # Engine
//
// The retry loop and the backoff strategies are this package's own: they need what
// cenkalti/backoff's Retry lacks (deadline-aware waits, classification of errors and
// results, server delays, budgets, telemetry, and no allocation on the success path),
// and no type of that package appears in this API. Errors marked with backoff's own
// Permanent are honoured like [Permanent] ones, so that code written for it keeps its
// meaning.
//
// # Concurrency and cost
//
// A Policy and a Budget are immutable or atomic, safe for concurrent use, and meant to be
// built once and shared. A call keeps its state on its own stack; a call whose first
// attempt succeeds allocates nothing (with [Call] too, as long as [Config.Classify] is
// nil: only a Classify makes Call box the result). No goroutine is ever started:
// attempts, hooks and waits run on the calling goroutine.
//
// # Telemetry
//
// Through the OpenTelemetry API ([Config.MeterProvider] and [Config.TracerProvider],
// nil meaning the global ones), with the attribute keys shared by every selfheal
// package (the root package's TELEMETRY.md lists them all):
//
//   - the counter selfheal.retry.attempts, by selfheal.outcome and, when [Config.Name]
//     is set, selfheal.policy.name. The outcome of an attempt is success (no error,
//     not judged a failure), retry (a failure followed by a retry), permanent (an
//     error returned without a retry: marked [Permanent], or classified Success or
//     Ignored), exhausted (a failure after which a limit stopped the retries),
//     canceled (a failure after the caller's context was done) or panic. It is an
//     observable counter: a policy counts in atomics and the meter reads them when it
//     collects (a synchronous SDK counter would cost more than a call whose first
//     attempt succeeds); the callback holds the policy weakly.
//   - when the span in ctx is recording (the call is part of a sampled trace): on
//     that span, a selfheal.retry.retry event before each wait (selfheal.attempt, the
//     attempt that failed; selfheal.delay in seconds; error.type) and a
//     selfheal.retry.exhausted event when a limit ends the retries (selfheal.attempt,
//     selfheal.reason, error.type); and each retry (attempt 2 onward) runs in a
//     selfheal.retry.attempt span of its own, a child of the caller's span, with
//     selfheal.attempt, and error.type and an Error status when it returned an error
//     or panicked. Attempt 1 is the caller's call itself, whose span is the caller's:
//     it gets no span of its own, so that tracing costs a call whose first attempt
//     succeeds nothing at all (not even a context lookup), and its failure is the
//     first selfheal.retry.retry event. An error's text is never an attribute:
//     error.type is its Go type.
//   - with [Config.Logger], a Debug record before each retry (none for giving up: the
//     caller gets that error), with the same keys and the error itself under "error".
package retry
