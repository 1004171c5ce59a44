package oteltest_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/internal/oteltest"
)

var (
	a = attribute.String("k", "a")
	b = attribute.String("k", "b")
)

func TestSynchronousInstruments(t *testing.T) {
	p := oteltest.NewMeterProvider()
	m := p.Meter("scope/one")
	p.Meter("scope/two")
	p.Meter("scope/one")
	ctx := t.Context()

	ic, _ := m.Int64Counter("ic")
	iu, _ := m.Int64UpDownCounter("iu")
	fc, _ := m.Float64Counter("fc")
	fu, _ := m.Float64UpDownCounter("fu")
	ih, _ := m.Int64Histogram("ih")
	fh, _ := m.Float64Histogram("fh")
	ig, _ := m.Int64Gauge("ig")
	fg, _ := m.Float64Gauge("fg")
	assert.True(t, ic.Enabled(ctx))

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ic.Add(ctx, 2, metric.WithAttributes(a))
			iu.Add(ctx, -1, metric.WithAttributes(a))
			fc.Add(ctx, 0.5, metric.WithAttributes(b))
			fu.Add(ctx, -0.25)
		})
	}
	wg.Wait()
	ic.Add(ctx, 1, metric.WithAttributes(b))
	ih.Record(ctx, 3, metric.WithAttributes(a))
	fh.Record(ctx, 1.5, metric.WithAttributes(b))
	fh.Record(ctx, 2.5)
	ig.Record(ctx, 7, metric.WithAttributes(a))
	ig.Record(ctx, 5, metric.WithAttributes(a))
	fg.Record(ctx, 0.75)

	assert.Equal(t, []string{"scope/one", "scope/two"}, p.Scopes())
	assert.Equal(t, []string{"ic", "iu", "fc", "fu", "ih", "fh", "ig", "fg"}, p.InstrumentNames())
	assert.Equal(t, int64(16), p.Int64Sum("ic", a))
	assert.Equal(t, int64(1), p.Int64Sum("ic", b))
	assert.Zero(t, p.Int64Sum("ic"), "exactly the attributes given")
	assert.Equal(t, map[string]int64{"a": 16, "b": 1}, p.Int64SumBy("ic", "k"))
	assert.Equal(t, map[string]int64{"": 17}, p.Int64SumBy("ic"), "sums that share a key add up")
	assert.Equal(t, int64(-8), p.Int64Sum("iu", a))
	assert.Equal(t, 4.0, p.Float64Sum("fc", b))
	assert.Equal(t, map[string]float64{"": -2}, p.Float64SumBy("fu", "k"))
	assert.Equal(t, []oteltest.Record{{Attributes: attribute.NewSet(a), Value: 3}}, p.Records("ih"))
	assert.Equal(t, []oteltest.Record{{Attributes: attribute.NewSet(b), Value: 1.5}, {Attributes: attribute.NewSet(), Value: 2.5}}, p.Records("fh"))
	v, ok := p.Int64Gauge("ig", a)
	assert.True(t, ok)
	assert.Equal(t, int64(5), v, "a gauge keeps its last value")
	_, ok = p.Int64Gauge("ig", b)
	assert.False(t, ok)
	f, ok := p.Float64Gauge("fg")
	assert.True(t, ok)
	assert.Equal(t, 0.75, f)
}

func TestObservableInstruments(t *testing.T) {
	p := oteltest.NewMeterProvider()
	m := p.Meter("scope")
	ig, _ := m.Int64ObservableGauge("ig")
	iu, _ := m.Int64ObservableUpDownCounter("iu")
	_, _ = m.Int64ObservableCounter("ic", metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(4, metric.WithAttributes(a))
		return nil
	}))
	fg, _ := m.Float64ObservableGauge("fg")
	_, _ = m.Float64ObservableCounter("fc", metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
		o.Observe(0.5)
		return nil
	}))
	fu, _ := m.Float64ObservableUpDownCounter("fu")
	assert.Equal(t, []string{"ig", "iu", "ic", "fg", "fc", "fu"}, p.InstrumentNames())

	boom := errors.New("boom")
	r1, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(ig, 1, metric.WithAttributes(a))
		o.ObserveInt64(ig, 2, metric.WithAttributes(b))
		o.ObserveFloat64(fg, 1.5, metric.WithAttributes(a))
		return nil
	}, ig, fg)
	require.NoError(t, err)
	r2, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(iu, 3)
		o.ObserveFloat64(fu, 2.5) // not registered for it: dropped
		return boom
	}, iu)
	require.NoError(t, err)

	obs, err := p.Collect(t.Context())
	require.ErrorIs(t, err, boom)
	assert.ErrorContains(t, err, "not registered for")
	assert.Equal(t, map[string]int64{"a": 1, "b": 2}, obs.Int64By("ig", "k"))
	v, ok := obs.Int64("iu")
	assert.True(t, ok)
	assert.Equal(t, int64(3), v)
	v, _ = obs.Int64("ic", a)
	assert.Equal(t, int64(4), v)
	f, _ := obs.Float64("fg", a)
	assert.Equal(t, 1.5, f)
	assert.Equal(t, map[string]float64{"": 0.5}, obs.Float64By("fc"))
	_, ok = obs.Float64("fu")
	assert.False(t, ok)
	assert.Equal(t, 6, obs.Len())

	require.NoError(t, r2.Unregister())
	assert.Equal(t, 5, p.Observe(t).Len(), "Observe is Collect for tests")
	require.NoError(t, r2.Unregister())
	assert.Equal(t, []*oteltest.Registration{r1.(*oteltest.Registration), r2.(*oteltest.Registration)}, p.Registrations())
	assert.False(t, p.Registrations()[0].Unregistered())
	assert.True(t, p.Registrations()[1].Unregistered())
	obs, err = p.Collect(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 5, obs.Len(), "an unregistered callback does not run")
	obs, err = p.Registrations()[1].Collect(t.Context())
	require.ErrorIs(t, err, boom)
	assert.Equal(t, 1, obs.Len(), "unless run on its own")
}

func TestSpan(t *testing.T) {
	ctx, span := oteltest.ContextWithSpan(t.Context())
	sp := trace.SpanFromContext(ctx)
	require.Same(t, span, sp)
	assert.True(t, sp.IsRecording())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { sp.AddEvent("e", trace.WithAttributes(a, b)) })
	}
	wg.Wait()
	sp.AddEvent("f")
	sp.End()
	assert.Equal(t, []string{"e", "e", "e", "e", "f"}, span.EventNames())
	assert.Equal(t, oteltest.Event{Name: "e", Attributes: []attribute.KeyValue{a, b}}, span.Events()[0])
	assert.Equal(t, oteltest.Event{Name: "f"}, span.Events()[4])
	assert.Equal(t, "b 1 ", oteltest.Key(attribute.NewSet(b, attribute.Int("n", 1)), "k", "n", "missing"))
}
