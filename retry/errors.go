package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/selfheal-go/selfheal"
)

// ErrInvalidConfig is matched (with [errors.Is]) by every error [New] and [NewBudget]
// return for an invalid configuration; the error is a *[ConfigError].
var ErrInvalidConfig = errors.New("retry: invalid configuration")

// ConfigError is the error [New] and [NewBudget] return for an invalid configuration:
// it names the field and says why. It matches [ErrInvalidConfig] with [errors.Is].
type ConfigError struct {
	Field  string // for example "Config.MaxAttempts"
	Reason string // for example "-1 is negative; want >= 1 (0 means 3)"
}

// Error reads "retry: invalid configuration: Config.MaxAttempts: <reason>".
func (e *ConfigError) Error() string {
	return "retry: invalid configuration: " + e.Field + ": " + e.Reason
}

// Is reports whether target is [ErrInvalidConfig].
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns [ErrInvalidConfig].
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// ErrFailedResult is the error of an attempt that returned no error but whose result
// [Config.Classify] judged a failure (a response that says "try again"). When the
// retries run out on such an attempt, the [*ExhaustedError] wraps ErrFailedResult, and
// [Call] returns the last result with it.
var ErrFailedResult = errors.New("retry: result classified as a failure")

// ErrExhausted is matched (with [errors.Is]) by every error a [Policy] returns when it
// stops retrying a retryable failure because a limit was reached: attempts, elapsed
// time, the caller's deadline, the [Backoff] strategy, a server-requested delay beyond
// [Config.MaxServerDelay], or the retry [Budget]. The
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
	// ReasonBackoff: the [Config.Backoff] strategy returned a negative delay ([Stop]).
	ReasonBackoff Reason = "backoff stopped"
	// ReasonServerDelay: the failed attempt asked, through a [DelayHint] (an HTTP
	// Retry-After, an open circuit breaker), for a delay longer than
	// [Config.MaxServerDelay]. The policy does not retry earlier than the server asked;
	// it gives up at once and leaves the wait to its caller, who can read the delay
	// from the error (errors.As to a [DelayHint]).
	ReasonServerDelay Reason = "server-requested delay exceeds MaxServerDelay"
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
	// Err is the error of the last attempt; [ErrFailedResult] when that attempt
	// returned no error but its result was classified a failure.
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
// [Config.Classify] says. It returns nil for a nil err.
//
// The error a Policy returns still carries the marker (so an outer Policy does not
// retry it either) and unwraps to err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// PermanentError is the error [Permanent] returns: Err, marked as not retryable.
type PermanentError struct {
	Err error
}

// Error returns Err's message.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err, or an error it wraps, was marked with [Permanent].
// Errors marked by github.com/cenkalti/backoff's Permanent count too, so that code
// written for that package keeps its meaning inside a Policy.
func IsPermanent(err error) bool {
	// asType, unlike errors.As, takes no pointer to a local: nothing escapes,
	// and a failed attempt costs no allocation here.
	if _, ok := asType[*PermanentError](err); ok {
		return true
	}
	_, ok := asType[*backoff.PermanentError](err)
	return ok
}

// DelayHint is implemented by errors that carry a delay the server asked for before the
// next attempt, such as an HTTP Retry-After. When the error of a failed attempt (or an
// error it wraps) implements DelayHint and RetryAfter returns more than zero, a [Policy]
// waits that long instead of its backoff delay. When that is more than
// [Config.MaxServerDelay], or would not end before the caller's deadline, it gives up at
// once ([ReasonServerDelay], [ReasonDeadline]) rather than retry earlier than asked or
// sleep only to fail. A circuit breaker's open error (breaker's *OpenError, whose
// RetryAfter is the rest of its open time) is a DelayHint too, so that a retry policy
// around an open breaker either waits for it within those limits or fails fast.
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

// delayHintError is a DelayHint that is an error, for asType.
type delayHintError interface {
	error
	DelayHint
}

// serverDelay returns the delay the first [DelayHint] in err's tree asks for, or 0.
func serverDelay(err error) time.Duration {
	if h, ok := asType[delayHintError](err); ok {
		return h.RetryAfter()
	}
	return 0
}

// DefaultClassify is the classification a [Policy] uses when [Config.Classify] is
// nil. It looks at the error only:
//
//   - nil: [selfheal.Success];
//   - marked with [Permanent], or matching [context.Canceled] (someone gave up):
//     [selfheal.Ignored], returned without a retry;
//   - anything else, [context.DeadlineExceeded] included: [selfheal.Failure], retried.
//
// An attempt that ran into a deadline of its own (a per-attempt timeout such as
// [Config.AttemptTimeout] or heal's Timeout inside the policy) is worth retrying; the
// caller's own deadline is not, and a Policy never retries once the caller's context is
// done, whatever the classification.
func DefaultClassify(_ any, err error) selfheal.Outcome {
	switch {
	case err == nil:
		return selfheal.Success
	case IsPermanent(err), errors.Is(err, context.Canceled):
		return selfheal.Ignored
	}
	return selfheal.Failure
}
