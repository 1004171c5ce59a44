package healgrpc

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParsePushback(t *testing.T) {
	for _, tt := range []struct {
		give  string
		want  time.Duration
		retry bool
	}{
		{"0", 0, true}, {"150", 150 * time.Millisecond, true}, {"2147483647", 2147483647 * time.Millisecond, true},
		{"2147483648", 0, false}, {"-1", 0, false}, {"+5", 0, false}, {" 5", 0, false}, {"", 0, false},
		{"1.5", 0, false}, {"99999999999", 0, false}, {"abc", 0, false},
	} {
		d, ok := ParsePushback(tt.give)
		assert.Equal(t, tt.want, d, tt.give)
		assert.Equal(t, tt.retry, ok, tt.give)
	}
	d, ok := ParsePushback(pushbackMD(1500 * time.Microsecond).Get(PushbackKey)[0])
	assert.True(t, ok)
	assert.Equal(t, time.Millisecond, d)
}

func FuzzParsePushback(f *testing.F) {
	for _, s := range []string{"0", "150", "-1", "+1", "2147483648", "", " 1", "١"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParsePushback(s)
		n, err := strconv.ParseInt(s, 10, 64)
		want := err == nil && n >= 0 && n <= maxPushback && s[0] != '+' && s[0] != '-'
		if ok != want {
			t.Fatalf("ParsePushback(%q) ok = %v, want %v", s, ok, want)
		}
		if ok && d != time.Duration(n)*time.Millisecond {
			t.Fatalf("ParsePushback(%q) = %v, want %dms", s, d, n)
		}
		if !ok && d != 0 {
			t.Fatalf("ParsePushback(%q) = %v with retry false", s, d)
		}
	})
}
