package decide_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/decide"
)

const tick = 250 * time.Millisecond

func TestTracker(t *testing.T) {
	L, D, R := decide.Probe{Live: true, Ready: true}, decide.Probe{Err: "refused"}, decide.Probe{Live: true}
	tests := []struct {
		name  string
		cfg   decide.TrackerConfig
		give  []decide.Probe // one per tick
		want  []decide.Health
		ready bool // after the last probe
	}{
		{"healthy at once", decide.TrackerConfig{}, []decide.Probe{L}, []decide.Health{decide.Healthy}, true},
		{"failures in grace do not count", decide.TrackerConfig{StartupGrace: time.Second, FailureThreshold: 2},
			[]decide.Probe{D, D, D, L}, []decide.Health{decide.Starting, decide.Starting, decide.Starting, decide.Healthy}, true},
		{"grace over without ever being live", decide.TrackerConfig{StartupGrace: 500 * time.Millisecond, FailureThreshold: 2},
			[]decide.Probe{D, D, D, D}, []decide.Health{decide.Starting, decide.Suspect, decide.Unhealthy, decide.Unhealthy}, false},
		{"grace ends at the first success", decide.TrackerConfig{StartupGrace: time.Hour, FailureThreshold: 2},
			[]decide.Probe{L, D, D}, []decide.Health{decide.Healthy, decide.Suspect, decide.Unhealthy}, false},
		{"consecutive only", decide.TrackerConfig{FailureThreshold: 3},
			[]decide.Probe{L, D, D, L, D, D, D}, []decide.Health{decide.Healthy, decide.Suspect, decide.Suspect, decide.Healthy, decide.Suspect, decide.Suspect, decide.Unhealthy}, false},
		{"success threshold", decide.TrackerConfig{FailureThreshold: 1, SuccessThreshold: 2},
			[]decide.Probe{L, L, D, L, L}, []decide.Health{decide.Starting, decide.Healthy, decide.Unhealthy, decide.Unhealthy, decide.Healthy}, true},
		{"min unhealthy time", decide.TrackerConfig{FailureThreshold: 2, MinUnhealthy: 600 * time.Millisecond},
			[]decide.Probe{L, D, D, D, D}, []decide.Health{decide.Healthy, decide.Suspect, decide.Suspect, decide.Suspect, decide.Unhealthy}, false},
		{"live but not ready", decide.TrackerConfig{}, []decide.Probe{R}, []decide.Health{decide.Healthy}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := decide.NewTracker(tt.cfg, time.Now())
				var got []decide.Health
				for _, p := range tt.give {
					time.Sleep(tick)
					h, _ := tr.Observe(time.Now(), p)
					got = append(got, h)
				}
				assert.Equal(t, tt.want, got)
				assert.Equal(t, tt.ready, tr.Ready())
			})
		})
	}
}

func TestBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := decide.NewBackoff(decide.BackoffConfig{Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond,
			CrashLoopRestarts: 5, Window: 10 * time.Second, Rand: func() float64 { return 0.5 }})
		var delays []time.Duration
		for range 5 {
			d, loop := b.Delay(time.Now())
			require.False(t, loop)
			delays = append(delays, d)
			time.Sleep(d)
			b.Record(time.Now())
		}
		assert.Equal(t, []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}, delays)
		_, loop := b.Delay(time.Now())
		assert.True(t, loop, "5 restarts in 10s is a crash loop")
		time.Sleep(10 * time.Second)
		d, loop := b.Delay(time.Now())
		assert.False(t, loop, "the window passed")
		assert.Zero(t, d)
	})
}

func TestBackoffJitterStaysInBand(t *testing.T) {
	for _, r := range []float64{0, 0.25, 0.999} {
		b := decide.NewBackoff(decide.BackoffConfig{Initial: time.Second, Max: time.Minute, Jitter: 0.2, Rand: func() float64 { return r }})
		now := time.Unix(0, 0)
		b.Record(now)
		d, _ := b.Delay(now)
		assert.GreaterOrEqual(t, d, 800*time.Millisecond)
		assert.LessOrEqual(t, d, 1200*time.Millisecond)
	}
}

func TestBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &decide.Budget{Max: 2, Window: 10 * time.Second}
		assert.True(t, b.Take(time.Now()))
		time.Sleep(time.Second)
		assert.True(t, b.Take(time.Now()))
		assert.False(t, b.Take(time.Now()))
		assert.Equal(t, 0, b.Remaining(time.Now()))
		time.Sleep(9 * time.Second)
		assert.Equal(t, 1, b.Remaining(time.Now()))
		assert.True(t, b.Take(time.Now()))
	})
}

func TestBroken(t *testing.T) {
	tests := []struct {
		broken, total int
		want          bool
	}{{0, 3, false}, {1, 3, false}, {1, 1, false}, {2, 3, true}, {2, 4, false}, {3, 4, true}, {6, 12, false}, {7, 12, true}}
	for _, tt := range tests {
		assert.Equal(t, tt.want, decide.Broken(tt.broken, tt.total, 0), "%d of %d", tt.broken, tt.total)
	}
}

