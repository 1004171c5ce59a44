package heal_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

func TestNewPipelineErrors(t *testing.T) {
	tests := []struct {
		give heal.Config
		want string
	}{
		{heal.Config{Retry: retry.Config{MaxAttempts: -1}}, "Config.Retry"},
		{heal.Config{Breaker: breaker.Config{OpenDuration: -1}}, "Config.Breaker"},
		{heal.Config{RateLimit: heal.RateLimitConfig{Rate: -1}}, "Config.RateLimit"},
		{heal.Config{Timeout: -1}, "Config.Timeout"},
		{heal.Config{Bulkhead: heal.BulkheadConfig{MaxQueued: -1}}, "Config.Bulkhead"},
	}
	for _, tt := range tests {
		_, err := heal.New(tt.give)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
	}
}

func TestPipelineDefaults(t *testing.T) {
	p, err := heal.New(heal.Config{})
	require.NoError(t, err)
	assert.Equal(t, "pipeline", p.Breaker().Name())
	assert.Equal(t, 25, p.Bulkhead().Snapshot().MaxConcurrent)
	assert.Nil(t, p.RateLimit())
	assert.NotNil(t, p.Retry())
	assert.Len(t, p.States(), 1)
	v, err := heal.Call(context.Background(), p, func(context.Context) (int, error) { return 5, nil })
	require.NoError(t, err)
	assert.Equal(t, 5, v)

	p, err = heal.New(heal.Config{Retry: retry.Config{MaxAttempts: 1}})
	require.NoError(t, err)
	assert.Nil(t, p.Retry())
}

func TestPipelineRetriesTimeoutsAndOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := heal.New(heal.Config{
			Retry:   retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: 10 * time.Millisecond, Jitter: retry.JitterNone})},
			Breaker: breaker.Config{ConsecutiveFailures: 3, OpenDuration: time.Second},
			Timeout: 100 * time.Millisecond,
		})
		require.NoError(t, err)

		// Each attempt hangs and times out; every timeout is retried; the third
		// failure opens the breaker.
		var attempts atomic.Int32
		err = p.Do(context.Background(), func(ctx context.Context) error {
			attempts.Add(1)
			<-ctx.Done()
			return ctx.Err()
		})
		assert.ErrorIs(t, err, heal.ErrTimeout)
		assert.ErrorIs(t, err, retry.ErrExhausted)
		assert.EqualValues(t, 3, attempts.Load())
		assert.Equal(t, breaker.StateOpen, p.Breaker().Snapshot().State)

		// Open: fail fast, no retry, no call.
		start := time.Now()
		err = p.Do(context.Background(), func(context.Context) error { attempts.Add(1); return nil })
		assert.ErrorIs(t, err, breaker.ErrOpen)
		assert.Zero(t, time.Since(start))
		assert.EqualValues(t, 3, attempts.Load())

		// After the open period a probe closes it again.
		time.Sleep(time.Second + time.Millisecond)
		require.NoError(t, p.Do(context.Background(), func(context.Context) error { return nil }))
		assert.Equal(t, breaker.StateClosed, p.Breaker().Snapshot().State)
	})
}

func TestPipelineRejectionsAreRetriedNotFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := heal.New(heal.Config{
			Retry:    retry.Config{MaxAttempts: 5, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: 10 * time.Millisecond, Jitter: retry.JitterNone})},
			Breaker:  breaker.Config{ConsecutiveFailures: 1},
			Bulkhead: heal.BulkheadConfig{MaxConcurrent: 1},
		})
		require.NoError(t, err)
		release := make(chan struct{})
		var wg sync.WaitGroup
		blockIn(t, p, 1, release, &wg)

		// The bulkhead is full: the call is rejected, retried after backoff, and
		// gets in once the slot frees; the breaker never counts the rejections.
		done := make(chan error)
		go func() { done <- p.Do(context.Background(), ok) }()
		time.Sleep(15 * time.Millisecond)
		close(release)
		require.NoError(t, <-done)
		wg.Wait()
		assert.Equal(t, breaker.StateClosed, p.Breaker().Snapshot().State)
	})
}

func TestPipelineRateLimitAndFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := heal.New(heal.Config{
			Retry:     retry.Config{MaxAttempts: 1},
			RateLimit: heal.RateLimitConfig{Rate: 1, Burst: 1},
			Fallback: func(_ context.Context, err error) error {
				if errors.Is(err, heal.ErrRateLimited) {
					return nil // served from cache, say
				}
				return err
			},
		})
		require.NoError(t, err)
		require.NotNil(t, p.RateLimit())
		var calls int
		fn := func(context.Context) error { calls++; return nil }
		require.NoError(t, p.Do(context.Background(), fn))
		require.NoError(t, p.Do(context.Background(), fn)) // rejected, then the fallback
		assert.Equal(t, 1, calls)
	})
}

func TestPipelineRejectionsDoNotHideFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { testPipelineRejectionsDoNotHideFailures(t) })
}

func testPipelineRejectionsDoNotHideFailures(t *testing.T) {
	p, err := heal.New(heal.Config{
		Retry:     retry.Config{MaxAttempts: 1},
		Breaker:   breaker.Config{ConsecutiveFailures: 2},
		RateLimit: heal.RateLimitConfig{Rate: 1e-9, Burst: 2},
	})
	require.NoError(t, err)
	boom := errors.New("boom")
	fail := func(context.Context) error { return boom }
	assert.ErrorIs(t, p.Do(context.Background(), fail), boom)
	// The next call is rejected by the rate limit: the breaker does not see it ...
	require.True(t, p.RateLimit().Allow())
	assert.ErrorIs(t, p.Do(context.Background(), fail), heal.ErrRateLimited)
	assert.EqualValues(t, 1, p.Breaker().Snapshot().Counts.ConsecutiveFailures)
	// ... so one more failure in a row opens it.
	p.RateLimit().SetRate(1e9)
	p.RateLimit().SetBurst(10)
	time.Sleep(time.Millisecond)
	assert.ErrorIs(t, p.Do(context.Background(), fail), boom)
	assert.Equal(t, breaker.StateOpen, p.Breaker().Snapshot().State)
}

func TestDefaultRetryClassify(t *testing.T) {
	b, err := breaker.New(breaker.Config{Name: "b"})
	require.NoError(t, err)
	b.ForceOpen()
	open := b.Do(context.Background(), ok)
	tests := []struct {
		give error
		want selfheal.Outcome
	}{
		{nil, selfheal.Success},
		{errors.New("reset"), selfheal.Failure},
		{&heal.TimeoutError{Err: context.DeadlineExceeded}, selfheal.Failure},
		{&heal.RejectedError{Reason: heal.ErrBulkheadFull}, selfheal.Failure},
		{open, selfheal.Ignored},
		{context.Canceled, selfheal.Ignored},
		{retry.Permanent(errors.New("bad request")), selfheal.Ignored},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, heal.DefaultRetryClassify(nil, tt.give), "%v", tt.give)
	}

	// In a chain, a retry policy with it retries a timed-out attempt.
	synctest.Test(t, func(t *testing.T) {
		rp, err := retry.New(retry.Config{MaxAttempts: 2, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Millisecond}), Classify: heal.DefaultRetryClassify})
		require.NoError(t, err)
		to, err := heal.NewTimeout(heal.TimeoutConfig{Timeout: time.Second})
		require.NoError(t, err)
		var n int
		require.NoError(t, heal.Chain(rp, to).Do(context.Background(), func(ctx context.Context) error {
			if n++; n == 1 {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}))
		assert.Equal(t, 2, n)
	})
}
