package heal_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	mnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tnoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/selfheal-go/selfheal/heal"
)

// recMeter records what is added to its counters, by instrument name and the
// selfheal.name attribute: "selfheal.heal.bulkhead.rejections{db}".
type recMeter struct {
	mnoop.MeterProvider
	mu   sync.Mutex
	sums map[string]int64
}

func newRecMeter() *recMeter { return &recMeter{sums: map[string]int64{}} }

func (m *recMeter) Meter(string, ...metric.MeterOption) metric.Meter { return recMeterMeter{m: m} }

func (m *recMeter) get(key string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sums[key]
}

type recMeterMeter struct {
	mnoop.Meter
	m *recMeter
}

func (mm recMeterMeter) Int64Counter(name string, _ ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return recCounter{m: mm.m, name: name}, nil
}

type recCounter struct {
	mnoop.Int64Counter
	m    *recMeter
	name string
}

func (c recCounter) Add(_ context.Context, n int64, opts ...metric.AddOption) {
	cfg := metric.NewAddConfig(opts)
	set := cfg.Attributes()
	name, _ := set.Value("selfheal.name")
	key := c.name + "{" + name.AsString() + "}"
	if r, ok := set.Value("selfheal.reason"); ok {
		key = c.name + "{" + r.AsString() + "}"
	}
	c.m.mu.Lock()
	c.m.sums[key] += n
	c.m.mu.Unlock()
}

// recSpan is a recording span that keeps the names of its events.
type recSpan struct {
	tnoop.Span
	mu     sync.Mutex
	events []string
}

func (s *recSpan) IsRecording() bool { return true }

func (s *recSpan) AddEvent(name string, opts ...trace.EventOption) {
	cfg := trace.NewEventConfig(opts...)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range cfg.Attributes() {
		if a.Key == attribute.Key("selfheal.name") {
			name += "{" + a.Value.AsString() + "}"
		}
	}
	s.events = append(s.events, name)
}

func (s *recSpan) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

func TestTelemetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mp := newRecMeter()
		span := &recSpan{}
		ctx := trace.ContextWithSpan(context.Background(), span)

		bh, err := heal.NewBulkhead(heal.BulkheadConfig{Name: "db", MaxConcurrent: 1, MeterProvider: mp})
		require.NoError(t, err)
		require.True(t, bh.TryAcquire())
		assert.Error(t, bh.Do(ctx, ok))
		bh.Release()

		rl, err := heal.NewRateLimit(heal.RateLimitConfig{Name: "api", Rate: 1, MeterProvider: mp})
		require.NoError(t, err)
		_ = rl.Do(ctx, ok)
		assert.Error(t, rl.Do(ctx, ok))

		to, err := heal.NewTimeout(heal.TimeoutConfig{Name: "slow", Timeout: time.Second, MeterProvider: mp})
		require.NoError(t, err)
		assert.Error(t, to.Do(ctx, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }))

		fb, err := heal.NewFallback(heal.FallbackConfig{Name: "cache", MeterProvider: mp,
			Func: func(context.Context, error) error { return nil }})
		require.NoError(t, err)
		assert.NoError(t, fb.Do(ctx, func(context.Context) error { return heal.ErrTimeout }))

		h, err := heal.NewHedge(heal.HedgeConfig{Name: "replicas", Delay: 10 * time.Millisecond, MeterProvider: mp})
		require.NoError(t, err)
		var n atomic.Int32
		assert.NoError(t, h.Do(ctx, func(ctx context.Context) error {
			if n.Add(1) == 1 {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}))

		al, err := heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{Name: "search", MeterProvider: mp})
		require.NoError(t, err)
		release := make(chan struct{})
		var wg sync.WaitGroup
		blockIn(t, al, al.Limit(), release, &wg)
		assert.Error(t, al.Do(ctx, ok))
		close(release)
		wg.Wait()

		for _, key := range []string{
			"selfheal.heal.bulkhead.rejections{db}",
			"selfheal.heal.ratelimit.rejections{api}",
			"selfheal.heal.timeout.timeouts{slow}",
			"selfheal.heal.fallback.fallbacks{cache}",
			"selfheal.heal.hedge.hedges{replicas}",
			"selfheal.heal.limit.rejections{search}",
		} {
			assert.EqualValues(t, 1, mp.get(key), key)
		}
		assert.Equal(t, []string{
			"selfheal.bulkhead.rejected{db}",
			"selfheal.ratelimit.rejected{api}",
			"selfheal.timeout.expired{slow}",
			"selfheal.fallback.used{cache}",
			"selfheal.hedge.started{replicas}",
			"selfheal.limit.rejected{search}",
		}, span.names())
	})
}

func TestMiddlewareTelemetry(t *testing.T) {
	mp := newRecMeter()
	m, err := heal.NewMiddleware(heal.MiddlewareConfig{Rate: 0.001, Burst: 1, MeterProvider: mp})
	require.NoError(t, err)
	_, srv := newServerWith(t, m)
	resp, _ := get(t, srv.Client(), srv.URL)
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = get(t, srv.Client(), srv.URL)
	assert.Equal(t, 429, resp.StatusCode)
	assert.EqualValues(t, 1, mp.get("selfheal.heal.server.shed{rate}"))
}
