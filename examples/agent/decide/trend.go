package decide

import (
	"math"
	"time"
)

// Point is one sample of a Series.
type Point struct {
	T time.Time
	V float64
}

// Series is a short history of one measurement. The zero value keeps 20 points.
type Series struct {
	Cap int // how many points to keep; <= 0 means 20
	pts []Point
}

// Add appends a sample, dropping the oldest beyond Cap.
func (s *Series) Add(t time.Time, v float64) {
	c := s.Cap
	if c <= 0 {
		c = 20
	}
	s.pts = append(s.pts, Point{t, v})
	if len(s.pts) > c {
		s.pts = s.pts[len(s.pts)-c:]
	}
}

// Len returns the number of points.
func (s *Series) Len() int { return len(s.pts) }

// Last returns the newest point.
func (s *Series) Last() (Point, bool) {
	if len(s.pts) == 0 {
		return Point{}, false
	}
	return s.pts[len(s.pts)-1], true
}

// Trend is a least-squares line through a Series.
type Trend struct {
	Slope float64   // per second
	Value float64   // the fitted value at At
	At    time.Time // the newest sample
	R2    float64   // goodness of fit, 0..1
	N     int       // samples
	Span  time.Duration
}

// Fit fits a line through the points; ok is false with fewer than 3 points or no
// time span.
func (s *Series) Fit() (Trend, bool) {
	n := len(s.pts)
	if n < 3 {
		return Trend{}, false
	}
	t0 := s.pts[0].T
	var sx, sy, sxx, sxy, syy float64
	for _, p := range s.pts {
		x := p.T.Sub(t0).Seconds()
		sx += x
		sy += p.V
		sxx += x * x
		sxy += x * p.V
		syy += p.V * p.V
	}
	fn := float64(n)
	den := fn*sxx - sx*sx
	if den <= 0 {
		return Trend{}, false
	}
	slope := (fn*sxy - sx*sy) / den
	icpt := (sy - slope*sx) / fn
	last := s.pts[n-1].T
	r2 := 1.0
	if vy := fn*syy - sy*sy; vy > 0 {
		r := (fn*sxy - sx*sy) / math.Sqrt(den*vy)
		r2 = r * r
	}
	return Trend{Slope: slope, Value: icpt + slope*last.Sub(t0).Seconds(), At: last, R2: r2, N: n, Span: last.Sub(t0)}, true
}

// Predict returns the value the trend predicts at t.
func (tr Trend) Predict(t time.Time) float64 { return tr.Value + tr.Slope*t.Sub(tr.At).Seconds() }

// TimeTo returns how long after the newest sample the trend reaches limit; ok is
// false when it never does (flat or falling) or already has.
func (tr Trend) TimeTo(limit float64) (time.Duration, bool) {
	if tr.Value >= limit {
		return 0, true
	}
	if tr.Slope <= 0 {
		return 0, false
	}
	return time.Duration((limit - tr.Value) / tr.Slope * float64(time.Second)), true
}

// Forecast says whether a series will reach limit within horizon, by a trend fitted
// over at least minSpan with a fit of at least minR2. It returns the trend and the
// time left.
func (s *Series) Forecast(limit float64, horizon, minSpan time.Duration, minR2 float64) (Trend, time.Duration, bool) {
	tr, ok := s.Fit()
	if !ok || tr.Span < minSpan || tr.R2 < minR2 || tr.Slope <= 0 {
		return tr, 0, false
	}
	left, ok := tr.TimeTo(limit)
	if !ok || left > horizon {
		return tr, left, false
	}
	return tr, left, true
}
