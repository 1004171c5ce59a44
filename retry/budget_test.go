package retry_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/retry"
)

func TestNewBudgetRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		name  string
		give  retry.BudgetConfig
		field string
	}{
		{"negative ratio", retry.BudgetConfig{Ratio: -0.1}, "BudgetConfig.Ratio"},
		{"NaN ratio", retry.BudgetConfig{Ratio: nan()}, "BudgetConfig.Ratio"},
		{"negative TTL", retry.BudgetConfig{TTL: -time.Second}, "BudgetConfig.TTL"},
		{"tiny TTL", retry.BudgetConfig{TTL: time.Microsecond}, "BudgetConfig.TTL"},
		{"negative floor other than Off", retry.BudgetConfig{MinPerSecond: -2}, "BudgetConfig.MinPerSecond"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := retry.NewBudget(tt.give)
			require.Error(t, err)
			assert.Nil(t, b)
			assert.ErrorIs(t, err, retry.ErrInvalidConfig)
			var ce *retry.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.field, ce.Field)
			assert.Equal(t, "retry: invalid configuration: "+ce.Field+": "+ce.Reason, err.Error())
		})
	}
}

func TestBudgetFloorOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := retry.NewBudget(retry.BudgetConfig{MinPerSecond: retry.Off})
		require.NoError(t, err)
		assert.Zero(t, b.Balance(), "no floor: nothing to retry before any call")
		assert.False(t, b.Withdraw())
		for range 10 {
			b.Deposit()
		}
		assert.Equal(t, 2, b.Balance(), "20% of the calls only")
	})
}

func TestBudgetDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := retry.NewBudget(retry.BudgetConfig{})
		require.NoError(t, err)
		assert.Equal(t, 100, b.Balance(), "the floor: 10 a second over 10s")
		for range 50 {
			b.Deposit()
		}
		assert.Equal(t, 110, b.Balance(), "plus 20% of the calls")
	})
}

func TestBudgetUnderSustainedFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := retry.NewBudget(retry.BudgetConfig{Ratio: 0.2, MinPerSecond: retry.Off, TTL: 10 * time.Second})
		require.NoError(t, err)
		p := mustNew(t, retry.Config{MaxAttempts: 5, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Millisecond}), Budget: b})
		attempts, refused := 0, 0
		const calls = 1000
		for range calls {
			err := p.Do(context.Background(), func(context.Context) error {
				attempts++
				return errFlaky
			})
			if assert.ErrorIs(t, err, retry.ErrExhausted) && assert.ErrorIs(t, err, errFlaky) {
				var ee *retry.ExhaustedError
				if assert.ErrorAs(t, err, &ee) && ee.Reason == retry.ReasonBudget {
					refused++
					assert.ErrorIs(t, err, retry.ErrBudgetExhausted)
				}
			}
		}
		amp := float64(attempts) / calls
		t.Logf("attempts per call %.3f, refused %d", amp, refused)
		assert.LessOrEqual(t, amp, 1.2+0.001)
		assert.Greater(t, amp, 1.15)
		assert.Positive(t, refused)
	})
}

func TestBudgetFloorLetsQuietServicesRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := retry.NewBudget(retry.BudgetConfig{MinPerSecond: 1, TTL: 5 * time.Second})
		require.NoError(t, err)
		p := mustNew(t, retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Millisecond}), Budget: b})
		// A single call may use 2 retries of the 5 the floor gives per 5s window...
		fn, calls := failing(2, errFlaky)
		require.NoError(t, p.Do(context.Background(), fn))
		assert.Equal(t, 3, *calls)
		fn, _ = failing(2, errFlaky)
		require.NoError(t, p.Do(context.Background(), fn))
		// ... the fifth retry is allowed (0.2*3 calls rounds down to 0, plus 5), the sixth is not.
		fn, calls = failing(100, errFlaky)
		err = p.Do(context.Background(), fn)
		assert.ErrorIs(t, err, retry.ErrBudgetExhausted)
		assert.Equal(t, 2, *calls)
		assert.Equal(t, 0, b.Balance())
	})
}

func TestBudgetWindowExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := retry.NewBudget(retry.BudgetConfig{Ratio: 0.5, MinPerSecond: retry.Off, TTL: 10 * time.Second})
		require.NoError(t, err)
		for range 10 {
			b.Deposit()
		}
		for range 5 {
			require.True(t, b.Withdraw())
		}
		assert.False(t, b.Withdraw(), "refused")
		assert.Equal(t, 0, b.Balance())

		time.Sleep(5 * time.Second)
		for range 4 {
			b.Deposit()
		}
		assert.Equal(t, 2, b.Balance(), "new calls earn new retries")

		time.Sleep(6 * time.Second) // the first 10 calls and 5 retries are older than TTL now
		assert.Equal(t, 2, b.Balance())

		time.Sleep(10 * time.Second)
		assert.Equal(t, 0, b.Balance(), "everything expired")
		assert.False(t, b.Withdraw())
	})
}

func TestBudgetIsSafeForConcurrentUse(t *testing.T) {
	b, err := retry.NewBudget(retry.BudgetConfig{Ratio: 0.1, MinPerSecond: retry.Off, TTL: time.Minute})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	const goroutines, per = 8, 1000
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for range per {
				b.Deposit()
				if b.Withdraw() {
					n++
				}
			}
			mu.Lock()
			granted += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	// 10% of 8000 calls, give or take the few concurrent withdrawals that can overshoot.
	assert.InDelta(t, goroutines*per/10, granted, goroutines+1)
}
