package heal_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/heal"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newServer(t *testing.T, cfg heal.MiddlewareConfig, h http.Handler) (*heal.Middleware, *httptest.Server) {
	t.Helper()
	m, err := heal.NewMiddleware(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(m.Wrap(h))
	t.Cleanup(srv.Close)
	return m, srv
}

// newServerWith serves an empty handler behind m.
func newServerWith(t *testing.T, m *heal.Middleware) (*heal.Middleware, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(m.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	t.Cleanup(srv.Close)
	return m, srv
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func TestNewMiddlewareErrors(t *testing.T) {
	tests := []struct {
		give heal.MiddlewareConfig
		want string
	}{
		{heal.MiddlewareConfig{MaxConcurrent: -2}, "MaxConcurrent"},
		{heal.MiddlewareConfig{Rate: -1}, "Rate"},
		{heal.MiddlewareConfig{Timeout: -1}, "Timeout"},
		{heal.MiddlewareConfig{RetryAfter: -1}, "RetryAfter"},
		{heal.MiddlewareConfig{Window: -1}, "Window"},
	}
	for _, tt := range tests {
		_, err := heal.NewMiddleware(tt.give)
		require.ErrorIs(t, err, heal.ErrInvalidConfig)
		var ce *heal.ConfigError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "MiddlewareConfig."+tt.want, ce.Field)
	}
}

func TestMiddlewareRecoversPanics(t *testing.T) {
	var logs syncBuffer
	m, srv := newServer(t, heal.MiddlewareConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/panic":
				panic("kaboom")
			case "/late-panic":
				w.WriteHeader(http.StatusAccepted)
				panic("after writing")
			case "/abort":
				panic(http.ErrAbortHandler)
			}
			_, _ = io.WriteString(w, "fine")
		}))
	c := srv.Client()

	resp, _ := get(t, c, srv.URL+"/panic")
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.Contains(t, logs.String(), "kaboom")
	assert.Contains(t, logs.String(), "middleware_test.go") // the stack
	assert.Contains(t, logs.String(), "http.request.method=GET url.path=/panic")

	resp, body := get(t, c, srv.URL+"/ok")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "fine", body)

	resp, _ = get(t, c, srv.URL+"/late-panic")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)

	// http.ErrAbortHandler aborts the response, as net/http intends.
	_, err := c.Get(srv.URL + "/abort")
	assert.Error(t, err)

	s := m.Snapshot()
	assert.EqualValues(t, 2, s.Panics)
	assert.GreaterOrEqual(t, s.Served, int64(4)) // the client may retry the aborted GET
	assert.Equal(t, 0, s.InFlight)
}

// A nil Logger means no logging, as everywhere in selfheal: not slog.Default. The
// panic is still counted. (Not parallel: it replaces the default logger.)
func TestMiddlewareNilLoggerLogsNothing(t *testing.T) {
	var logs syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	m, srv := newServer(t, heal.MiddlewareConfig{}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("kaboom")
	}))
	resp, _ := get(t, srv.Client(), srv.URL+"/panic")
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.EqualValues(t, 1, m.Snapshot().Panics)
	assert.Empty(t, logs.String())
}

