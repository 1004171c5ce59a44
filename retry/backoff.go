package retry

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Jitter selects how a [Policy] spreads its exponential delays, following the AWS
// Architecture Blog note "Exponential Backoff And Jitter" (Marc Brooker, 2015). For retry
// n (n = 1 after the first failure), with base = [Config.InitialDelay], cap =
// [Config.MaxDelay] and exp(n) = min(cap, base * Multiplier^(n-1)):
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

// Constant returns a [Config.NewBackOff] that waits d before every retry. It hands out
// one shared [backoff.ConstantBackOff], which has no state to share.
func Constant(d time.Duration) func() backoff.BackOff {
	b := backoff.NewConstantBackOff(d)
	return func() backoff.BackOff { return b }
}

// Exponential returns a [Config.NewBackOff] that gives every call its own
// [backoff.ExponentialBackOff], made by [backoff.NewExponentialBackOff](opts...): backoff
// v4's own exponential strategy, with its defaults, its symmetric randomization
// (RandomizationFactor) and its MaxElapsedTime. Use it when you want exactly backoff's
// delays; the built-in [Jitter] strategies need no per-call allocation.
func Exponential(opts ...backoff.ExponentialBackOffOpts) func() backoff.BackOff {
	return func() backoff.BackOff { return backoff.NewExponentialBackOff(opts...) }
}

// delays computes the built-in strategies. It is immutable: the per-call state (the
// previous delay, for decorrelated jitter) lives on the caller's stack.
type delays struct {
	base, cap  time.Duration
	multiplier float64
	jitter     Jitter
}

// next returns the delay before retry n (n >= 1), given the previous delay of this call
// (0 before the first retry).
func (d *delays) next(n int, prev time.Duration) time.Duration {
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
