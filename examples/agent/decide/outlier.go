package decide

import (
	"fmt"
	"slices"
	"time"
)

// OutlierConfig configures outlier detection, as Envoy does it: an instance whose
// latency or error rate stands far from its peers', over at least MinRequests
// requests, is ejected from the front door for BaseEjection times the number of
// times it was ejected, and replaced at its ReplaceAfter-th ejection. The zero
// value means the documented defaults.
type OutlierConfig struct {
	// Off turns outlier detection off.
	Off bool
	// MinRequests is the fewest requests an instance must have served in the
	// window to be judged (and to count as a peer); <= 0 means 20.
	MinRequests int
	// LatencyFactor: an instance is slow when its mean latency is at least this
	// many times its peers' median, and MinLatencyGap above it; <= 1 means 3.
	LatencyFactor float64
	// MinLatencyGap; <= 0 means 50 ms.
	MinLatencyGap time.Duration
	// ErrorRateGap: an instance fails too often when its error rate is this much
	// above its peers' median; <= 0 means 0.3.
	ErrorRateGap float64
	// BaseEjection is the first ejection's length; <= 0 means 30 s.
	BaseEjection time.Duration
	// MaxEjected is the largest share of the fleet ejected at once (at least one
	// instance of a fleet of 3 or more; none of a smaller one); <= 0 means 1/3.
	MaxEjected float64
	// ReplaceAfter: the instance is replaced (surge first) at this ejection;
	// <= 0 means 2.
	ReplaceAfter int
}

func (c OutlierConfig) withDefaults() OutlierConfig {
	if c.MinRequests <= 0 {
		c.MinRequests = 20
	}
	if c.LatencyFactor <= 1 {
		c.LatencyFactor = 3
	}
	if c.MinLatencyGap <= 0 {
		c.MinLatencyGap = 50 * time.Millisecond
	}
	if c.ErrorRateGap <= 0 {
		c.ErrorRateGap = 0.3
	}
	if c.BaseEjection <= 0 {
		c.BaseEjection = 30 * time.Second
	}
	if c.MaxEjected <= 0 {
		c.MaxEjected = 1.0 / 3
	}
	if c.ReplaceAfter <= 0 {
		c.ReplaceAfter = 2
	}
	return c
}

// Traffic is what the front door saw of one instance over the recent window.
type Traffic struct {
	Requests, Errors int64
	Latency          time.Duration // mean time to response headers
}

// ErrorRate is Errors over Requests, 0 without requests.
func (t Traffic) ErrorRate() float64 {
	if t.Requests == 0 {
		return 0
	}
	return float64(t.Errors) / float64(t.Requests)
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MaxEjected is how many of total instances may be ejected at once under c.
func (c OutlierConfig) maxEjected(total int) int {
	if total < 3 {
		return 0
	}
	return max(1, int(c.withDefaults().MaxEjected*float64(total)+1e-9))
}

type outlier struct {
	m        *Instance
	what     string  // outlier-slow or outlier-failing
	severity float64 // how many times its peers' figure
	why      string
	detail   map[string]any
}

// recentEvidence is the number of requests of the recent quarter of the window that
// can clear an instance the whole window finds an outlier: with fewer (a slow
// instance gets few requests from a least-request balancer), the window decides.
const recentEvidence = 5

// slow reports whether traffic t stands apart from its peers' median latency.
func (c OutlierConfig) slow(t Traffic, medLat time.Duration) bool {
	return float64(t.Latency) >= c.LatencyFactor*float64(medLat) && t.Latency-medLat >= c.MinLatencyGap
}

// judgeOutliers returns the outliers among candidates (each judged against the
// others), worst first.
func (c OutlierConfig) judgeOutliers(cands []*Instance) []outlier {
	var out []outlier
	for _, m := range cands {
		var lats []time.Duration
		var rates []float64
		for _, o := range cands {
			if o != m {
				lats = append(lats, o.Traffic.Latency)
				rates = append(rates, o.Traffic.ErrorRate())
			}
		}
		medLat, medRate := median(lats), median(rates)
		t := m.Traffic
		detail := map[string]any{"requests": t.Requests, "errors": t.Errors, "latencyMs": ms(t.Latency),
			"peersLatencyMs": ms(medLat), "errorRate": t.ErrorRate(), "peersErrorRate": medRate}
		switch {
		case t.ErrorRate()-medRate >= c.ErrorRateGap &&
			(m.Recent.Requests < recentEvidence || m.Recent.ErrorRate()-medRate >= c.ErrorRateGap):
			out = append(out, outlier{m, "outlier-failing", 10 + t.ErrorRate() - medRate, fmt.Sprintf("error rate %.0f%% over %d requests, its peers' median %.0f%%",
				100*t.ErrorRate(), t.Requests, 100*medRate), detail})
		case c.slow(t, medLat) && (m.Recent.Requests < recentEvidence || c.slow(m.Recent, medLat)):
			sev := float64(t.Latency) / float64(max(medLat, time.Microsecond))
			out = append(out, outlier{m, "outlier-slow", sev, fmt.Sprintf("mean latency %s over %d requests, %.1fx its peers' median %s",
				t.Latency.Round(time.Millisecond), t.Requests, sev, medLat.Round(time.Millisecond)), detail})
		}
	}
	slices.SortStableFunc(out, func(x, y outlier) int {
		switch {
		case x.severity > y.severity:
			return -1
		case x.severity < y.severity:
			return 1
		}
		return 0
	})
	return out
}
