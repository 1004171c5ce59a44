package retry_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/retry"
)

var raNow = time.Date(2015, time.October, 21, 7, 28, 0, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		give string
		want time.Duration
	}{
		{"0", 0},
		{"120", 2 * time.Minute},
		{"  7\t", 7 * time.Second},
		{"007", 7 * time.Second},
		{"9223372036", 9223372036 * time.Second},
		{"Wed, 21 Oct 2015 07:28:30 GMT", 30 * time.Second}, // IMF-fixdate
		{"Wednesday, 21-Oct-15 07:29:00 GMT", time.Minute},  // RFC 850
		{"Friday, 21-Oct-67 07:29:00 GMT", 0},               // RFC 850: 2067 is more than 50 years ahead: 1967
		{"Wed Oct 21 07:28:05 2015", 5 * time.Second},       // asctime
		{"Wed Oct  1 07:28:00 2015", 0},                     // asctime, past: retry now
		{"Tue, 20 Oct 2015 07:28:00 GMT", 0},                // past: retry now
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0},                // now
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := retry.ParseRetryAfter(tt.give, raNow)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseRetryAfterRejects(t *testing.T) {
	tests := []struct {
		give, want string
	}{
		{"", "empty value"},
		{"   ", "empty value"},
		{"-1", "without sign"},
		{"+5", "without sign"},
		{"1.5", "only digits"},
		{"12s", "only digits"},
		{"1 2", "only digits"},
		{"9223372037", "overflows"},
		{"99999999999999999999999999", "overflows"},
		{"soon", "neither delay-seconds nor an HTTP-date"},
		{"Wed, 21 Oct 2015 07:28:30 PST", "neither"},
		{"Wed, 32 Oct 2015 07:28:30 GMT", "neither"},
		{"Fri, 31 Dec 9999 23:59:59 GMT", "too far in the future"},
		{strings.Repeat("x", 1000), "..."},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := retry.ParseRetryAfter(tt.give, raNow)
			require.Error(t, err)
			assert.ErrorIs(t, err, retry.ErrInvalidRetryAfter)
			assert.Contains(t, err.Error(), tt.want)
			assert.Less(t, len(err.Error()), 200, "messages stay short")
			assert.Zero(t, got)
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "-1", "1.5", "", "Wed, 21 Oct 2015 07:28:30 GMT",
		"Wednesday, 21-Oct-15 07:29:00 GMT", "Wed Oct 21 07:28:05 2015", "9223372037", "\t3 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, err := retry.ParseRetryAfter(v, raNow)
		if err != nil {
			if d != 0 {
				t.Fatalf("ParseRetryAfter(%q) = %v with error %v", v, d, err)
			}
			if !strings.HasPrefix(err.Error(), "retry: invalid Retry-After: ") {
				t.Fatalf("ParseRetryAfter(%q): unclear error %q", v, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, negative", v, d)
		}
	})
}
