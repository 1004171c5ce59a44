package heal_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

// fastRetry retries quickly, so that tests on real servers stay fast.
var fastRetry = retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond})}

func newClient(t *testing.T, cfg heal.TransportConfig) (*http.Client, *heal.Transport) {
	t.Helper()
	if cfg.Retry.MaxAttempts == 0 {
		cfg.Retry = fastRetry
	}
	tr, err := heal.NewTransport(cfg)
	require.NoError(t, err)
	return &http.Client{Transport: tr}, tr
}

// flaky serves fail failures with status code, then successes; it counts attempts
// and new connections and records the bodies it got.
type flaky struct {
	fail     int32
	code     int
	header   http.Header
	attempts atomic.Int32
	conns    atomic.Int32
	mu       sync.Mutex
	bodies   []string
}

func (f *flaky) start(t *testing.T) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.attempts.Add(1)
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.bodies = append(f.bodies, string(b))
		f.mu.Unlock()
		if n <= f.fail {
			for k, v := range f.header {
				w.Header()[k] = v
			}
			w.WriteHeader(f.code)
			_, _ = io.WriteString(w, strings.Repeat("x", 1000)) // a body to drain
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestNewTransportErrors(t *testing.T) {
	_, err := heal.NewTransport(heal.TransportConfig{Retry: retry.Config{AttemptTimeout: time.Second}})
	assert.ErrorContains(t, err, "AttemptTimeout")
	_, err = heal.NewTransport(heal.TransportConfig{Retry: retry.Config{MaxAttempts: -1}})
	assert.ErrorContains(t, err, "MaxAttempts")
	_, err = heal.NewTransport(heal.TransportConfig{Breaker: breaker.GroupConfig{MaxKeys: -2}})
	assert.ErrorIs(t, err, breaker.ErrInvalidConfig)
}

func TestTransportRetriesIdempotent(t *testing.T) {
	f := &flaky{fail: 2, code: http.StatusBadGateway}
	srv := f.start(t)
	c, _ := newClient(t, heal.TransportConfig{})
	resp, body := get(t, c, srv.URL)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", body)
	assert.EqualValues(t, 3, f.attempts.Load())
	// The failed attempts' bodies were drained and closed: one connection served all.
	assert.EqualValues(t, 1, f.conns.Load())
}

func TestTransportReturnsLastFailedResponse(t *testing.T) {
	f := &flaky{fail: 100, code: http.StatusServiceUnavailable}
	srv := f.start(t)
	c, _ := newClient(t, heal.TransportConfig{})
	resp, body := get(t, c, srv.URL)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Len(t, body, 1000)
	assert.EqualValues(t, 3, f.attempts.Load())
	assert.EqualValues(t, 1, f.conns.Load())
}

func TestTransportNonIdempotent(t *testing.T) {
	tests := []struct {
		name         string
		header       string
		wantAttempts int32
		wantCode     int
	}{
		{"plain POST is sent once", "", 1, http.StatusInternalServerError},
		{"POST with Idempotency-Key is retried", "Idempotency-Key", 2, http.StatusOK},
		{"POST with X-Idempotency-Key is retried", "X-Idempotency-Key", 2, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &flaky{fail: 1, code: http.StatusInternalServerError}
			srv := f.start(t)
			c, _ := newClient(t, heal.TransportConfig{})
			req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("payload"))
			require.NoError(t, err)
			if tt.header != "" {
				req.Header.Set(tt.header, "k-1")
			}
			resp, err := c.Do(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			assert.Equal(t, tt.wantCode, resp.StatusCode)
			assert.Equal(t, tt.wantAttempts, f.attempts.Load())
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, b := range f.bodies {
				assert.Equal(t, "payload", b) // replayed through GetBody
			}
		})
	}
}

func TestTransportBodyWithoutGetBodyIsNotRetried(t *testing.T) {
	f := &flaky{fail: 1, code: http.StatusInternalServerError}
	srv := f.start(t)
	c, _ := newClient(t, heal.TransportConfig{})
	req, err := http.NewRequest(http.MethodPut, srv.URL, io.NopCloser(strings.NewReader("once")))
	require.NoError(t, err)
	req.GetBody = nil
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.EqualValues(t, 1, f.attempts.Load())
}

