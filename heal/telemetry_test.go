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

	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/internal/oteltest"
)

// policyAttrs returns the attributes of the heal policy named name (the kind is in
// the instrument's name).
func policyAttrs(_, name string) []attribute.KeyValue {
	return []attribute.KeyValue{attribute.String("selfheal.policy.name", name)}
}

func TestTelemetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mp := oteltest.NewMeterProvider()
		ctx, span := oteltest.ContextWithSpan(context.Background())

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

		al := heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{Name: "search", MeterProvider: mp})
		release := make(chan struct{})
		var wg sync.WaitGroup
		blockIn(t, al, al.Limit(), release, &wg)
		assert.Error(t, al.Do(ctx, ok))
		close(release)
		wg.Wait()

		for _, c := range []struct{ metric, kind, name string }{
			{"selfheal.heal.bulkhead.rejections", "bulkhead", "db"},
			{"selfheal.heal.ratelimit.rejections", "ratelimit", "api"},
			{"selfheal.heal.timeout.timeouts", "timeout", "slow"},
			{"selfheal.heal.fallback.fallbacks", "fallback", "cache"},
			{"selfheal.heal.hedge.hedges", "hedge", "replicas"},
			{"selfheal.heal.limit.rejections", "limit", "search"},
		} {
			assert.EqualValues(t, 1, mp.Int64Sum(c.metric, policyAttrs(c.kind, c.name)...), c.metric)
		}
		var events []string
		for _, e := range span.Events() {
			events = append(events, e.Name+"{"+oteltest.Key(attribute.NewSet(e.Attributes...), "selfheal.policy.name")+"}")
		}
		assert.Equal(t, []string{
			"selfheal.heal.bulkhead.rejected{db}",
			"selfheal.heal.ratelimit.rejected{api}",
			"selfheal.heal.timeout.expired{slow}",
			"selfheal.heal.fallback.used{cache}",
			"selfheal.heal.hedge.started{replicas}", "selfheal.heal.hedge.won{replicas}",
			"selfheal.heal.limit.rejected{search}",
		}, events)
	})
}

func TestMiddlewareTelemetry(t *testing.T) {
	mp := oteltest.NewMeterProvider()
	m, err := heal.NewMiddleware(heal.MiddlewareConfig{Rate: 0.001, Burst: 1, MeterProvider: mp})
	require.NoError(t, err)
	_, srv := newServerWith(t, m)
	resp, _ := get(t, srv.Client(), srv.URL)
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = get(t, srv.Client(), srv.URL)
	assert.Equal(t, 429, resp.StatusCode)
	assert.EqualValues(t, 1, mp.Int64Sum("selfheal.heal.server.shed",
		attribute.String("selfheal.policy.name", "server"), attribute.String("selfheal.reason", "rate")))
}

// The adaptive limit's gauge reports the current limit each time it changes.
func TestAdaptiveLimitGauge(t *testing.T) {
	mp := oteltest.NewMeterProvider()
	alg, err := heal.NewAIMD(heal.AIMDConfig{InitialLimit: 10, MinLimit: 1, MaxLimit: 100})
	require.NoError(t, err)
	l := heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{Name: "search", Algorithm: alg, MeterProvider: mp})
	attrs := policyAttrs("limit", "search")
	for want := int64(9); want >= 7; want-- {
		_ = l.Do(context.Background(), func(context.Context) error { return context.DeadlineExceeded })
		got, ok := mp.Int64Gauge("selfheal.heal.limit.limit", attrs...)
		require.True(t, ok, "no limit recorded")
		assert.Equal(t, want, got)
		assert.EqualValues(t, want, l.Limit())
	}
}

// The bulkhead's gauges report the calls in its slots and in its queue.
func TestBulkheadGauges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mp := oteltest.NewMeterProvider()
		bh, err := heal.NewBulkhead(heal.BulkheadConfig{Name: "db", MaxConcurrent: 2, MaxQueued: 1, MeterProvider: mp})
		require.NoError(t, err)
		release := make(chan struct{})
		var wg sync.WaitGroup
		blockIn(t, bh, 3, release, &wg) // two run, one waits
		obs := mp.Observe(t)
		assert.Equal(t, map[string]int64{"db": 2}, obs.Int64By("selfheal.heal.bulkhead.in_flight", "selfheal.policy.name"))
		assert.Equal(t, map[string]int64{"db": 1}, obs.Int64By("selfheal.heal.bulkhead.queued", "selfheal.policy.name"))
		close(release)
		wg.Wait()
		obs = mp.Observe(t)
		assert.Equal(t, map[string]int64{"db": 0}, obs.Int64By("selfheal.heal.bulkhead.in_flight", "selfheal.policy.name"))
		assert.Equal(t, map[string]int64{"db": 0}, obs.Int64By("selfheal.heal.bulkhead.queued", "selfheal.policy.name"))
	})
}
