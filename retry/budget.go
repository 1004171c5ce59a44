package retry

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Defaults of [BudgetConfig]; they are Finagle's RetryBudget defaults.
const (
	DefaultBudgetRatio        = 0.2
	DefaultBudgetMinPerSecond = 10
	DefaultBudgetTTL          = 10 * time.Second
)

// BudgetConfig configures a [Budget]. The zero value means: retries up to 20% of the
// calls of the last 10 seconds, plus 10 retries a second.
type BudgetConfig struct {
	// Ratio is the number of retries allowed per call deposited in the window: 0.2 lets
	// 1 call in 5 be retried once. Zero means 0.2. Negative, NaN or infinite values are
	// an error.
	Ratio float64
	// MinPerSecond is a floor of retries allowed per second whatever the traffic, so
	// that a service that makes few calls can still retry; the window holds
	// MinPerSecond * TTL (in seconds) of them. Zero means 10; [Off] means no floor
	// (retries only within Ratio). Other negative values are an error.
	MinPerSecond int
	// TTL is how long a deposited call or a retry counts, the length of the sliding
	// window. Zero means 10s. Otherwise it must be at least 1ms.
	TTL time.Duration
}

// budgetBuckets is the number of time buckets the window is cut into; counts expire one
// bucket (TTL/budgetBuckets) at a time.
const budgetBuckets = 10

// Budget limits retries to a share of recent calls, shared by every [Policy] (and any
// other user) that holds it, so that when a downstream fails completely the load on it
// grows by at most Ratio, not by MaxAttempts. It is the retry budget of Finagle
// (RetryBudget) and of gRPC's retry throttling: each call deposits, each retry withdraws,
// and a retry is allowed while the retries of the last TTL stay within Ratio times the
// calls of the last TTL plus MinPerSecond*TTL.
//
// A Policy with a Budget calls [Budget.Deposit] once per [Policy.Do] and
// [Budget.Withdraw] before each retry. Counting is lock-free (atomic counters in ten time
// buckets of TTL/10). Under contention concurrent withdrawals can overshoot the
// allowance by at most the number of goroutines withdrawing at the same instant.
//
// A Budget is safe for concurrent use. It starts no goroutines. Use [NewBudget]; the zero
// Budget is not usable.
type Budget struct {
	ratio   float64
	reserve int64
	width   int64 // bucket width, ns
	start   time.Time
	calls   [budgetBuckets]atomic.Uint64
	retries [budgetBuckets]atomic.Uint64
}

// NewBudget returns a Budget configured by cfg. An invalid cfg gives an error that
// matches [ErrInvalidConfig] and is a *[ConfigError] naming the invalid field.
func NewBudget(cfg BudgetConfig) (*Budget, error) {
	switch {
	case math.IsNaN(cfg.Ratio) || math.IsInf(cfg.Ratio, 0) || cfg.Ratio < 0:
		return nil, &ConfigError{Field: "BudgetConfig.Ratio", Reason: fmt.Sprintf("%v; want a finite value >= 0 (0 means %v)", cfg.Ratio, DefaultBudgetRatio)}
	case cfg.MinPerSecond < 0 && cfg.MinPerSecond != Off:
		return nil, &ConfigError{Field: "BudgetConfig.MinPerSecond", Reason: fmt.Sprintf("%d is negative; want >= 0 (0 means %d) or Off", cfg.MinPerSecond, DefaultBudgetMinPerSecond)}
	case cfg.TTL < 0 || (cfg.TTL > 0 && cfg.TTL < time.Millisecond):
		return nil, &ConfigError{Field: "BudgetConfig.TTL", Reason: fmt.Sprintf("%v; want at least 1ms (0 means %v)", cfg.TTL, DefaultBudgetTTL)}
	}
	if cfg.Ratio == 0 {
		cfg.Ratio = DefaultBudgetRatio
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultBudgetTTL
	}
	perSecond := int64(cfg.MinPerSecond)
	switch {
	case perSecond == 0:
		perSecond = DefaultBudgetMinPerSecond
	case perSecond == Off:
		perSecond = 0
	}
	return &Budget{
		ratio:   cfg.Ratio,
		reserve: int64(float64(perSecond) * cfg.TTL.Seconds()),
		width:   int64(cfg.TTL / budgetBuckets),
		start:   time.Now(),
	}, nil
}

// Deposit records a call: it allows Ratio more retries within the next TTL.
func (b *Budget) Deposit() {
	add(&b.calls, b.epoch())
}

// Withdraw takes one retry from the budget and reports whether it was allowed. A refused
// withdrawal changes nothing.
func (b *Budget) Withdraw() bool {
	e := b.epoch()
	if b.allowance(e) <= 0 {
		return false
	}
	add(&b.retries, e)
	return true
}

// Balance returns the number of retries the budget would allow now.
func (b *Budget) Balance() int {
	return int(max(0, b.allowance(b.epoch())))
}

func (b *Budget) allowance(e uint32) int64 {
	calls := sum(&b.calls, e)
	retries := sum(&b.retries, e)
	return int64(b.ratio*float64(calls)) + b.reserve - retries
}

// epoch returns the number of the current bucket (wrapping).
func (b *Budget) epoch() uint32 {
	return uint32(int64(time.Since(b.start)) / b.width)
}

// A bucket word holds the bucket's epoch in the high 32 bits and its count in the low 32.

func add(buckets *[budgetBuckets]atomic.Uint64, e uint32) {
	w := &buckets[e%budgetBuckets]
	for {
		v := w.Load()
		if uint32(v>>32) == e {
			w.Add(1)
			return
		}
		// The bucket holds an older epoch: start it afresh for e.
		if w.CompareAndSwap(v, uint64(e)<<32|1) {
			return
		}
	}
}

func sum(buckets *[budgetBuckets]atomic.Uint64, e uint32) int64 {
	var n int64
	for i := range buckets {
		v := buckets[i].Load()
		if e-uint32(v>>32) < budgetBuckets {
			n += int64(uint32(v))
		}
	}
	return n
}
