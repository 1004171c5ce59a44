package breaker

import "time"

// An outcome of a call as the rate rules see it.
const (
	outcomeFailed = 1 << iota
	outcomeSlow
)

// window holds what gobreaker's Counts lack for the rate rules: a count-based sliding
// window of outcomes, and slow-call counts for a time-based window (whose failures
// gobreaker's rolling window already counts). It is guarded by engine.mu.
type window struct {
	// Count-based: a ring of the last len(ring) outcomes.
	ring   []uint8
	next   int
	filled bool

	// Time-based: calls and slow calls per bucket; bucket i covers
	// [start + i*period, start + (i+1)*period) modulo the ring.
	buckets []slowBucket
	period  time.Duration
	start   time.Time
	age     int64

	calls, failures, slow uint32
}

type slowBucket struct{ calls, slow uint32 }

func newWindow(s *settings, now time.Time) *window {
	if !s.rateRules() {
		return nil
	}
	w := &window{}
	if s.timeWindow() {
		if s.slowDuration == 0 {
			return nil // gobreaker's rolling counts are all the failure-rate rule needs
		}
		w.buckets = make([]slowBucket, s.buckets)
		w.period = s.windowDur / time.Duration(s.buckets)
		w.start = now
	} else {
		w.ring = make([]uint8, s.windowSize)
	}
	return w
}

// reset empties the window; a time-based window restarts at now.
func (w *window) reset(now time.Time) {
	clear(w.ring)
	w.next, w.filled = 0, false
	clear(w.buckets)
	w.start, w.age = now, 0
	w.calls, w.failures, w.slow = 0, 0, 0
}

// add records an outcome at now (now is only read by a time-based window).
func (w *window) add(o uint8, now time.Time) {
	if w.ring != nil {
		if w.filled {
			old := w.ring[w.next]
			w.failures -= uint32(old & outcomeFailed)
			w.slow -= uint32(old&outcomeSlow) >> 1
		} else {
			w.calls++
		}
		w.ring[w.next] = o
		w.failures += uint32(o & outcomeFailed)
		w.slow += uint32(o&outcomeSlow) >> 1
		w.next++
		if w.next == len(w.ring) {
			w.next, w.filled = 0, true
		}
		return
	}
	w.roll(now)
	b := &w.buckets[w.age%int64(len(w.buckets))]
	b.calls++
	w.calls++
	if o&outcomeSlow != 0 {
		b.slow++
		w.slow++
	}
}

// roll drops the buckets that have left a time-based window by now.
func (w *window) roll(now time.Time) {
	age := int64(now.Sub(w.start) / w.period)
	if age <= w.age {
		return
	}
	n := int64(len(w.buckets))
	if age-w.age >= n {
		clear(w.buckets)
		w.calls, w.slow = 0, 0
	} else {
		for a := w.age + 1; a <= age; a++ {
			b := &w.buckets[a%n]
			w.calls -= b.calls
			w.slow -= b.slow
			*b = slowBucket{}
		}
	}
	w.age = age
}

// trips reports whether the window, after a call with outcome o, meets a rate rule
// of s. Only a failure can trip the failure-rate rule and only a slow call the
// slow-call rule: a fast success never trips the breaker, even when it brings the
// window to MinimumCalls. For a time-based window only the slow-call rule is checked
// here (readyToTrip checks the failure rate on gobreaker's rolling counts).
func (w *window) trips(s *settings, o uint8) bool {
	if o == 0 || w.calls == 0 || int(w.calls) < s.minCalls {
		return false
	}
	calls := float64(w.calls)
	if o&outcomeFailed != 0 && w.ring != nil && s.failureRate > 0 && float64(w.failures)/calls >= s.failureRate {
		return true
	}
	return o&outcomeSlow != 0 && float64(w.slow)/calls >= s.slowRate
}
