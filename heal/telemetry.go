package heal

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// Attribute keys on the metrics and span events of this package: those of the
// scheme every selfheal package shares (see internal/telemetry and TELEMETRY.md).
const (
	attrName   = telemetry.KeyPolicyName
	attrReason = telemetry.KeyReason
)

// meterFor returns the heal meter of mp (the global provider when nil).
func meterFor(mp metric.MeterProvider) metric.Meter { return telemetry.Meter(mp, "heal") }

// counter is an Int64Counter with its attribute set bound once, so that adding to it
// allocates nothing.
type counter struct {
	c    metric.Int64Counter
	opts []metric.AddOption
}

func newCounter(m metric.Meter, name, desc, unit string, attrs ...attribute.KeyValue) counter {
	c, err := m.Int64Counter("selfheal.heal."+name, metric.WithDescription(desc), metric.WithUnit(unit))
	if err != nil || c == nil {
		// A broken meter must not break the policy: fall back to a counter that
		// does nothing. The OpenTelemetry API returns a usable no-op with err.
		return counter{}
	}
	return counter{c: c, opts: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}}
}

func (c counter) add(ctx context.Context, n int64) {
	if c.c != nil {
		c.c.Add(ctx, n, c.opts...)
	}
}

// gauge is an Int64Gauge with its attribute set bound once.
type gauge struct {
	g    metric.Int64Gauge
	opts []metric.RecordOption
}

func newGauge(m metric.Meter, name, desc, unit string, attrs ...attribute.KeyValue) gauge {
	g, err := m.Int64Gauge("selfheal.heal."+name, metric.WithDescription(desc), metric.WithUnit(unit))
	if err != nil || g == nil {
		return gauge{}
	}
	return gauge{g: g, opts: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}}
}

func (g gauge) record(ctx context.Context, v int64) {
	if g.g != nil {
		g.g.Record(ctx, v, g.opts...)
	}
}

// event is a span event with its attributes bound once: what happened to a call (a
// rejection, a timeout, a fallback, a hedge). It is added to the caller's span when
// that span is recording; when the call has no span at all (no valid span context
// in ctx), it is a span of its own of the same name, from the policy's
// TracerProvider, so that it is visible on a trace either way. A span that is
// sampled out gets nothing: the sampler has decided.
type event struct {
	name   string
	opts   []trace.EventOption
	tracer trace.Tracer
	attrs  []attribute.KeyValue
}

func newEvent(tp trace.TracerProvider, name string, attrs ...attribute.KeyValue) event {
	return event{name: name, opts: []trace.EventOption{trace.WithAttributes(attrs...)},
		tracer: telemetry.Tracer(tp, "heal"), attrs: attrs}
}

func (e event) add(ctx context.Context) {
	sp := trace.SpanFromContext(ctx)
	if sp.IsRecording() {
		sp.AddEvent(e.name, e.opts...)
	} else if !sp.SpanContext().IsValid() {
		e.span(ctx, nil)
	}
}

// addWith adds the event with extra attributes, built only when it is recorded.
func (e event) addWith(ctx context.Context, extra func() []attribute.KeyValue) {
	sp := trace.SpanFromContext(ctx)
	if sp.IsRecording() {
		sp.AddEvent(e.name, append(e.opts[:len(e.opts):len(e.opts)], trace.WithAttributes(extra()...))...)
	} else if !sp.SpanContext().IsValid() {
		e.span(ctx, extra)
	}
}

// span records the event as a span of its own, for a call that has no span.
func (e event) span(ctx context.Context, extra func() []attribute.KeyValue) {
	if e.tracer == nil {
		return
	}
	attrs := e.attrs
	if extra != nil {
		attrs = append(attrs[:len(attrs):len(attrs)], extra()...)
	}
	_, sp := e.tracer.Start(ctx, e.name, trace.WithAttributes(attrs...))
	sp.End()
}

// Log records of this package. Every policy logs what happens to a call (a
// rejection, an expiry, a fallback, a hedge) at Debug, as the retry package logs a
// retry: such records come once a call, as often as calls do, and the metrics
// count them; state changes (a breaker's, a check's) are at Info or Warn in their
// packages. A nil logger logs nothing.
const (
	msgBulkheadRejected = "heal: bulkhead rejected"
	msgRateLimited      = "heal: rate limit rejected"
	msgLimitRejected    = "heal: limit rejected"
	msgTimeoutExpired   = "heal: timeout expired"
	msgFallbackUsed     = "heal: fallback used"
	msgHedgeStarted     = "heal: hedge started"
	msgRequestShed      = "heal: request shed"
)

// logAt logs msg at level on l with the policy's name and attrs, when l is not nil
// and enabled at level. Callers check l != nil first, so that a policy without a
// logger builds no attributes.
func logAt(ctx context.Context, l *slog.Logger, level slog.Level, msg, name string, attrs ...slog.Attr) {
	if l == nil || !l.Enabled(ctx, level) {
		return
	}
	l.LogAttrs(ctx, level, msg, append([]slog.Attr{slog.String(string(attrName), name)}, attrs...)...)
}

// errorAttrs are the keys of an error in a log record: its type, as on metrics and
// spans, and the error itself (a logger is the operator's, where its text belongs).
func errorAttrs(err error) []slog.Attr {
	return []slog.Attr{slog.String(string(telemetry.KeyErrorType), telemetry.ErrorType(err)), slog.Any("error", err)}
}
