package heal

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// RecorderConfig configures a [Recorder].
type RecorderConfig struct {
	// Window is how far back the recorder looks: percentiles, shed count and
	// throughput cover the last Window (to within a tenth of it). Default 30s.
	Window time.Duration
}

// Recorder keeps the recent latency and load of a server over a sliding window: a
// ring of ten slots, each a log-linear latency histogram (16 buckets per power of two,
// so a percentile is within about 3% of the truth) with counts of requests served and
// shed. Recording is a few atomic adds and never blocks on readers; reading sums the
// slots still in the window.
//
// The zero Recorder is not usable; create one with [NewRecorder]. A Recorder is safe
// for concurrent use.
type Recorder struct {
	slotDur int64 // ns
	start   time.Time
	slots   [recorderSlots]recSlot
	mu      sync.Mutex // serializes slot resets
}

const (
	recorderSlots = 10
	subBits       = 4
	subCount      = 1 << subBits
	maxMicros     = 1<<40 - 1
	numBuckets    = (40 - subBits + 1) << subBits
)

type recSlot struct {
	epoch  atomic.Int64 // which slot-duration period the slot holds
	served atomic.Int64
	shed   atomic.Int64
	counts [numBuckets]atomic.Uint32
}

// NewRecorder returns a recorder configured by cfg, or an error when the window is
// negative.
func NewRecorder(cfg RecorderConfig) (*Recorder, error) {
	if cfg.Window < 0 {
		return nil, invalid("RecorderConfig.Window", "%v is negative", cfg.Window)
	}
	if cfg.Window == 0 {
		cfg.Window = 30 * time.Second
	}
	r := &Recorder{slotDur: max(int64(cfg.Window)/recorderSlots, 1), start: time.Now()}
	for i := range r.slots {
		r.slots[i].epoch.Store(-1)
	}
	return r, nil
}

// Window returns the recorder's window.
func (r *Recorder) Window() time.Duration { return time.Duration(r.slotDur * recorderSlots) }

func (r *Recorder) slot(now time.Time) *recSlot {
	e := now.UnixNano() / r.slotDur
	s := &r.slots[e%recorderSlots]
	if s.epoch.Load() != e {
		r.mu.Lock()
		if s.epoch.Load() != e {
			s.served.Store(0)
			s.shed.Store(0)
			for i := range s.counts {
				s.counts[i].Store(0)
			}
			s.epoch.Store(e)
		}
		r.mu.Unlock()
	}
	return s
}

// Observe records a request served in d (whatever its status).
func (r *Recorder) Observe(d time.Duration) { r.ObserveAt(time.Now(), d) }

// ObserveAt records a request that finished at now after d.
func (r *Recorder) ObserveAt(now time.Time, d time.Duration) {
	s := r.slot(now)
	s.counts[bucketOf(d)].Add(1)
	s.served.Add(1)
}

// Shed records a request that was refused.
func (r *Recorder) Shed() { r.ShedAt(time.Now()) }

// ShedAt records a request refused at now.
func (r *Recorder) ShedAt(now time.Time) { r.slot(now).shed.Add(1) }

func bucketOf(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us > maxMicros {
		us = maxMicros
	}
	if us < subCount {
		return int(us)
	}
	e := bits.Len64(us) - subBits - 1
	return (e+1)<<subBits | int((us>>e)&(subCount-1))
}

// bucketMid returns the middle of bucket i's range.
func bucketMid(i int) time.Duration {
	if i < subCount {
		return time.Duration(i)*time.Microsecond + time.Microsecond/2
	}
	e := i>>subBits - 1
	lo := uint64(subCount|i&(subCount-1)) << e
	return time.Duration(lo)*time.Microsecond + (time.Duration(1)<<e)*time.Microsecond/2
}

// RecorderSnapshot is what a [Recorder] saw over its window.
type RecorderSnapshot struct {
	Window     time.Duration // the window the figures cover
	P50, P99   time.Duration // latency percentiles of requests served (0 when none)
	Served     int64         // requests served in the window
	Shed       int64         // requests shed in the window
	Throughput float64       // requests served per second over the window
}

// Snapshot sums the slots in the window.
func (r *Recorder) Snapshot() RecorderSnapshot { return r.SnapshotAt(time.Now()) }

// SnapshotAt sums the slots in the window that ends at now.
func (r *Recorder) SnapshotAt(now time.Time) RecorderSnapshot {
	cur := now.UnixNano() / r.slotDur
	var hist [numBuckets]uint64
	var snap RecorderSnapshot
	snap.Window = r.Window()
	for i := range r.slots {
		s := &r.slots[i]
		e := s.epoch.Load()
		if e > cur || e <= cur-recorderSlots {
			continue
		}
		snap.Served += s.served.Load()
		snap.Shed += s.shed.Load()
		for b := range s.counts {
			hist[b] += uint64(s.counts[b].Load())
		}
	}
	var total uint64
	for _, c := range hist {
		total += c
	}
	if total > 0 {
		snap.P50 = quantile(&hist, total, 0.50)
		snap.P99 = quantile(&hist, total, 0.99)
	}
	span := snap.Window
	if since := now.Sub(r.start); since < span {
		span = max(since, time.Duration(r.slotDur))
	}
	snap.Throughput = float64(snap.Served) / span.Seconds()
	return snap
}

func quantile(hist *[numBuckets]uint64, total uint64, q float64) time.Duration {
	rank := uint64(q*float64(total) + 0.5)
	rank = max(1, min(rank, total))
	var cum uint64
	for i, c := range hist {
		cum += c
		if cum >= rank {
			return bucketMid(i)
		}
	}
	return bucketMid(numBuckets - 1)
}
