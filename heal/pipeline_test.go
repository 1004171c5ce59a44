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
		{heal.Config{Retry: &retry.Config{MaxAttempts: -1}}, "Config.Retry.MaxAttempts"},
		{heal.Config{Breaker: &breaker.Config{OpenDuration: -1}}, "Config.Breaker.OpenDuration"},
		{heal.Config{RateLimit: &heal.RateLimitConfig{Rate: -1}}, "Config.RateLimit.Rate"},
		{heal.Config{RateLimit: &heal.RateLimitConfig{}}, "Config.RateLimit.Rate"},
		{heal.Config{Timeout: &heal.TimeoutConfig{Timeout: -1}}, "Config.Timeout.Timeout"},
		{heal.Config{Timeout: &heal.TimeoutConfig{}}, "Config.Timeout.Timeout"},
		{heal.Config{Bulkhead: &heal.BulkheadConfig{MaxQueued: -1}}, "Config.Bulkhead.MaxQueued"},
		{heal.Config{Bulkhead: &heal.BulkheadConfig{MaxConcurrent: -1}}, "Config.Bulkhead.MaxConcurrent"},
		{heal.Config{Fallback: &heal.FallbackConfig{}}, "Config.Fallback.Func"},
	}
	for _, tt := range tests {
		_, err := heal.New(tt.give)
		require.ErrorIs(t, err, heal.ErrInvalidConfig, tt.want)
		var ce *heal.ConfigError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, tt.want, ce.Field)
	}
	// A stage's own package error is matched too.
	_, err := heal.New(heal.Config{Breaker: &breaker.Config{OpenDuration: -1}})
	assert.ErrorIs(t, err, breaker.ErrInvalidConfig)
	_, err = heal.New(heal.Config{Retry: &retry.Config{MaxAttempts: -1}})
	assert.ErrorIs(t, err, retry.ErrInvalidConfig)
}

// Every stage is optional: nil leaves it out, and the pipeline adds nothing the
// Config did not ask for. A pipeline with a timeout alone rejected 5 of 30
// concurrent calls (a hidden 25-slot bulkhead) and counted them in a hidden breaker.
func TestPipelineAddsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := heal.New(heal.Config{Timeout: &heal.TimeoutConfig{Timeout: time.Second}})
		require.NoError(t, err)
		assert.Nil(t, p.Breaker())
		assert.Nil(t, p.Bulkhead())
		assert.Nil(t, p.RateLimit())
		assert.Nil(t, p.Retry())
		assert.Nil(t, p.Fallback())
		assert.NotNil(t, p.Timeout())
		assert.Empty(t, p.Snapshot())

		release := make(chan struct{})
		var wg sync.WaitGroup
		var rejected atomic.Int32
		for range 30 {
			wg.Go(func() {
				if err := p.Do(context.Background(), func(context.Context) error { <-release; return nil }); err != nil {
					rejected.Add(1)
				}
			})
		}
		synctest.Wait() // all 30 are in fn
		close(release)
		wg.Wait()
		assert.Zero(t, rejected.Load())

		// The zero Config is no stage at all: fn is called directly.
		p, err = heal.New(heal.Config{})
		require.NoError(t, err)
		boom := errors.New("boom")
		calls := 0
		assert.Equal(t, boom, p.Do(context.Background(), func(context.Context) error { calls++; return boom }))
		assert.Equal(t, 1, calls)
	})
}

func TestPipelineStagesAndNames(t *testing.T) {
	p, err := heal.New(heal.Config{Retry: &retry.Config{}, Breaker: &breaker.Config{}, Bulkhead: &heal.BulkheadConfig{}})
	require.NoError(t, err)
	assert.Equal(t, "pipeline", p.Breaker().Name())
	assert.Equal(t, "pipeline", p.Bulkhead().Name())
	assert.Equal(t, 25, p.Bulkhead().Snapshot().MaxConcurrent)
	assert.NotNil(t, p.Retry())
	assert.Len(t, p.Snapshot(), 1)
	v, err := heal.Call(context.Background(), p, func(context.Context) (int, error) { return 5, nil })
	require.NoError(t, err)
	assert.Equal(t, 5, v)
}

