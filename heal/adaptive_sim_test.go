package heal_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/heal"
)

// simulate drives a limit with 100 eager clients against a dependency that serves 20
// calls at once in 10ms and queues the rest (latency grows with the queue), for 8
// simulated seconds, and returns the limits seen over the last 4 seconds.
func simulate(t *testing.T, alg heal.LimitAlgorithm) (lo, hi int) {
	const capacity, base = 20, 10 * time.Millisecond
	l := heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{Algorithm: alg})
	var inFlight atomic.Int64
	dependency := func(ctx context.Context) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		lat := base * time.Duration(max(1, (n+capacity-1)/capacity))
		time.Sleep(lat)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := l.Do(ctx, dependency); err != nil {
					time.Sleep(5 * time.Millisecond) // rejected: back off a little
				}
			}
		})
	}
	time.Sleep(4 * time.Second)
	lo, hi = 1<<30, 0
	for ctx.Err() == nil {
		lim := l.Limit()
		lo, hi = min(lo, lim), max(hi, lim)
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	return lo, hi
}

func TestAdaptiveLimitFindsCapacity(t *testing.T) {
	tests := []struct {
		name   string
		alg    func() (heal.LimitAlgorithm, error)
		lo, hi int
	}{
		// The gradient backs off as soon as calls queue: it stays near the capacity.
		{"gradient", func() (heal.LimitAlgorithm, error) {
			return heal.NewGradient(heal.GradientConfig{InitialLimit: 5, MinLimit: 1, MaxLimit: 500})
		}, 10, 50},
		// AIMD backs off only on drops: calls slower than 25ms, which happens above
		// 40 in flight (two rounds of service); it grows by one per call in between.
		{"aimd", func() (heal.LimitAlgorithm, error) {
			return heal.NewAIMD(heal.AIMDConfig{InitialLimit: 5, MinLimit: 1, MaxLimit: 500, Timeout: 25 * time.Millisecond})
		}, 20, 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				alg, err := tt.alg()
				require.NoError(t, err)
				lo, hi := simulate(t, alg)
				t.Logf("limit in steady state: %d..%d (capacity 20)", lo, hi)
				// Far from the 100 clients and the 500 maximum, and it never collapses.
				assert.GreaterOrEqual(t, lo, tt.lo)
				assert.LessOrEqual(t, hi, tt.hi)
			})
		})
	}
}
