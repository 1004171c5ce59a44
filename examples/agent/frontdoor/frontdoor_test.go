package frontdoor_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal/examples/agent/frontdoor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func backend(t *testing.T, name string, h http.HandlerFunc) frontdoor.Backend {
	t.Helper()
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %s", name, r.Method, b)
		}
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return frontdoor.Backend{ID: name, Addr: strings.TrimPrefix(s.URL, "http://")}
}

// dropper accepts connections and closes them at once: an instance that dies.
func dropper(t *testing.T) frontdoor.Backend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return frontdoor.Backend{ID: "dropper", Addr: l.Addr().String()}
}

func serve(t *testing.T, fd *frontdoor.FrontDoor, method, body string, hdr ...string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, "http://front/x", strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	fd.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestRetriesIdempotentOnAnotherInstance(t *testing.T) {
	good := backend(t, "good", nil)
	bad := dropper(t)
	tests := []struct {
		name     string
		method   string
		hdr      []string
		wantCode int
	}{
		{"GET is retried", http.MethodGet, nil, 200},
		{"PUT is retried with its body", http.MethodPut, nil, 200},
		{"POST is not retried", http.MethodPost, nil, 502},
		{"POST with an Idempotency-Key is retried", http.MethodPost, []string{"Idempotency-Key", "k1"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The dropper comes first in every pick: fresh front door, no ejection.
			fd, err := frontdoor.New(frontdoor.Config{Backends: func() []frontdoor.Backend { return []frontdoor.Backend{bad, good} }})
			require.NoError(t, err)
			defer fd.CloseIdleConnections()
			codes := map[int]int{}
			for range 4 {
				code, body := serve(t, fd, tt.method, "payload", tt.hdr...)
				codes[code]++
				if code == 200 {
					assert.Equal(t, "good "+tt.method+" payload", body)
				}
			}
			assert.Positive(t, codes[tt.wantCode], "%v", codes)
			if tt.wantCode == 200 {
				assert.Equal(t, 4, codes[200])
			}
		})
	}
}

func TestRetriesA503(t *testing.T) {
	draining := backend(t, "draining", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "draining", http.StatusServiceUnavailable)
	})
	good := backend(t, "good", nil)
	fd, err := frontdoor.New(frontdoor.Config{Backends: func() []frontdoor.Backend { return []frontdoor.Backend{draining, good} }})
	require.NoError(t, err)
	defer fd.CloseIdleConnections()
	for range 4 {
		code, _ := serve(t, fd, http.MethodGet, "")
		assert.Equal(t, 200, code)
	}
	assert.Positive(t, fd.Stats().Retries)
}

func TestTimeoutMovesOn(t *testing.T) {
	release := make(chan struct{})
	hung := backend(t, "hung", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	good := backend(t, "good", nil)
	fd, err := frontdoor.New(frontdoor.Config{AttemptTimeout: 100 * time.Millisecond,
		Backends: func() []frontdoor.Backend { return []frontdoor.Backend{hung, good} }})
	require.NoError(t, err)
	defer fd.CloseIdleConnections()
	for range 3 {
		code, _ := serve(t, fd, http.MethodGet, "")
		assert.Equal(t, 200, code)
	}
}

func TestNoBackend(t *testing.T) {
	fd, err := frontdoor.New(frontdoor.Config{Backends: func() []frontdoor.Backend { return nil }})
	require.NoError(t, err)
	code, body := serve(t, fd, http.MethodGet, "")
	assert.Equal(t, 503, code)
	assert.Contains(t, body, "no ready instance")
	assert.Equal(t, int64(1), fd.Stats().NoBackend)
	_, err = frontdoor.New(frontdoor.Config{})
	assert.Error(t, err)
}

func TestSpreadsLoad(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	var bs []frontdoor.Backend
	for _, n := range []string{"a", "b", "c"} {
		bs = append(bs, backend(t, n, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits[n]++
			mu.Unlock()
		}))
	}
	fd, err := frontdoor.New(frontdoor.Config{Backends: func() []frontdoor.Backend { return bs }})
	require.NoError(t, err)
	defer fd.CloseIdleConnections()
	for range 30 {
		serve(t, fd, http.MethodGet, "")
	}
	for _, n := range []string{"a", "b", "c"} {
		assert.Positive(t, hits[n], n)
	}
}

func ExampleFrontDoor() {
	inst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer inst.Close()
	fd, _ := frontdoor.New(frontdoor.Config{Backends: func() []frontdoor.Backend {
		return []frontdoor.Backend{{ID: "web-1", Addr: strings.TrimPrefix(inst.URL, "http://")}}
	}})
	defer fd.CloseIdleConnections()
	rec := httptest.NewRecorder()
	fd.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// 200 hello
}
