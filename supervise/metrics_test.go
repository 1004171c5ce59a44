package supervise_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/selfheal-go/selfheal/supervise"
)

// fakeMeter records what the supervisor reports through the OpenTelemetry
// API (the library must not depend on the SDK).
type fakeMeter struct {
	noop.Meter
	mu        sync.Mutex
	instNames []string
	restarts  map[string]int64 // by "supervisor child cause"
	callbacks []metric.Callback
}

type fakeProvider struct {
	embedded.MeterProvider
	m *fakeMeter
}

func (p fakeProvider) Meter(string, ...metric.MeterOption) metric.Meter { return p.m }

type fakeCounter struct {
	noop.Int64Counter
	m *fakeMeter
}

func (c fakeCounter) Add(_ context.Context, v int64, opts ...metric.AddOption) {
	set := metric.NewAddConfig(opts).Attributes()
	key := ""
	for _, k := range []attribute.Key{"supervisor", "child", "cause"} {
		val, _ := set.Value(k)
		key += val.AsString() + " "
	}
	c.m.mu.Lock()
	c.m.restarts[key[:len(key)-1]] += v
	c.m.mu.Unlock()
}

func (m *fakeMeter) Int64Counter(name string, _ ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	m.mu.Lock()
	m.instNames = append(m.instNames, name)
	m.mu.Unlock()
	return fakeCounter{m: m}, nil
}

func (m *fakeMeter) Int64ObservableUpDownCounter(name string, _ ...metric.Int64ObservableUpDownCounterOption) (metric.Int64ObservableUpDownCounter, error) {
	m.mu.Lock()
	m.instNames = append(m.instNames, name)
	m.mu.Unlock()
	return noop.Int64ObservableUpDownCounter{}, nil
}

type registration struct {
	embedded.Registration
	m *fakeMeter
}

func (r registration) Unregister() error {
	r.m.mu.Lock()
	r.m.callbacks = r.m.callbacks[:0]
	r.m.mu.Unlock()
	return nil
}

func (m *fakeMeter) RegisterCallback(f metric.Callback, _ ...metric.Observable) (metric.Registration, error) {
	m.mu.Lock()
	m.callbacks = append(m.callbacks, f)
	m.mu.Unlock()
	return registration{m: m}, nil
}

type fakeObserver struct {
	embedded.Observer
	got map[string]int64
}

func (o *fakeObserver) ObserveInt64(_ metric.Int64Observable, v int64, opts ...metric.ObserveOption) {
	set := metric.NewObserveConfig(opts).Attributes()
	val, _ := set.Value("supervisor")
	o.got[val.AsString()] = v
}

func (o *fakeObserver) ObserveFloat64(metric.Float64Observable, float64, ...metric.ObserveOption) {}

// collect runs the registered callbacks: running children by supervisor.
func (m *fakeMeter) collect() map[string]int64 {
	o := &fakeObserver{got: map[string]int64{}}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, cb := range m.callbacks {
		_ = cb(context.Background(), o)
	}
	return o.got
}

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &fakeMeter{restarts: map[string]int64{}}
		s, err := supervise.New("root", supervise.Config{MeterProvider: fakeProvider{m: m}, Backoff: supervise.NoBackoff})
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"selfheal.supervise.restarts", "selfheal.supervise.children.running"}, m.instNames)

		runs := 0
		_, err = s.Add(supervise.ServiceFunc("w", func(ctx context.Context) error {
			runs++
			switch runs {
			case 1:
				return errBoom
			case 2:
				panic("p")
			case 3:
				return nil
			}
			return blocker(ctx)
		}))
		require.NoError(t, err)
		_, err = s.Add(supervise.ServiceFunc("idle", blocker))
		require.NoError(t, err)
		_, err = s.Add(supervise.ServiceFunc("once", func(context.Context) error { return nil }), supervise.WithRestart(supervise.Transient))
		require.NoError(t, err)

		stop := serve(s)
		synctest.Wait()
		assert.Equal(t, map[string]int64{"root w error": 1, "root w panic": 1, "root w exit": 1}, m.restarts)
		assert.Equal(t, map[string]int64{"root": 2}, m.collect())
		require.NoError(t, stop())
		assert.Empty(t, m.collect(), "the callback is unregistered when Serve returns")
	})
}
