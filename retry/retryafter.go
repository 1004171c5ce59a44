package retry

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrInvalidRetryAfter is matched by every error [ParseRetryAfter] returns.
var ErrInvalidRetryAfter = errors.New("retry: invalid Retry-After")

// maxDelaySeconds is the largest delay-seconds value a time.Duration holds.
const maxDelaySeconds = math.MaxInt64 / int64(time.Second)

// The HTTP-date formats of RFC 9110, section 5.6.7: IMF-fixdate, which senders must
// use, then the obsolete RFC 850 and asctime formats, which recipients must accept.
const rfc850 = 1 // the index of the two-digit-year layout

var httpDateLayouts = [...]string{
	"Mon, 02 Jan 2006 15:04:05 GMT",
	"Monday, 02-Jan-06 15:04:05 GMT",
	"Mon Jan _2 15:04:05 2006",
}

// ParseRetryAfter parses the value of an HTTP Retry-After header (RFC 9110, section
// 10.2.3) and returns how long to wait from now: either delay-seconds, a non-negative
// decimal integer ("120"), or an HTTP-date ("Fri, 31 Dec 1999 23:59:59 GMT", or one of
// the two obsolete date formats). A date at or before now gives 0. Surrounding spaces
// and tabs are ignored.
//
// It returns an error matching [ErrInvalidRetryAfter] for an empty value, a sign, a
// fraction, a number too large for a [time.Duration], or anything else that is neither
// form. It never panics. Wrap the result with [After] to make a [Policy] honour it.
func ParseRetryAfter(v string, now time.Time) (time.Duration, error) {
	s := strings.Trim(v, " \t")
	if s == "" {
		return 0, fmt.Errorf("%w: empty value", ErrInvalidRetryAfter)
	}
	if isDigit(s[0]) {
		var n int64
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !isDigit(c) {
				return 0, fmt.Errorf("%w: %q: delay-seconds must be only digits", ErrInvalidRetryAfter, truncate(v))
			}
			n = n*10 + int64(c-'0')
			if n > maxDelaySeconds {
				return 0, fmt.Errorf("%w: %q: delay-seconds overflows a duration", ErrInvalidRetryAfter, truncate(v))
			}
		}
		return time.Duration(n) * time.Second, nil
	}
	if s[0] == '-' || s[0] == '+' {
		return 0, fmt.Errorf("%w: %q: delay-seconds must be a non-negative integer without sign", ErrInvalidRetryAfter, truncate(v))
	}
	for i, layout := range httpDateLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if i == rfc850 && t.After(now.AddDate(50, 0, 0)) {
			// RFC 9110: a two-digit year that appears to be more than 50 years in the
			// future is the most recent past year with those digits.
			t = t.AddDate(-100, 0, 0)
		}
		if !t.After(now) {
			return 0, nil
		}
		d := t.Sub(now) // saturates at the largest Duration
		if d == math.MaxInt64 {
			return 0, fmt.Errorf("%w: %q: date too far in the future", ErrInvalidRetryAfter, truncate(v))
		}
		return d, nil
	}
	return 0, fmt.Errorf("%w: %q: neither delay-seconds nor an HTTP-date", ErrInvalidRetryAfter, truncate(v))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// truncate keeps error messages short when the header is long or hostile.
func truncate(v string) string {
	const max = 64
	if len(v) > max {
		return v[:max] + "..."
	}
	return v
}
