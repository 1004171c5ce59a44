package heal

import (
	"testing"
	"time"
)

// FuzzRecorderBuckets checks that every duration falls in a bucket whose middle is
// within 1/32 of it (the recorder's promised precision), and that buckets are
// ordered like durations.
func FuzzRecorderBuckets(f *testing.F) {
	for _, d := range []int64{0, 1, 999, 1000, 15999, 16000, 17500, 1e6, 123456789, 1 << 40 * 1000, -5} {
		f.Add(d, d+1)
	}
	f.Fuzz(func(t *testing.T, a, b int64) {
		da, db := time.Duration(a), time.Duration(b)
		ia, ib := bucketOf(da), bucketOf(db)
		if ia < 0 || ia >= numBuckets {
			t.Fatalf("bucketOf(%v) = %d out of range", da, ia)
		}
		if (da < db && ia > ib) || (da > db && ia < ib) {
			t.Fatalf("buckets out of order: %v -> %d, %v -> %d", da, ia, db, ib)
		}
		us := da / time.Microsecond
		if da < 0 || us > maxMicros || us < subCount {
			return // clamped, or exact to the microsecond
		}
		mid := bucketMid(ia)
		if diff := (mid - us*time.Microsecond).Abs(); float64(diff) > float64(da)/32+float64(time.Microsecond) {
			t.Fatalf("bucketMid(bucketOf(%v)) = %v, off by %v", da, mid, diff)
		}
	})
}
