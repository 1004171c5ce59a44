package heal

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// Attribute keys on every metric and span event of this package.
const (
	attrPolicy = attribute.Key("selfheal.policy")
	attrName   = attribute.Key("selfheal.name")
	attrReason = attribute.Key("selfheal.reason")
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

// event is a span event with its attributes bound once. It is added to the span in
// the context only when that span is recording.
type event struct {
	name string
	opts []trace.EventOption
}

func newEvent(name string, attrs ...attribute.KeyValue) event {
	return event{name: name, opts: []trace.EventOption{trace.WithAttributes(attrs...)}}
}

func (e event) add(ctx context.Context) {
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		sp.AddEvent(e.name, e.opts...)
	}
}

// addWith adds the event with extra attributes, built only when the span records.
func (e event) addWith(ctx context.Context, extra func() []attribute.KeyValue) {
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		sp.AddEvent(e.name, append(e.opts[:len(e.opts):len(e.opts)], trace.WithAttributes(extra()...))...)
	}
}
