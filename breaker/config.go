package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal"
)

// Off, given to a field whose documentation says so, turns that rule or limit off
// ([Config.ConsecutiveFailures], [Config.MaxHalfOpenWait], [Config.OpenJitter],
// [GroupConfig.MaxKeys], [GroupConfig.IdleTimeout]). It is [selfheal.Off].
const Off = selfheal.Off

// DefaultName is the name of a breaker or group whose Config leaves Name empty.
const DefaultName = "breaker"

// Config configures a [Breaker]. The zero value is a sensible breaker: it trips after
// 5 consecutive failures, stays open for 60 seconds, then lets one probe call through,
// which closes it on success and reopens it on failure. Every field documents what its
// zero value means; [New] reports settings it cannot honour as a [*ConfigError] that
// matches [ErrInvalidConfig] and names the field.
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
// which makes it time-based (the calls that ended in the last WindowDuration, rolled
// in WindowBuckets steps).
type Config struct {
	// Name names the breaker in errors, hooks, logs and telemetry. Empty means
	// DefaultName ("breaker").
	Name string

	// ConsecutiveFailures trips the breaker when that many calls in a row have failed.
	// Zero means 5 when FailureRate is zero, and no consecutive-failures rule when
	// FailureRate is set (set both to have both rules). Off turns the rule off (then
	// another rule, FailureRate or SlowCallDuration, must be set). With a time-based
	// window the run counts only the calls still in the window. Other negative values
	// are invalid.
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

	// WindowDuration makes the rules look at the calls that ended in the last
	// WindowDuration (a time-based sliding window). The window is exactly this long: a
	// call leaves it WindowDuration after the start of the bucket it ended in, so
	// between WindowDuration-WindowDuration/WindowBuckets and WindowDuration after it
	// ended, and never later. Every rule (failure rate, slow-call rate, consecutive
	// failures) uses the same window. Zero means the window is count-based. Negative
	// is invalid.
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
	// through, the first time it opens. Zero means 60 seconds. Negative is invalid.
	OpenDuration time.Duration

	// MaxOpenDuration makes the open wait grow when the breaker opens again without
	// having closed in between (a failed probe, or MaxHalfOpenWait passed): the n-th
	// open period in a row lasts OpenDuration * OpenBackoff^(n-1), at most
	// MaxOpenDuration, less a random share of up to OpenJitter of it. The growth
	// starts over once the breaker closes (or is Reset). Zero means OpenDuration: a
	// constant open wait. Below OpenDuration is invalid.
	MaxOpenDuration time.Duration

	// OpenBackoff is the factor by which the open wait grows at each open period in a
	// row, up to MaxOpenDuration. Zero means 2. A value below 1 is invalid. It has no
	// effect unless MaxOpenDuration is above OpenDuration.
	OpenBackoff float64

	// OpenJitter spreads the open waits of breakers that opened together: each open
	// wait is shortened by a random share of at most OpenJitter (0 < OpenJitter <= 1)
	// of it, so it is drawn from [(1-OpenJitter)*d, d]. Zero means 0.2 when the wait
	// grows (MaxOpenDuration above OpenDuration) and no jitter when it is constant;
	// Off means no jitter. Other values outside (0, 1] are invalid.
	OpenJitter float64

	// HalfOpenProbes is how many probe calls the half-open breaker lets through; it
	// closes when that many have succeeded and reopens at the first probe that fails
	// (or, with a slow-call rule, is slow). Calls beyond the probes are rejected with
	// ErrTooManyRequests. Zero means 1. Negative is invalid.
	HalfOpenProbes int

	// MaxHalfOpenWait bounds how long the breaker stays half-open waiting for the
	// outcomes of its probes (resilience4j's maxWaitDurationInHalfOpenState), so that
	// probes that never return, or permits of [Breaker.Allow] that are never reported,
	// cannot keep it half-open forever. Once it has passed, the next call or probe
	// outcome reopens the breaker, as a failed probe would. Zero means 60 seconds;
	// Off means no bound. Other negative values are invalid.
	MaxHalfOpenWait time.Duration

	// Classify judges the outcome of a call from its result and its error:
	// [selfheal.Success], [selfheal.Failure] or [selfheal.Ignored] (counted neither
	// way, and frees a probe slot). The result is the value fn returned through
	// [Call] (boxed), the result passed to the done function of [Breaker.Allow], and
	// nil for [Breaker.Do]. Two outcomes are decided before Classify is asked: the
	// caller's own cancellation (the context passed to Do, Call or Allow is done and
	// the error matches context.Canceled) is Ignored, and a panic is a Failure. Nil
	// means [DefaultClassify]. It is called once per call, on the goroutine of the
	// call (for Allow, of the first call to done), and may be called concurrently.
	Classify selfheal.Classifier

	// OnStateChange is called after every state change, including those made by
	// ForceOpen, ForceClosed and Reset, with the breaker's name and the states.
	// Calls are made one at a time, in the order of the changes, on the goroutine of
	// a call (Do, Call, Allow or a done function) or of ForceOpen, ForceClosed or
	// Reset that made the change, after the breaker's locks are released: the hook may
	// use the breaker. A change to half-open is made by the first call after the open
	// wait, and reported before that call's probe runs. Reading the breaker (Snapshot,
	// the telemetry) never changes its state, so never calls the hook. Nil means no
	// hook.
	OnStateChange func(name string, from, to State)

	// Logger receives one Info record per state change. Nil means no logging.
	Logger *slog.Logger

	// MeterProvider provides the meter for the selfheal.breaker.* instruments. Nil
	// means the global provider.
	MeterProvider metric.MeterProvider

	// TracerProvider provides the tracer for the selfheal.breaker.state_change span
	// that each state change records. Nil means the global provider. A rejection is
	// an event on the caller's span, which needs no provider.
	TracerProvider trace.TracerProvider
}

