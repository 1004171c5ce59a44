package heal

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// HedgeConfig configures a [Hedge]. The zero value hedges once after 100ms.
type HedgeConfig struct {
	// Name identifies the hedge in metrics. Default "hedge".
	Name string
	// Delay is how long the first attempt runs alone before a hedge starts (and
	// between hedges). With Percentile set, it is the delay used until enough
	// latencies have been observed. Default 100ms.
	Delay time.Duration
	// Percentile, between 0 and 1 exclusive (0.95, say), makes the delay follow
	// that percentile of the latencies of recent successful calls, so that only the
	// slowest calls are hedged. Default 0: always Delay.
	Percentile float64
	// MinDelay is the least delay a percentile may set. Default 1ms.
	MinDelay time.Duration
	// MaxHedges is how many extra attempts a call may start. Default 1.
	MaxHedges int
	// OnHedge, when set, is called when a hedge starts, on the hedge's own goroutine
	// just before it calls the function, with the call's context (cancelled once an
	// attempt has won) and the hedge's attempt number (2 for the first hedge, the
	// caller's attempt being 1). It may run concurrently with the other attempts and
	// with itself; it must not block (it delays the hedge). Nil means no hook.
	OnHedge func(ctx context.Context, attempt int)
	// Logger, when set, receives a Debug record for every hedge started ("heal:
	// hedge started", with selfheal.attempt), with the keys of the metrics. Nil
	// means no logging.
	Logger *slog.Logger
	// MeterProvider receives the hedge's metrics. Nil means the global provider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the tracer of the span that records a hedge when
	// the call has no span of its own (with one, it is an event on the caller's span
	// when that span is recording). Nil means the global provider.
	TracerProvider trace.TracerProvider
}

// Hedge cuts tail latency: when an attempt has not finished after a delay (a fixed
// one, or a percentile of observed latency), it starts another, concurrently, up to
// MaxHedges; the first success wins, the others are cancelled through their context,
// and Do returns once they all have returned. An attempt that fails does not start a
// hedge early (that is a retry's job); when every attempt failed, Do returns the error
// of the last one to finish.
//
// Hedge only idempotent calls. The first attempt runs on the caller's goroutine, the
// hedges on their own; a panic in a hedge is re-raised on the caller's goroutine.
//
// A Hedge is safe for concurrent use. Create it with [NewHedge]; the zero value is not usable.
type Hedge struct {
	name       string
	delay      time.Duration
	percentile float64
	minDelay   time.Duration
	maxHedges  int

	cur atomic.Int64 // current delay, ns

	mu      sync.Mutex
	samples []time.Duration // ring of recent latencies
	next    int
	filled  bool
	since   int // samples since the delay was last computed

	hedges  counter
	hedgeEv event
	wonEv   event
	onHedge func(context.Context, int)
	log     *slog.Logger
}

const hedgeSamples = 512

// NewHedge returns a Hedge configured by cfg, or an error naming the invalid field.
func NewHedge(cfg HedgeConfig) (*Hedge, error) {
	if cfg.Name == "" {
		cfg.Name = "hedge"
	}
	if cfg.Delay <= 0 {
		cfg.Delay = 100 * time.Millisecond
	}
	if cfg.MinDelay <= 0 {
		cfg.MinDelay = time.Millisecond
	}
	if cfg.MaxHedges <= 0 {
		cfg.MaxHedges = 1
	}
	if cfg.Percentile < 0 || cfg.Percentile >= 1 {
		return nil, invalid("HedgeConfig.Percentile", "%v is not in [0, 1)", cfg.Percentile)
	}
	attrs := []attribute.KeyValue{attrName.String(cfg.Name)}
	h := &Hedge{
		name:       cfg.Name,
		delay:      cfg.Delay,
		percentile: cfg.Percentile,
		minDelay:   cfg.MinDelay,
		maxHedges:  cfg.MaxHedges,
		onHedge:    cfg.OnHedge,
		log:        cfg.Logger,
		hedges:     newCounter(meterFor(cfg.MeterProvider), "hedge.hedges", "Hedged attempts started.", "{attempt}", attrs...),
		hedgeEv:    newEvent(cfg.TracerProvider, "selfheal.heal.hedge.started", attrs...),
		wonEv:      newEvent(cfg.TracerProvider, "selfheal.heal.hedge.won", attrs...),
	}
	h.cur.Store(int64(cfg.Delay))
	if cfg.Percentile > 0 {
		h.samples = make([]time.Duration, hedgeSamples)
	}
	return h, nil
}

// Name returns the hedge's name.
func (h *Hedge) Name() string { return h.name }

