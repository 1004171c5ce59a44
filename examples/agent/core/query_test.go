package core

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseQuery(t *testing.T) {
	long := strings.Repeat("a", maxName+1)
	for _, tt := range []struct {
		name string
		raw  string
		want pageQuery
		err  string // part of the error; "" for none
	}{
		{"defaults", "", pageQuery{Window: 15 * time.Minute, Page: 1, Per: DefaultPerPage}, ""},
		{"all", "window=5&page=3&per=10&service=web&instance=web-1&kind=acted",
			pageQuery{Window: 5 * time.Minute, Page: 3, Per: 10, Service: "web", Instance: "web-1", Kind: "acted"}, ""},
		{"empty filters are no filters", "service=&instance=&kind=", pageQuery{Window: 15 * time.Minute, Page: 1, Per: DefaultPerPage}, ""},
		{"window not offered", "window=7", pageQuery{}, "window: want one of [5 15 60]"},
		{"window not a number", "window=1h", pageQuery{}, "window: want one of"},
		{"window negative", "window=-5", pageQuery{}, "window: want one of"},
		{"page zero", "page=0", pageQuery{}, "page: want a whole number from 1 to 100000"},
		{"page negative", "page=-1", pageQuery{}, "page: want a whole number"},
		{"page huge", "page=99999999999999999999999", pageQuery{}, "page: want a whole number"},
		{"per zero", "per=0", pageQuery{}, "per: want a whole number from 1 to 500"},
		{"per negative", "per=-10", pageQuery{}, "per: want a whole number"},
		{"per huge", "per=501", pageQuery{}, "per: want a whole number"},
		{"per float", "per=1.5", pageQuery{}, "per: want a whole number"},
		{"unknown kind", "kind=exploded", pageQuery{}, "kind: want one of"},
		{"unknown parameter", "sort=desc", pageQuery{}, `unknown parameter "sort"`},
		{"twice", "page=1&page=2", pageQuery{}, "page: give it once"},
		{"long name", "service=" + long, pageQuery{}, "service: want 1 to 63 letters"},
		{"markup in a name", "instance=%3Cscript%3E", pageQuery{}, "instance: want 1 to 63 letters"},
		{"bad escape", "service=%zz", pageQuery{}, "invalid URL escape"},
		{"semicolon", "page=1;per=2", pageQuery{}, "bad query"},
		{"too long", "service=" + strings.Repeat("x", maxQuery), pageQuery{}, "longer than 2048 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, err := parseQuery(tt.raw, append([]string{"window"}, historyParams...), eventKinds)
			if tt.err != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, errQuery)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, q)
		})
	}
	_, err := parseQuery("page=2", dashParams, nil)
	assert.ErrorContains(t, err, `unknown parameter "page" (this page takes [window])`)
}

// encode and parseQuery round-trip: the pager's links parse back to their query.
func TestQueryEncodeRoundTrip(t *testing.T) {
	q := pageQuery{Window: 60 * time.Minute, Page: 7, Per: 25, Service: "web", Instance: "web-3", Kind: "healed"}
	back, err := parseQuery(q.encode(append([]string{"window"}, historyParams...)...), append([]string{"window"}, historyParams...), eventKinds)
	require.NoError(t, err)
	assert.Equal(t, q, back)
	assert.Empty(t, pageQuery{Window: defaultWindow, Page: 1, Per: DefaultPerPage}.encode(historyParams...), "defaults are left out")
}

// FuzzParseQuery: whatever the query string, parseQuery returns a valid query or
// an error that matches errQuery, never panics, and what it accepts encodes back
// to the same query.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "window=5", "page=2&per=10&service=web&instance=web-1&kind=acted", "page=-1", "per=0",
		"kind=%3Cscript%3E", "service=a&service=b", "page=1;x", "%", "window=60&kind=", strings.Repeat("a=1&", 600)} {
		f.Add(s)
	}
	all := append([]string{"window"}, historyParams...)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw, all, eventKinds)
		if err != nil {
			if !errors.Is(err, errQuery) {
				t.Fatalf("%q: error %v does not match errQuery", raw, err)
			}
			return
		}
		if q.Page < 1 || q.Page > maxPage || q.Per < 1 || q.Per > MaxPerPage {
			t.Fatalf("%q: out of bounds: %+v", raw, q)
		}
		if q.Window != 5*time.Minute && q.Window != 15*time.Minute && q.Window != 60*time.Minute {
			t.Fatalf("%q: window %v", raw, q.Window)
		}
		for _, s := range []string{q.Service, q.Instance} {
			if s != "" && !validName(s) {
				t.Fatalf("%q: name %q accepted", raw, s)
			}
		}
		back, err := parseQuery(q.encode(all...), all, eventKinds)
		if err != nil || back != q {
			t.Fatalf("%q: round trip: %+v -> %+v, %v", raw, q, back, err)
		}
	})
}

// sseEvent frames any data as one event: a line break of any kind starts a new
// data line, so data cannot end the event or start another one.
func TestSSEEventFraming(t *testing.T) {
	got := string(sseEvent("dashboard", []byte("a\r\nb\rc\n\nevent: evil\ndata: x")))
	assert.Equal(t, "event: dashboard\ndata: a\ndata: b\ndata: c\ndata: \ndata: event: evil\ndata: data: x\n\n", got)
	assert.Equal(t, "event: e\ndata: \n\n", string(sseEvent("e", nil)))
}
