package breaker

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrOpen is matched (with [errors.Is]) by the error that [Breaker.Do] returns when
	// it rejects a call because the circuit is open, by its rules or by [Breaker.ForceOpen].
	ErrOpen = errors.New("breaker: circuit open")

	// ErrTooManyRequests is matched by the error that [Breaker.Do] returns when it
	// rejects a call because the circuit is half-open and every probe slot is taken.
	ErrTooManyRequests = errors.New("breaker: too many requests")

	// ErrInvalidConfig is matched (with [errors.Is]) by the errors of [New] and
	// [NewGroup] for settings they cannot honour; the error is a [*ConfigError] that
	// names the field.
	ErrInvalidConfig = errors.New("breaker: invalid configuration")
)

// ConfigError is the error [New] and [NewGroup] return for a setting they cannot
// honour. It matches [ErrInvalidConfig] with [errors.Is].
type ConfigError struct {
	Field  string // the field, for example "Config.FailureRate" or "GroupConfig.MaxKeys"
	Reason string // why, for example "is 1.5, want 0 < FailureRate <= 1"
}

// Error returns "breaker: invalid configuration: " followed by the field and the reason.
func (e *ConfigError) Error() string {
	return ErrInvalidConfig.Error() + ": " + e.Field + ": " + e.Reason
}

// Is reports whether target is [ErrInvalidConfig].
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns [ErrInvalidConfig].
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// OpenError is the error a [Breaker] returns when it rejects a call. It matches
// [ErrOpen] or [ErrTooManyRequests] with [errors.Is]; use [errors.As] to learn which
// breaker rejected the call and for how long it stays open.
//
// An OpenError is immutable and may be shared: a breaker builds one per open period
// (and one for its half-open state) and returns the same value for every call it
// rejects in that period, which is why rejecting a call allocates nothing. For the
// same reason the time left is not a field, which would be stale as soon as the error
// was kept: [OpenError.RetryAfter] computes it from [OpenError.Until] when asked.
type OpenError struct {
	// Name is the name of the breaker that rejected the call.
	Name string
	// State is StateOpen (the error matches ErrOpen) or StateHalfOpen (it matches
	// ErrTooManyRequests).
	State State
	// Forced reports that the breaker was opened by ForceOpen; it stays open until
	// ForceClosed or Reset, so Until is zero.
	Forced bool
	// Until is when the open period ends and the breaker lets probe calls through.
	// It is zero when the time is unknown: the breaker is forced open, or half-open.
	Until time.Time
}

// RetryAfter returns how long the breaker stays open from now: the time until
// [OpenError.Until], or zero when that has passed or is unknown (forced open,
// half-open). The name matches the Retry-After convention, so a retry policy that
// looks for a RetryAfter() time.Duration method can wait exactly that long, or give
// up at once when that is longer than it may wait. With a growing open wait
// ([Config.MaxOpenDuration]) it is the wait of this open period.
func (e *OpenError) RetryAfter() time.Duration {
	if e.Until.IsZero() {
		return 0
	}
	return max(time.Until(e.Until), 0)
}

// Error reports the breaker's name and, while the time is known, how long it stays
// open.
func (e *OpenError) Error() string {
	switch {
	case e.State == StateHalfOpen:
		return fmt.Sprintf("%v: breaker %q is half-open and all probe slots are taken", ErrTooManyRequests, e.Name)
	case e.Forced:
		return fmt.Sprintf("%v: breaker %q is forced open", ErrOpen, e.Name)
	default:
		return fmt.Sprintf("%v: breaker %q stays open for %v", ErrOpen, e.Name, e.RetryAfter().Round(time.Millisecond))
	}
}

// Is reports whether target is ErrOpen (State is StateOpen) or ErrTooManyRequests
// (State is StateHalfOpen).
func (e *OpenError) Is(target error) bool {
	if e.State == StateHalfOpen {
		return target == ErrTooManyRequests
	}
	return target == ErrOpen
}
