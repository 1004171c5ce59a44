package heal

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// DefaultFallbackHandle is the default classification of a [Fallback]: every error
// except [context.Canceled], since a caller that gave up wants no substitute.
func DefaultFallbackHandle(err error) bool {
	return err != nil && !errors.Is(err, context.Canceled)
}

// FallbackConfig configures a [Fallback]. Func is required.
type FallbackConfig struct {
	// Name identifies the fallback in metrics. Default "fallback".
	Name string
	// Handle reports whether an error should be replaced by Func's result.
	// Default DefaultFallbackHandle.
	Handle func(error) bool
	// Func is called, on the caller's goroutine, with the error the call failed
	// with; what it returns takes the call's place (nil: the call succeeded after
	// all). To substitute a value rather than an error, use [CallWithFallback].
	Func func(ctx context.Context, err error) error
	// MeterProvider receives the fallback's metrics. Nil means the global provider.
	MeterProvider metric.MeterProvider
}

// Fallback replaces the failures it handles with the result of a function: a
// default, a cached value, a degraded answer, or a clearer error.
//
// A Fallback is safe for concurrent use when its Func is. Create it with
// [NewFallback]; the zero value is not usable.
type Fallback struct {
	name   string
	handle func(error) bool
	fn     func(context.Context, error) error

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
	if cfg.Handle == nil {
		cfg.Handle = DefaultFallbackHandle
	}
	attrs := []attribute.KeyValue{attrPolicy.String("fallback"), attrName.String(cfg.Name)}
	return &Fallback{
		name:      cfg.Name,
		handle:    cfg.Handle,
		fn:        cfg.Func,
		fallbacks: newCounter(meterFor(cfg.MeterProvider), "fallback.fallbacks", "Failures a fallback replaced.", "{call}", attrs...),
		used:      newEvent("selfheal.fallback.used", attrs...),
	}, nil
}

// Name returns the fallback's name.
func (f *Fallback) Name() string { return f.name }

// Do runs fn; when it fails with an error that Handle accepts, Do returns Func's
// result instead.
func (f *Fallback) Do(ctx context.Context, fn func(context.Context) error) error {
	return f.result(ctx, fn(ctx))
}

// result returns err, or Func's result in its place when Handle accepts it.
func (f *Fallback) result(ctx context.Context, err error) error {
	if err == nil || !f.handle(err) {
		return err
	}
	f.fallbacks.add(ctx, 1)
	f.used.add(ctx)
	return f.fn(ctx, err)
}

// CallWithFallback runs fn through p (directly when p is nil), and when the result is
// an error that handle accepts (nil handle: [DefaultFallbackHandle]), returns
// fallback's result in its place.
func CallWithFallback[T any](ctx context.Context, p Policy, fn func(context.Context) (T, error),
	handle func(error) bool, fallback func(ctx context.Context, err error) (T, error)) (T, error) {
	v, err := Call(ctx, p, fn)
	if err == nil {
		return v, nil
	}
	if handle == nil {
		handle = DefaultFallbackHandle
	}
	if !handle(err) {
		return v, err
	}
	return fallback(ctx, err)
}

// Value returns a fallback function that always returns v: a constant substitute for
// [CallWithFallback].
func Value[T any](v T) func(context.Context, error) (T, error) {
	return func(context.Context, error) (T, error) { return v, nil }
}
