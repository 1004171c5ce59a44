package healgrpc

import (
	"strconv"
	"time"

	"google.golang.org/grpc/metadata"
)

// PushbackKey is the trailer metadata key of gRPC's retry pushback (gRFC A6): a server
// that sends it tells the client how many milliseconds to wait before retrying, or,
// with a value that is not a non-negative integer, not to retry at all.
const PushbackKey = "grpc-retry-pushback-ms"

// maxPushback bounds a parsed pushback: gRFC A6 carries it as an int32 of
// milliseconds.
const maxPushback = 1<<31 - 1

// ParsePushback parses the value of a [PushbackKey] trailer. It returns the delay the
// server asked for and retry true for a non-negative decimal integer of milliseconds
// (at most 2^31-1, about 24.8 days); and retry false for anything else, which by gRFC
// A6 means "do not retry": a negative number, a sign, spaces, an empty value, or
// anything that is not a decimal integer. It never panics and does not allocate.
func ParsePushback(v string) (d time.Duration, retry bool) {
	if v == "" {
		return 0, false
	}
	var ms int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if ms <= maxPushback { // past it, only the syntax is still checked
			ms = ms*10 + int64(c-'0')
		}
	}
	if ms > maxPushback {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// pushback reads the pushback of a response's trailer: present reports whether the
// server sent one at all. The last value wins when there are several.
func pushback(md metadata.MD) (d time.Duration, retry, present bool) {
	vs := md.Get(PushbackKey)
	if len(vs) == 0 {
		return 0, false, false
	}
	d, retry = ParsePushback(vs[len(vs)-1])
	return d, retry, true
}

// pushbackMD is the trailer a server sends to shed a call: wait d, then retry.
func pushbackMD(d time.Duration) metadata.MD {
	ms := d.Milliseconds()
	if d > 0 && ms == 0 {
		ms = 1
	}
	return metadata.Pairs(PushbackKey, strconv.FormatInt(min(ms, maxPushback), 10))
}
