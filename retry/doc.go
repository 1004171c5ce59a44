// Package retry retries calls that fail for a reason that may pass: a dropped
// connection, an overloaded server, a leader election. It retries safely: never a retry
// storm, never a sleep past the caller's deadline, never a retry of what cannot succeed.
//
// # The model
//
// A [Policy] runs a call as a sequence of attempts. After a failed attempt it asks, in
// this order:
//
//  1. Is the error retryable? Errors marked [Permanent] (or backoff's own
//     [backoff.Permanent]) never are; then [Config.Retryable] decides, by default
//     [DefaultRetryable], which refuses context errors. A non-retryable error is
//     returned as it is.
//  2. Is the caller still waiting? Once ctx is done nothing is retried.
//  3. Is an attempt left? [Config.MaxAttempts] counts the first attempt too.
//  4. How long to wait? A delay the server asked for ([After], [DelayHint],
//     [ParseRetryAfter]) wins, up to [Config.MaxServerDelay]; otherwise exponential
//     backoff from [Config.InitialDelay] by [Config.Multiplier] up to [Config.MaxDelay],
//     spread by a [Jitter] strategy (full, equal or decorrelated, as in the AWS note
//     "Exponential Backoff And Jitter"), or any [backoff.BackOff] from
//     [Config.NewBackOff].
//  5. Can the wait end in time? A wait that would not end before ctx's deadline, or
//     after [Config.MaxElapsedTime], is not started: the policy returns at once.
//  6. Does the [Budget] allow a retry? A budget shared across calls keeps retries to a
//     share of recent calls, so that a downstream in a full outage sees its load grow by
//     that share (20% by default), not by MaxAttempts.
//
// Then it calls [Config.OnRetry], adds a "retry" event to the current span if it is
// recording, logs, waits on a timer (returning early if ctx is done), and tries again.
//
// # Errors
//
// When a limit stops the retries, the error is an [*ExhaustedError] that matches
// [ErrExhausted], tells the number of attempts and the [Reason], and wraps the last
// attempt's error. A budget refusal also matches [ErrBudgetExhausted]; a wait that could
// not end before the deadline also matches [context.DeadlineExceeded]. When ctx is done
// the error matches ctx.Err() and wraps the last attempt's error.
//
// # Engine
//
// The package builds on github.com/cenkalti/backoff/v4: its [backoff.BackOff] interface
// is the plug-in point for custom delays ([Constant] and [Exponential] hand backoff's own
// strategies to a policy, one instance per call), and its [backoff.PermanentError] is the
// permanent marker. The retry loop is this package's own, because it needs what
// backoff.Retry lacks: deadline-aware waits, classification, server delays, budgets,
// telemetry, and no allocation on the success path.
//
// # Concurrency and cost
//
// A Policy and a Budget are immutable or atomic, safe for concurrent use, and meant to be
// built once and shared. A call keeps its state on its own stack; a call whose first
// attempt succeeds allocates nothing. No goroutine is ever started: attempts, hooks and
// waits run on the calling goroutine.
//
// # Telemetry
//
// Through the OpenTelemetry API ([Config.MeterProvider], nil meaning the global one): the
// counter "selfheal.retry.attempts" with attribute "outcome" (success, retry, permanent,
// exhausted, canceled, panic) and "retry.policy" when [Config.Name] is set. It is an
// observable counter: a policy counts in atomics and the meter reads them when it
// collects (a synchronous SDK counter would cost more than a call whose first attempt
// succeeds); the callback holds the policy weakly. A span event
// "retry" with "retry.attempt", "retry.delay_ms" and "retry.error" on the span in ctx
// when it is recording. With [Config.Logger], a Debug record before each retry.
package retry
