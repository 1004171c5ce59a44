package heal

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal"
)

// LimitSample is one observation an [AdaptiveLimit] feeds its algorithm: when a
// call started, how long it took, how many calls were in flight when it started, and
// whether it was dropped (timed out, or rejected downstream), a sign of overload.
type LimitSample struct {
	Start    time.Time
	RTT      time.Duration
	InFlight int
	Dropped  bool
}

// LimitAlgorithm computes a concurrency limit from samples, as in Netflix's
// concurrency-limits. An [AdaptiveLimit] calls its methods with its own lock held,
// never concurrently, so implementations need no locking of their own, and must not
// be shared between limits.
type LimitAlgorithm interface {
	// Limit returns the current limit (the initial one before any sample).
	Limit() int
	// Update feeds one sample and returns the new limit.
	Update(s LimitSample) int
}

// AIMDConfig configures [NewAIMD]. The zero value is Netflix's AIMDLimit defaults.
type AIMDConfig struct {
	// InitialLimit is the limit before any sample. Default 20.
	InitialLimit int
	// MinLimit and MaxLimit bound the limit. Default 20 and 200.
	MinLimit, MaxLimit int
	// BackoffRatio multiplies the limit when a call is dropped. Default 0.9.
	BackoffRatio float64
	// Timeout counts slower calls as dropped. Default 5s.
	Timeout time.Duration
}

type aimd struct {
	limit    float64
	min, max float64
	backoff  float64
	timeout  time.Duration
	lastCut  time.Time
}

