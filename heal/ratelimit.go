package heal

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// RateLimitMode says what a [RateLimit] does with a call when no token is available.
type RateLimitMode int

const (
	// RateLimitReject rejects the call at once (the default).
	RateLimitReject RateLimitMode = iota
	// RateLimitWait waits for a token, for at most MaxWait and never past the
	// context's deadline, then rejects.
	RateLimitWait
)

func (m RateLimitMode) String() string {
	switch m {
	case RateLimitReject:
		return "reject"
	case RateLimitWait:
		return "wait"
	}
	return fmt.Sprintf("RateLimitMode(%d)", int(m))
}

// RateLimitConfig configures a [RateLimit]. Rate is required.
type RateLimitConfig struct {
	// Name identifies the limiter in errors, metrics and health checks.
	// Default "ratelimit".
	Name string
	// Rate is the sustained number of calls per second. Required: there is no
	// sensible default. math.Inf(1) allows every call.
	Rate float64
	// Burst is how many calls may run at once above the rate after a quiet period
	// (the bucket's size). Default: Rate rounded up, at least 1.
	Burst int
	// Mode is what happens to a call when no token is available. Default
	// RateLimitReject.
	Mode RateLimitMode
	// MaxWait bounds how long a call waits for a token in RateLimitWait mode.
	// Default 0: as long as the context allows.
	MaxWait time.Duration
	// OnReject, when set, is called for every call the limiter refuses, on the
	// refused caller's goroutine, with its context and the error it gets (a
	// *[RejectedError], with the Delay until its next token). It must not block. Nil means no hook.
	OnReject func(ctx context.Context, err *RejectedError)
	// Logger, when set, receives a Debug record for every call the limiter
	// refuses ("heal: rate limit rejected", with selfheal.retry_after), with the keys of
	// the metrics. Nil means no logging.
	Logger *slog.Logger
	// MeterProvider receives the limiter's metrics. Nil means the global provider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the tracer of the span that records a rejection when
	// the call has no span of its own (with one, it is an event on the caller's span
	// when that span is recording). Nil means the global provider.
	TracerProvider trace.TracerProvider
}

func (cfg *RateLimitConfig) normalize() error {
	if cfg.Name == "" {
		cfg.Name = "ratelimit"
	}
	if !(cfg.Rate > 0) {
		return invalid("RateLimitConfig.Rate", "%v is not positive; it is required", cfg.Rate)
	}
	if cfg.Burst <= 0 {
		if math.IsInf(cfg.Rate, 1) || cfg.Rate > math.MaxInt32 {
			cfg.Burst = math.MaxInt32
		} else {
			cfg.Burst = max(1, int(math.Ceil(cfg.Rate)))
		}
	}
	if cfg.Mode != RateLimitReject && cfg.Mode != RateLimitWait {
		return invalid("RateLimitConfig.Mode", "%v is unknown", cfg.Mode)
	}
	if cfg.MaxWait < 0 {
		return invalid("RateLimitConfig.MaxWait", "%v is negative", cfg.MaxWait)
	}
	return nil
}

// RateLimit bounds the rate of calls with a token bucket ([rate.Limiter]): the bucket
// holds Burst tokens, refills at Rate tokens a second, and each call takes one. A
// call that finds the bucket empty is rejected with a *[RejectedError] matching
// [ErrRateLimited], whose RetryAfter says when the next token arrives; in
// [RateLimitWait] mode it first waits for a token if one arrives in time.
//
// A RateLimit is safe for concurrent use. Create it with [NewRateLimit]; the zero value is not usable.
type RateLimit struct {
	name    string
	lim     *rate.Limiter
	mode    RateLimitMode
	maxWait time.Duration

	rejections counter
	rejectEv   event
	onReject   func(context.Context, *RejectedError)
	log        *slog.Logger
}

// NewRateLimit returns a limiter configured by cfg, or an error naming the invalid
// field.
func NewRateLimit(cfg RateLimitConfig) (*RateLimit, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	rejections, ev := rateLimitTelemetry(cfg)
	return newRateLimit(cfg, rejections, ev), nil
}

