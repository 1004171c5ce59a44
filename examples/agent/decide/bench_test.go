package decide_test

import (
	"testing"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/decide"
)

// BenchmarkTick is the decision cost of one instance per probe: the tracker, a
// heap sample and its forecast.
func BenchmarkTick(b *testing.B) {
	tr := decide.NewTracker(decide.TrackerConfig{}, time.Unix(0, 0))
	var heap decide.Series
	now := time.Unix(0, 0)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(250 * time.Millisecond)
		tr.Observe(now, decide.Probe{Live: true, Ready: true})
		heap.Add(now, 1e8)
		heap.Forecast(2e8, 10*time.Second, time.Second, 0.8)
	}
}

func BenchmarkScaler(b *testing.B) {
	s := decide.NewScaler(decide.ScalerConfig{Max: 12, UpWindow: time.Second, DownWindow: 30 * time.Second})
	now := time.Unix(0, 0)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(250 * time.Millisecond)
		s.Recommend(now, 3, 1.05)
	}
}
