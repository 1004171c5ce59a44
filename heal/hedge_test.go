package heal_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/heal"
)

// sleepOrCancel waits d or until ctx is done.
func sleepOrCancel(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestNewHedgeErrors(t *testing.T) {
	_, err := heal.NewHedge(heal.HedgeConfig{Percentile: 1})
	require.ErrorContains(t, err, "Percentile")
	h, err := heal.NewHedge(heal.HedgeConfig{})
	require.NoError(t, err)
	assert.Equal(t, 100*time.Millisecond, h.Delay())
	assert.Equal(t, "hedge", h.Name())
}

func TestHedge(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		maxHedges int
		latencies []time.Duration // per attempt, in start order
		fail      []bool
		wantErr   error
		wantCalls int32
		elapsed   time.Duration
	}{
		{"fast primary, no hedge", 1, []time.Duration{50 * time.Millisecond}, nil, nil, 1, 50 * time.Millisecond},
		{"hedge wins", 1, []time.Duration{time.Second, 10 * time.Millisecond}, nil, nil, 2, 110 * time.Millisecond},
		{"primary wins after hedge started", 1, []time.Duration{150 * time.Millisecond, time.Second}, nil, nil, 2, 150 * time.Millisecond},
		{"second hedge wins", 2, []time.Duration{time.Second, time.Second, 10 * time.Millisecond}, nil, nil, 3, 210 * time.Millisecond},
		{"hedge fails, primary wins", 1, []time.Duration{300 * time.Millisecond, 10 * time.Millisecond}, []bool{false, true}, nil, 2, 300 * time.Millisecond},
		{"primary fails early, no hedge", 1, []time.Duration{10 * time.Millisecond}, []bool{true}, boom, 1, 10 * time.Millisecond},
		{"all fail", 1, []time.Duration{150 * time.Millisecond, 100 * time.Millisecond}, []bool{true, true}, boom, 2, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, err := heal.NewHedge(heal.HedgeConfig{Delay: 100 * time.Millisecond, MaxHedges: tt.maxHedges})
				require.NoError(t, err)
				var calls, cancelled atomic.Int32
				start := time.Now()
				err = h.Do(context.Background(), func(ctx context.Context) error {
					i := calls.Add(1) - 1
					if err := sleepOrCancel(ctx, tt.latencies[i]); err != nil {
						cancelled.Add(1)
						return err
					}
					if int(i) < len(tt.fail) && tt.fail[i] {
						return boom
					}
					return nil
				})
				if tt.wantErr != nil {
					assert.ErrorIs(t, err, tt.wantErr)
				} else {
					assert.NoError(t, err)
				}
				assert.Equal(t, tt.wantCalls, calls.Load())
				assert.Equal(t, tt.elapsed, time.Since(start))
				// Everything that was not the winner (and had not finished) was cancelled
				// and has returned by now.
				if tt.wantErr == nil {
					var finished int32
					for i := range calls.Load() {
						if start.Add(tt.latencies[i]+time.Duration(i)*100*time.Millisecond).Compare(start.Add(tt.elapsed)) <= 0 {
							finished++
						}
					}
					assert.Equal(t, calls.Load()-finished, cancelled.Load())
				}
			})
		})
	}
}

func TestHedgeCallCarriesWinner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := heal.NewHedge(heal.HedgeConfig{Delay: 100 * time.Millisecond})
		require.NoError(t, err)
		var calls atomic.Int32
		v, err := heal.Call(context.Background(), h, func(ctx context.Context) (string, error) {
			if calls.Add(1) == 1 {
				return "primary", sleepOrCancel(ctx, time.Second)
			}
			return "hedge", nil
		})
		require.NoError(t, err)
		assert.Equal(t, "hedge", v)
	})
}

// The delay follows the configured percentile of the observed latencies, recomputed
// every 32 samples: with latencies of 1ms, 2ms, ... 100ms, the last recomputation
// (96 samples) puts p90 at 87ms and p50 at 49ms, neither of which is the maximum
// (96ms) nor the minimum.
func TestHedgePercentile(t *testing.T) {
	for _, tt := range []struct {
		percentile float64
		want       time.Duration
	}{
		{0.9, 87 * time.Millisecond},
		{0.5, 49 * time.Millisecond},
	} {
		synctest.Test(t, func(t *testing.T) {
			h, err := heal.NewHedge(heal.HedgeConfig{Delay: time.Second, Percentile: tt.percentile, MinDelay: time.Millisecond})
			require.NoError(t, err)
			for i := range 100 {
				lat := time.Duration(i+1) * time.Millisecond
				var calls atomic.Int32
				require.NoError(t, h.Do(context.Background(), func(ctx context.Context) error {
					if calls.Add(1) > 1 {
						return sleepOrCancel(ctx, time.Hour) // a hedge never wins
					}
					return sleepOrCancel(ctx, lat)
				}))
			}
			assert.Equal(t, tt.want, h.Delay(), "p%v", tt.percentile*100)
		})
	}
}

func TestHedgePanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := heal.NewHedge(heal.HedgeConfig{Delay: 100 * time.Millisecond})
		require.NoError(t, err)
		var calls atomic.Int32
		assert.PanicsWithValue(t, "hedge boom", func() {
			_ = h.Do(context.Background(), func(ctx context.Context) error {
				if calls.Add(1) == 1 {
					return sleepOrCancel(ctx, time.Second)
				}
				panic("hedge boom")
			})
		})
		calls.Store(0)
		assert.PanicsWithValue(t, "primary boom", func() {
			_ = h.Do(context.Background(), func(ctx context.Context) error {
				if calls.Add(1) == 1 {
					_ = sleepOrCancel(context.Background(), 200*time.Millisecond)
					panic("primary boom")
				}
				return sleepOrCancel(ctx, time.Second)
			})
		})
	})
}
