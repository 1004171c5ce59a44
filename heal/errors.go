package heal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/retry"
)

// Off, given to a field whose documentation says so, turns that limit or stage off
// ([MiddlewareConfig.MaxConcurrent],
// [TransportConfig.MaxDrain], [TransportConfig.DrainTimeout],
// [TransportConfig.ResponseHeaderTimeout]). It is [selfheal.Off]; zero always means the
// documented default.
const Off = selfheal.Off

// Sentinel errors. Every rejection and timeout returned by this package matches one of
// them with [errors.Is]; the error types below carry the details.
var (
	// ErrBulkheadFull reports that a [Bulkhead] had no free slot (and, when queueing,
	// no room in its queue or no slot within MaxWait).
	ErrBulkheadFull = errors.New("heal: bulkhead full")
	// ErrRateLimited reports that a [RateLimit] had no token for the call (in wait
	// mode: none within MaxWait or before the context's deadline).
	ErrRateLimited = errors.New("heal: rate limited")
	// ErrLimitExceeded reports that an [AdaptiveLimit] was at its current limit.
	ErrLimitExceeded = errors.New("heal: concurrency limit exceeded")
	// ErrTimeout reports that a [Timeout] cut a call short. A *[TimeoutError] also
	// matches [context.DeadlineExceeded].
	ErrTimeout = errors.New("heal: timeout")
	// ErrInvalidConfig is matched by every *[ConfigError]: every constructor of this
	// package that can fail returns an error matching it.
	ErrInvalidConfig = errors.New("heal: invalid configuration")
	// ErrResponseDone is returned by the writes of a handler wrapped by a [Middleware]
	// that come after the handler returned (from a goroutine it started); they are
	// dropped. A write after the Middleware's Timeout answered the request returns
	// [net/http.ErrHandlerTimeout] instead, as with [net/http.TimeoutHandler].
	ErrResponseDone = errors.New("heal: response already finished")
)

// ConfigError reports an invalid setting, naming the field. It matches
// [ErrInvalidConfig] with [errors.Is] and unwraps to it.
type ConfigError struct {
	Field  string // for example "BulkheadConfig.MaxQueued"
	Reason string // for example "-1 is negative"

	cause error // the error of a stage's own constructor (breaker, retry), if any
}

func (e *ConfigError) Error() string {
	return "heal: invalid configuration: " + e.Field + ": " + e.Reason
}

// Is reports whether target is [ErrInvalidConfig].
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns [ErrInvalidConfig], and, when the invalid field is the
// configuration of another package's policy (a breaker's, a retry policy's), the
// error of that package's constructor, which matches its own ErrInvalidConfig.
func (e *ConfigError) Unwrap() []error {
	if e.cause != nil {
		return []error{ErrInvalidConfig, e.cause}
	}
	return []error{ErrInvalidConfig}
}

// invalid returns a *ConfigError for field.
func invalid(field, format string, args ...any) error {
	return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// invalidSub returns a *ConfigError for field, whose own constructor failed with err.
func invalidSub(field string, err error) error {
	sub, reason := "", err.Error()
	var (
		he *ConfigError
		be *breaker.ConfigError
		re *retry.ConfigError
	)
	switch {
	case errors.As(err, &he):
		sub, reason = he.Field, he.Reason
	case errors.As(err, &be):
		sub, reason = be.Field, be.Reason
	case errors.As(err, &re):
		sub, reason = re.Field, re.Reason
	}
	if _, after, ok := strings.Cut(sub, "Config."); ok {
		field += "." + after // "Config.MaxKeys" of a GroupConfig: "TransportConfig.Breaker.MaxKeys"
	}
	return &ConfigError{Field: field, Reason: reason, cause: err}
}

// RejectedError is returned when a policy refuses to run a call at all: the function
// was never called. It matches its Reason ([ErrBulkheadFull], [ErrRateLimited] or
// [ErrLimitExceeded]) with [errors.Is].
type RejectedError struct {
	// Policy is the kind of policy that refused: "bulkhead", "ratelimit" or "limit".
	Policy string
	// Name is the name of the policy instance.
	Name string
	// Reason is the sentinel error the rejection matches.
	Reason error
	// Delay, when positive, is how long the caller should wait before trying again
	// (a rate limiter knows when its next token arrives). [RejectedError.RetryAfter]
	// returns it.
	Delay time.Duration
}

// RetryAfter returns Delay. It makes a RejectedError a retry.DelayHint, so that a
// retry policy around a rate limit waits for the next token rather than its backoff.
func (e *RejectedError) RetryAfter() time.Duration { return e.Delay }

func (e *RejectedError) Error() string {
	if e.Delay > 0 {
		return fmt.Sprintf("%v (%s %q, retry after %v)", e.Reason, e.Policy, e.Name, e.Delay)
	}
	return fmt.Sprintf("%v (%s %q)", e.Reason, e.Policy, e.Name)
}

// Unwrap returns Reason.
func (e *RejectedError) Unwrap() error { return e.Reason }

// TimeoutError is returned by a [Timeout] whose deadline, and not the caller's, ended
// the call. It matches both [ErrTimeout] and [context.DeadlineExceeded], and unwraps to
// the error the function returned.
type TimeoutError struct {
	// Name is the name of the Timeout.
	Name string
	// Timeout is the duration that elapsed.
	Timeout time.Duration
	// Err is what the function returned after its context expired.
	Err error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("heal: timeout after %v (%q): %v", e.Timeout, e.Name, e.Err)
}

// Is reports whether target is ErrTimeout or context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}

// Unwrap returns Err.
func (e *TimeoutError) Unwrap() error { return e.Err }

// RetryAfter returns the delay a rejection or a server asked for: the first positive
// RetryAfter() time.Duration of an error in err's tree (a *[RejectedError], the
// breaker's *OpenError, retry's *AfterError). It returns false when there is none.
func RetryAfter(err error) (time.Duration, bool) {
	for err != nil {
		if e, ok := err.(interface{ RetryAfter() time.Duration }); ok {
			if d := e.RetryAfter(); d > 0 {
				return d, true
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if d, ok := RetryAfter(e); ok {
					return d, true
				}
			}
			return 0, false
		default:
			return 0, false
		}
	}
	return 0, false
}

// IsRejected reports whether err is a rejection by a bulkhead, rate limit or adaptive
// limit of this package: the call was not run.
func IsRejected(err error) bool {
	var r *RejectedError
	return errors.As(err, &r)
}
