package decide

import (
	"math"
	"math/rand/v2"
	"time"
)

// BackoffConfig configures a Backoff. The zero value means the documented defaults.
type BackoffConfig struct {
	// Initial is the delay before the second restart within Window (the first
	// restart is immediate); <= 0 means 200 ms.
	Initial time.Duration
	// Max caps the delay; <= 0 means 10 s.
	Max time.Duration
	// Multiplier grows the delay per restart; <= 1 means 2.
	Multiplier float64
	// Jitter spreads each delay uniformly by ±Jitter of itself; <= 0 means 0.2,
	// values above 1 mean 1.
	Jitter float64
	// CrashLoopRestarts is the number of restarts within Window that makes a crash
	// loop; <= 0 means 5.
	CrashLoopRestarts int
	// Window is how far back restarts count; <= 0 means 1 minute.
	Window time.Duration
	// Rand returns a number in [0, 1) for the jitter; nil means math/rand/v2.
	Rand func() float64
}

// Backoff spaces the restarts of one service and detects crash loops. Create it with
// NewBackoff.
type Backoff struct {
	cfg      BackoffConfig
	restarts []time.Time
}

// NewBackoff returns a Backoff.
func NewBackoff(cfg BackoffConfig) *Backoff {
	if cfg.Initial <= 0 {
		cfg.Initial = 200 * time.Millisecond
	}
	if cfg.Max <= 0 {
		cfg.Max = 10 * time.Second
	}
	if cfg.Multiplier <= 1 {
		cfg.Multiplier = 2
	}
	if cfg.Jitter <= 0 {
		cfg.Jitter = 0.2
	}
	cfg.Jitter = min(cfg.Jitter, 1)
	if cfg.CrashLoopRestarts <= 0 {
		cfg.CrashLoopRestarts = 5
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	return &Backoff{cfg: cfg}
}

func (b *Backoff) prune(now time.Time) {
	i := 0
	for i < len(b.restarts) && now.Sub(b.restarts[i]) >= b.cfg.Window {
		i++
	}
	b.restarts = b.restarts[i:]
}

// Delay returns how long to wait at now before the next restart, and whether the
// service is in a crash loop (CrashLoopRestarts restarts within Window), in which
// case the agent should give up until the window has passed.
func (b *Backoff) Delay(now time.Time) (time.Duration, bool) { return b.Peek(now, 0) }

// Peek is Delay as if extra more restarts had been recorded at now; it records
// nothing.
func (b *Backoff) Peek(now time.Time, extra int) (time.Duration, bool) {
	b.prune(now)
	n := len(b.restarts) + max(extra, 0)
	if n >= b.cfg.CrashLoopRestarts {
		return 0, true
	}
	if n == 0 {
		return 0, false
	}
	d := float64(b.cfg.Initial) * math.Pow(b.cfg.Multiplier, float64(n-1))
	d = min(d, float64(b.cfg.Max))
	d *= 1 + b.cfg.Jitter*(2*b.cfg.Rand()-1)
	return min(time.Duration(d), b.cfg.Max), false
}

// Record records a restart at now.
func (b *Backoff) Record(now time.Time) { b.restarts = append(b.restarts, now) }

// Restarts returns the number of restarts within Window before now.
func (b *Backoff) Restarts(now time.Time) int {
	b.prune(now)
	return len(b.restarts)
}
