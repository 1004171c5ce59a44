package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Config configures a [Breaker]. The zero value is a sensible breaker: it trips after
// 5 consecutive failures, stays open for 60 seconds, then lets one probe call through,
// which closes it on success and reopens it on failure. Every field documents what its
// zero value means; [New] reports settings it cannot honour as errors that match
// [ErrInvalidConfig] and name the field.
//
// The trip rules are checked in the closed state after every call that fails or is
// slow (a fast success never trips a breaker, even when it brings the window to
// MinimumCalls); the breaker opens as soon as one of the enabled rules is met:
//
//   - consecutive failures: ConsecutiveFailures failures in a row;
//   - failure rate: at least MinimumCalls calls in the window and the failed share
//     reaches FailureRate;
//   - slow-call rate: at least MinimumCalls calls in the window and the share of calls
//     that took SlowCallDuration or longer reaches SlowCallRate.
//
// The window is count-based (the last WindowSize calls) unless WindowDuration is set,
// which makes it time-based (the calls of the last WindowDuration, rolled in
// WindowBuckets steps).
type Config struct {
	// ConsecutiveFailures trips the breaker when that many calls in a row have failed.
	// Zero means 5 when FailureRate is zero, and no consecutive-failures rule when
	// FailureRate is set (set both to have both rules). With a time-based window the
	// run counts only the calls still in the window. Negative is invalid.
	ConsecutiveFailures int

	// FailureRate trips the breaker when the share of failed calls in the window
	// reaches it (0 < FailureRate <= 1), once the window holds MinimumCalls calls.
	// Zero means no failure-rate rule.
	FailureRate float64

	// SlowCallDuration makes a call that runs at least this long a slow call, whatever
	// its outcome. Zero means no slow-call rule, and the breaker never reads the clock
	// around a call. Negative is invalid.
	SlowCallDuration time.Duration

	// SlowCallRate trips the breaker when the share of slow calls in the window reaches
	// it (0 < SlowCallRate <= 1), once the window holds MinimumCalls calls. Zero means
	// 1 (trip when every call in the window is slow, as resilience4j does) when
	// SlowCallDuration is set; setting it without SlowCallDuration is invalid.
	SlowCallRate float64

	// WindowSize makes the rate rules look at the last WindowSize calls (a count-based
	// sliding window). Zero means 100. Setting it together with WindowDuration is
	// invalid.
	WindowSize int

	// WindowDuration makes the rate rules look at the calls of the last WindowDuration
	// (a time-based sliding window, gobreaker's rolling window). Zero means the window
	// is count-based.
	WindowDuration time.Duration

	// WindowBuckets is the number of steps in which a time-based window rolls: old
	// calls leave the window one WindowDuration/WindowBuckets at a time. Zero means 10.
	// Setting it without WindowDuration is invalid.
	WindowBuckets int

	// MinimumCalls is how many calls the window must hold before the rate rules may
	// trip the breaker. Zero means 20, or WindowSize if that is smaller. A value above
	// WindowSize is invalid (the rules could never trip).
	MinimumCalls int

	// OpenDuration is how long the breaker stays open before it lets probe calls
	// through. Zero means 60 seconds. Negative is invalid.
	OpenDuration time.Duration

	// HalfOpenProbes is how many probe calls the half-open breaker lets through; it
	// closes when that many have succeeded and reopens at the first probe that fails
	// (or, with a slow-call rule, is slow). Calls beyond the probes are rejected with
	// ErrTooManyRequests. Zero means 1. Negative is invalid.
	HalfOpenProbes int

	// IsFailure classifies the errors of calls: true counts the call as a failure,
	// false as a success (the downstream answered, for example a "not found"). It is
	// called with every non-nil error except the caller's own cancellation (the
	// context passed to Do is done and the error matches context.Canceled), which
	// counts neither way. A panic is always a failure. Nil means DefaultIsFailure.
	// It may be called concurrently.
	IsFailure func(err error) bool

	// OnStateChange is called after every state change, including those made by
	// ForceOpen, ForceClosed and Reset, with the breaker's name and the states.
	// Calls are made one at a time, in the order of the changes, on the goroutine of
	// a call (or of State, which the state gauge also calls) that saw the change,
	// after the breaker's locks are released: the hook may use the breaker. A change
	// to half-open is seen by the first call (or State) after the open duration, and
	// reported before that call's probe runs. Nil means no hook.
	OnStateChange func(name string, from, to State)

	// Logger receives one Info record per state change. Nil means no logging.
	Logger *slog.Logger

	// MeterProvider provides the meter for the selfheal.breaker.* instruments. Nil
	// means the global provider.
	MeterProvider metric.MeterProvider
}

// DefaultIsFailure is the classification used when [Config.IsFailure] is nil: every
// error is a failure.
func DefaultIsFailure(err error) bool { return err != nil }

// Defaults.
const (
	defaultConsecutiveFailures = 5
	defaultWindowSize          = 100
	defaultWindowBuckets       = 10
	defaultMinimumCalls        = 20
	defaultOpenDuration        = 60 * time.Second
	defaultHalfOpenProbes      = 1
)

// settings is a validated Config with its defaults applied.
type settings struct {
	consecutive  uint32 // 0: rule off
	failureRate  float64
	slowDuration time.Duration
	slowRate     float64
	windowSize   int           // count-based window, 0 when time-based or unused
	windowDur    time.Duration // time-based window
	buckets      int
	minCalls     int
	openDuration time.Duration
	probes       int
	isFailure    func(error) bool
}

