package heal_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

// With zero configs, retry around an open breaker fails fast: the breaker's remaining
// open time (about 60s by default) is more than the policy's MaxServerDelay (30s), so
// the retries end at once instead of blocking the caller until the breaker closes.
func TestChainRetryAroundBreakerFailsFastWithZeroConfigs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := breaker.New(breaker.Config{})
		require.NoError(t, err)
		r, err := retry.New(retry.Config{})
		require.NoError(t, err)
		ctx := context.Background()
		errDown := errors.New("down")
		for range 5 { // the default trip rule: 5 consecutive failures
			_ = b.Do(ctx, func(context.Context) error { return errDown })
		}
		require.Equal(t, breaker.StateOpen, b.Snapshot().State)

		calls := 0
		begin := time.Now()
		err = heal.Chain(r, b).Do(ctx, func(context.Context) error {
			calls++
			return nil
		})
		assert.Zero(t, time.Since(begin), "no waiting for the breaker")
		assert.Zero(t, calls)
		assert.ErrorIs(t, err, breaker.ErrOpen)
		var ee *retry.ExhaustedError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, retry.ReasonServerDelay, ee.Reason)
		assert.Equal(t, 1, ee.Attempts)
	})
}

// With zero configs, retry around a per-attempt timeout retries an attempt that timed
// out (the caller's context still being alive).
func TestChainRetryAroundTimeoutRetriesATimedOutAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := retry.New(retry.Config{})
		require.NoError(t, err)
		to, err := heal.NewTimeout(heal.TimeoutConfig{Timeout: time.Second})
		require.NoError(t, err)
		calls := 0
		err = heal.Chain(r, to).Do(context.Background(), func(ctx context.Context) error {
			if calls++; calls == 1 {
				<-ctx.Done() // stuck until the timeout ends the attempt
				return ctx.Err()
			}
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, 2, calls)
	})
}