// rateLimitTelemetry builds the instruments of a limiter, or of a whole group: the
// limiters of a group share the group's attributes, so that keys never become metric
// attributes of unbounded cardinality.
func rateLimitTelemetry(cfg RateLimitConfig) (counter, event) {
	attrs := []attribute.KeyValue{attrName.String(cfg.Name)}
	return newCounter(meterFor(cfg.MeterProvider), "ratelimit.rejections", "Calls a rate limiter rejected.", "{call}", attrs...),
		newEvent(cfg.TracerProvider, "selfheal.heal.ratelimit.rejected", attrs...)
}

func newRateLimit(cfg RateLimitConfig, rejections counter, ev event) *RateLimit {
	return &RateLimit{
		name:       cfg.Name,
		lim:        rate.NewLimiter(toLimit(cfg.Rate), cfg.Burst),
		mode:       cfg.Mode,
		maxWait:    cfg.MaxWait,
		rejections: rejections,
		rejectEv:   ev,
		onReject:   cfg.OnReject,
		log:        cfg.Logger,
	}
}

func toLimit(r float64) rate.Limit {
	if math.IsInf(r, 1) {
		return rate.Inf
	}
	return rate.Limit(r)
}

// Name returns the limiter's name.
func (l *RateLimit) Name() string { return l.name }

// SetRate changes the sustained rate (calls per second). Non-positive rates are
// ignored.
func (l *RateLimit) SetRate(r float64) {
	if r > 0 {
		l.lim.SetLimit(toLimit(r))
	}
}

// SetBurst changes the bucket's size. Non-positive values are ignored.
func (l *RateLimit) SetBurst(n int) {
	if n > 0 {
		l.lim.SetBurst(n)
	}
}

// Do takes a token and runs fn. Without a token it returns a *[RejectedError]
// matching [ErrRateLimited] (or, while waiting, ctx.Err() if ctx ends first) and does
// not call fn.
func (l *RateLimit) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := l.Take(ctx); err != nil {
		return err
	}
	return fn(ctx)
}

// Allow takes a token if one is available now, and reports whether it did. It never
// waits, whatever the mode.
func (l *RateLimit) Allow() bool { return l.lim.Allow() }