// NewAIMD returns the additive-increase/multiplicative-decrease algorithm: the limit
// grows by one after a call that used at least half of it and was not dropped, and
// shrinks by BackoffRatio after a dropped or slow one, once per round trip as TCP
// does (drops of calls that started before the last decrease are ignored, so that a
// burst of drops from one overload does not collapse the limit). It is simple and
// robust, but reacts only to drops, not to rising latency; see [NewGradient].
func NewAIMD(cfg AIMDConfig) (LimitAlgorithm, error) {
	lo, hi, init, err := limitBounds("AIMDConfig", cfg.MinLimit, cfg.MaxLimit, cfg.InitialLimit)
	if err != nil {
		return nil, err
	}
	if cfg.BackoffRatio == 0 {
		cfg.BackoffRatio = 0.9
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.BackoffRatio <= 0 || cfg.BackoffRatio >= 1 {
		return nil, invalid("AIMDConfig.BackoffRatio", "%v is not in (0, 1)", cfg.BackoffRatio)
	}
	return &aimd{limit: init, min: lo, max: hi, backoff: cfg.BackoffRatio, timeout: cfg.Timeout}, nil
}

// limitBounds applies the defaults the limit algorithms share (MinLimit 20, MaxLimit
// max(200, MinLimit), InitialLimit 20) and returns the bounds and the initial limit
// clamped into them, or an error naming cfgName's MaxLimit when it is below MinLimit.
func limitBounds(cfgName string, minLimit, maxLimit, initial int) (lo, hi, init float64, err error) {
	if minLimit <= 0 {
		minLimit = 20
	}
	if maxLimit <= 0 {
		maxLimit = max(200, minLimit)
	}
	if initial <= 0 {
		initial = 20
	}
	if maxLimit < minLimit {
		return 0, 0, 0, invalid(cfgName+".MaxLimit", "%d is below MinLimit %d", maxLimit, minLimit)
	}
	return float64(minLimit), float64(maxLimit), float64(min(max(initial, minLimit), maxLimit)), nil
}

func (a *aimd) Limit() int { return int(a.limit) }

func (a *aimd) Update(s LimitSample) int {
	switch {
	case s.Dropped || s.RTT > a.timeout:
		if !s.Start.IsZero() && s.Start.Before(a.lastCut) {
			break // the same overload as the last decrease
		}
		a.limit = max(a.min, math.Floor(a.limit*a.backoff))
		if !s.Start.IsZero() {
			a.lastCut = s.Start.Add(s.RTT)
		}
	case float64(s.InFlight)*2 >= a.limit:
		a.limit = min(a.max, a.limit+1)
	}
	return int(a.limit)
}

// GradientConfig configures [NewGradient]. The zero value is the defaults of
// Netflix's GradientLimit.
type GradientConfig struct {
	// InitialLimit is the limit before any sample. Default 20.
	InitialLimit int
	// MinLimit and MaxLimit bound the limit. Default 20 and 200.
	MinLimit, MaxLimit int
	// Smoothing is how much of each new estimate enters the limit, in (0, 1].
	// Default 0.2.
	Smoothing float64
	// Tolerance is how much a call's latency may exceed the no-load latency before
	// the limit comes down. Default 1.5.
	Tolerance float64
	// Window is how many samples the no-load latency is remembered for: it is the
	// least latency of the current and the previous Window samples, so that it
	// follows a dependency that became slower for good. Default 500.
	Window int
	// QueueSize is the headroom added to the estimate so that the limit can grow.
	// Default 4.
	QueueSize int
}

type gradient struct {
	limit     float64
	min, max  float64
	smoothing float64
	tolerance float64
	queue     float64

	window          int
	n               int
	curMin, prevMin float64 // minimum RTT (ns) of the current and previous windows
}

// NewGradient returns a gradient algorithm, as Netflix's GradientLimit: it compares
// each call's latency with the no-load latency (the least latency recently seen) and
// scales the limit by their ratio, the gradient (tolerance × no-load / latency,
// clamped to [0.5, 1]), plus a small queue allowance so that the limit can grow while
// latency holds. A dropped call counts as the steepest gradient. Unlike [NewAIMD] it
// backs off as soon as calls start to queue, before anything is dropped.
func NewGradient(cfg GradientConfig) (LimitAlgorithm, error) {
	lo, hi, init, err := limitBounds("GradientConfig", cfg.MinLimit, cfg.MaxLimit, cfg.InitialLimit)
	if err != nil {
		return nil, err
	}
	if cfg.Smoothing == 0 {
		cfg.Smoothing = 0.2
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = 1.5
	}
	if cfg.Window <= 0 {
		cfg.Window = 500
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4
	}
	switch {
	case cfg.Smoothing < 0 || cfg.Smoothing > 1:
		return nil, invalid("GradientConfig.Smoothing", "%v is not in (0, 1]", cfg.Smoothing)
	case cfg.Tolerance < 1:
		return nil, invalid("GradientConfig.Tolerance", "%v is below 1", cfg.Tolerance)
	}
	return &gradient{limit: init, min: lo, max: hi,
		smoothing: cfg.Smoothing, tolerance: cfg.Tolerance, queue: float64(cfg.QueueSize),
		window: cfg.Window, curMin: math.Inf(1), prevMin: math.Inf(1)}, nil
}

func (g *gradient) Limit() int { return int(g.limit) }

func (g *gradient) Update(s LimitSample) int {
	rtt := max(float64(s.RTT), 1)
	if !s.Dropped {
		g.curMin = min(g.curMin, rtt)
	}
	if g.n++; g.n >= g.window {
		g.prevMin, g.curMin, g.n = g.curMin, math.Inf(1), 0
	}
	noload := min(g.curMin, g.prevMin)
	if math.IsInf(noload, 1) {
		noload = rtt
	}
	var grad float64
	switch {
	case s.Dropped:
		grad = 0.5
	case float64(s.InFlight) < g.limit/2:
		return int(g.limit) // the application does not use the limit: no news
	default:
		grad = max(0.5, min(1.0, g.tolerance*noload/rtt))
	}
	next := g.limit*grad + g.queue
	next = g.limit*(1-g.smoothing) + next*g.smoothing
	g.limit = max(g.min, min(g.max, next))
	return int(g.limit)
}

// DefaultLimitClassify is the default classification of an [AdaptiveLimit]'s calls:
// timeouts (anything matching [context.DeadlineExceeded], which includes
// [ErrTimeout]) and rejections by bulkheads, rate limits and limits further in are a
// [selfheal.Failure], a drop, the sign of overload; [context.Canceled] is
// [selfheal.Ignored] (the call is not sampled); anything else, errors included, is a
// [selfheal.Success]: the dependency answered, and its latency is sampled.
func DefaultLimitClassify(_ any, err error) selfheal.Outcome {
	switch {
	case err == nil:
		return selfheal.Success
	case errors.Is(err, context.DeadlineExceeded), IsRejected(err):
		return selfheal.Failure
	case errors.Is(err, context.Canceled):
		return selfheal.Ignored
	}
	return selfheal.Success
}

// AdaptiveLimitConfig configures an [AdaptiveLimit]. The zero value uses the
// gradient algorithm with its defaults.
type AdaptiveLimitConfig struct {
	// Name identifies the limit in errors, metrics and health checks.
	// Default "limit".
	Name string
	// Algorithm computes the limit. Default NewGradient(GradientConfig{}).
	Algorithm LimitAlgorithm
	// Classify judges each call of [AdaptiveLimit.Do] (with a nil result): a
	// [selfheal.Failure] is a drop, which brings the limit down; a
	// [selfheal.Success] feeds its latency to the algorithm; an Ignored call is not
	// sampled. Nil means [DefaultLimitClassify]. It is called on the calling
	// goroutine.
	Classify selfheal.Classifier
	// OnReject, when set, is called for every call the limit (through Do or Acquire) refuses, on the
	// refused caller's goroutine, with its context and the error it gets (a
	// *[RejectedError]; shared between calls: do not modify it). It must not block. Nil means no hook.
	OnReject func(ctx context.Context, err *RejectedError)
	// Logger, when set, receives a Debug record for every call the limit
	// refuses ("heal: limit rejected"), with the keys of
	// the metrics. Nil means no logging.
	Logger *slog.Logger
	// MeterProvider receives the limit's metrics. Nil means the global provider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the tracer of the span that records a rejection when
	// the call has no span of its own (with one, it is an event on the caller's span
	// when that span is recording). Nil means the global provider.
	TracerProvider trace.TracerProvider
}

// AdaptiveLimit bounds concurrency like a [Bulkhead], but its bound follows the
// latency it observes instead of being fixed (Netflix's concurrency-limits; TCP
// congestion control applied to calls): it grows while latency holds and falls as soon
// as latency rises or calls are dropped, so that a service finds its own capacity and
// sheds load rather than queueing it. A call over the limit is rejected at once with
// a *[RejectedError] matching [ErrLimitExceeded].
//
// Calls whose context was cancelled by their caller are not sampled.
//
// An AdaptiveLimit is safe for concurrent use. Create it with [NewAdaptiveLimit]; the zero value is not usable.
type AdaptiveLimit struct {
	name     string
	classify selfheal.Classifier

	inFlight atomic.Int64
	limit    atomic.Int64
	rejected atomic.Int64

	mu  sync.Mutex
	alg LimitAlgorithm

	rejectErr  *RejectedError
	rejections counter
	limitGauge gauge
	rejectEv   event
	onReject   func(context.Context, *RejectedError)
	log        *slog.Logger
}

// NewAdaptiveLimit returns a limit configured by cfg. No setting of cfg can be
// invalid, so it returns no error.
func NewAdaptiveLimit(cfg AdaptiveLimitConfig) *AdaptiveLimit {
	if cfg.Name == "" {
		cfg.Name = "limit"
	}
	if cfg.Algorithm == nil {
		cfg.Algorithm, _ = NewGradient(GradientConfig{})
	}
	if cfg.Classify == nil {
		cfg.Classify = DefaultLimitClassify
	}
	m := meterFor(cfg.MeterProvider)
	attrs := []attribute.KeyValue{attrName.String(cfg.Name)}
	l := &AdaptiveLimit{
		name:       cfg.Name,
		classify:   cfg.Classify,
		alg:        cfg.Algorithm,
		rejectErr:  &RejectedError{Policy: "limit", Name: cfg.Name, Reason: ErrLimitExceeded},
		rejections: newCounter(m, "limit.rejections", "Calls an adaptive concurrency limit rejected.", "{call}", attrs...),
		limitGauge: newGauge(m, "limit.limit", "The current adaptive concurrency limit.", "{call}", attrs...),
		rejectEv:   newEvent(cfg.TracerProvider, "selfheal.heal.limit.rejected", attrs...),
		onReject:   cfg.OnReject,
		log:        cfg.Logger,
	}
	l.limit.Store(int64(max(1, cfg.Algorithm.Limit())))
	return l
}

// Name returns the limit's name.
func (l *AdaptiveLimit) Name() string { return l.name }

// Limit returns the current limit.
func (l *AdaptiveLimit) Limit() int { return int(l.limit.Load()) }

// InFlight returns the number of calls running under the limit.
func (l *AdaptiveLimit) InFlight() int { return int(l.inFlight.Load()) }

// Do runs fn if the limit allows one more call, and feeds its latency to the
// algorithm. Over the limit it returns a *[RejectedError] matching
// [ErrLimitExceeded] and does not call fn.
func (l *AdaptiveLimit) Do(ctx context.Context, fn func(context.Context) error) (err error) {
	tok, ok := l.Acquire(ctx)
	if !ok {
		return l.rejectErr
	}
	defer func() {
		if v := recover(); v != nil {
			tok.Release(ctx, true)
			panic(v)
		}
		switch l.classify(nil, err) {
		case selfheal.Failure:
			tok.Release(ctx, true)
		case selfheal.Ignored:
			tok.release(ctx, false, true)
		default:
			tok.Release(ctx, false)
		}
	}()
	return fn(ctx)
}

// LimitToken is a slot of an [AdaptiveLimit], for callers that cannot wrap their work
// in a function (the server middleware). Release it exactly once.
type LimitToken struct {
	l        *AdaptiveLimit
	start    time.Time
	inFlight int
}

// Acquire takes a slot if the limit allows, reporting whether it did. A refusal is
// counted as a rejection.
func (l *AdaptiveLimit) Acquire(ctx context.Context) (LimitToken, bool) {
	n := l.inFlight.Add(1)
	if n > l.limit.Load() {
		l.inFlight.Add(-1)
		l.rejected.Add(1)
		l.rejections.add(ctx, 1)
		l.rejectEv.add(ctx)
		if l.log != nil {
			logAt(ctx, l.log, slog.LevelDebug, msgLimitRejected, l.name)
		}
		if l.onReject != nil {
			l.onReject(ctx, l.rejectErr)
		}
		return LimitToken{}, false
	}
	return LimitToken{l: l, start: time.Now(), inFlight: int(n)}, true
}

// Release returns the slot and samples the call's latency; dropped says whether the
// call counts as a drop. When ctx was cancelled by the caller, the latency is not
// sampled.
func (t LimitToken) Release(ctx context.Context, dropped bool) {
	t.release(ctx, dropped, !dropped && ctx.Err() == context.Canceled)
}

// release returns the slot, and samples the call unless skip.
func (t LimitToken) release(ctx context.Context, dropped, skip bool) {
	l := t.l
	if l == nil {
		return
	}
	l.inFlight.Add(-1)
	if skip {
		return
	}
	s := LimitSample{Start: t.start, RTT: time.Since(t.start), InFlight: t.inFlight, Dropped: dropped}
	l.mu.Lock()
	old := l.limit.Load()
	n := int64(max(1, l.alg.Update(s)))
	l.limit.Store(n)
	l.mu.Unlock()
	if n != old {
		l.limitGauge.record(ctx, n)
	}
}

// AdaptiveLimitSnapshot is the state of an [AdaptiveLimit] at one instant.
type AdaptiveLimitSnapshot struct {
	Name     string
	Limit    int
	InFlight int
	Rejected int64 // calls rejected since the limit was created
}

// Snapshot returns the limit's current state.
func (l *AdaptiveLimit) Snapshot() AdaptiveLimitSnapshot {
	return AdaptiveLimitSnapshot{Name: l.name, Limit: l.Limit(), InFlight: l.InFlight(), Rejected: l.rejected.Load()}
}
