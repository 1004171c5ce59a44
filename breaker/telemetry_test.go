package breaker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/internal/oteltest"
)

// gauge collects the state gauge of the breakers reporting to p, by breaker name.
func gauge(t *testing.T, p *oteltest.MeterProvider) map[string]int64 {
	t.Helper()
	return p.Observe(t).Int64By("selfheal.breaker.state", "selfheal.policy.name")
}

func TestTelemetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := oteltest.NewMeterProvider()
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))
		b, err := breaker.New(breaker.Config{Name: "db", ConsecutiveFailures: 2, OpenDuration: time.Second, MeterProvider: rec, Logger: logger})
		require.NoError(t, err)
		assert.Equal(t, []string{"github.com/selfheal-go/selfheal/breaker"}, rec.Scopes())

		ctx := t.Context()
		require.NoError(t, b.Do(ctx, ok))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, b.Do(cctx, func(ctx context.Context) error { return ctx.Err() }), context.Canceled)
		assert.Equal(t, map[string]int64{"db": 0}, gauge(t, rec))
		require.Error(t, b.Do(ctx, fail))
		require.Error(t, b.Do(ctx, fail))

		sctx, span := oteltest.ContextWithSpan(ctx)
		require.ErrorIs(t, b.Do(sctx, ok), breaker.ErrOpen)
		require.ErrorIs(t, b.Do(ctx, ok), breaker.ErrOpen) // no span: no event, no cost

		name := attribute.String("selfheal.policy.name", "db")
		obs := rec.Observe(t)
		outcome := func(o string) int64 {
			n, _ := obs.Int64("selfheal.breaker.calls", name, attribute.String("selfheal.outcome", o))
			return n
		}
		assert.Equal(t, int64(1), outcome("success"))
		assert.Equal(t, int64(2), outcome("failure"))
		assert.Equal(t, int64(1), outcome("excluded"))
		assert.Equal(t, int64(2), outcome("rejected"))
		assert.Equal(t, int64(1), rec.Int64Sum("selfheal.breaker.transitions", name,
			attribute.String("selfheal.state.previous", "closed"), attribute.String("selfheal.state", "open")))
		assert.Equal(t, map[string]int64{"db": 2}, gauge(t, rec))

		assert.Equal(t, []string{"selfheal.breaker.rejected"}, span.EventNames())
		attrs := span.Events()[0].Attributes
		assert.Contains(t, attrs, attribute.Float64("selfheal.retry_after", 1))
		assert.Contains(t, attrs, name)

		// Collecting the metrics after the open wait changes nothing: the breaker stays
		// open, and no transition is logged or counted, until a call moves it.
		time.Sleep(time.Second + time.Nanosecond)
		assert.Equal(t, map[string]int64{"db": 2}, gauge(t, rec), "collection makes no transition")
		assert.Equal(t, "level=INFO msg=\"breaker state changed\" selfheal.policy.name=db selfheal.state.previous=closed selfheal.state=open selfheal.forced=false\n", logs.String())
		assert.Zero(t, rec.Int64Sum("selfheal.breaker.transitions", name,
			attribute.String("selfheal.state.previous", "open"), attribute.String("selfheal.state", "half-open")))
		require.NoError(t, b.Do(ctx, ok))
		assert.Equal(t, map[string]int64{"db": 0}, gauge(t, rec))
		assert.Equal(t, "level=INFO msg=\"breaker state changed\" selfheal.policy.name=db selfheal.state.previous=closed selfheal.state=open selfheal.forced=false\n"+
			"level=INFO msg=\"breaker state changed\" selfheal.policy.name=db selfheal.state.previous=open selfheal.state=half-open selfheal.forced=false\n"+
			"level=INFO msg=\"breaker state changed\" selfheal.policy.name=db selfheal.state.previous=half-open selfheal.state=closed selfheal.forced=false\n", logs.String())
	})
}

func TestGroupTelemetry(t *testing.T) {
	rec := oteltest.NewMeterProvider()
	g, err := breaker.NewGroup(breaker.GroupConfig{Name: "hosts", Breaker: breaker.Config{MeterProvider: rec, ConsecutiveFailures: 1}})
	require.NoError(t, err)
	require.NoError(t, g.Do(t.Context(), "a", ok))
	require.Error(t, g.Do(t.Context(), "b", fail))
	assert.Equal(t, map[string]int64{"hosts/a": 0, "hosts/b": 2}, gauge(t, rec))
	calls := rec.Observe(t).Int64By("selfheal.breaker.calls", "selfheal.policy.name", "selfheal.outcome")
	assert.Equal(t, map[string]int64{"hosts/a success": 1, "hosts/b failure": 1}, calls, "counts that are zero are not reported")
	assert.Len(t, rec.Registrations(), 1, "one gauge callback for the whole group")
}

func TestLoggerNilAndHookMayUseBreaker(t *testing.T) {
	var b *breaker.Breaker
	var seen []string
	var err error
	b, err = breaker.New(breaker.Config{
		Name:                "self",
		ConsecutiveFailures: 1,
		OnStateChange: func(name string, from, to breaker.State) {
			// The hook runs outside the breaker's locks: it may use the breaker.
			seen = append(seen, name+":"+from.String()+">"+to.String()+"="+b.Snapshot().State.String())
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
	rec := oteltest.NewMeterProvider()
	func() {
		b, err := breaker.New(breaker.Config{Name: "gone", MeterProvider: rec})
		require.NoError(t, err)
		g, err := breaker.NewGroup(breaker.GroupConfig{Name: "gone-group", Breaker: breaker.Config{MeterProvider: rec}})
		require.NoError(t, err)
		g.Get("k")
		assert.Equal(t, map[string]int64{"gone": 0, "gone-group/k": 0}, gauge(t, rec))
		_ = b
	}()
	regs := rec.Registrations()
	require.Len(t, regs, 2)
	assert.Equal(t, 2, oteltest.AwaitUnregistered(10*time.Second, regs...), "both callbacks unregistered")
	assert.Empty(t, gauge(t, rec))
	for _, r := range regs {
		// As an SDK may run a callback while it is being unregistered.
		obs, err := r.Collect(context.Background())
		require.NoError(t, err)
		assert.Zero(t, obs.Len(), "a collected breaker observes nothing")
	}
}
