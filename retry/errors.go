package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// ErrExhausted is matched (with [errors.Is]) by every error a [Policy] returns when it
// stops retrying a retryable failure because a limit was reached: attempts, elapsed
// time, the caller's deadline, the [BackOff] strategy, or the retry [Budget]. The
// returned error is an [*ExhaustedError]; its [ExhaustedError.Reason] tells which limit.
var ErrExhausted = errors.New("retry: retries exhausted")

// ErrBudgetExhausted is matched by the error a [Policy] returns when its [Budget] refused
// a retry. That error also matches [ErrExhausted] and wraps the last failure.
var ErrBudgetExhausted = errors.New("retry: retry budget exhausted")

// Reason says why a [Policy] stopped retrying; it is the [ExhaustedError.Reason].
type Reason string

// The reasons of an [ExhaustedError].
const (
	// ReasonMaxAttempts: the attempt that failed last was attempt [Config.MaxAttempts].
	ReasonMaxAttempts Reason = "max attempts reached"
	// ReasonMaxElapsed: the next wait would have ended after [Config.MaxElapsedTime].
	ReasonMaxElapsed Reason = "max elapsed time reached"
	// ReasonDeadline: the next wait would not have ended before the context's deadline.
	// An error with this reason also matches [context.DeadlineExceeded].
	ReasonDeadline Reason = "next wait would pass the context deadline"
	// ReasonBackOff: the [backoff.BackOff] from [Config.NewBackOff] returned
	// [backoff.Stop].
	ReasonBackOff Reason = "backoff stopped"
	// ReasonBudget: the [Budget] refused the retry. An error with this reason also
	// matches [ErrBudgetExhausted].
	ReasonBudget Reason = "retry budget exhausted"
)

// ExhaustedError is the error a [Policy] returns when it stops retrying a retryable
// failure because a limit was reached. It matches [ErrExhausted] with [errors.Is],
// [ErrBudgetExhausted] when the budget refused the retry, [context.DeadlineExceeded]
// when the next wait would have passed the context's deadline, and it unwraps to the last
// attempt's error, so errors.Is and errors.As see through it to that error too.
type ExhaustedError struct {
	// Attempts is the number of attempts made, at least 1.
	Attempts int
	// Reason says which limit stopped the retries.
	Reason Reason
	// Err is the error of the last attempt.
	Err error
}

// Error reads "retry: gave up after 3 attempts (max attempts reached): <last error>".
func (e *ExhaustedError) Error() string {
	s := "s"
	if e.Attempts == 1 {
		s = ""
	}
	return fmt.Sprintf("retry: gave up after %d attempt%s (%s): %v", e.Attempts, s, e.Reason, e.Err)
}

// Unwrap returns the last attempt's error.
func (e *ExhaustedError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrExhausted], or [ErrBudgetExhausted] for
// [ReasonBudget], or [context.DeadlineExceeded] for [ReasonDeadline].
func (e *ExhaustedError) Is(target error) bool {
	switch target {
	case ErrExhausted:
		return true
	case ErrBudgetExhausted:
		return e.Reason == ReasonBudget
	case context.DeadlineExceeded:
		return e.Reason == ReasonDeadline
	}
	return false
}

// Permanent marks err as not retryable: a [Policy] returns it at once, whatever
// [Config.Retryable] says. It returns nil for a nil err.
//
// The marker is backoff's own [backoff.PermanentError], so errors marked with
// [backoff.Permanent] are not retried either, and errors marked here stop backoff's
// Retry too. The error a Policy returns still carries the marker (so an outer Policy
// does not retry it either) and unwraps to err.
func Permanent(err error) error {
	return backoff.Permanent(err)
}

// IsPermanent reports whether err, or an error it wraps, was marked with [Permanent] or
// [backoff.Permanent].
func IsPermanent(err error) bool {
	var p *backoff.PermanentError
	return errors.As(err, &p)
}

// DelayHint is implemented by errors that carry a delay the server asked for before the
// next attempt, such as an HTTP Retry-After. When the error of a failed attempt (or an
// error it wraps) implements DelayHint and RetryAfter returns more than zero, a [Policy]
// waits that long, up to [Config.MaxServerDelay], instead of its backoff delay.
//
// Packages that should not import retry (an HTTP client transport that saw a
// Retry-After header, say) implement it on their own error types; others use [After].
type DelayHint interface {
	RetryAfter() time.Duration
}

// After returns an error that wraps err and asks a [Policy] to wait d before the next
// attempt, for example the delay of an HTTP Retry-After header (see [ParseRetryAfter]).
// It returns nil for a nil err. A d of zero or less asks for nothing: the policy's
// backoff applies. After does not make err retryable or permanent: classification is
// unchanged.
func After(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &AfterError{Err: err, Delay: d}
}

// AfterError is the error [After] returns: Err with a server-requested Delay.
type AfterError struct {
	Err   error
	Delay time.Duration
}

// Error returns Err's message.
func (e *AfterError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *AfterError) Unwrap() error { return e.Err }

// RetryAfter returns Delay; it makes AfterError a [DelayHint].
func (e *AfterError) RetryAfter() time.Duration { return e.Delay }

// serverDelay returns the delay the first [DelayHint] in err's tree asks for, or 0.
func serverDelay(err error) time.Duration {
	var h DelayHint
	if errors.As(err, &h) {
		return h.RetryAfter()
	}
	return 0
}

// DefaultRetryable is the classification a [Policy] uses when [Config.Retryable] is nil:
// every error is retryable except [context.Canceled] and [context.DeadlineExceeded] (the
// caller gave up, or an inner timeout did) and errors marked with [Permanent] or
// [backoff.Permanent].
func DefaultRetryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return !IsPermanent(err)
}