// Delay returns the delay after which the next call would start a hedge.
func (h *Hedge) Delay() time.Duration { return time.Duration(h.cur.Load()) }

type hedgeRun struct {
	ctx     context.Context
	cancel  context.CancelFunc
	fn      func(context.Context) error
	h       *Hedge
	results chan hedgeResult

	mu       sync.Mutex
	stopped  bool
	launched int
	timer    *time.Timer

	winner atomic.Int32 // the first attempt to succeed: 1 the primary, 2 the first hedge...
}

type hedgeResult struct {
	err      error
	panicked bool
	val      any
}

// Do runs fn, hedging it as configured. It returns nil as soon as one attempt has
// succeeded and the others have returned; otherwise the last attempt's error.
func (h *Hedge) Do(ctx context.Context, fn func(context.Context) error) error {
	start := time.Now()
	hctx, cancel := context.WithCancel(ctx)
	run := &hedgeRun{ctx: hctx, cancel: cancel, fn: fn, h: h, results: make(chan hedgeResult, h.maxHedges)}
	run.mu.Lock()
	run.timer = time.AfterFunc(h.Delay(), run.launch)
	run.mu.Unlock()

	err := run.primary()
	// Stop launching; count what was launched.
	run.mu.Lock()
	run.stopped = true
	n := run.launched
	run.timer.Stop()
	run.mu.Unlock()
	var hedgePanic *hedgeResult
	for range n {
		r := <-run.results
		switch {
		case r.panicked:
			if hedgePanic == nil {
				hedgePanic = &r
			}
		case r.err == nil:
			err = nil
		case err != nil:
			err = r.err // the last attempt to finish, unless one succeeded
		}
	}
	cancel()
	if hedgePanic != nil {
		panic(hedgePanic.val)
	}
	if err == nil && n > 0 {
		w := int(run.winner.Load())
		h.wonEv.addWith(ctx, func() []attribute.KeyValue { return []attribute.KeyValue{telemetry.KeyAttempt.Int(w)} })
	}
	if err == nil && h.samples != nil {
		h.observe(time.Since(start))
	}
	return err
}

// primary runs the first attempt on the caller's goroutine. If it panics, the hedges
// are stopped, cancelled and joined before the panic continues.
func (r *hedgeRun) primary() error {
	ok := false
	defer func() {
		if !ok {
			r.mu.Lock()
			r.stopped = true
			n := r.launched
			r.timer.Stop()
			r.mu.Unlock()
			r.cancel()
			for range n {
				<-r.results
			}
		}
	}()
	err := r.fn(r.ctx)
	if err == nil {
		r.winner.CompareAndSwap(0, 1)
		r.cancel()
	}
	ok = true
	return err
}

// launch starts a hedge on the timer's goroutine, and schedules the next one.
func (r *hedgeRun) launch() {
	r.mu.Lock()
	if r.stopped || r.launched >= r.h.maxHedges {
		r.mu.Unlock()
		return
	}
	r.launched++
	attempt := int32(r.launched) + 1
	if r.launched < r.h.maxHedges {
		r.timer = time.AfterFunc(r.h.Delay(), r.launch)
	}
	r.mu.Unlock()
	r.h.hedges.add(r.ctx, 1)
	r.h.hedgeEv.add(r.ctx)
	if r.h.log != nil {
		logAt(r.ctx, r.h.log, slog.LevelDebug, msgHedgeStarted, r.h.name, slog.Int(string(telemetry.KeyAttempt), int(attempt)))
	}

	var res hedgeResult
	defer func() {
		if v := recover(); v != nil {
			res = hedgeResult{panicked: true, val: v}
		}
		r.results <- res
	}()
	if r.h.onHedge != nil {
		r.h.onHedge(r.ctx, int(attempt))
	}
	res.err = r.fn(r.ctx)
	if res.err == nil {
		r.winner.CompareAndSwap(0, attempt)
		r.cancel() // the others lost
	}
}

// observe records a latency and recomputes the percentile delay every 32 samples.
func (h *Hedge) observe(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples[h.next] = d
	h.next++
	if h.next == len(h.samples) {
		h.next, h.filled = 0, true
	}
	h.since++
	n := h.next
	if h.filled {
		n = len(h.samples)
	}
	if n < 32 || h.since < 32 {
		return
	}
	h.since = 0
	s := slices.Clone(h.samples[:n])
	slices.Sort(s)
	idx := int(h.percentile * float64(n))
	if idx >= n {
		idx = n - 1
	}
	h.cur.Store(int64(max(s[idx], h.minDelay)))
}
