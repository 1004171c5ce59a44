package retry

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Backoff is a strategy for the delays between attempts: Delay returns how long to wait
// before retry n (n = 1 after the first failed attempt), given prev, the delay this call
// waited before the previous retry (0 before the first; decorrelated jitter grows from
// it). A negative delay, such as [Stop], ends the retries ([ReasonBackoff]).
//
// A Policy shares its Backoff between all its calls, concurrently: Delay must be safe
// for concurrent use, and keep any per-call state in n and prev. It is called on the
// calling goroutine, only when a retry is about to happen.
//
// [Exponential] and [Constant] build the usual strategies; [BackoffFunc] adapts a
// function.
type Backoff interface {
	Delay(n int, prev time.Duration) time.Duration
}

// Stop, returned by a [Backoff], ends the retries.
const Stop time.Duration = -1

// BackoffFunc adapts a function to a [Backoff].
type BackoffFunc func(n int, prev time.Duration) time.Duration

// Delay returns f(n, prev).
func (f BackoffFunc) Delay(n int, prev time.Duration) time.Duration { return f(n, prev) }

// Defaults of [ExponentialConfig].
const (
	DefaultInitialDelay = 100 * time.Millisecond
	DefaultMaxDelay     = 10 * time.Second
	DefaultMultiplier   = 2.0
)

// ExponentialConfig configures [Exponential]. The zero value is exponential backoff with
// full jitter from 100ms, doubling, up to 10s: the default of a [Policy].
type ExponentialConfig struct {
	// InitialDelay is the delay before the first retry before jitter. Zero means
	// 100ms. Negative is an error.
	InitialDelay time.Duration
	// MaxDelay caps every delay, after jitter. Zero means 10s, or InitialDelay when that
	// is larger. Negative, or less than InitialDelay, is an error.
	MaxDelay time.Duration
	// Multiplier is the growth of the delay from one retry to the next. Zero means 2;
	// 1 gives a constant delay. Less than 1, NaN or infinite is an error.
	Multiplier float64
	// Jitter is how delays are randomized; the zero value is [JitterFull], and
	// [JitterNone] turns randomization off. An unknown value is an error.
	Jitter Jitter
}

// Exponential returns the [Backoff] of cfg: for retry n, min(MaxDelay, InitialDelay *
// Multiplier^(n-1)), spread by cfg.Jitter. It keeps no state and allocates nothing per
// call. An invalid cfg is reported by [New] (a *[ConfigError] naming the
// ExponentialConfig field), not here.
func Exponential(cfg ExponentialConfig) Backoff {
	d := &delays{
		base:       orDefault(cfg.InitialDelay, DefaultInitialDelay),
		multiplier: orDefault(cfg.Multiplier, DefaultMultiplier),
		jitter:     cfg.Jitter,
		cfg:        cfg,
	}
	d.cap = cfg.MaxDelay
	if d.cap == 0 {
		d.cap = max(DefaultMaxDelay, d.base)
	}
	return d
}

// Constant returns a [Backoff] that waits d before every retry. A negative d is
// reported by [New] as a *[ConfigError].
func Constant(d time.Duration) Backoff { return constant(d) }

type constant time.Duration

func (c constant) Delay(int, time.Duration) time.Duration { return time.Duration(c) }

func (c constant) validate() error {
	if c < 0 {
		return &ConfigError{Field: "Config.Backoff", Reason: fmt.Sprintf("Constant(%v) is negative; want >= 0", time.Duration(c))}
	}
	return nil
}

