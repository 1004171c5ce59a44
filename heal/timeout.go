package heal

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// TimeoutConfig configures a [Timeout]. Timeout is required.
type TimeoutConfig struct {
	// Name identifies the timeout in errors and metrics. Default "timeout".
	Name string
	// Timeout is how long a call may run. Required: there is no sensible default.
	Timeout time.Duration
	// OnTimeout, when set, is called for every call the timeout cut short (the call
	// is about to return a *[TimeoutError]), on the caller's goroutine once the
	// function has returned, with the caller's context and that error. It is not
	// called for a call that ended by the caller's own deadline or cancellation. It
	// must not block. Nil means no hook.
	OnTimeout func(ctx context.Context, err *TimeoutError)
	// Logger, when set, receives a Debug record for every call the timeout cut
	// short ("heal: timeout expired"), with the keys of the metrics. Nil means no
	// logging.
	Logger *slog.Logger
	// MeterProvider receives the timeout's metrics. Nil means the global provider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the tracer of the span that records an expiry when
	// the call has no span of its own (with one, it is an event on the caller's span
	// when that span is recording). Nil means the global provider.
	TracerProvider trace.TracerProvider
}

// Timeout bounds how long a call runs: it gives the function a context that expires
// after the configured duration (or earlier, with the caller's), and when that expiry
// and not the caller's ended the call, it returns a *[TimeoutError], which matches
// both [ErrTimeout] and [context.DeadlineExceeded].
//
// Cancellation is cooperative, as everywhere in Go: the function must watch its
// context. Timeout does not run the function in another goroutine and does not
// abandon it; it returns when the function returns.
//
// A Timeout is safe for concurrent use. Create it with [NewTimeout]; the zero value is not usable.
type Timeout struct {
	name string
	d    time.Duration

	timeouts  counter
	timedOut  event
	onTimeout func(context.Context, *TimeoutError)
	log       *slog.Logger
}

// NewTimeout returns a Timeout configured by cfg, or an error when cfg.Timeout is not
// positive.
func NewTimeout(cfg TimeoutConfig) (*Timeout, error) {
	if cfg.Timeout <= 0 {
		return nil, invalid("TimeoutConfig.Timeout", "%v is not positive; it is required", cfg.Timeout)
	}
	if cfg.Name == "" {
		cfg.Name = "timeout"
	}
	attrs := []attribute.KeyValue{attrName.String(cfg.Name)}
	return &Timeout{
		name:      cfg.Name,
		d:         cfg.Timeout,
		onTimeout: cfg.OnTimeout,
		log:       cfg.Logger,
		timeouts:  newCounter(meterFor(cfg.MeterProvider), "timeout.timeouts", "Calls a timeout cut short.", "{call}", attrs...),
		timedOut:  newEvent(cfg.TracerProvider, "selfheal.heal.timeout.expired", attrs...),
	}, nil
}

// Name returns the timeout's name.
func (t *Timeout) Name() string { return t.name }

// Duration returns the configured timeout.
func (t *Timeout) Duration() time.Duration { return t.d }

// Do runs fn with a context that expires after the timeout. It returns fn's error,
// replaced by a *[TimeoutError] wrapping it when fn failed after the timeout's own
// deadline passed. A call that succeeds is a success even if it ran late.
func (t *Timeout) Do(ctx context.Context, fn func(context.Context) error) error {
	if t.callerFirst(ctx) {
		return fn(ctx) // the caller's deadline comes first: no timer of our own
	}
	tctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.result(ctx, tctx, fn(tctx))
}

// callerFirst reports whether ctx's deadline ends the call before the timeout would.
func (t *Timeout) callerFirst(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !dl.After(time.Now().Add(t.d))
}

// result turns err, returned under tctx (derived from ctx by the timeout), into a
// *TimeoutError when tctx's own deadline, and not ctx's, ended the call.
func (t *Timeout) result(ctx, tctx context.Context, err error) error {
	if err != nil && tctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		t.timeouts.add(ctx, 1)
		t.timedOut.add(ctx)
		te := &TimeoutError{Name: t.name, Timeout: t.d, Err: err}
		if t.log != nil {
			logAt(ctx, t.log, slog.LevelDebug, msgTimeoutExpired, t.name)
		}
		if t.onTimeout != nil {
			t.onTimeout(ctx, te)
		}
		return te
	}
	return err
}