// Take takes a token as the mode says: it returns nil when it got one, a
// *[RejectedError] matching [ErrRateLimited] when it did not, or ctx.Err() when ctx
// ended while it waited (the token is then given back).
func (l *RateLimit) Take(ctx context.Context) error {
	now := time.Now()
	if l.lim.AllowN(now, 1) {
		return nil
	}
	if l.mode == RateLimitReject {
		return l.reject(ctx, l.nextToken(now))
	}
	r := l.lim.ReserveN(now, 1)
	if !r.OK() {
		return l.reject(ctx, 0)
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	if l.maxWait > 0 && d > l.maxWait {
		r.CancelAt(now)
		return l.reject(ctx, d)
	}
	if dl, ok := ctx.Deadline(); ok && now.Add(d).After(dl) {
		r.CancelAt(now)
		return l.reject(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

// nextToken returns how long until one token is available.
func (l *RateLimit) nextToken(now time.Time) time.Duration {
	lim := l.lim.Limit()
	if lim <= 0 || lim == rate.Inf {
		return 0
	}
	missing := 1 - l.lim.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(missing / float64(lim) * float64(time.Second)))
}

func (l *RateLimit) reject(ctx context.Context, retryAfter time.Duration) error {
	l.rejections.add(ctx, 1)
	l.rejectEv.addWith(ctx, func() []attribute.KeyValue {
		return []attribute.KeyValue{telemetry.KeyRetryAfter.Float64(retryAfter.Seconds())}
	})
	if l.log != nil {
		logAt(ctx, l.log, slog.LevelDebug, msgRateLimited, l.name,
			slog.Float64(string(telemetry.KeyRetryAfter), retryAfter.Seconds()))
	}
	err := &RejectedError{Policy: "ratelimit", Name: l.name, Reason: ErrRateLimited, Delay: retryAfter}
	if l.onReject != nil {
		l.onReject(ctx, err)
	}
	return err
}

// RateLimitSnapshot is the state of a [RateLimit] at one instant.
type RateLimitSnapshot struct {
	Name   string
	Rate   float64 // calls per second
	Burst  int
	Tokens float64 // tokens in the bucket now (negative while calls wait in RateLimitWait mode)
}

// Snapshot returns the limiter's current state.
func (l *RateLimit) Snapshot() RateLimitSnapshot {
	return RateLimitSnapshot{Name: l.name, Rate: float64(l.lim.Limit()), Burst: l.lim.Burst(), Tokens: l.lim.Tokens()}
}

// RateLimitGroupConfig configures a [RateLimitGroup].
type RateLimitGroupConfig struct {
	// RateLimit configures each key's limiter; its Name is the group's name and
	// each limiter is named "<name>/<key>". Rate is required.
	RateLimit RateLimitConfig
	// MaxKeys bounds how many keys have a limiter at once; beyond it the least
	// recently used key's limiter is dropped (that key starts again with a full
	// bucket). Zero means 10000; negative is invalid.
	MaxKeys int
}

// RateLimitGroup is a rate limit per key (per client, per tenant, per host), holding
// at most MaxKeys limiters, least recently used evicted first, so that an unbounded
// key space cannot exhaust memory.
//
// A RateLimitGroup is safe for concurrent use. Create it with [NewRateLimitGroup]; the zero value is not usable.
type RateLimitGroup struct {
	cfg        RateLimitConfig
	maxKeys    int
	rejections counter
	rejectEv   event

	mu   sync.Mutex
	keys map[string]*lruEntry
	lru  lruEntry // sentinel: lru.next is the most recently used
}

type lruEntry struct {
	key        string
	lim        *RateLimit
	prev, next *lruEntry
}

// NewRateLimitGroup returns a group configured by cfg, or an error naming the invalid
// field.
func NewRateLimitGroup(cfg RateLimitGroupConfig) (*RateLimitGroup, error) {
	if err := cfg.RateLimit.normalize(); err != nil {
		return nil, err
	}
	if cfg.MaxKeys < 0 {
		return nil, invalid("RateLimitGroupConfig.MaxKeys", "%d is negative", cfg.MaxKeys)
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = 10000
	}
	g := &RateLimitGroup{cfg: cfg.RateLimit, maxKeys: cfg.MaxKeys, keys: make(map[string]*lruEntry)}
	g.rejections, g.rejectEv = rateLimitTelemetry(cfg.RateLimit)
	g.lru.next, g.lru.prev = &g.lru, &g.lru
	return g, nil
}

// Get returns key's limiter, creating it (and evicting the least recently used one
// beyond MaxKeys) when needed.
func (g *RateLimitGroup) Get(key string) *RateLimit {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.keys[key]; ok {
		if g.lru.next != e {
			e.unlink()
			g.lru.pushFront(e)
		}
		return e.lim
	}
	if len(g.keys) >= g.maxKeys {
		old := g.lru.prev
		old.unlink()
		delete(g.keys, old.key)
	}
	cfg := g.cfg
	cfg.Name = g.cfg.Name + "/" + key
	e := &lruEntry{key: key, lim: newRateLimit(cfg, g.rejections, g.rejectEv)}
	g.keys[key] = e
	g.lru.pushFront(e)
	return e.lim
}

// Do runs fn under key's limiter: see [RateLimit.Do].
func (g *RateLimitGroup) Do(ctx context.Context, key string, fn func(context.Context) error) error {
	return g.Get(key).Do(ctx, fn)
}

// Len returns how many keys have a limiter.
func (g *RateLimitGroup) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.keys)
}

func (e *lruEntry) unlink() {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *lruEntry) pushFront(e *lruEntry) {
	e.prev, e.next = s, s.next
	s.next.prev = e
	s.next = e
}
