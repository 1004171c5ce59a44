package heal_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/internal/oteltest"
)

// A goroutine started by a handler keeps its ResponseWriter after the handler
// returned, and writes to it while other requests are served: its bytes must reach
// nobody (the write fails with ErrResponseDone), and must never crash the server.
// With pooled writers, a victim received the leaker's secret before its own body.
func TestMiddlewareLateWritesReachNobody(t *testing.T) {
	t.Run("inline", func(t *testing.T) { testLateWrites(t, heal.MiddlewareConfig{}) })
	t.Run("with timeout", func(t *testing.T) { testLateWrites(t, heal.MiddlewareConfig{Timeout: time.Minute}) })
}

func testLateWrites(t *testing.T, cfg heal.MiddlewareConfig) {
	var (
		mu      sync.Mutex
		pending = map[string]http.ResponseWriter{} // the handler has not returned yet
		leaked  = map[string]http.ResponseWriter{} // its client got the response
	)
	lateErrs := make(chan error, 1000)
	_, srv := newServer(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		switch r.URL.Path {
		case "/leak":
			mu.Lock()
			pending[id] = w // as a goroutine started by the handler would hold it
			mu.Unlock()
			_, _ = io.WriteString(w, "leaker")
		case "/victim":
			// Every writer leaked so far is written to while this request is served.
			mu.Lock()
			ws := make([]http.ResponseWriter, 0, len(leaked))
			for _, lw := range leaked {
				ws = append(ws, lw)
			}
			mu.Unlock()
			for _, lw := range ws {
				lateErrs <- lateWrite(lw, "secret-of-another-client ")
			}
			_, _ = io.WriteString(w, "victim-"+id)
		}
	}))
	c := srv.Client()
	var wg sync.WaitGroup
	for worker := range 4 {
		wg.Go(func() {
			for round := range 10 {
				id := fmt.Sprintf("%d-%d", worker, round)
				resp, body := get(t, c, srv.URL+"/leak?id="+id)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, "leaker", body)
				mu.Lock()
				leaked[id] = pending[id] // its response is complete: from now on it is a late writer
				mu.Unlock()
				resp, body = get(t, c, srv.URL+"/victim?id="+id)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, "victim-"+id, body, "a victim received another request's bytes")
			}
		})
	}
	wg.Wait()
	close(lateErrs)
	n := 0
	for err := range lateErrs {
		n++
		require.ErrorIs(t, err, heal.ErrResponseDone)
	}
	assert.Positive(t, n)
}

// lateWrite writes s to w as a leaked goroutine would, turning a panic into an error.
func lateWrite(w http.ResponseWriter, s string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("late write panicked: %v", v)
		}
	}()
	w.Header().Set("X-Late", "1")
	_, err = io.WriteString(w, s)
	return err
}

// A handler that ignores its context does not hold the client past the Timeout: the
// client gets its 503 at the deadline (as from http.TimeoutHandler), and what the
// handler writes afterwards goes nowhere.
func TestMiddlewareTimeoutBoundsHandlerThatIgnoresContext(t *testing.T) {
	mp := oteltest.NewMeterProvider()
	release := make(chan struct{})
	late := make(chan error, 1)
	_, srv := newServer(t, heal.MiddlewareConfig{Timeout: 50 * time.Millisecond, MeterProvider: mp},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-release // ignores r.Context()
			w.Header().Set("X-Late", "1")
			_, err := io.WriteString(w, "late body")
			late <- err
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	close(release)
	require.NoError(t, err, "the client was held past the timeout")
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "request timed out\n", string(body))
	assert.Empty(t, resp.Header.Get("X-Late"))
	require.ErrorIs(t, <-late, http.ErrHandlerTimeout)
	assert.EqualValues(t, 1, mp.Int64Sum("selfheal.heal.server.timeouts", attribute.String("selfheal.policy.name", "server")))
}

// A handler that started its response and then ignores its deadline has its
// connection aborted at the deadline: the client sees an incomplete response, not a
// truncated one that looks whole.
func TestMiddlewareTimeoutAbortsAStartedResponse(t *testing.T) {
	release := make(chan struct{})
	done := make(chan struct{})
	_, srv := newServer(t, heal.MiddlewareConfig{Timeout: 50 * time.Millisecond},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(done)
			_, _ = io.WriteString(w, "partial")
			http.NewResponseController(w).Flush()
			<-release
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	close(release)
	<-done
	require.Error(t, err, "the response must not look complete")
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the client was held past the timeout")
}

// The panics and timeouts counters count each recovered panic and each timeout.
func TestMiddlewarePanicAndTimeoutCounters(t *testing.T) {
	mp := oteltest.NewMeterProvider()
	_, srv := newServer(t, heal.MiddlewareConfig{Timeout: 50 * time.Millisecond, MeterProvider: mp,
		Logger: slog.New(slog.DiscardHandler)},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/panic":
				panic("kaboom")
			case "/slow":
				<-r.Context().Done()
			}
		}))
	c := srv.Client()
	for _, tt := range []struct {
		path string
		want int
	}{{"/panic", 500}, {"/panic", 500}, {"/slow", 503}, {"/ok", 200}} {
		resp, _ := get(t, c, srv.URL+tt.path)
		assert.Equal(t, tt.want, resp.StatusCode, tt.path)
	}
	server := attribute.String("selfheal.policy.name", "server")
	assert.EqualValues(t, 2, mp.Int64Sum("selfheal.heal.server.panics", server))
	assert.EqualValues(t, 1, mp.Int64Sum("selfheal.heal.server.timeouts", server))
}

// With a Timeout the handler writes to headers of its own until it starts the
// response: they reach the client when it writes, and when it returns without
// writing; never after the deadline.
func TestMiddlewareTimeoutKeepsTheHandlersHeaders(t *testing.T) {
	_, srv := newServer(t, heal.MiddlewareConfig{Timeout: time.Minute},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", r.URL.Path)
			if r.URL.Path == "/write" {
				w.WriteHeader(http.StatusCreated)
			}
		}))
	for _, tt := range []struct {
		path string
		code int
	}{{"/write", http.StatusCreated}, {"/silent", http.StatusOK}} {
		resp, _ := get(t, srv.Client(), srv.URL+tt.path)
		assert.Equal(t, tt.code, resp.StatusCode)
		assert.Equal(t, tt.path, resp.Header.Get("X-Handler"))
	}
}
