package heal_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/heal"
)

// tracer returns a policy that appends "<name>>" before and "<<name" after the call.
func tracer(mu *sync.Mutex, log *[]string, name string) heal.Policy {
	return heal.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		mu.Lock()
		*log = append(*log, name+">")
		mu.Unlock()
		err := fn(ctx)
		mu.Lock()
		*log = append(*log, "<"+name)
		mu.Unlock()
		return err
	})
}

func TestChainOrder(t *testing.T) {
	var mu sync.Mutex
	var log []string
	p := heal.Chain(tracer(&mu, &log, "a"), nil, tracer(&mu, &log, "b"), tracer(&mu, &log, "c"))
	for range 3 { // reuses pooled calls
		log = nil
		err := p.Do(context.Background(), func(context.Context) error {
			log = append(log, "fn")
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, []string{"a>", "b>", "c>", "fn", "<c", "<b", "<a"}, log)
	}
}

func TestChainEdgeCases(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		give []heal.Policy
	}{
		{"empty", nil},
		{"only nils", []heal.Policy{nil, nil}},
		{"one", []heal.Policy{heal.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) })}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := heal.Chain(tt.give...).Do(context.Background(), func(context.Context) error {
				calls++
				return boom
			})
			assert.ErrorIs(t, err, boom)
			assert.Equal(t, 1, calls)
		})
	}
}

func TestChainConcurrent(t *testing.T) {
	var mu sync.Mutex
	var log []string
	p := heal.Chain(tracer(&mu, &log, "a"), tracer(&mu, &log, "b"))
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			want := errors.New("e")
			if i%2 == 0 {
				want = nil
			}
			got := p.Do(context.Background(), func(context.Context) error { return want })
			assert.Equal(t, want, got)
		})
	}
	wg.Wait()
	assert.Len(t, log, 200)
}

// twice runs fn twice, returning the last error, like a retry that always retries.
var twice = heal.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
	_ = fn(ctx)
	return fn(ctx)
})

func TestCall(t *testing.T) {
	boom := errors.New("boom")
	t.Run("value", func(t *testing.T) {
		v, err := heal.Call(context.Background(), heal.Chain(), func(context.Context) (int, error) { return 42, nil })
		require.NoError(t, err)
		assert.Equal(t, 42, v)
	})
	t.Run("nil policy", func(t *testing.T) {
		v, err := heal.Call(context.Background(), nil, func(context.Context) (string, error) { return "x", nil })
		require.NoError(t, err)
		assert.Equal(t, "x", v)
	})
	t.Run("error gives the last run's value", func(t *testing.T) {
		n := 0
		v, err := heal.Call(context.Background(), twice, func(context.Context) (int, error) { n++; return n * 7, boom })
		assert.ErrorIs(t, err, boom)
		assert.Equal(t, 14, v)
	})
	t.Run("first success wins", func(t *testing.T) {
		n := 0
		v, err := heal.Call(context.Background(), twice, func(context.Context) (int, error) {
			n++
			return n, nil
		})
		require.NoError(t, err)
		assert.Equal(t, 1, v)
	})
	t.Run("success after failure", func(t *testing.T) {
		n := 0
		v, err := heal.Call(context.Background(), twice, func(context.Context) (int, error) {
			n++
			if n == 1 {
				return 0, boom
			}
			return n, nil
		})
		require.NoError(t, err)
		assert.Equal(t, 2, v)
	})
}

func TestErrorHelpers(t *testing.T) {
	rej := &heal.RejectedError{Policy: "ratelimit", Name: "x", Reason: heal.ErrRateLimited, Delay: 3e9}
	wrapped := errors.Join(errors.New("other"), rej)
	d, ok := heal.RetryAfter(wrapped)
	assert.True(t, ok)
	assert.Equal(t, 3e9, float64(d))
	assert.True(t, heal.IsRejected(wrapped))
	assert.ErrorIs(t, wrapped, heal.ErrRateLimited)
	assert.Contains(t, rej.Error(), "retry after 3s")

	_, ok = heal.RetryAfter(errors.New("plain"))
	assert.False(t, ok)
	assert.False(t, heal.IsRejected(errors.New("plain")))

	te := &heal.TimeoutError{Name: "t", Timeout: 1e9, Err: context.DeadlineExceeded}
	assert.ErrorIs(t, te, heal.ErrTimeout)
	assert.ErrorIs(t, te, context.DeadlineExceeded)
	assert.Contains(t, te.Error(), "heal: timeout after 1s")
}

func TestChainWithHedgeConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := heal.NewHedge(heal.HedgeConfig{Delay: 10 * time.Millisecond, MaxHedges: 2})
		require.NoError(t, err)
		bh, err := heal.NewBulkhead(heal.BulkheadConfig{MaxConcurrent: 100})
		require.NoError(t, err)
		g, err := heal.NewRateLimitGroup(heal.RateLimitGroupConfig{RateLimit: heal.RateLimitConfig{Rate: 1e9}, MaxKeys: 3})
		require.NoError(t, err)
		p := heal.Chain(h, bh)
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				var n atomic.Int32
				v, err := heal.Call(context.Background(), p, func(ctx context.Context) (int, error) {
					if err := g.Do(ctx, fmt.Sprint(i%5), ok); err != nil {
						return 0, err
					}
					if n.Add(1) < 3 {
						<-ctx.Done() // the first two attempts hang until the third wins
						return 0, ctx.Err()
					}
					return i, nil
				})
				assert.NoError(t, err)
				assert.Equal(t, i, v)
			})
		}
		wg.Wait()
		assert.Equal(t, 0, bh.Snapshot().InFlight)
		assert.LessOrEqual(t, g.Len(), 3)
	})
}
