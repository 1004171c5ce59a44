package integration_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/heal"
)

func init() { scenarios = append(scenarios, healScenario, middlewareScenario) }

// healScenario refuses a call in every heal policy twice: once inside the caller's
// recording span (an event) and once in a call with no span (a span of its own).
func healScenario(t *testing.T, s *sdk) {
	ctx, end := s.caller(t.Context())
	defer end()
	for _, c := range []context.Context{ctx, context.Background()} {
		bh, err := heal.NewBulkhead(heal.BulkheadConfig{Name: "db", MaxConcurrent: 1, Logger: s.log, MeterProvider: s.mp, TracerProvider: s.tp})
		require.NoError(t, err)
		require.True(t, bh.TryAcquire())
		assert.Error(t, bh.Do(c, ok))
		bh.Release()
		s.collect(t) // the bulkhead's gauges, while it is alive
		runtime.KeepAlive(bh)

		rl, err := heal.NewRateLimit(heal.RateLimitConfig{Name: "api", Rate: 0.001, Logger: s.log, MeterProvider: s.mp, TracerProvider: s.tp})
		require.NoError(t, err)
		_ = rl.Do(c, ok)
		assert.Error(t, rl.Do(c, ok))

		to, err := heal.NewTimeout(heal.TimeoutConfig{Name: "slow", Timeout: time.Millisecond, Logger: s.log, MeterProvider: s.mp, TracerProvider: s.tp})
		require.NoError(t, err)
		assert.Error(t, to.Do(c, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }))

		fb, err := heal.NewFallback(heal.FallbackConfig{Name: "cache", Logger: s.log, MeterProvider: s.mp, TracerProvider: s.tp,
			Func: func(context.Context, error) error { return nil }})
		require.NoError(t, err)
		assert.NoError(t, fb.Do(c, fail))
		v, err := heal.CallWithFallback(c, nil, func(context.Context) (int, error) { return 0, errBoom }, nil, heal.Value(7))
		assert.NoError(t, err)
		assert.Equal(t, 7, v)

		h, err := heal.NewHedge(heal.HedgeConfig{Name: "replicas", Delay: time.Millisecond, Logger: s.log, MeterProvider: s.mp, TracerProvider: s.tp})
		require.NoError(t, err)
		var n atomic.Int32
		assert.NoError(t, h.Do(c, func(ctx context.Context) error {
			if n.Add(1) == 1 {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}))

		al := heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{Name: "search", Logger: s.log, MeterProvider: s.mp, TracerProvider: s.tp})
		release := make(chan struct{})
		var wg sync.WaitGroup
		var in sync.WaitGroup
		for range al.Limit() {
			in.Add(1)
			wg.Go(func() {
				_ = al.Do(context.Background(), func(context.Context) error { in.Done(); <-release; return nil })
			})
		}
		in.Wait()
		assert.Error(t, al.Do(c, ok))
		close(release)
		wg.Wait()
	}
}

// middlewareScenario: a request shed by the rate, a panic, a timeout, through a
// real server.
func middlewareScenario(t *testing.T, s *sdk) {
	m, err := heal.NewMiddleware(heal.MiddlewareConfig{Rate: 0.001, Burst: 3, Timeout: 50 * time.Millisecond,
		MeterProvider: s.mp, TracerProvider: s.tp, Logger: s.log})
	require.NoError(t, err)
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			panic("boom")
		case "/slow":
			<-r.Context().Done()
		}
	}))
	// "/traced" arrives with a recording span, as behind otelhttp.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/traced" {
			ctx, end := s.caller(r.Context())
			defer end()
			r = r.WithContext(ctx)
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	for _, path := range []string{"/ok", "/panic", "/slow", "/ok", "/traced"} {
		resp, err := srv.Client().Get(srv.URL + path)
		require.NoError(t, err)
		_ = resp.Body.Close()
	}
}

// The hedge.won event names the attempt that won: the primary (1) when it beats its
// hedge, the hedge (2) when the primary is stuck.
func TestHedgeWonNamesTheWinner(t *testing.T) {
	s := newSDK(t)
	// Attempts are told apart by the order they call fn: the primary calls it at once
	// on the caller's goroutine, the hedge Delay later on a timer's; a 1 ms delay let
	// a loaded machine run the hedge's call first (1 run in ~25 under -race).
	h, err := heal.NewHedge(heal.HedgeConfig{Name: "replicas", Delay: 50 * time.Millisecond, MeterProvider: s.mp, TracerProvider: s.tp})
	require.NoError(t, err)
	won := func(h *heal.Hedge, fn func(n int32, ctx context.Context) error) int64 {
		ctx, end := s.caller(t.Context())
		var n atomic.Int32
		require.NoError(t, h.Do(ctx, func(ctx context.Context) error { return fn(n.Add(1), ctx) }))
		end()
		spans := s.spans.Ended()
		for _, ev := range spans[len(spans)-1].Events() {
			if ev.Name == "selfheal.heal.hedge.won" {
				for _, kv := range ev.Attributes {
					if kv.Key == "selfheal.attempt" {
						return kv.Value.AsInt64()
					}
				}
			}
		}
		return 0
	}
	assert.EqualValues(t, 2, won(h, func(n int32, ctx context.Context) error {
		if n == 1 {
			<-ctx.Done() // stuck until the hedge wins
			return ctx.Err()
		}
		return nil
	}))
	hedged := make(chan struct{})
	assert.EqualValues(t, 1, won(h, func(n int32, ctx context.Context) error {
		if n == 1 {
			<-hedged // a hedge has started
			return nil
		}
		close(hedged)
		<-ctx.Done() // the hedge is stuck until the primary wins
		return ctx.Err()
	}))
	never, err := heal.NewHedge(heal.HedgeConfig{Name: "replicas", Delay: time.Hour, MeterProvider: s.mp, TracerProvider: s.tp})
	require.NoError(t, err)
	assert.EqualValues(t, 0, won(never, func(int32, context.Context) error { return nil }), "no hedge started: no event")
}
