package heal_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/heal"
)

func TestAlgorithmConfigErrors(t *testing.T) {
	_, err := heal.NewAIMD(heal.AIMDConfig{MinLimit: 10, MaxLimit: 5})
	assert.ErrorContains(t, err, "MaxLimit")
	_, err = heal.NewAIMD(heal.AIMDConfig{BackoffRatio: 1.5})
	assert.ErrorContains(t, err, "BackoffRatio")
	_, err = heal.NewGradient(heal.GradientConfig{MinLimit: 10, MaxLimit: 5})
	assert.ErrorContains(t, err, "MaxLimit")
	_, err = heal.NewGradient(heal.GradientConfig{Smoothing: 2})
	assert.ErrorContains(t, err, "Smoothing")
	_, err = heal.NewGradient(heal.GradientConfig{Tolerance: 0.5})
	assert.ErrorContains(t, err, "Tolerance")
}

func TestAIMD(t *testing.T) {
	a, err := heal.NewAIMD(heal.AIMDConfig{InitialLimit: 10, MinLimit: 5, MaxLimit: 12, Timeout: time.Second})
	require.NoError(t, err)
	assert.Equal(t, 10, a.Limit())
	tests := []struct {
		give heal.LimitSample
		want int
	}{
		{heal.LimitSample{RTT: time.Millisecond, InFlight: 2}, 10}, // app-limited: no growth
		{heal.LimitSample{RTT: time.Millisecond, InFlight: 5}, 11},
		{heal.LimitSample{RTT: time.Millisecond, InFlight: 11}, 12},
		{heal.LimitSample{RTT: time.Millisecond, InFlight: 12}, 12}, // max
		{heal.LimitSample{RTT: time.Millisecond, InFlight: 12, Dropped: true}, 10},
		{heal.LimitSample{RTT: 2 * time.Second, InFlight: 1}, 9}, // slow counts as a drop
		{heal.LimitSample{Dropped: true}, 8},
		{heal.LimitSample{Dropped: true}, 7},
		{heal.LimitSample{Dropped: true}, 6},
		{heal.LimitSample{Dropped: true}, 5},
		{heal.LimitSample{Dropped: true}, 5}, // min
	}
	for i, tt := range tests {
		assert.Equal(t, tt.want, a.Update(tt.give), "sample %d", i)
	}
}

func TestGradient(t *testing.T) {
	g, err := heal.NewGradient(heal.GradientConfig{InitialLimit: 50, MinLimit: 10, MaxLimit: 100})
	require.NoError(t, err)
	// Steady latency, full use: the limit grows by the queue allowance.
	var last int
	for range 200 {
		last = g.Update(heal.LimitSample{RTT: 10 * time.Millisecond, InFlight: 100})
	}
	assert.Equal(t, 100, last)
	// Latency triples: the limit comes down towards half.
	for range 20 {
		last = g.Update(heal.LimitSample{RTT: 30 * time.Millisecond, InFlight: 100})
	}
	assert.Less(t, last, 70)
	assert.GreaterOrEqual(t, last, 10)
	// App-limited: no change.
	before := g.Limit()
	assert.Equal(t, before, g.Update(heal.LimitSample{RTT: time.Millisecond, InFlight: 1}))
}

func TestAdaptiveLimitRejects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		alg, err := heal.NewAIMD(heal.AIMDConfig{InitialLimit: 2, MinLimit: 1, MaxLimit: 4})
		require.NoError(t, err)
		l := heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{Name: "db", Algorithm: alg})
		assert.Equal(t, 2, l.Limit())
		release := make(chan struct{})
		var wg sync.WaitGroup
		blockIn(t, l, 2, release, &wg)
		assert.Equal(t, heal.AdaptiveLimitSnapshot{Name: "db", Limit: 2, InFlight: 2}, l.Snapshot())
		err = l.Do(context.Background(), ok)
		assert.ErrorIs(t, err, heal.ErrLimitExceeded)
		assert.True(t, heal.IsRejected(err))
		close(release)
		wg.Wait()
		// The calls used the limit: it grew (by one or two, depending on the order
		// in which they finished).
		assert.GreaterOrEqual(t, l.Limit(), 3)

		// Timeouts shrink it.
		for range 3 {
			_ = l.Do(context.Background(), func(context.Context) error { return context.DeadlineExceeded })
		}
		assert.Equal(t, 1, l.Limit())
		assert.EqualValues(t, 1, l.Snapshot().Rejected)

		// A caller's cancellation is not sampled.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = l.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
		assert.Equal(t, 1, l.Limit())
	})
}

func TestAdaptiveLimitDefaultsAndPanic(t *testing.T) {
	l := heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{})
	assert.Equal(t, 20, l.Limit())
	assert.Equal(t, "limit", l.Name())
	assert.Panics(t, func() { _ = l.Do(context.Background(), func(context.Context) error { panic("x") }) })
	assert.Equal(t, 0, l.InFlight())
}
