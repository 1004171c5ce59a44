package frontdoor

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func entries(m *sync.Map) int {
	n := 0
	m.Range(func(_, _ any) bool { n++; return true })
	return n
}

// deadAddr is the address of a listener closed at once: a dial is refused (the
// front door ejects it).
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// With churn (every round new backends, the old ones forgotten) the front door's
// memory stays at the backends of the round: counters, in-flight counts and
// ejections alike. Without Forget it kept every backend ever seen.
func TestForgetBoundsMemoryUnderChurn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	live := strings.TrimPrefix(srv.URL, "http://")
	var mu sync.Mutex
	var cur []Backend
	fd, err := New(Config{Backends: func() []Backend { mu.Lock(); defer mu.Unlock(); return cur }})
	require.NoError(t, err)
	defer fd.CloseIdleConnections()
	const rounds = 60
	for i := range rounds {
		mu.Lock()
		prev := cur
		// A dead backend first in the list and tried first: its attempt fails, it is
		// ejected, and the request is retried on the live one.
		cur = []Backend{{ID: fmt.Sprintf("dead-%d", i), Addr: deadAddr(t)}, {ID: fmt.Sprintf("web-%d", i), Addr: live}}
		mu.Unlock()
		for range 4 {
			rec := httptest.NewRecorder()
			fd.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://front/", nil))
			require.Equal(t, http.StatusOK, rec.Code)
		}
		for _, b := range prev {
			fd.Forget(b.ID)
		}
	}
	st := fd.BackendStats()
	assert.Len(t, st, 2, "counters of the current backends only")
	assert.Equal(t, int64(4), st[fmt.Sprintf("web-%d", rounds-1)].Requests, "the current backend's counters are kept")
	assert.LessOrEqual(t, entries(&fd.backends), 2)
	assert.LessOrEqual(t, entries(&fd.inflight), 2)
	assert.LessOrEqual(t, entries(&fd.ejected), 1)
	assert.Positive(t, fd.Stats().Ejections, "the dead backends were ejected (the test exercises the ejections)")
}

// Forgetting a backend keeps the state of its address when another backend uses
// it now (a port reused by a new instance).
func TestForgetKeepsASharedAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	var cur []Backend
	fd, err := New(Config{Backends: func() []Backend { return cur }})
	require.NoError(t, err)
	defer fd.CloseIdleConnections()
	for _, id := range []string{"old", "new"} {
		cur = []Backend{{ID: id, Addr: addr}}
		rec := httptest.NewRecorder()
		fd.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://front/", nil))
		require.Equal(t, http.StatusOK, rec.Code)
	}
	fd.Forget("old", "unknown")
	assert.Equal(t, []string{"new"}, keys(fd.BackendStats()))
	assert.Equal(t, 1, entries(&fd.inflight), "the address's state is the new backend's")
	fd.Forget("new")
	assert.Zero(t, entries(&fd.inflight))
	assert.Empty(t, fd.BackendStats())
}

func keys(m map[string]BackendStats) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