func TestMiddlewareShedsByConcurrency(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	m, srv := newServer(t, heal.MiddlewareConfig{MaxConcurrent: 1, RetryAfter: 1500 * time.Millisecond},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/block" {
				entered <- struct{}{}
				<-release
			}
		}))
	c := srv.Client()
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := c.Get(srv.URL + "/block")
		if assert.NoError(t, err) {
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
		}
	}()
	<-entered
	s := m.Snapshot()
	assert.Equal(t, 1, s.InFlight)
	assert.Equal(t, 1, s.Limit)
	assert.Equal(t, 100.0, s.Utilization)

	resp, _ := get(t, c, srv.URL+"/other")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "2", resp.Header.Get("Retry-After"))
	close(release)
	<-done

	s = m.Snapshot()
	assert.EqualValues(t, 1, s.Shed)
	assert.EqualValues(t, 1, s.ShedTotal)
	assert.EqualValues(t, 1, s.Served)
	resp, _ = get(t, c, srv.URL+"/other")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestMiddlewareShedsByRate(t *testing.T) {
	m, srv := newServer(t, heal.MiddlewareConfig{Rate: 0.5, Burst: 1},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	c := srv.Client()
	resp, _ := get(t, c, srv.URL)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = get(t, c, srv.URL)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	// The next token is at most 2s away (less if this machine was slow).
	assert.Contains(t, []string{"1", "2"}, resp.Header.Get("Retry-After"))
	assert.EqualValues(t, 1, m.Snapshot().Shed)
}

func TestMiddlewareRatePerKey(t *testing.T) {
	_, srv := newServer(t, heal.MiddlewareConfig{Rate: 0.1, Burst: 1,
		RateKey: func(r *http.Request) string { return r.Header.Get("X-Client") }},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	do := func(client string) int {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		req.Header.Set("X-Client", client)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, do("a"))
	assert.Equal(t, http.StatusOK, do("b"))
	assert.Equal(t, http.StatusTooManyRequests, do("a"))
}

func TestMiddlewareExempt(t *testing.T) {
	m, srv := newServer(t, heal.MiddlewareConfig{Rate: 0.1, Burst: 1,
		Exempt: func(r *http.Request) bool { return r.URL.Path == "/livez" }},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 3 {
		resp, _ := get(t, srv.Client(), srv.URL+"/livez")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Zero(t, m.Snapshot().Served)
}

func TestMiddlewareTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := heal.NewMiddleware(heal.MiddlewareConfig{Timeout: time.Second})
		require.NoError(t, err)
		h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/slow":
				<-r.Context().Done()
			case "/wrote":
				w.WriteHeader(http.StatusAccepted)
				time.Sleep(2 * time.Second) // deaf to its context
			}
		}))
		tests := []struct {
			path    string
			want    int
			elapsed time.Duration
		}{
			{"/slow", http.StatusServiceUnavailable, time.Second},
			{"/wrote", http.StatusAccepted, time.Second}, // and, the handler still running, the connection is aborted
			{"/fast", http.StatusOK, 0},
		}
		for _, tt := range tests {
			rec := httptest.NewRecorder()
			start := time.Now()
			serve := func() { h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil)) }
			if tt.path == "/wrote" {
				assert.PanicsWithValue(t, http.ErrAbortHandler, serve)
			} else {
				serve()
			}
			assert.Equal(t, tt.want, rec.Code, tt.path)
			assert.Equal(t, tt.elapsed, time.Since(start), tt.path)
		}
		time.Sleep(2 * time.Second) // the deaf handler returns
		s := m.Snapshot()
		assert.EqualValues(t, 3, s.Served)
		assert.InEpsilon(t, float64(time.Second), float64(s.P99), 0.04)
	})
}

func TestMiddlewareAdaptiveLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		alg, err := heal.NewAIMD(heal.AIMDConfig{InitialLimit: 1, MinLimit: 1, MaxLimit: 1})
		require.NoError(t, err)
		lim := heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{Algorithm: alg})
		m, err := heal.NewMiddleware(heal.MiddlewareConfig{Limit: lim})
		require.NoError(t, err)
		release := make(chan struct{})
		h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
		go h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		synctest.Wait()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Equal(t, "1", rec.Header().Get("Retry-After"))
		assert.Equal(t, 100.0, m.Snapshot().Utilization)
		close(release)
		synctest.Wait()
		assert.Equal(t, 0, lim.InFlight())
	})
}

func TestMiddlewareStreamsAndHijacks(t *testing.T) {
	_, srv := newServer(t, heal.MiddlewareConfig{},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/stream":
				f, ok := w.(http.Flusher)
				if !assert.True(t, ok) {
					return
				}
				_, _ = io.WriteString(w, "a")
				f.Flush()
				_, _ = w.(io.ReaderFrom).ReadFrom(strings.NewReader("b"))
				require.NoError(t, http.NewResponseController(w).Flush())
			case "/hijack":
				conn, brw, err := http.NewResponseController(w).Hijack()
				if !assert.NoError(t, err) {
					return
				}
				defer conn.Close()
				_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
				_ = brw.Flush()
			}
		}))
	resp, body := get(t, srv.Client(), srv.URL+"/stream")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ab", body)

	resp, body = get(t, srv.Client(), srv.URL+"/hijack")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "hi", body)
}
