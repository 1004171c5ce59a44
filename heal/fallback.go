package heal

import (
	"context"
	"errors"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// DefaultFallbackClassify is the default classification of a [Fallback] and of
// [CallWithFallback]: every error is a [selfheal.Failure] (replaced), except
// [context.Canceled], [selfheal.Ignored] (a caller that gave up wants no substitute);
// no error is a [selfheal.Success]. It does not look at the result.
func DefaultFallbackClassify(_ any, err error) selfheal.Outcome {
	switch {
	case err == nil:
		return selfheal.Success
	case errors.Is(err, context.Canceled):
		return selfheal.Ignored
	}
	return selfheal.Failure
}

// FallbackConfig configures a [Fallback]. Func is required.
type FallbackConfig struct {
	// Name identifies the fallback in metrics. Default "fallback".
	Name string
	// Classify judges the call: a [selfheal.Failure] is replaced by Func's result;
	// Success and Ignored pass through. [Fallback.Do] gives it a nil result. Nil
	// means [DefaultFallbackClassify]. It is called on the calling goroutine.
	Classify selfheal.Classifier
	// Func is called, on the caller's goroutine, with the error the call failed
	// with; what it returns takes the call's place (nil: the call succeeded after
	// all). Required. To substitute a value rather than an error, use
	// [CallWithFallback].
	Func func(ctx context.Context, err error) error
	// OnFallback, when set, is called just before Func, on the caller's goroutine,
	// with the call's context and the error being replaced. It must not block. Nil
	// means no hook.
	OnFallback func(ctx context.Context, err error)
	// Logger, when set, receives a Debug record for every failure the fallback
	// replaces ("heal: fallback used"), with the keys of the metrics, error.type
	// and the error itself. Nil means no logging.
	Logger *slog.Logger
	// MeterProvider receives the fallback's metrics. Nil means the global provider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the tracer of the span that records a fallback when
	// the call has no span of its own (with one, it is an event on the caller's span
	// when that span is recording). Nil means the global provider.
	TracerProvider trace.TracerProvider
}

// Fallback replaces the failures it handles with the result of a function: a
// default, a cached value, a degraded answer, or a clearer error.
//
// A Fallback is safe for concurrent use when its Func is. Create it with
// [NewFallback]; the zero value is not usable.
type Fallback struct {
	name     string
	classify selfheal.Classifier
	fn       func(context.Context, error) error
	onFall   func(context.Context, error)
	log      *slog.Logger

	fallbacks counter
	used      event
}

// NewFallback returns a Fallback configured by cfg, or an error when cfg.Func is nil.
func NewFallback(cfg FallbackConfig) (*Fallback, error) {
	if cfg.Func == nil {
		return nil, invalid("FallbackConfig.Func", "is nil; it is required")
	}
	if cfg.Name == "" {
		cfg.Name = "fallback"
	}
	if cfg.Classify == nil {
		cfg.Classify = DefaultFallbackClassify
	}
	attrs := []attribute.KeyValue{attrName.String(cfg.Name)}
	return &Fallback{
		name:      cfg.Name,
		classify:  cfg.Classify,
		fn:        cfg.Func,
		onFall:    cfg.OnFallback,
		log:       cfg.Logger,
		fallbacks: newCounter(meterFor(cfg.MeterProvider), "fallback.fallbacks", "Failures a fallback replaced.", "{call}", attrs...),
		used:      newEvent(cfg.TracerProvider, "selfheal.heal.fallback.used", attrs...),
	}, nil
}

// Name returns the fallback's name.
func (f *Fallback) Name() string { return f.name }

// Do runs fn; when Classify judges its error a failure, Do returns Func's result
// instead.
func (f *Fallback) Do(ctx context.Context, fn func(context.Context) error) error {
	return f.result(ctx, fn(ctx))
}

// result returns err, or Func's result in its place when Classify judges it a
// failure.
func (f *Fallback) result(ctx context.Context, err error) error {
	if err == nil || f.classify(nil, err) != selfheal.Failure {
		return err
	}
	f.fallbacks.add(ctx, 1)
	f.used.add(ctx)
	if f.log != nil {
		logAt(ctx, f.log, slog.LevelDebug, msgFallbackUsed, f.name, errorAttrs(err)...)
	}
	if f.onFall != nil {
		f.onFall(ctx, err)
	}
	return f.fn(ctx, err)
}

// CallWithFallback runs fn through p (directly when p is nil), and when classify
// judges the outcome a [selfheal.Failure] (nil classify: [DefaultFallbackClassify]),
// returns fallback's result in its place (with a "selfheal.heal.call_with_fallback.used"
// event, carrying error.type, on ctx's span when it is recording: CallWithFallback has
// no provider, no metric and no span of its own); otherwise it returns what [Call] returned:
// the value of the first successful run, or of the last run with p's error. classify
// sees that value (boxed) and the error, so that a result can be replaced as well as
// an error; fallback then gets a nil error when only the value was judged a failure.
func CallWithFallback[T any](ctx context.Context, p Policy, fn func(context.Context) (T, error),
	classify selfheal.Classifier, fallback func(ctx context.Context, err error) (T, error)) (T, error) {
	v, err := Call(ctx, p, fn)
	var o selfheal.Outcome
	if classify == nil {
		o = DefaultFallbackClassify(nil, err) // no boxing on the default path
	} else {
		o = classify(v, err)
	}
	if o != selfheal.Failure {
		return v, err
	}
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		var attrs []attribute.KeyValue
		if err != nil {
			attrs = []attribute.KeyValue{telemetry.KeyErrorType.String(telemetry.ErrorType(err))}
		}
		sp.AddEvent(eventCallFallback, trace.WithAttributes(attrs...))
	}
	return fallback(ctx, err)
}

// eventCallFallback is the event CallWithFallback adds to a recording span of ctx
// when it uses its fallback.
const eventCallFallback = "selfheal.heal.call_with_fallback.used"

// Value returns a fallback function that always returns v: a constant substitute for
// [CallWithFallback].
func Value[T any](v T) func(context.Context, error) (T, error) {
	return func(context.Context, error) (T, error) { return v, nil }
}
