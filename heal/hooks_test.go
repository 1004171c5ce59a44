package heal_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/heal"
)

type hookKey struct{}

// rejects records what OnReject hears, and checks it runs with the refused call's
// context.
type rejects []*heal.RejectedError

func (r *rejects) hook(t *testing.T) func(context.Context, *heal.RejectedError) {
	return func(ctx context.Context, err *heal.RejectedError) {
		assert.Equal(t, "caller", ctx.Value(hookKey{}), "the refused call's context")
		*r = append(*r, err)
	}
}

// OnReject hears of every refusal of a bulkhead, a rate limit and an adaptive
// limit, with the error the caller gets, and of nothing else.
func TestOnRejectHooks(t *testing.T) {
	ctx := context.WithValue(context.Background(), hookKey{}, "caller")
	noop := func(context.Context) error { return nil }

	t.Run("bulkhead", func(t *testing.T) {
		var got rejects
		b, err := heal.NewBulkhead(heal.BulkheadConfig{Name: "db", MaxConcurrent: 1, OnReject: got.hook(t)})
		require.NoError(t, err)
		require.NoError(t, b.Do(ctx, noop))
		require.True(t, b.TryAcquire())
		err = b.Do(ctx, noop)
		b.Release()
		require.Len(t, got, 1)
		assert.ErrorIs(t, err, heal.ErrBulkheadFull)
		assert.Equal(t, err, error(got[0]))
		assert.Equal(t, "db", got[0].Name)
	})
	t.Run("ratelimit", func(t *testing.T) {
		var got rejects
		l, err := heal.NewRateLimit(heal.RateLimitConfig{Name: "api", Rate: 0.001, OnReject: got.hook(t)})
		require.NoError(t, err)
		require.NoError(t, l.Do(ctx, noop))
		err = l.Do(ctx, noop)
		require.Len(t, got, 1)
		assert.ErrorIs(t, err, heal.ErrRateLimited)
		assert.Equal(t, err, error(got[0]))
		assert.Greater(t, got[0].Delay, time.Duration(0))
	})
	t.Run("adaptive", func(t *testing.T) {
		var got rejects
		l := heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{Name: "search", OnReject: got.hook(t)})
		var toks []heal.LimitToken
		for range l.Limit() {
			tok, ok := l.Acquire(ctx)
			require.True(t, ok)
			toks = append(toks, tok)
		}
		assert.Empty(t, got)
		err := l.Do(ctx, noop)
		_, ok := l.Acquire(ctx)
		assert.False(t, ok)
		require.Len(t, got, 2, "Do and Acquire")
		assert.ErrorIs(t, err, heal.ErrLimitExceeded)
		assert.Equal(t, err, error(got[0]))
		for _, tok := range toks {
			tok.Release(ctx, false)
		}
	})
}

// OnFallback hears of every failure a Fallback replaces, before Func, with the
// caller's context and the error, and not of a success or an ignored error.
func TestOnFallbackHook(t *testing.T) {
	ctx := context.WithValue(context.Background(), hookKey{}, "caller")
	var got []error
	var order []string
	f, err := heal.NewFallback(heal.FallbackConfig{Name: "cache",
		OnFallback: func(c context.Context, err error) {
			assert.Equal(t, "caller", c.Value(hookKey{}))
			got = append(got, err)
			order = append(order, "hook")
		},
		Func: func(context.Context, error) error { order = append(order, "func"); return nil },
	})
	require.NoError(t, err)
	boom := errors.New("boom")
	require.NoError(t, f.Do(ctx, func(context.Context) error { return boom }))
	require.NoError(t, f.Do(ctx, func(context.Context) error { return nil }))
	require.ErrorIs(t, f.Do(ctx, func(context.Context) error { return context.Canceled }), context.Canceled)
	assert.Equal(t, []error{boom}, got)
	assert.Equal(t, []string{"hook", "func"}, order)
}

// OnTimeout hears of every call the timeout cut short, once the function has
// returned, with the caller's context and the *TimeoutError the caller gets; not of
// a success, a call that failed in time, or a call the caller's deadline ended.
func TestOnTimeoutHook(t *testing.T) {
	ctx := context.WithValue(context.Background(), hookKey{}, "caller")
	var got []*heal.TimeoutError
	returned := false
	to, err := heal.NewTimeout(heal.TimeoutConfig{Name: "slow", Timeout: 5 * time.Millisecond,
		OnTimeout: func(c context.Context, err *heal.TimeoutError) {
			assert.Equal(t, "caller", c.Value(hookKey{}))
			assert.True(t, returned, "after the function returned")
			got = append(got, err)
		}})
	require.NoError(t, err)
	wait := func(ctx context.Context) error { <-ctx.Done(); returned = true; return ctx.Err() }
	require.NoError(t, to.Do(ctx, func(context.Context) error { return nil }))
	require.Error(t, to.Do(ctx, func(context.Context) error { return errors.New("boom") }))
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	require.ErrorIs(t, to.Do(short, wait), context.DeadlineExceeded)
	assert.Empty(t, got, "the caller's own deadline")
	returned = false
	err = to.Do(ctx, wait)
	require.Len(t, got, 1)
	assert.Equal(t, err, error(got[0]))
	assert.Equal(t, "slow", got[0].Name)
}

// OnHedge hears of every hedge as it starts, on the hedge's goroutine, with the
// call's context and the hedge's attempt number; not of the caller's own attempt.
func TestOnHedgeHook(t *testing.T) {
	ctx := context.WithValue(context.Background(), hookKey{}, "caller")
	var mu sync.Mutex
	var got []int
	h, err := heal.NewHedge(heal.HedgeConfig{Name: "replicas", Delay: time.Millisecond, MaxHedges: 2,
		OnHedge: func(c context.Context, attempt int) {
			assert.Equal(t, "caller", c.Value(hookKey{}))
			mu.Lock()
			got = append(got, attempt)
			mu.Unlock()
		}})
	require.NoError(t, err)
	var n atomic.Int32
	require.NoError(t, h.Do(ctx, func(ctx context.Context) error {
		if n.Add(1) < 3 {
			<-ctx.Done() // the primary and the first hedge wait for the second to win
			return ctx.Err()
		}
		return nil
	}))
	slices.Sort(got) // the second hedge may reach its hook first
	assert.Equal(t, []int{2, 3}, got)
}
