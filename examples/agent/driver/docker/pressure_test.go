package docker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPressureVerdict(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int, v float64) sample { return sample{t0.Add(time.Duration(s) * time.Second), v} }
	for _, tc := range []struct {
		name string
		ss   []sample
		now  int // seconds after t0
		want string
	}{
		{"none", nil, 0, ""},
		{"low and flat", []sample{at(0, 40)}, 60, ""},
		{"at the threshold", []sample{at(0, 90)}, 0, "disk 90% used, at or above 90%"},
		{"above", []sample{at(0, 40), at(5, 97)}, 6, "disk 97% used, at or above 90%"},
		// 40 -> 70 in 10 s: 3%/s, 30% left: full in 10 s, within a minute
		{"rising fast", []sample{at(0, 40), at(10, 70)}, 10, "disk 70% used and rising 3%/s (from 40% 10s ago): full in about 10s, within the horizon of 1m0s"},
		// the same rise spread over 20 minutes: 0.025%/s, full in 20 min
		{"rising slowly", []sample{at(0, 40), at(600, 70)}, 1200, ""},
		// it stopped rising long ago: the rate up to now is slow
		{"stopped rising", []sample{at(0, 40), at(10, 70)}, 3600, ""},
		{"falling", []sample{at(0, 70), at(10, 40)}, 10, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := pressureVerdict("disk", tc.ss, t0.Add(time.Duration(tc.now)*time.Second), 90, time.Minute)
			require.Equal(t, tc.want, got)
		})
	}
}
