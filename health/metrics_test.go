package health_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/selfheal-go/selfheal/health"
)

// recordingProvider is the smallest MeterProvider that shows what the registry
// records: the library module may not require the OpenTelemetry SDK.
type recordingProvider struct {
	noop.MeterProvider
	m *recordingMeter
}

func (p *recordingProvider) Meter(name string, _ ...metric.MeterOption) metric.Meter {
	p.m.scope = name
	return p.m
}

type recordingMeter struct {
	noop.Meter
	mu        sync.Mutex
	scope     string
	names     []string
	durations []string // "check status"
	callback  metric.Callback
}

func (m *recordingMeter) Float64Histogram(name string, _ ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	m.names = append(m.names, name)
	return &recordingHistogram{m: m}, nil
}

func (m *recordingMeter) Int64ObservableGauge(name string, _ ...metric.Int64ObservableGaugeOption) (metric.Int64ObservableGauge, error) {
	m.names = append(m.names, name)
	return noop.Int64ObservableGauge{}, nil
}

func (m *recordingMeter) RegisterCallback(f metric.Callback, _ ...metric.Observable) (metric.Registration, error) {
	m.callback = f
	return noop.Registration{}, nil
}

type recordingHistogram struct {
	noop.Float64Histogram
	m *recordingMeter
}

func (h *recordingHistogram) Record(_ context.Context, v float64, opts ...metric.RecordOption) {
	attrs := metric.NewRecordConfig(opts).Attributes()
	check, _ := attrs.Value("check")
	status, _ := attrs.Value("status")
	h.m.mu.Lock()
	h.m.durations = append(h.m.durations, check.AsString()+" "+status.AsString())
	h.m.mu.Unlock()
}

type gaugeObserver struct {
	embedded.Observer
	got map[string]int64
}

func (o *gaugeObserver) ObserveFloat64(metric.Float64Observable, float64, ...metric.ObserveOption) {}

func (o *gaugeObserver) ObserveInt64(_ metric.Int64Observable, v int64, opts ...metric.ObserveOption) {
	attrs := metric.NewObserveConfig(opts).Attributes()
	check, _ := attrs.Value(attribute.Key("check"))
	o.got[check.AsString()] = v
}

func TestMetrics(t *testing.T) {
	m := &recordingMeter{}
	reg, err := health.New(health.Config{MeterProvider: &recordingProvider{m: m}})
	require.NoError(t, err)
	assert.Equal(t, "github.com/selfheal-go/selfheal/health", m.scope)
	assert.ElementsMatch(t, []string{"selfheal.health.check.duration", "selfheal.health.check.status"}, m.names)

	require.NoError(t, reg.Register(health.Check{Name: "ok", Func: pass}))
	require.NoError(t, reg.Register(health.Check{Name: "bad", Func: failWith("x")}))
	require.NoError(t, reg.Register(health.Check{Name: "meh", NonCritical: true, Func: failWith("x")}))
	reg.Status(context.Background(), 0)

	m.mu.Lock()
	assert.ElementsMatch(t, []string{"ok pass", "bad fail", "meh warn"}, m.durations)
	m.mu.Unlock()

	o := &gaugeObserver{got: map[string]int64{}}
	require.NoError(t, m.callback(context.Background(), o))
	assert.Equal(t, map[string]int64{"ok": 0, "meh": 1, "bad": 2}, o.got)
}

func TestLoggerRecordsStatusChanges(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	reg, err := health.New(health.Config{Logger: logger})
	require.NoError(t, err)
	require.NoError(t, reg.Register(health.Check{Name: "db", Func: failWith("refused")}))
	reg.Status(context.Background(), 0)
	assert.Equal(t, "level=WARN msg=\"health: check status changed\" check=db from=pass to=fail output=refused\n", buf.String())
}