func TestTransportHonoursRetryAfter(t *testing.T) {
	f := &flaky{fail: 2, code: http.StatusServiceUnavailable, header: http.Header{"Retry-After": {"7"}}}
	srv := f.start(t)
	var delays []time.Duration
	rc := fastRetry
	rc.MaxServerDelay = 8 * time.Second
	rc.OnRetry = func(_ context.Context, _ int, err error, d time.Duration) {
		var se *heal.StatusError
		if assert.ErrorAs(t, err, &se) {
			assert.Equal(t, 7*time.Second, se.RetryAfter())
			assert.Equal(t, "heal: HTTP 503 Service Unavailable", se.Error())
		}
		delays = append(delays, d)
	}
	// The request's deadline ends before the 7s the server asks for: the transport
	// does not sleep to fail, the caller gets the 503 at once.
	c, _ := newClient(t, heal.TransportConfig{Retry: rc})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	begin := time.Now()
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Less(t, time.Since(begin), time.Second)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Empty(t, delays)
	assert.EqualValues(t, 1, f.attempts.Load())

	// Beyond MaxServerDelay the retries end at once too, deadline or not.
	rc.MaxServerDelay = 30 * time.Millisecond
	c, _ = newClient(t, heal.TransportConfig{Retry: rc})
	begin = time.Now()
	resp, _ = get(t, c, srv.URL)
	assert.Less(t, time.Since(begin), time.Second)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Empty(t, delays)
}

// resetServer accepts connections and resets them at once.
func resetServer(t *testing.T) (string, *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var n atomic.Int32
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close()
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return "http://" + ln.Addr().String(), &n
}

func TestTransportConnectionResetsOpenTheBreaker(t *testing.T) {
	url, conns := resetServer(t)
	f := &flaky{}
	healthy := f.start(t)
	c, tr := newClient(t, heal.TransportConfig{Breaker: breaker.GroupConfig{Breaker: breaker.Config{ConsecutiveFailures: 3, OpenDuration: time.Hour}}})

	_, err := c.Get(url)
	require.Error(t, err)
	assert.ErrorIs(t, err, retry.ErrExhausted)
	assert.EqualValues(t, 3, conns.Load())

	// The breaker of that host is open now: the next call fails fast, unsent.
	_, err = c.Get(url)
	assert.ErrorIs(t, err, breaker.ErrOpen)
	d, ok := heal.RetryAfter(err)
	assert.True(t, ok)
	assert.Greater(t, d, 59*time.Minute)
	assert.EqualValues(t, 3, conns.Load())

	// Other hosts are unaffected.
	resp, _ := get(t, c, healthy.URL)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	states := map[string]string{}
	for _, s := range tr.Snapshot() {
		states[s.Name] = s.State.String()
	}
	assert.Equal(t, map[string]string{
		"http/" + strings.TrimPrefix(url, "http://"):         "open",
		"http/" + strings.TrimPrefix(healthy.URL, "http://"): "closed",
	}, states)
}

func TestTransportHangingServer(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) })
	c, _ := newClient(t, heal.TransportConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	start := time.Now()
	_, err = c.Do(req)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 10*time.Second) // generous: the machine is loaded
}

func TestTransportRetriesDisabled(t *testing.T) {
	f := &flaky{fail: 1, code: http.StatusBadGateway}
	srv := f.start(t)
	c, _ := newClient(t, heal.TransportConfig{Retry: retry.Config{MaxAttempts: 1}})
	resp, _ := get(t, c, srv.URL)
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.EqualValues(t, 1, f.attempts.Load())
}

func TestTransportClosesBodyWhenBreakerOpen(t *testing.T) {
	c, tr := newClient(t, heal.TransportConfig{})
	tr.Breakers().Get("127.0.0.1:9").ForceOpen()
	body := &closeCounter{Reader: strings.NewReader("x")}
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:9/", body)
	require.NoError(t, err)
	_, err = c.Do(req)
	assert.ErrorIs(t, err, breaker.ErrOpen)
	assert.EqualValues(t, 1, body.closed.Load())
	assert.False(t, errors.Is(err, retry.ErrExhausted))
}

type closeCounter struct {
	io.Reader
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }
