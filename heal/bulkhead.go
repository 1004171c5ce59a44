package heal

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// BulkheadConfig configures a [Bulkhead]. The zero value is a bulkhead of 25
// concurrent calls that rejects at once when full.
type BulkheadConfig struct {
	// Name identifies the bulkhead in errors, metrics and health checks.
	// Default "bulkhead".
	Name string
	// MaxConcurrent is how many calls may run at once. Zero means 25
	// (resilience4j's default). Negative is invalid: a bulkhead without a bound
	// isolates nothing (leave it out instead, as a [Pipeline] does when its
	// Bulkhead is nil).
	MaxConcurrent int
	// MaxQueued is how many calls may wait for a slot when all are taken; the
	// others are rejected at once. Zero means no call waits; negative is invalid.
	MaxQueued int
	// MaxWait bounds how long a queued call waits for a slot before it is
	// rejected. Zero means until its context is done; negative is invalid.
	MaxWait time.Duration
	// OnReject, when set, is called for every call the bulkhead refuses, on the
	// refused caller's goroutine, with its context and the error it gets (a
	// *[RejectedError]; shared between calls: do not modify it). It must not block.
	// Nil means no hook.
	OnReject func(ctx context.Context, err *RejectedError)
	// Logger, when set, receives a Debug record for every call the bulkhead
	// refuses ("heal: bulkhead rejected"), with the keys of
	// the metrics. Nil means no logging.
	Logger *slog.Logger
	// MeterProvider receives the bulkhead's metrics. Nil means the global provider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the tracer of the span that records a rejection when
	// the call has no span of its own (with one, it is an event on the caller's span
	// when that span is recording). Nil means the global provider.
	TracerProvider trace.TracerProvider
}

// Bulkhead isolates a dependency by bounding how many calls to it run at once, so that
// a slow dependency ties up at most MaxConcurrent goroutines instead of all of them.
// Calls beyond the bound wait in a FIFO queue of at most MaxQueued calls for at most
// MaxWait, or are rejected with a *[RejectedError] matching [ErrBulkheadFull].
//
// A Bulkhead is safe for concurrent use. Create it with [NewBulkhead]; the zero value is not usable.
type Bulkhead struct {
	name      string
	sem       chan struct{}
	maxQueued int64
	maxWait   time.Duration
	queued    atomic.Int64
	rejected  atomic.Int64
	rejectErr *RejectedError

	rejections counter
	rejectEv   event
	onReject   func(context.Context, *RejectedError)
	log        *slog.Logger

	inFlightObs, queuedObs metric.Int64ObservableUpDownCounter
	attrSet                metric.ObserveOption
}

// NewBulkhead returns a bulkhead configured by cfg, or an error naming the field that
// is invalid (a negative MaxQueued or MaxWait).
func NewBulkhead(cfg BulkheadConfig) (*Bulkhead, error) {
	if cfg.Name == "" {
		cfg.Name = "bulkhead"
	}
	if cfg.MaxConcurrent < 0 {
		return nil, invalid("BulkheadConfig.MaxConcurrent", "%d is negative; want >= 0 (0 means 25)", cfg.MaxConcurrent)
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = 25
	}
	if cfg.MaxQueued < 0 {
		return nil, invalid("BulkheadConfig.MaxQueued", "%d is negative", cfg.MaxQueued)
	}
	if cfg.MaxWait < 0 {
		return nil, invalid("BulkheadConfig.MaxWait", "%v is negative", cfg.MaxWait)
	}
	attrs := []attribute.KeyValue{attrName.String(cfg.Name)}
	b := &Bulkhead{
		name:       cfg.Name,
		sem:        make(chan struct{}, cfg.MaxConcurrent),
		maxQueued:  int64(cfg.MaxQueued),
		maxWait:    cfg.MaxWait,
		rejectErr:  &RejectedError{Policy: "bulkhead", Name: cfg.Name, Reason: ErrBulkheadFull},
		onReject:   cfg.OnReject,
		log:        cfg.Logger,
		rejections: newCounter(meterFor(cfg.MeterProvider), "bulkhead.rejections", "Calls a bulkhead rejected.", "{call}", attrs...),
		rejectEv:   newEvent(cfg.TracerProvider, "selfheal.heal.bulkhead.rejected", attrs...),
		attrSet:    metric.WithAttributeSet(attribute.NewSet(attrs...)),
	}
	b.observeGauges(meterFor(cfg.MeterProvider))
	return b, nil
}

