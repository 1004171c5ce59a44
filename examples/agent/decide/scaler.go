package decide

import (
	"fmt"
	"math"
	"time"
)

// ScalerConfig configures a Scaler. The zero value means the documented defaults.
type ScalerConfig struct {
	Min int // fewest replicas; <= 0 means 1
	Max int // most replicas; <= 0 means 10
	// Tolerance is the band around a ratio of 1 inside which nothing changes; <= 0
	// means 0.1.
	Tolerance float64
	// UpWindow: scale up only to the lowest recommendation of this window, so a
	// short spike does not scale; <= 0 means 0 (at once). The early (trend) scale-out
	// looks this far ahead.
	UpWindow time.Duration
	// DownWindow: scale down only to the highest recommendation of this window;
	// <= 0 means 30 s.
	DownWindow time.Duration
	// MaxStep is the largest change of one decision; <= 0 means no limit.
	MaxStep int
}

// Scaler recommends a replica count from a load ratio (observed / target: 1 means on
// target). Create it with NewScaler.
type Scaler struct {
	cfg  ScalerConfig
	recs []Point // recommendations (V = replicas)
	hist Series  // ratios, for the early scale-out
}

// NewScaler returns a Scaler.
func NewScaler(cfg ScalerConfig) *Scaler {
	if cfg.Min <= 0 {
		cfg.Min = 1
	}
	if cfg.Max <= 0 {
		cfg.Max = 10
	}
	cfg.Max = max(cfg.Max, cfg.Min)
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = 0.1
	}
	if cfg.DownWindow <= 0 {
		cfg.DownWindow = 30 * time.Second
	}
	return &Scaler{cfg: cfg, hist: Series{Cap: 12}}
}

// Decision is a Scaler's recommendation.
type Decision struct {
	Replicas int     // the recommended count
	Raw      int     // the count the ratio alone asks for
	Ratio    float64 // the ratio it was given
	Early    bool    // an early scale-out on the trend
	Trend    Trend   // the trend behind an early scale-out
	Reason   string
}

// SetRange changes the bounds (a manual scale raises Min, for example).
func (s *Scaler) SetRange(lo, hi int) {
	if lo > 0 {
		s.cfg.Min = lo
	}
	if hi > 0 {
		s.cfg.Max = hi
	}
	s.cfg.Max = max(s.cfg.Max, s.cfg.Min)
}

// Range returns the bounds.
func (s *Scaler) Range() (int, int) { return s.cfg.Min, s.cfg.Max }

// Recommend records the ratio observed at now with current replicas and returns the
// recommended count. A ratio < 0 means no data: the count stays, clamped to the
// bounds.
func (s *Scaler) Recommend(now time.Time, current int, ratio float64) Decision {
	clamp := func(n int) int { return min(max(n, s.cfg.Min), s.cfg.Max) }
	if ratio < 0 || current <= 0 {
		n := clamp(max(current, 0))
		return Decision{Replicas: n, Raw: n, Ratio: ratio, Reason: "no load data"}
	}
	s.hist.Add(now, ratio)
	tol := s.cfg.Tolerance
	raw := current
	if math.Abs(ratio-1) > tol {
		raw = int(math.Ceil(float64(current) * ratio))
	}
	raw = clamp(raw)
	s.recs = append(s.recs, Point{now, float64(raw)})
	keep := max(s.cfg.UpWindow, s.cfg.DownWindow)
	i := 0
	for i < len(s.recs) && now.Sub(s.recs[i].T) > keep {
		i++
	}
	s.recs = s.recs[i:]

	d := Decision{Replicas: clamp(current), Raw: raw, Ratio: ratio}
	switch {
	case raw > current:
		lo := raw
		for _, r := range s.recs {
			if now.Sub(r.T) <= s.cfg.UpWindow && int(r.V) < lo {
				lo = int(r.V)
			}
		}
		d.Replicas = clamp(max(lo, current))
		d.Reason = fmt.Sprintf("load ratio %.2f above 1+%.2f", ratio, tol)
		if d.Replicas == current {
			d.Reason += fmt.Sprintf("; waiting for the %s scale-up window", s.cfg.UpWindow)
		}
	case raw < current:
		hi := raw
		for _, r := range s.recs {
			if now.Sub(r.T) <= s.cfg.DownWindow && int(r.V) > hi {
				hi = int(r.V)
			}
		}
		d.Replicas = clamp(min(hi, current))
		d.Reason = fmt.Sprintf("load ratio %.2f below 1-%.2f", ratio, tol)
		if d.Replicas == current {
			d.Reason += fmt.Sprintf("; waiting for the %s scale-down window", s.cfg.DownWindow)
		}
	default:
		d.Reason = fmt.Sprintf("load ratio %.2f within 1±%.2f", ratio, tol)
	}
	// Early scale-out: the trend crosses the band within the scale-up window.
	if d.Replicas <= current && ratio <= 1+tol && s.cfg.UpWindow > 0 && current < s.cfg.Max {
		if tr, left, ok := s.hist.Forecast(1+tol, s.cfg.UpWindow, s.cfg.UpWindow/2, 0.6); ok {
			pred := max(tr.Predict(now.Add(s.cfg.UpWindow)), 1+tol)
			d.Replicas = clamp(max(int(math.Ceil(float64(current)*pred)), current+1))
			d.Early, d.Trend = true, tr
			// Record the decision, so that the scale-down window holds it.
			s.recs[len(s.recs)-1].V = float64(d.Replicas)
			d.Reason = fmt.Sprintf("load ratio %.2f rising %.3f/s, crosses 1+%.2f in %s (within the %s window): scaling out early",
				ratio, tr.Slope, tol, left.Round(10*time.Millisecond), s.cfg.UpWindow)
		}
	}
	if s.cfg.MaxStep > 0 {
		d.Replicas = min(max(d.Replicas, current-s.cfg.MaxStep), current+s.cfg.MaxStep)
		d.Replicas = clamp(d.Replicas)
	}
	return d
}
