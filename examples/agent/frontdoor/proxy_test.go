package frontdoor_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/frontdoor"
)

func one(b frontdoor.Backend) func() []frontdoor.Backend {
	return func() []frontdoor.Backend { return []frontdoor.Backend{b} }
}

func TestDropsHeadersListedInConnection(t *testing.T) {
	var got http.Header
	b := backend(t, "echo", func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Connection", "X-Internal-Hop")
		w.Header().Set("X-Internal-Hop", "backend secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
	})
	fd, err := frontdoor.New(frontdoor.Config{Backends: one(b)})
	require.NoError(t, err)
	defer fd.CloseIdleConnections()
	req := httptest.NewRequest(http.MethodGet, "http://front/x", nil)
	req.Header.Add("Connection", "X-Hop-One, x-hop-two")
	req.Header.Add("Connection", "keep-alive")
	req.Header.Set("X-Hop-One", "1")
	req.Header.Set("X-Hop-Two", "2")
	req.Header.Set("Keep-Alive", "300")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("X-End-To-End", "kept")
	rec := httptest.NewRecorder()
	fd.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	for _, h := range []string{"Connection", "X-Hop-One", "X-Hop-Two", "Keep-Alive", "Proxy-Authorization"} {
		assert.Empty(t, got.Values(h), "request header %s reached the backend", h)
	}
	assert.Equal(t, "kept", got.Get("X-End-To-End"))
	for _, h := range []string{"Connection", "X-Internal-Hop", "Keep-Alive"} {
		assert.Empty(t, rec.Header().Values(h), "response header %s reached the client", h)
	}
	assert.Equal(t, "yes", rec.Header().Get("X-Kept"))
}

func TestAppendsToXForwardedFor(t *testing.T) {
	var got []string
	b := backend(t, "echo", func(w http.ResponseWriter, r *http.Request) { got = r.Header.Values("X-Forwarded-For") })
	fd, err := frontdoor.New(frontdoor.Config{Backends: one(b)})
	require.NoError(t, err)
	defer fd.CloseIdleConnections()

	code, _ := serve(t, fd, http.MethodGet, "")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, []string{"192.0.2.1"}, got, "httptest.NewRequest comes from 192.0.2.1")

	code, _ = serve(t, fd, http.MethodGet, "", "X-Forwarded-For", "203.0.113.9")
	require.Equal(t, http.StatusOK, code)
	// One field: a backend that reads the first value does not get the client's
	// claim as if it were the front door's; the last address is the one it saw.
	assert.Equal(t, []string{"203.0.113.9, 192.0.2.1"}, got)
}

func TestRefusesCONNECT(t *testing.T) {
	var hits atomic.Int32
	b := backend(t, "b", func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	fd, err := frontdoor.New(frontdoor.Config{Backends: one(b)})
	require.NoError(t, err)
	defer fd.CloseIdleConnections()
	srv := httptest.NewServer(fd)
	defer srv.Close()
	req, err := http.NewRequest(http.MethodConnect, srv.URL, nil)
	require.NoError(t, err)
	req.Host = "internal.example:22"
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Zero(t, hits.Load(), "nothing reached a backend")
}

func TestCapsRequestBodies(t *testing.T) {
	var received atomic.Int64
	b := backend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		received.Add(n)
	})
	fd, err := frontdoor.New(frontdoor.Config{Backends: one(b), MaxRequestBody: 1 << 10})
	require.NoError(t, err)
	defer fd.CloseIdleConnections()
	srv := httptest.NewServer(fd)
	defer srv.Close()
	big := strings.Repeat("x", 4<<10)
	for _, tt := range []struct {
		name    string
		method  string
		chunked bool
	}{
		{"POST with a length", http.MethodPost, false},
		{"POST chunked", http.MethodPost, true},
		{"PUT (buffered for a retry) chunked", http.MethodPut, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(big)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: chunked encoding
			}
			req, err := http.NewRequest(tt.method, srv.URL+"/upload", body)
			require.NoError(t, err)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		})
	}
	assert.Less(t, received.Load(), int64(len(big)), "no backend got a whole oversized body")
	code, _ := serve(t, fd, http.MethodPost, strings.Repeat("y", 1<<10))
	assert.Equal(t, http.StatusOK, code, "a body of MaxRequestBody passes")
}

func TestBoundsABackendsResponseTime(t *testing.T) {
	// Headers never come: with a transport of the caller's (no timeouts of its
	// own), AttemptTimeout still ends the attempt.
	silent := backend(t, "silent", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	fd, err := frontdoor.New(frontdoor.Config{Backends: one(silent), Transport: tr, AttemptTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	t0 := time.Now()
	code, body := serveWithin(t, fd, http.MethodPost)
	assert.Equal(t, http.StatusGatewayTimeout, code, body)
	assert.Less(t, time.Since(t0), 2*time.Second)

	// Headers come, the body trickles forever: ResponseTimeout cuts it, and the
	// client sees a broken response rather than a short one that looks whole.
	trickle := backend(t, "trickle", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		for {
			if _, err := io.WriteString(w, "."); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	fd2, err := frontdoor.New(frontdoor.Config{Backends: one(trickle), ResponseTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	defer fd2.CloseIdleConnections()
	srv := httptest.NewServer(fd2)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	t0 = time.Now()
	resp, err := srv.Client().Do(req)
	if err == nil { // the headers made it out of the front door's buffer
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	require.Error(t, err, "the cut body is reported to the client")
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the front door cut it, not the client's own deadline")
	assert.Less(t, time.Since(t0), 2*time.Second)
}

// serveWithin serves one request through a real server, with a client deadline
// of 5 s so that a front door without a bound fails the test instead of hanging it.
func serveWithin(t *testing.T, fd *frontdoor.FrontDoor, method string) (int, string) {
	t.Helper()
	srv := httptest.NewServer(fd)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL, nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestErrorBodiesNameNoBackend(t *testing.T) {
	bad := dropper(t)
	fd, err := frontdoor.New(frontdoor.Config{Backends: one(bad)})
	require.NoError(t, err)
	defer fd.CloseIdleConnections()
	code, body := serve(t, fd, http.MethodPost, "x")
	assert.Equal(t, http.StatusBadGateway, code)
	assert.NotContains(t, body, bad.Addr)
	assert.NotContains(t, body, "127.0.0.1")
	assert.NotContains(t, body, "dial")
	assert.Equal(t, "frontdoor: no instance could answer\n", body)
}