// observeGauges registers the in-flight and queued gauges (observable up-down
// counters, read when the meter collects: nothing is recorded on a call). The
// callback holds b weakly. A broken meter leaves the bulkhead without them.
func (b *Bulkhead) observeGauges(m metric.Meter) {
	inFlight, err := m.Int64ObservableUpDownCounter("selfheal.heal.bulkhead.in_flight",
		metric.WithDescription("Calls running in a bulkhead's slots."), metric.WithUnit("{call}"))
	if err != nil {
		return
	}
	queued, err := m.Int64ObservableUpDownCounter("selfheal.heal.bulkhead.queued",
		metric.WithDescription("Calls waiting for a bulkhead's slot."), metric.WithUnit("{call}"))
	if err != nil {
		return
	}
	b.inFlightObs, b.queuedObs = inFlight, queued
	_ = telemetry.RegisterWeak(m, b, (*Bulkhead).observe, inFlight, queued)
}

func (b *Bulkhead) observe(o metric.Observer) {
	o.ObserveInt64(b.inFlightObs, int64(len(b.sem)), b.attrSet)
	o.ObserveInt64(b.queuedObs, min(max(b.queued.Load(), 0), b.maxQueued), b.attrSet)
}

// Name returns the bulkhead's name.
func (b *Bulkhead) Name() string { return b.name }

// Do runs fn in a slot of the bulkhead. When none is free (and none frees up in time)
// it returns a *[RejectedError] matching [ErrBulkheadFull] without calling fn; when ctx
// is done while waiting it returns ctx.Err(). Otherwise it returns fn's error. The slot
// is released when fn returns or panics.
func (b *Bulkhead) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := b.Acquire(ctx); err != nil {
		return err
	}
	defer b.Release()
	return fn(ctx)
}

// Acquire takes a slot, waiting as configured. On success the caller must call
// [Bulkhead.Release] exactly once. On failure it returns a *[RejectedError] or
// ctx.Err() and leaves the bulkhead unchanged.
func (b *Bulkhead) Acquire(ctx context.Context) error {
	select {
	case b.sem <- struct{}{}:
		return nil
	default:
	}
	return b.wait(ctx)
}

// TryAcquire takes a slot if one is free at once, and reports whether it did.
func (b *Bulkhead) TryAcquire() bool {
	select {
	case b.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

// Release returns a slot taken by Acquire or TryAcquire.
func (b *Bulkhead) Release() {
	select {
	case <-b.sem:
	default:
		panic("heal: Bulkhead.Release without Acquire")
	}
}

func (b *Bulkhead) wait(ctx context.Context) error {
	if b.queued.Add(1) > b.maxQueued {
		b.queued.Add(-1)
		return b.reject(ctx)
	}
	defer b.queued.Add(-1)
	var expired <-chan time.Time
	if b.maxWait > 0 {
		t := time.NewTimer(b.maxWait)
		defer t.Stop()
		expired = t.C
	}
	select {
	case b.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-expired:
		// A slot may have freed up at the same instant: take it rather than reject.
		if b.TryAcquire() {
			return nil
		}
		return b.reject(ctx)
	}
}

func (b *Bulkhead) reject(ctx context.Context) error {
	b.rejected.Add(1)
	b.rejections.add(ctx, 1)
	b.rejectEv.add(ctx)
	if b.log != nil {
		logAt(ctx, b.log, slog.LevelDebug, msgBulkheadRejected, b.name)
	}
	if b.onReject != nil {
		b.onReject(ctx, b.rejectErr)
	}
	return b.rejectErr
}

// BulkheadSnapshot is the state of a [Bulkhead] at one instant.
type BulkheadSnapshot struct {
	Name          string
	InFlight      int   // calls running
	Queued        int   // calls waiting for a slot
	MaxConcurrent int   // slots
	MaxQueued     int   // queue capacity
	Rejected      int64 // calls rejected since the bulkhead was created
}

// Saturation returns InFlight / MaxConcurrent, from 0 to 1.
func (s BulkheadSnapshot) Saturation() float64 {
	if s.MaxConcurrent == 0 {
		return 0
	}
	return float64(s.InFlight) / float64(s.MaxConcurrent)
}

// Snapshot returns the bulkhead's current state. It is cheap and race-free.
func (b *Bulkhead) Snapshot() BulkheadSnapshot {
	return BulkheadSnapshot{
		Name:          b.name,
		InFlight:      len(b.sem),
		Queued:        int(b.queued.Load()),
		MaxConcurrent: cap(b.sem),
		MaxQueued:     int(b.maxQueued),
		Rejected:      b.rejected.Load(),
	}
}
