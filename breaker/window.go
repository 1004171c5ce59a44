package breaker

import (
	"math/bits"
	"time"
)

// An outcome of a call as the rules see it.
const (
	outcomeFailed = 1 << iota
	outcomeSlow
)

// window holds the counts of the closed state: the calls since the state began, or,
// with a time-based window, the calls that ended in the window. It also holds the
// count-based ring of the rate rules. It is guarded by the breaker's mutex.
type window struct {
	c Counts // Requests ... ConsecutiveFailures; the Window* fields are unused here

	// Count-based rate window: a ring of the last len(ring) outcomes.
	ring   []uint8
	next   int
	filled bool

	// Time-based window: bucket i%n holds the calls of age i, those that ended in
	// [start + i*dur/n, start + (i+1)*dur/n); age is the current one. A call of age a
	// is in the window while age-a < n, so it leaves exactly dur after the start of
	// its bucket.
	buckets []bucket
	dur     time.Duration
	start   time.Time
	age     int64

	// The current run of equal outcomes (consecutive successes or failures) in a
	// time-based window: runHead of its calls are in bucket runAge, the rest in later
	// buckets, so that the run shrinks as its oldest calls leave the window.
	runAge  int64
	runHead uint32

	calls, failures, slow uint32 // the rate rules' window (successes + failures)
}

type bucket struct{ requests, successes, failures, excluded, slow uint32 }

func newWindow(s *settings, now time.Time) window {
	var w window
	switch {
	case s.timeWindow():
		w.buckets = make([]bucket, s.buckets)
		w.dur = s.windowDur
		w.start = now
	case s.windowSize > 0:
		w.ring = make([]uint8, s.windowSize)
	}
	return w
}

func (w *window) timed() bool { return w.buckets != nil }

// reset empties the window; a time-based window restarts at now.
func (w *window) reset(now time.Time) {
	w.c = Counts{}
	clear(w.ring)
	w.next, w.filled = 0, false
	clear(w.buckets)
	w.start, w.age = now, 0
	w.runAge, w.runHead = 0, 0
	w.calls, w.failures, w.slow = 0, 0, 0
}

// ageAt returns the age of the bucket that now falls in: floor((now-start)*n/dur),
// computed without overflow.
func (w *window) ageAt(now time.Time) int64 {
	d := now.Sub(w.start)
	if d <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(d), uint64(len(w.buckets)))
	if hi >= uint64(w.dur) {
		return w.age + int64(len(w.buckets)) // far beyond the window: everything left
	}
	q, _ := bits.Div64(hi, lo, uint64(w.dur))
	return int64(q)
}

// roll drops the buckets that have left a time-based window by now.
func (w *window) roll(now time.Time) {
	age := w.ageAt(now)
	if age <= w.age {
		return
	}
	n := int64(len(w.buckets))
	if age-w.age >= n {
		clear(w.buckets)
		w.c = Counts{}
		w.calls, w.failures, w.slow = 0, 0, 0
		w.age, w.runAge, w.runHead = age, age, 0
		return
	}
	for a := w.age + 1; a <= age; a++ {
		gone := a - n // the age whose bucket leaves
		b := &w.buckets[a%n]
		w.c.Requests -= b.requests
		w.c.Successes -= b.successes
		w.c.Failures -= b.failures
		w.c.Excluded -= b.excluded
		w.calls -= b.successes + b.failures
		w.failures -= b.failures
		w.slow -= b.slow
		if gone == w.runAge && (w.c.ConsecutiveFailures > 0 || w.c.ConsecutiveSuccesses > 0) {
			// The oldest calls of the run leave; those of the next bucket, all in the
			// run (it began earlier), become its head.
			w.runAge++
			next := &w.buckets[w.runAge%n] // still holds age runAge: a+1-n <= w.age
			if w.c.ConsecutiveFailures > 0 {
				w.c.ConsecutiveFailures -= w.runHead
				w.runHead = next.failures
			} else {
				w.c.ConsecutiveSuccesses -= w.runHead
				w.runHead = next.successes
			}
		}
		*b = bucket{}
	}
	w.age = age
}

// request counts a call let through, at now (read only by a time-based window).
func (w *window) request(now time.Time) {
	if w.buckets != nil {
		w.roll(now)
		w.buckets[w.age%int64(len(w.buckets))].requests++
	}
	w.c.Requests++
}

// exclude counts a call that ended neither way.
func (w *window) exclude(now time.Time) {
	if w.buckets != nil {
		w.roll(now)
		w.buckets[w.age%int64(len(w.buckets))].excluded++
	}
	w.c.Excluded++
}

// add records the outcome o of a call that ended at now (read only by a time-based
// window).
func (w *window) add(o uint8, now time.Time) {
	failed := o&outcomeFailed != 0
	var b *bucket
	if w.buckets != nil {
		w.roll(now)
		b = &w.buckets[w.age%int64(len(w.buckets))]
	}
	c := &w.c
	if failed {
		c.Failures++
		if c.ConsecutiveFailures == 0 {
			w.runAge, w.runHead = w.age, 0
		}
		c.ConsecutiveFailures++
		c.ConsecutiveSuccesses = 0
	} else {
		c.Successes++
		if c.ConsecutiveSuccesses == 0 {
			w.runAge, w.runHead = w.age, 0
		}
		c.ConsecutiveSuccesses++
		c.ConsecutiveFailures = 0
	}
	if w.runAge == w.age {
		w.runHead++
	}
	switch {
	case b != nil:
		if failed {
			b.failures++
			w.failures++
		} else {
			b.successes++
		}
		w.calls++
		if o&outcomeSlow != 0 {
			b.slow++
			w.slow++
		}
	case w.ring != nil:
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
	}
}

// trips reports whether the window, after a call with outcome o, meets a rule of s.
// Only a failure can trip the consecutive-failure and failure-rate rules and only a
// slow call the slow-call rule: a fast success never trips the breaker, even when it
// brings the window to MinimumCalls.
func (w *window) trips(s *settings, o uint8) bool {
	if o&outcomeFailed != 0 && s.consecutive > 0 && w.c.ConsecutiveFailures >= s.consecutive {
		return true
	}
	if o == 0 || w.calls == 0 || int(w.calls) < s.minCalls {
		return false
	}
	calls := float64(w.calls)
	if o&outcomeFailed != 0 && s.failureRate > 0 && float64(w.failures)/calls >= s.failureRate {
		return true
	}
	return o&outcomeSlow != 0 && s.slowDuration > 0 && float64(w.slow)/calls >= s.slowRate
}

// view returns the counts as of now without changing the window: the calls of
// buckets that have left a time-based window by now are left out.
func (w *window) view(now time.Time) (c Counts, calls, failures, slow uint32) {
	if w.buckets == nil {
		return w.c, w.calls, w.failures, w.slow
	}
	cp := *w
	cp.buckets = make([]bucket, len(w.buckets))
	copy(cp.buckets, w.buckets)
	cp.roll(now)
	return cp.c, cp.calls, cp.failures, cp.slow
}