// Jitter selects how an [Exponential] backoff spreads its delays, following the AWS
// Architecture Blog note "Exponential Backoff And Jitter" (Marc Brooker, 2015). For retry
// n (n = 1 after the first failure), with base = [ExponentialConfig.InitialDelay], cap =
// [ExponentialConfig.MaxDelay] and exp(n) = min(cap, base * Multiplier^(n-1)):
//
//	JitterFull          rand[0, exp(n)]                       (the default)
//	JitterEqual         exp(n)/2 + rand[0, exp(n)/2]
//	JitterDecorrelated  min(cap, rand[base, 3 * previous delay]), the first previous delay being base
//	JitterNone          exp(n); with Multiplier 1 this is a constant delay
//
// Full jitter spreads competing clients best and does the least total work; equal jitter
// keeps at least half of the exponential delay; decorrelated jitter grows from the
// previous delay rather than the attempt number (its growth factor is 3, as in the note,
// and Multiplier does not apply).
type Jitter int

// The jitter strategies. The zero value is JitterFull.
const (
	JitterFull Jitter = iota
	JitterEqual
	JitterDecorrelated
	JitterNone
	jitterEnd
)

// String returns "full", "equal", "decorrelated" or "none".
func (j Jitter) String() string {
	switch j {
	case JitterFull:
		return "full"
	case JitterEqual:
		return "equal"
	case JitterDecorrelated:
		return "decorrelated"
	case JitterNone:
		return "none"
	}
	return fmt.Sprintf("Jitter(%d)", int(j))
}

// delays is the [Exponential] strategy. It is immutable: the per-call state (the
// previous delay, for decorrelated jitter) lives on the caller's stack.
type delays struct {
	base, cap  time.Duration
	multiplier float64
	jitter     Jitter
	cfg        ExponentialConfig // as given, for validate
}

func (d *delays) validate() error {
	cfg := d.cfg
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: "ExponentialConfig." + field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case cfg.InitialDelay < 0:
		return bad("InitialDelay", "%v is negative; want >= 0 (0 means %v)", cfg.InitialDelay, DefaultInitialDelay)
	case cfg.MaxDelay < 0:
		return bad("MaxDelay", "%v is negative; want >= 0 (0 means %v)", cfg.MaxDelay, DefaultMaxDelay)
	case cfg.MaxDelay > 0 && cfg.MaxDelay < d.base:
		return bad("MaxDelay", "%v is less than InitialDelay (%v)", cfg.MaxDelay, d.base)
	case math.IsNaN(cfg.Multiplier) || math.IsInf(cfg.Multiplier, 0) || (cfg.Multiplier != 0 && cfg.Multiplier < 1):
		return bad("Multiplier", "%v; want a finite value >= 1 (0 means %v)", cfg.Multiplier, DefaultMultiplier)
	case cfg.Jitter < 0 || cfg.Jitter >= jitterEnd:
		return bad("Jitter", "%v; want JitterFull, JitterEqual, JitterDecorrelated or JitterNone", cfg.Jitter)
	}
	return nil
}

// Delay returns the delay before retry n (n >= 1), given the previous delay of this call
// (0 before the first retry).
func (d *delays) Delay(n int, prev time.Duration) time.Duration {
	if d.jitter == JitterDecorrelated {
		lo := d.base
		if prev < lo {
			prev = lo
		}
		hi := d.cap
		if prev <= d.cap/3 {
			hi = prev * 3
		}
		if hi <= lo {
			return min(lo, d.cap)
		}
		return min(d.cap, lo+randN(hi-lo))
	}
	exp := d.exp(n)
	switch d.jitter {
	case JitterEqual:
		half := exp / 2
		return exp - half + randN(half)
	case JitterNone:
		return exp
	default:
		return randN(exp)
	}
}

// exp returns min(cap, base * multiplier^(n-1)).
func (d *delays) exp(n int) time.Duration {
	if n <= 1 || d.multiplier == 1 {
		return min(d.base, d.cap)
	}
	f := float64(d.base) * math.Pow(d.multiplier, float64(n-1))
	if f >= float64(d.cap) || math.IsNaN(f) {
		return d.cap
	}
	return time.Duration(f)
}

// randN returns a uniformly random duration in [0, n].
func randN(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	if n == math.MaxInt64 {
		return time.Duration(rand.Int64())
	}
	return time.Duration(rand.Int64N(int64(n) + 1))
}
