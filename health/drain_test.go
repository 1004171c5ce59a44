package health_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/health"
)

// startServer serves h on a real loopback listener and returns the server, its base
// URL and a channel that receives Serve's error.
func startServer(t *testing.T, h http.Handler) (*http.Server, string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return srv, "http://" + ln.Addr().String(), served
}

// noKeepAlive leaves no idle connection (and no goroutine) behind.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func status(t *testing.T, client *http.Client, url string) int {
	t.Helper()
	resp, err := client.Get(url)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls cond every few milliseconds for up to 10 s (real network: no
// synctest) and reports whether it became true.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func TestDrainWithRealServer(t *testing.T) {
	reg := newRegistry(t, health.Check{Name: "self", Kinds: health.AllKinds, Func: pass})
	mux := http.NewServeMux()
	mux.Handle("/", reg.Handler(health.HandlerConfig{}))
	release := make(chan struct{})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = w.Write([]byte("done"))
	})
	srv, base, served := startServer(t, mux)
	client := noKeepAlive
	require.Equal(t, 200, status(t, client, base+"/readyz"))

	// An in-flight request that Shutdown must wait for.
	slowDone := make(chan int, 1)
	go func() {
		resp, err := client.Get(base + "/slow")
		if err != nil {
			slowDone <- 0
			return
		}
		resp.Body.Close()
		slowDone <- resp.StatusCode
	}()

	drained := make(chan error, 1)
	go func() {
		drained <- reg.Drain(context.Background(), srv, health.DrainConfig{Delay: 300 * time.Millisecond, ShutdownTimeout: 10 * time.Second})
	}()
	// Readiness fails at once; liveness keeps passing during the delay.
	require.True(t, waitFor(func() bool { return reg.Draining() }))
	assert.Equal(t, 503, status(t, client, base+"/readyz"))
	assert.Equal(t, 200, status(t, client, base+"/livez"))

	// Shutdown waits for the in-flight request.
	require.True(t, waitFor(func() bool {
		resp, err := client.Get(base + "/livez")
		if err != nil {
			return true // the listener is closed
		}
		resp.Body.Close()
		return false
	}))
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v before the in-flight request finished", err)
	default:
	}
	close(release)
	assert.Equal(t, 200, <-slowDone)
	require.NoError(t, <-drained)
	assert.ErrorIs(t, <-served, http.ErrServerClosed)
}

func TestDrainShutdownTimeout(t *testing.T) {
	reg := newRegistry(t)
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	srv, base, served := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	go func() {
		resp, err := noKeepAlive.Get(base + "/hang")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // skip the delay
	err := reg.Drain(ctx, srv, health.DrainConfig{Delay: time.Hour, ShutdownTimeout: 50 * time.Millisecond})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, <-served, http.ErrServerClosed)
}

func TestDrainWithoutServer(t *testing.T) {
	reg := newRegistry(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, reg.Drain(ctx, nil, health.DrainConfig{}))
	assert.True(t, reg.Draining())
}

// Negative durations other than Off are refused before anything changes.
func TestDrainInvalidConfig(t *testing.T) {
	reg := newRegistry(t)
	for _, tt := range []struct {
		give      health.DrainConfig
		wantField string
	}{
		{health.DrainConfig{Delay: -2}, "DrainConfig.Delay"},
		{health.DrainConfig{ShutdownTimeout: -time.Second}, "DrainConfig.ShutdownTimeout"},
	} {
		for name, drain := range map[string]func() error{
			"Drain":         func() error { return reg.Drain(context.Background(), nil, tt.give) },
			"DrainOnSignal": func() error { return reg.DrainOnSignal(context.Background(), nil, tt.give) },
		} {
			err := drain()
			assert.ErrorIs(t, err, health.ErrInvalidConfig, name)
			var ce *health.ConfigError
			require.ErrorAs(t, err, &ce, name)
			assert.Equal(t, tt.wantField, ce.Field, name)
			assert.False(t, reg.Draining(), name)
		}
	}
}

// Delay: zero waits DefaultDrainDelay, Off not at all.
func TestDrainDelayOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := newRegistry(t)
		start := time.Now()
		require.NoError(t, reg.Drain(context.Background(), nil, health.DrainConfig{Delay: health.Off}))
		assert.Equal(t, time.Duration(0), time.Since(start))
		assert.True(t, reg.Draining())
		require.NoError(t, reg.Drain(context.Background(), nil, health.DrainConfig{}))
		assert.Equal(t, health.DefaultDrainDelay, time.Since(start))
	})
}

// ShutdownTimeout: Off waits for the requests in flight however long they take.
func TestDrainShutdownTimeoutOff(t *testing.T) {
	reg := newRegistry(t)
	release := make(chan struct{})
	started := make(chan struct{})
	srv, base, served := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	}))
	got := make(chan int, 1)
	go func() {
		resp, err := noKeepAlive.Get(base + "/slow")
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-started
	drained := make(chan error, 1)
	go func() {
		drained <- reg.Drain(context.Background(), srv, health.DrainConfig{Delay: health.Off, ShutdownTimeout: health.Off})
	}()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v while a request was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-drained)
	assert.Equal(t, http.StatusOK, <-got)
	assert.ErrorIs(t, <-served, http.ErrServerClosed)
}
