package heal_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

// blockingServer answers with handle, whose handler may block on release; release
// is closed before the server closes.
func blockingServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, release <-chan struct{})) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handle(w, r, release)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv
}

// A 503 whose body trickles (or never ends) does not hold the caller: the failed
// attempt's body is drained for at most DrainTimeout before the retry, and the caller
// gets the last 503 as a plain client would. It held the caller past 8s.
func TestTransportDrainOfASlowBodyIsBounded(t *testing.T) {
	var attempts atomic.Int32
	srv := blockingServer(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		attempts.Add(1)
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "0123456789")
		_ = http.NewResponseController(w).Flush()
		select { // the rest of the body never comes
		case <-release:
		case <-r.Context().Done():
		}
	})
	c, _ := newClient(t, heal.TransportConfig{Retry: retry.Config{MaxAttempts: 2,
		Backoff: retry.Constant(time.Millisecond)}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	begin := time.Now()
	resp, err := c.Do(req)
	require.NoError(t, err, "the drain held the caller until its deadline")
	defer resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.EqualValues(t, 2, attempts.Load())
	assert.Less(t, time.Since(begin), 3*time.Second)
}

// The drain is bounded in bytes too: with MaxDrain Off the body is closed unread.
func TestTransportDrainConfig(t *testing.T) {
	for _, tt := range []struct {
		give  heal.TransportConfig
		field string
	}{
		{heal.TransportConfig{MaxDrain: -2}, "TransportConfig.MaxDrain"},
		{heal.TransportConfig{DrainTimeout: -2}, "TransportConfig.DrainTimeout"},
		{heal.TransportConfig{ResponseHeaderTimeout: -2}, "TransportConfig.ResponseHeaderTimeout"},
		{heal.TransportConfig{Retry: retry.Config{Classify: retry.DefaultClassify}}, "TransportConfig.Retry.Classify"},
		{heal.TransportConfig{Breaker: breaker.GroupConfig{Breaker: breaker.Config{Classify: breaker.DefaultClassify}}},
			"TransportConfig.Breaker.Breaker.Classify"},
		{heal.TransportConfig{Retry: retry.Config{AttemptTimeout: time.Second}}, "TransportConfig.Retry.AttemptTimeout"},
	} {
		_, err := heal.NewTransport(tt.give)
		require.ErrorIs(t, err, heal.ErrInvalidConfig, tt.field)
		var ce *heal.ConfigError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, tt.field, ce.Field)
	}
	for _, cfg := range []heal.TransportConfig{{MaxDrain: heal.Off}, {DrainTimeout: heal.Off}, {ResponseHeaderTimeout: heal.Off}} {
		_, err := heal.NewTransport(cfg)
		assert.NoError(t, err)
	}
}

// A server that never sends its headers fails the request after the
// ResponseHeaderTimeout of the default Base (30s when zero: see the internal test).
func TestTransportResponseHeaderTimeout(t *testing.T) {
	srv := blockingServer(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c, _ := newClient(t, heal.TransportConfig{ResponseHeaderTimeout: 50 * time.Millisecond, Retry: retry.Config{MaxAttempts: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	_, err = c.Do(req)
	require.Error(t, err)
	assert.ErrorContains(t, err, "timeout awaiting response headers")
	assert.NoError(t, ctx.Err())
}

// 501 and 505 say the same on every attempt: they are returned at once, not retried,
// and do not count against the host's breaker; other 5xx are retried.
func TestTransportDoesNotRetry501And505(t *testing.T) {
	for _, tt := range []struct {
		code     int
		attempts int32
	}{
		{http.StatusNotImplemented, 1},
		{http.StatusHTTPVersionNotSupported, 1},
		{http.StatusInternalServerError, 3},
		{http.StatusTooManyRequests, 3},
	} {
		f := &flaky{fail: 100, code: tt.code}
		srv := f.start(t)
		c, tr := newClient(t, heal.TransportConfig{})
		resp, body := get(t, c, srv.URL)
		assert.Equal(t, tt.code, resp.StatusCode)
		assert.Len(t, body, 1000)
		assert.Equal(t, tt.attempts, f.attempts.Load(), tt.code)
		counts := tr.Snapshot()[0].Counts
		if tt.attempts == 1 {
			assert.Zero(t, counts.Failures, tt.code)
			assert.EqualValues(t, 1, counts.Excluded, tt.code)
		} else {
			assert.EqualValues(t, tt.attempts, counts.Failures, tt.code)
		}
	}
}

// Classify sees each attempt's *http.Response.
func TestTransportClassifiesResponses(t *testing.T) {
	f := &flaky{fail: 1, code: http.StatusNotFound}
	srv := f.start(t)
	var seen atomic.Int32
	c, _ := newClient(t, heal.TransportConfig{Classify: func(result any, err error) selfheal.Outcome {
		if resp, ok := result.(*http.Response); ok && resp.StatusCode == http.StatusNotFound {
			seen.Add(1)
			return selfheal.Failure // a 404 that a replica will fix
		}
		return heal.DefaultTransportClassify(result, err)
	}})
	resp, body := get(t, c, srv.URL)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", body)
	assert.EqualValues(t, 1, seen.Load())
	assert.EqualValues(t, 2, f.attempts.Load())
}

// The HTTP-date form of Retry-After, end to end: a real server answers 503 with
// "Retry-After: <date 3s ahead>", and the Transport's retry waits exactly until then
// (the bubble's clock is whole seconds, so the date is exact), not its backoff.
func TestTransportHonoursRetryAfterHTTPDate(t *testing.T) {
	var retryAt atomic.Value // string: the HTTP-date the server sends, from the bubble's clock
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			w.Header().Set("Retry-After", retryAt.Load().(string))
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	synctest.Test(t, func(t *testing.T) {
		begin := time.Now()
		retryAt.Store(begin.Add(3 * time.Second).UTC().Format(http.TimeFormat))
		var delay time.Duration
		tr, err := heal.NewTransport(heal.TransportConfig{
			// No idle connections: their reader goroutines would keep the bubble awake.
			Base:  &http.Transport{DisableKeepAlives: true},
			Retry: retry.Config{OnRetry: func(_ context.Context, _ int, _ error, d time.Duration) { delay = d }},
		})
		require.NoError(t, err)
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "ok", string(body))
		assert.Equal(t, 3*time.Second, delay)
		assert.Equal(t, 3*time.Second, time.Since(begin))
		assert.EqualValues(t, 2, attempts.Load())
	})
}
