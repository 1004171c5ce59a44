package breaker

import (
	"strconv"
	"time"
)

// State is the state of a circuit breaker.
type State int

// The states of a breaker. The values are what the selfheal.breaker.state gauge
// reports.
const (
	// StateClosed lets every call through and watches the outcomes.
	StateClosed State = 0
	// StateHalfOpen lets a bounded number of probe calls through to decide whether to
	// close again.
	StateHalfOpen State = 1
	// StateOpen rejects every call until its open wait has passed.
	StateOpen State = 2
)

// String returns "closed", "half-open" or "open".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateHalfOpen:
		return "half-open"
	case StateOpen:
		return "open"
	default:
		return "State(" + strconv.Itoa(int(s)) + ")"
	}
}

// Counts are the outcome counters of a breaker's current state.
//
// Requests, Successes, Failures, Excluded and the consecutive counts restart at every
// state change and, with a time-based window, cover only that window. The Window
// fields describe the window the rate rules look at (see [Config.WindowSize] and
// [Config.WindowDuration]); they are zero when no rate rule is configured, and
// outside the closed state. An open breaker reports no counts.
type Counts struct {
	// Requests is the number of calls let through (including those still running).
	Requests uint32
	// Successes, Failures and Excluded count finished calls by classification.
	Successes, Failures, Excluded uint32
	// ConsecutiveSuccesses and ConsecutiveFailures count the current run.
	ConsecutiveSuccesses, ConsecutiveFailures uint32

	// WindowCalls is the number of calls (successes and failures) in the rate rules'
	// window, WindowFailures the failed ones among them, WindowSlow the slow ones.
	WindowCalls, WindowFailures, WindowSlow uint32
}

// Snapshot is the state of a breaker at one instant, as [Breaker.Snapshot] reports it.
type Snapshot struct {
	// Name is the breaker's name (for a Group member: group name, "/", key).
	Name string
	// State is the breaker's state. A forced breaker reports StateOpen or StateClosed.
	State State
	// Forced reports that State was set by ForceOpen or ForceClosed and the trip rules
	// are suspended until Reset.
	Forced bool
	// OpenUntil is when the open wait ends; zero unless State is StateOpen and the
	// breaker is not forced. It may be in the past: the breaker stays open until a
	// call moves it to half-open.
	OpenUntil time.Time
	// Counts are the counters of the current state.
	Counts Counts
}
