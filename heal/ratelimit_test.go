package heal_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/heal"
)

func TestNewRateLimitErrors(t *testing.T) {
	tests := []struct {
		give heal.RateLimitConfig
		want string
	}{
		{heal.RateLimitConfig{}, "Rate"},
		{heal.RateLimitConfig{Rate: math.NaN()}, "Rate"},
		{heal.RateLimitConfig{Rate: 1, Mode: 7}, "Mode"},
		{heal.RateLimitConfig{Rate: 1, MaxWait: -1}, "MaxWait"},
	}
	for _, tt := range tests {
		_, err := heal.NewRateLimit(tt.give)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
	}
	l, err := heal.NewRateLimit(heal.RateLimitConfig{Rate: 2.5})
	require.NoError(t, err)
	assert.Equal(t, heal.RateLimitSnapshot{Name: "ratelimit", Rate: 2.5, Burst: 3, Tokens: 3}, l.Snapshot())
	assert.Equal(t, "wait", heal.RateLimitWait.String())
}

func ok(context.Context) error { return nil }

func TestRateLimitReject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := heal.NewRateLimit(heal.RateLimitConfig{Name: "api", Rate: 10, Burst: 2})
		require.NoError(t, err)
		require.NoError(t, l.Do(context.Background(), ok))
		require.NoError(t, l.Do(context.Background(), ok))
		err = l.Do(context.Background(), ok)
		require.ErrorIs(t, err, heal.ErrRateLimited)
		d, found := heal.RetryAfter(err)
		require.True(t, found)
		assert.InDelta(t, float64(100*time.Millisecond), float64(d), float64(time.Millisecond))

		time.Sleep(d)
		require.NoError(t, l.Do(context.Background(), ok))

		l.SetRate(math.Inf(1))
		for range 100 {
			require.NoError(t, l.Do(context.Background(), ok))
		}
		l.SetRate(1)
		l.SetBurst(1)
		assert.Equal(t, 1, l.Snapshot().Burst)
	})
}

func TestRateLimitWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := heal.NewRateLimit(heal.RateLimitConfig{Rate: 10, Burst: 1, Mode: heal.RateLimitWait, MaxWait: 250 * time.Millisecond})
		require.NoError(t, err)
		start := time.Now()
		for range 3 {
			require.NoError(t, l.Do(context.Background(), ok))
		}
		assert.Equal(t, 200*time.Millisecond, time.Since(start))

		// Two more calls queue up 100ms and 200ms; a third would wait 300ms > MaxWait.
		done := make(chan error, 2)
		go func() { done <- l.Do(context.Background(), ok) }()
		go func() { done <- l.Do(context.Background(), ok) }()
		synctest.Wait()
		err = l.Do(context.Background(), ok)
		require.ErrorIs(t, err, heal.ErrRateLimited)
		d, _ := heal.RetryAfter(err)
		assert.Equal(t, 300*time.Millisecond, d)
		require.NoError(t, <-done)
		require.NoError(t, <-done)
	})
}

func TestRateLimitWaitDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := heal.NewRateLimit(heal.RateLimitConfig{Rate: 1, Burst: 1, Mode: heal.RateLimitWait})
		require.NoError(t, err)
		require.NoError(t, l.Do(context.Background(), ok))

		// The token would come after the deadline: rejected at once.
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		start := time.Now()
		assert.ErrorIs(t, l.Do(ctx, ok), heal.ErrRateLimited)
		assert.Zero(t, time.Since(start))
		cancel()

		// Cancelled while waiting: ctx.Err(), and the token is given back.
		ctx, cancel = context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- l.Do(ctx, ok) }()
		time.Sleep(100 * time.Millisecond)
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		time.Sleep(900 * time.Millisecond)
		assert.True(t, l.Allow())
	})
}

func TestRateLimitGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, err := heal.NewRateLimitGroup(heal.RateLimitGroupConfig{})
		require.ErrorContains(t, err, "Rate")

		g, err := heal.NewRateLimitGroup(heal.RateLimitGroupConfig{
			RateLimit: heal.RateLimitConfig{Name: "clients", Rate: 1, Burst: 1}, MaxKeys: 2})
		require.NoError(t, err)
		require.NoError(t, g.Do(context.Background(), "a", ok))
		require.NoError(t, g.Do(context.Background(), "b", ok))
		assert.ErrorIs(t, g.Do(context.Background(), "a", ok), heal.ErrRateLimited)
		assert.Equal(t, "clients/a", g.Get("a").Name())
		// "a" was used last; "c" evicts "b", whose bucket is then full again.
		require.NoError(t, g.Do(context.Background(), "c", ok))
		assert.Equal(t, 2, g.Len())
		require.NoError(t, g.Do(context.Background(), "b", ok))
		assert.ErrorIs(t, g.Do(context.Background(), "b", ok), heal.ErrRateLimited)
		for i := range 100 {
			_ = g.Get(fmt.Sprint(i))
		}
		assert.Equal(t, 2, g.Len())
	})
}