func TestScalerWindowsAndBand(t *testing.T) {
	type step struct {
		after time.Duration
		ratio float64
		want  int
	}
	tests := []struct {
		name  string
		cfg   decide.ScalerConfig
		start int
		steps []step
	}{
		{"within the band nothing changes", decide.ScalerConfig{Max: 12, Tolerance: 0.2},
			3, []step{{tick, 1.15, 3}, {tick, 0.85, 3}}},
		{"up at once without a window", decide.ScalerConfig{Max: 12},
			3, []step{{tick, 2, 6}}},
		{"up waits for its window", decide.ScalerConfig{Max: 12, UpWindow: time.Second, DownWindow: time.Minute},
			3, []step{{tick, 1, 3}, {tick, 2, 3}, {tick, 2, 3}, {tick, 2, 3}, {tick, 2, 3}, {tick, 2, 6}}},
		{"a short spike does not scale", decide.ScalerConfig{Max: 12, UpWindow: time.Second},
			3, []step{{tick, 1, 3}, {tick, 3, 3}, {tick, 1, 3}, {tick, 1, 3}, {2 * time.Second, 1, 3}}},
		{"down waits for its window", decide.ScalerConfig{Min: 3, Max: 12, DownWindow: 2 * time.Second},
			6, []step{{tick, 1, 6}, {tick, 0.1, 6}, {time.Second, 0.1, 6}, {time.Second, 0.1, 3}}},
		{"bounds", decide.ScalerConfig{Min: 2, Max: 4, DownWindow: time.Second},
			3, []step{{tick, 5, 4}, {2 * time.Second, 0.01, 2}}},
		{"max step", decide.ScalerConfig{Max: 12, MaxStep: 2},
			3, []step{{tick, 3, 5}}},
		{"no data keeps the count", decide.ScalerConfig{Min: 3, Max: 12},
			5, []step{{tick, -1, 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := decide.NewScaler(tt.cfg)
				cur := tt.start
				for i, st := range tt.steps {
					time.Sleep(st.after)
					d := s.Recommend(time.Now(), cur, st.ratio)
					require.Equal(t, st.want, d.Replicas, "step %d: %s", i, d.Reason)
					cur = d.Replicas
				}
			})
		})
	}
}

func TestScalerEarlyOnTrend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := decide.NewScaler(decide.ScalerConfig{Max: 12, UpWindow: 4 * time.Second, Tolerance: 0.1})
		// The ratio climbs 0.1/s from 0.5: it crosses 1.1 six seconds after the start.
		var d decide.Decision
		for i := range 24 {
			time.Sleep(tick)
			d = s.Recommend(time.Now(), 3, 0.5+0.1*float64(i)*tick.Seconds())
			if d.Early {
				break
			}
		}
		require.True(t, d.Early, d.Reason)
		assert.Greater(t, d.Replicas, 3)
		assert.Less(t, d.Ratio, 1.1, "it scaled before the ratio crossed the band")
		assert.InDelta(t, 0.1, d.Trend.Slope, 0.001)
		assert.Contains(t, d.Reason, "scaling out early")

		// The new replicas bring the ratio down: the scale-down window holds the
		// early decision.
		cur := d.Replicas
		for range 4 {
			time.Sleep(tick)
			d = s.Recommend(time.Now(), cur, 0.3)
			require.Equal(t, cur, d.Replicas, d.Reason)
		}
	})
}

func TestSeriesForecast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s decide.Series
		// A heap growing 10 MB/s from 50 MB, limit 200 MB: 15 s to go from the start.
		for i := range 8 {
			s.Add(time.Now(), 50e6+10e6*float64(i)*tick.Seconds())
			time.Sleep(tick)
		}
		tr, left, ok := s.Forecast(200e6, 20*time.Second, time.Second, 0.9)
		require.True(t, ok)
		assert.InDelta(t, 10e6, tr.Slope, 1)
		assert.InDelta(t, (15*time.Second - 7*tick).Seconds(), left.Seconds(), 0.01)
		_, _, ok = s.Forecast(200e6, 5*time.Second, time.Second, 0.9)
		assert.False(t, ok, "beyond the horizon")

		var flat decide.Series
		for range 8 {
			flat.Add(time.Now(), 50e6)
			time.Sleep(tick)
		}
		_, _, ok = flat.Forecast(200e6, time.Hour, time.Second, 0.9)
		assert.False(t, ok)
	})
}

func ExampleScaler() {
	s := decide.NewScaler(decide.ScalerConfig{Min: 3, Max: 12, Tolerance: 0.2})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := s.Recommend(now, 3, 1.9) // p99 at 1.9x its target
	fmt.Println(d.Replicas, d.Reason)
	// Output:
	// 6 load ratio 1.90 above 1+0.20
}

func ExampleBudget() {
	b := decide.Budget{Max: 1, Window: time.Minute}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fmt.Println(b.Take(now), b.Take(now.Add(time.Second)), b.Take(now.Add(time.Minute)))
	// Output:
	// true false true
}
