package decide

import "time"

// Budget bounds disruptive actions: at most Max within any Window. The zero value
// allows 3 per minute.
type Budget struct {
	Max    int           // <= 0 means 3
	Window time.Duration // <= 0 means 1 minute
	used   []time.Time
}

func (b *Budget) limits() (int, time.Duration) {
	m, w := b.Max, b.Window
	if m <= 0 {
		m = 3
	}
	if w <= 0 {
		w = time.Minute
	}
	return m, w
}

// Remaining returns how many actions the budget still allows at now.
func (b *Budget) Remaining(now time.Time) int {
	m, w := b.limits()
	i := 0
	for i < len(b.used) && now.Sub(b.used[i]) >= w {
		i++
	}
	b.used = b.used[i:]
	return m - len(b.used)
}

// Take consumes one action at now and reports whether the budget allowed it; it
// consumes nothing when it did not.
func (b *Budget) Take(now time.Time) bool {
	if b.Remaining(now) <= 0 {
		return false
	}
	b.used = append(b.used, now)
	return true
}

// Broken reports whether the agent should hold still: more than fraction (<= 0 means
// 0.5) of total instances look broken at once, with at least 2 broken.
func Broken(broken, total int, fraction float64) bool {
	if fraction <= 0 {
		fraction = 0.5
	}
	return broken >= 2 && float64(broken) > fraction*float64(total)
}