// DefaultClassify is the classification used when [Config.Classify] is nil: a nil
// error is a [selfheal.Success], any other error a [selfheal.Failure]. (The caller's
// own cancellation is [selfheal.Ignored] before any Classify is asked.)
func DefaultClassify(_ any, err error) selfheal.Outcome {
	if err == nil {
		return selfheal.Success
	}
	return selfheal.Failure
}

// Defaults.
const (
	defaultConsecutiveFailures = 5
	defaultWindowSize          = 100
	defaultWindowBuckets       = 10
	defaultMinimumCalls        = 20
	defaultOpenDuration        = 60 * time.Second
	defaultOpenBackoff         = 2
	defaultOpenJitter          = 0.2
	defaultHalfOpenProbes      = 1
	defaultMaxHalfOpenWait     = 60 * time.Second
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
	maxOpen      time.Duration
	backoff      float64
	jitter       float64
	probes       uint32
	halfOpenWait time.Duration // 0: no bound
	classify     selfheal.Classifier
}

func (s *settings) timeWindow() bool { return s.windowDur > 0 }

func (s *settings) rateRules() bool { return s.failureRate > 0 || s.slowDuration > 0 }

func invalid(field, format string, args ...any) error {
	return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func validRate(r float64) bool { return !math.IsNaN(r) && r >= 0 && r <= 1 }

// normalize validates cfg and applies the defaults.
func (cfg *Config) normalize() (settings, error) {
	var s settings
	switch {
	case cfg.ConsecutiveFailures < 0 && cfg.ConsecutiveFailures != Off:
		return s, invalid("Config.ConsecutiveFailures", "is %d, want >= 0 or Off", cfg.ConsecutiveFailures)
	case cfg.ConsecutiveFailures > math.MaxUint32:
		return s, invalid("Config.ConsecutiveFailures", "is %d, want <= %d", cfg.ConsecutiveFailures, uint32(math.MaxUint32))
	case !validRate(cfg.FailureRate):
		return s, invalid("Config.FailureRate", "is %v, want 0 < FailureRate <= 1 (0 for no failure-rate rule)", cfg.FailureRate)
	case cfg.SlowCallDuration < 0:
		return s, invalid("Config.SlowCallDuration", "is %v, want >= 0", cfg.SlowCallDuration)
	case !validRate(cfg.SlowCallRate):
		return s, invalid("Config.SlowCallRate", "is %v, want 0 < SlowCallRate <= 1", cfg.SlowCallRate)
	case cfg.SlowCallRate > 0 && cfg.SlowCallDuration == 0:
		return s, invalid("Config.SlowCallRate", "is set but SlowCallDuration is zero; set SlowCallDuration to define a slow call")
	case cfg.ConsecutiveFailures == Off && cfg.FailureRate == 0 && cfg.SlowCallDuration == 0:
		return s, invalid("Config.ConsecutiveFailures", "is Off and no other rule is set (FailureRate, SlowCallDuration): the breaker could never trip")
	case cfg.WindowSize < 0:
		return s, invalid("Config.WindowSize", "is %d, want >= 0", cfg.WindowSize)
	case cfg.WindowDuration < 0:
		return s, invalid("Config.WindowDuration", "is %v, want >= 0", cfg.WindowDuration)
	case cfg.WindowSize > 0 && cfg.WindowDuration > 0:
		return s, invalid("Config.WindowSize", "is set together with WindowDuration; set WindowSize for a count-based window or WindowDuration for a time-based one")
	case cfg.WindowBuckets < 0:
		return s, invalid("Config.WindowBuckets", "is %d, want >= 0", cfg.WindowBuckets)
	case cfg.WindowBuckets > 0 && cfg.WindowDuration == 0:
		return s, invalid("Config.WindowBuckets", "is set but WindowDuration is zero; buckets apply to a time-based window")
	case cfg.MinimumCalls < 0:
		return s, invalid("Config.MinimumCalls", "is %d, want >= 0", cfg.MinimumCalls)
	case cfg.OpenDuration < 0:
		return s, invalid("Config.OpenDuration", "is %v, want >= 0", cfg.OpenDuration)
	case cfg.MaxOpenDuration < 0:
		return s, invalid("Config.MaxOpenDuration", "is %v, want >= 0", cfg.MaxOpenDuration)
	case math.IsNaN(cfg.OpenBackoff) || cfg.OpenBackoff != 0 && cfg.OpenBackoff < 1 || math.IsInf(cfg.OpenBackoff, 0):
		return s, invalid("Config.OpenBackoff", "is %v, want >= 1 (0 for the default, 2)", cfg.OpenBackoff)
	case cfg.OpenJitter != Off && !validRate(cfg.OpenJitter):
		return s, invalid("Config.OpenJitter", "is %v, want 0 < OpenJitter <= 1 or Off", cfg.OpenJitter)
	case cfg.HalfOpenProbes < 0:
		return s, invalid("Config.HalfOpenProbes", "is %d, want >= 0", cfg.HalfOpenProbes)
	case cfg.HalfOpenProbes > math.MaxUint32:
		return s, invalid("Config.HalfOpenProbes", "is %d, want <= %d", cfg.HalfOpenProbes, uint32(math.MaxUint32))
	case cfg.MaxHalfOpenWait < 0 && cfg.MaxHalfOpenWait != Off:
		return s, invalid("Config.MaxHalfOpenWait", "is %v, want >= 0 or Off", cfg.MaxHalfOpenWait)
	}

	s.failureRate = cfg.FailureRate
	switch {
	case cfg.ConsecutiveFailures > 0:
		s.consecutive = uint32(cfg.ConsecutiveFailures)
	case cfg.ConsecutiveFailures == 0 && s.failureRate == 0:
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
		if s.windowDur < time.Duration(s.buckets) {
			return s, invalid("Config.WindowBuckets", "WindowDuration %v cannot be split in %d buckets; use fewer buckets", s.windowDur, s.buckets)
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
			return s, invalid("Config.MinimumCalls", "is %d, above WindowSize %d: the rate rules could never trip", s.minCalls, s.windowSize)
		}
		if !s.rateRules() {
			s.windowSize = 0
		}
	}

	s.openDuration = cfg.OpenDuration
	if s.openDuration == 0 {
		s.openDuration = defaultOpenDuration
	}
	s.maxOpen = cfg.MaxOpenDuration
	if s.maxOpen == 0 {
		s.maxOpen = s.openDuration
	}
	if s.maxOpen < s.openDuration {
		return s, invalid("Config.MaxOpenDuration", "is %v, below OpenDuration %v", s.maxOpen, s.openDuration)
	}
	s.backoff = cfg.OpenBackoff
	if s.backoff == 0 {
		s.backoff = defaultOpenBackoff
	}
	switch {
	case cfg.OpenJitter > 0:
		s.jitter = cfg.OpenJitter
	case cfg.OpenJitter == 0 && s.maxOpen > s.openDuration:
		s.jitter = defaultOpenJitter
	}
	s.probes = uint32(cfg.HalfOpenProbes)
	if s.probes == 0 {
		s.probes = defaultHalfOpenProbes
	}
	switch {
	case cfg.MaxHalfOpenWait > 0:
		s.halfOpenWait = cfg.MaxHalfOpenWait
	case cfg.MaxHalfOpenWait == 0:
		s.halfOpenWait = defaultMaxHalfOpenWait
	}
	s.classify = cfg.Classify
	return s, nil
}

// callerCanceled reports whether err is the caller's own cancellation: ctx is done
// and err matches context.Canceled.
func callerCanceled(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (err == context.Canceled || errors.Is(err, context.Canceled))
}
