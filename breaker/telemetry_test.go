package breaker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/selfheal-go/selfheal/breaker"
)

// recorder is a MeterProvider that records what the breaker reports: counter adds by
// instrument name and attribute set, and the gauge callbacks to collect on demand.
type recorder struct {
	metricnoop.MeterProvider
	mu        sync.Mutex
	scope     string
	counters  map[string]map[attribute.Distinct]int64
	sets      map[attribute.Distinct]attribute.Set
	callbacks []metric.Callback
	// unregistered counts Unregister calls.
	unregistered int
}

func newRecorder() *recorder {
	return &recorder{counters: map[string]map[attribute.Distinct]int64{}, sets: map[attribute.Distinct]attribute.Set{}}
}

func (r *recorder) Meter(name string, _ ...metric.MeterOption) metric.Meter {
	r.mu.Lock()
	r.scope = name
	r.mu.Unlock()
	return &recMeter{r: r}
}

// count returns the sum added to the counter name with exactly the attributes kvs.
func (r *recorder) count(name string, kvs ...attribute.KeyValue) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := attribute.NewSet(kvs...)
	return r.counters[name][set.Equivalent()]
}

// gauge runs the callbacks and returns the observed values by breaker name.
func (r *recorder) gauge() map[string]int64 {
	r.mu.Lock()
	cbs := append([]metric.Callback(nil), r.callbacks...)
	r.mu.Unlock()
	o := &recObserver{values: map[string]int64{}}
	for _, cb := range cbs {
		_ = cb(context.Background(), o)
	}
	return o.values
}

type recMeter struct {
	metricnoop.Meter
	r *recorder
}

func (m *recMeter) Int64Counter(name string, _ ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return &recCounter{r: m.r, name: name}, nil
}

func (m *recMeter) RegisterCallback(f metric.Callback, _ ...metric.Observable) (metric.Registration, error) {
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	m.r.callbacks = append(m.r.callbacks, f)
	return &recRegistration{r: m.r}, nil
}

type recRegistration struct {
	metricnoop.Registration
	r *recorder
}

func (g *recRegistration) Unregister() error {
	g.r.mu.Lock()
	defer g.r.mu.Unlock()
	g.r.unregistered++
	return nil
}

type recCounter struct {
	metricnoop.Int64Counter
	r    *recorder
	name string
}

func (c *recCounter) Add(_ context.Context, v int64, opts ...metric.AddOption) {
	set := metric.NewAddConfig(opts).Attributes()
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.r.counters[c.name] == nil {
		c.r.counters[c.name] = map[attribute.Distinct]int64{}
	}
	c.r.counters[c.name][set.Equivalent()] += v
	c.r.sets[set.Equivalent()] = set
}

type recObserver struct {
	embedded.Observer
	values map[string]int64
}

func (o *recObserver) ObserveFloat64(metric.Float64Observable, float64, ...metric.ObserveOption) {}

func (o *recObserver) ObserveInt64(_ metric.Int64Observable, v int64, opts ...metric.ObserveOption) {
	set := metric.NewObserveConfig(opts).Attributes()
	name, _ := set.Value("breaker.name")
	o.values[name.AsString()] = v
}

// recSpan is a recording span that keeps its events.
type recSpan struct {
	tracenoop.Span
	mu     sync.Mutex
	events []string
	attrs  []attribute.KeyValue
}

func (s *recSpan) IsRecording() bool { return true }

func (s *recSpan) AddEvent(name string, opts ...trace.EventOption) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, name)
	cfg := trace.NewEventConfig(opts...)
	s.attrs = append(s.attrs, cfg.Attributes()...)
}

func TestTelemetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))
		b, err := breaker.New("db", breaker.Config{ConsecutiveFailures: 2, OpenDuration: time.Second, MeterProvider: rec, Logger: logger})
		require.NoError(t, err)
		assert.Equal(t, "github.com/selfheal-go/selfheal/breaker", rec.scope)

		ctx := t.Context()
		require.NoError(t, b.Do(ctx, ok))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, b.Do(cctx, func(ctx context.Context) error { return ctx.Err() }), context.Canceled)
		assert.Equal(t, map[string]int64{"db": 0}, rec.gauge())
		require.Error(t, b.Do(ctx, fail))
		require.Error(t, b.Do(ctx, fail))

		span := &recSpan{}
		sctx := trace.ContextWithSpan(ctx, span)
		require.ErrorIs(t, b.Do(sctx, ok), breaker.ErrOpen)
		require.ErrorIs(t, b.Do(ctx, ok), breaker.ErrOpen) // no span: no event, no cost

		name := attribute.String("breaker.name", "db")
		outcome := func(o string) int64 {
			return rec.count("selfheal.breaker.calls", name, attribute.String("breaker.outcome", o))
		}
		assert.Equal(t, int64(1), outcome("success"))
		assert.Equal(t, int64(2), outcome("failure"))
		assert.Equal(t, int64(1), outcome("excluded"))
		assert.Equal(t, int64(2), outcome("rejected"))
		assert.Equal(t, int64(1), rec.count("selfheal.breaker.transitions", name,
			attribute.String("breaker.from", "closed"), attribute.String("breaker.to", "open")))
		assert.Equal(t, map[string]int64{"db": 2}, rec.gauge())

		assert.Equal(t, []string{"breaker.rejected"}, span.events)
		assert.Contains(t, span.attrs, attribute.Int64("breaker.retry_after_ms", 1000))
		assert.Contains(t, span.attrs, name)

		time.Sleep(time.Second + time.Nanosecond)
		assert.Equal(t, map[string]int64{"db": 1}, rec.gauge(), "the gauge sees the open period end")
		assert.Equal(t, "level=INFO msg=\"breaker state changed\" breaker=db from=closed to=open forced=false\n"+
			"level=INFO msg=\"breaker state changed\" breaker=db from=open to=half-open forced=false\n", logs.String())
	})
}

func TestGroupTelemetry(t *testing.T) {
	rec := newRecorder()
	g, err := breaker.NewGroup("hosts", breaker.GroupConfig{Breaker: breaker.Config{MeterProvider: rec, ConsecutiveFailures: 1}})
	require.NoError(t, err)
	require.NoError(t, g.Do(t.Context(), "a", ok))
	require.Error(t, g.Do(t.Context(), "b", fail))
	assert.Equal(t, map[string]int64{"hosts/a": 0, "hosts/b": 2}, rec.gauge())
	assert.Equal(t, int64(1), rec.count("selfheal.breaker.calls",
		attribute.String("breaker.name", "hosts/b"), attribute.String("breaker.outcome", "failure")))
	assert.Len(t, rec.callbacks, 1, "one gauge callback for the whole group")
}

func TestLoggerNilAndHookMayUseBreaker(t *testing.T) {
	var b *breaker.Breaker
	var seen []string
	var err error
	b, err = breaker.New("self", breaker.Config{
		ConsecutiveFailures: 1,
		OnStateChange: func(name string, from, to breaker.State) {
			// The hook runs outside the breaker's locks: it may use the breaker.
			seen = append(seen, name+":"+from.String()+">"+to.String()+"="+b.State().State.String())
		},
	})
	require.NoError(t, err)
	require.Error(t, b.Do(t.Context(), fail))
	assert.Equal(t, []string{"self:closed>open=open"}, seen)
	assert.True(t, errors.Is(b.Do(t.Context(), ok), breaker.ErrOpen))
	assert.False(t, strings.Contains(strings.Join(seen, ","), "half-open"))
}

// The gauge callback holds its breaker weakly: a breaker that is garbage is not kept
// alive by the meter, its callback observes nothing, and it is unregistered.
func TestGaugeCallbackDoesNotKeepBreakersAlive(t *testing.T) {
	rec := newRecorder()
	func() {
		b, err := breaker.New("gone", breaker.Config{MeterProvider: rec})
		require.NoError(t, err)
		g, err := breaker.NewGroup("gone-group", breaker.GroupConfig{Breaker: breaker.Config{MeterProvider: rec}})
		require.NoError(t, err)
		g.Get("k")
		assert.Equal(t, map[string]int64{"gone": 0, "gone-group/k": 0}, rec.gauge())
		_ = b
	}()
	// Cleanups run on a runtime goroutine after a collection: poll, boundedly.
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		rec.mu.Lock()
		n := rec.unregistered
		rec.mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			assert.Equal(t, 2, n, "both callbacks unregistered")
			break
		}
		runtime.Gosched()
	}
	assert.Empty(t, rec.gauge(), "a collected breaker observes nothing")
}