// The order is fallback(retry(breaker(rate limit(timeout(bulkhead(fn)))))), as
// documented: an open breaker refuses a call before it spends a rate-limit token (the
// rate limit used to come first), and the wait for a token does not eat into the
// timeout, which starts after it.
func TestPipelineOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := heal.New(heal.Config{
			Breaker:   &breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Hour},
			RateLimit: &heal.RateLimitConfig{Rate: 1e-9, Burst: 2},
		})
		require.NoError(t, err)
		boom := errors.New("boom")
		assert.ErrorIs(t, p.Do(context.Background(), func(context.Context) error { return boom }), boom)
		require.Equal(t, breaker.StateOpen, p.Breaker().Snapshot().State)
		assert.ErrorIs(t, p.Do(context.Background(), ok), breaker.ErrOpen)
		assert.True(t, p.RateLimit().Allow(), "the open breaker's rejection spent a token")

		p, err = heal.New(heal.Config{
			RateLimit: &heal.RateLimitConfig{Rate: 1, Burst: 1, Mode: heal.RateLimitWait},
			Timeout:   &heal.TimeoutConfig{Timeout: 100 * time.Millisecond},
			Bulkhead:  &heal.BulkheadConfig{MaxConcurrent: 1},
		})
		require.NoError(t, err)
		require.NoError(t, p.Do(context.Background(), ok)) // takes the token
		start := time.Now()
		require.NoError(t, p.Do(context.Background(), func(ctx context.Context) error {
			assert.Equal(t, time.Second, time.Since(start), "waited for the next token")
			dl, ok := ctx.Deadline()
			assert.True(t, ok)
			assert.Equal(t, 100*time.Millisecond, time.Until(dl), "the timeout starts after the token")
			assert.Equal(t, 1, p.Bulkhead().Snapshot().InFlight, "inside the bulkhead")
			return nil
		}))
	})
}

// heal.Call returns, with the error, the value that the last run of fn returned.
func TestCallReturnsTheLastValueOnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := heal.New(heal.Config{Retry: &retry.Config{MaxAttempts: 3, Backoff: retry.Constant(time.Millisecond)}})
		require.NoError(t, err)
		n := 0
		v, err := heal.Call(context.Background(), p, func(context.Context) (int, error) {
			n++
			return n * 10, errors.New("partial")
		})
		assert.ErrorIs(t, err, retry.ErrExhausted)
		assert.Equal(t, 30, v)

		// A run that never happened leaves the zero value.
		b, err := breaker.New(breaker.Config{})
		require.NoError(t, err)
		b.ForceOpen()
		v, err = heal.Call(context.Background(), b, func(context.Context) (int, error) { return 7, nil })
		assert.ErrorIs(t, err, breaker.ErrOpen)
		assert.Zero(t, v)
	})
}

func TestPipelineRetriesTimeoutsAndOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := heal.New(heal.Config{
			Retry:   &retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: 10 * time.Millisecond, Jitter: retry.JitterNone})},
			Breaker: &breaker.Config{ConsecutiveFailures: 3, OpenDuration: time.Second},
			Timeout: &heal.TimeoutConfig{Timeout: 100 * time.Millisecond},
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
			Retry:    &retry.Config{MaxAttempts: 5, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: 10 * time.Millisecond, Jitter: retry.JitterNone})},
			Breaker:  &breaker.Config{ConsecutiveFailures: 1},
			Bulkhead: &heal.BulkheadConfig{MaxConcurrent: 1},
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
			RateLimit: &heal.RateLimitConfig{Rate: 1, Burst: 1},
			Fallback: &heal.FallbackConfig{Func: func(_ context.Context, err error) error {
				if errors.Is(err, heal.ErrRateLimited) {
					return nil // served from cache, say
				}
				return err
			}},
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
		Breaker:   &breaker.Config{ConsecutiveFailures: 2},
		RateLimit: &heal.RateLimitConfig{Rate: 1e-9, Burst: 2},
	})
	require.NoError(t, err)
	boom := errors.New("boom")
	fail := func(context.Context) error { return boom }
	assert.ErrorIs(t, p.Do(context.Background(), fail), boom)
	// The next call is rejected by the rate limit: the breaker counts it neither way ...
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