func (s *settings) timeWindow() bool { return s.windowDur > 0 }

func (s *settings) rateRules() bool { return s.failureRate > 0 || s.slowDuration > 0 }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

func validRate(r float64) bool { return !math.IsNaN(r) && r >= 0 && r <= 1 }

// normalize validates cfg and applies the defaults.
func (cfg *Config) normalize() (settings, error) {
	var s settings
	switch {
	case cfg.ConsecutiveFailures < 0:
		return s, invalid("ConsecutiveFailures is %d, want >= 0", cfg.ConsecutiveFailures)
	case !validRate(cfg.FailureRate):
		return s, invalid("FailureRate is %v, want 0 < FailureRate <= 1 (0 for no failure-rate rule)", cfg.FailureRate)
	case cfg.SlowCallDuration < 0:
		return s, invalid("SlowCallDuration is %v, want >= 0", cfg.SlowCallDuration)
	case !validRate(cfg.SlowCallRate):
		return s, invalid("SlowCallRate is %v, want 0 < SlowCallRate <= 1", cfg.SlowCallRate)
	case cfg.SlowCallRate > 0 && cfg.SlowCallDuration == 0:
		return s, invalid("SlowCallRate is set but SlowCallDuration is zero; set SlowCallDuration to define a slow call")
	case cfg.WindowSize < 0:
		return s, invalid("WindowSize is %d, want >= 0", cfg.WindowSize)
	case cfg.WindowDuration < 0:
		return s, invalid("WindowDuration is %v, want >= 0", cfg.WindowDuration)
	case cfg.WindowSize > 0 && cfg.WindowDuration > 0:
		return s, invalid("WindowSize and WindowDuration are both set; set WindowSize for a count-based window or WindowDuration for a time-based one")
	case cfg.WindowBuckets < 0:
		return s, invalid("WindowBuckets is %d, want >= 0", cfg.WindowBuckets)
	case cfg.WindowBuckets > 0 && cfg.WindowDuration == 0:
		return s, invalid("WindowBuckets is set but WindowDuration is zero; buckets apply to a time-based window")
	case cfg.MinimumCalls < 0:
		return s, invalid("MinimumCalls is %d, want >= 0", cfg.MinimumCalls)
	case cfg.OpenDuration < 0:
		return s, invalid("OpenDuration is %v, want >= 0", cfg.OpenDuration)
	case cfg.HalfOpenProbes < 0:
		return s, invalid("HalfOpenProbes is %d, want >= 0", cfg.HalfOpenProbes)
	case cfg.HalfOpenProbes > math.MaxUint32:
		return s, invalid("HalfOpenProbes is %d, want <= %d", cfg.HalfOpenProbes, uint32(math.MaxUint32))
	case cfg.ConsecutiveFailures > math.MaxUint32:
		return s, invalid("ConsecutiveFailures is %d, want <= %d", cfg.ConsecutiveFailures, uint32(math.MaxUint32))
	}

	s.failureRate = cfg.FailureRate
	s.consecutive = uint32(cfg.ConsecutiveFailures)
	if s.consecutive == 0 && s.failureRate == 0 {
		s.consecutive = defaultConsecutiveFailures
	}
	s.slowDuration = cfg.SlowCallDuration
	if s.slowDuration > 0 {
		s.slowRate = cfg.SlowCallRate
		if s.slowRate == 0 {
			s.slowRate = 1
		}
	}

	if cfg.WindowDuration > 0 {
		s.windowDur = cfg.WindowDuration
		s.buckets = cfg.WindowBuckets
		if s.buckets == 0 {
			s.buckets = defaultWindowBuckets
		}
		if s.windowDur/time.Duration(s.buckets) <= 0 {
			return s, invalid("WindowDuration %v cannot be split in %d buckets (WindowBuckets); use fewer buckets", s.windowDur, s.buckets)
		}
		s.minCalls = cfg.MinimumCalls
		if s.minCalls == 0 {
			s.minCalls = defaultMinimumCalls
		}
	} else {
		s.windowSize = cfg.WindowSize
		if s.windowSize == 0 {
			s.windowSize = defaultWindowSize
		}
		s.minCalls = cfg.MinimumCalls
		if s.minCalls == 0 {
			s.minCalls = min(defaultMinimumCalls, s.windowSize)
		}
		if s.minCalls > s.windowSize {
			return s, invalid("MinimumCalls is %d, above WindowSize %d: the rate rules could never trip", s.minCalls, s.windowSize)
		}
		if !s.rateRules() {
			s.windowSize = 0
		}
	}

	s.openDuration = cfg.OpenDuration
	if s.openDuration == 0 {
		s.openDuration = defaultOpenDuration
	}
	s.probes = cfg.HalfOpenProbes
	if s.probes == 0 {
		s.probes = defaultHalfOpenProbes
	}
	s.isFailure = cfg.IsFailure
	if s.isFailure == nil {
		s.isFailure = DefaultIsFailure
	}
	return s, nil
}

// callerCanceled reports whether err is the caller's own cancellation: ctx is done
// and err matches context.Canceled.
func callerCanceled(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (err == context.Canceled || errors.Is(err, context.Canceled))
}
