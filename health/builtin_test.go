package health_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/health"
)

func TestHTTPGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			assert.Equal(t, "yes", r.Header.Get("X-Probe"))
			_, _ = w.Write([]byte("fine"))
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	hdr := http.Header{"X-Probe": {"yes"}}

	tests := []struct {
		give     health.HTTPConfig
		wantFail string
	}{
		{give: health.HTTPConfig{URL: srv.URL + "/ok", Header: hdr}},
		{give: health.HTTPConfig{URL: srv.URL + "/down"}, wantFail: "status 503, want 200-299"},
		{give: health.HTTPConfig{URL: srv.URL + "/redirect"}, wantFail: "status 302"},
		{give: health.HTTPConfig{URL: srv.URL + "/redirect", MinStatus: 200, MaxStatus: 399}},
		{give: health.HTTPConfig{URL: srv.URL + "/teapot", MinStatus: 418, MaxStatus: 418}},
	}
	for _, tt := range tests {
		t.Run(tt.give.URL, func(t *testing.T) {
			check, err := health.HTTPGet(tt.give)
			require.NoError(t, err)
			err = check(ctx)
			if tt.wantFail == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tt.wantFail)
			}
		})
	}

	for _, bad := range []struct {
		give      health.HTTPConfig
		wantField string
	}{
		{health.HTTPConfig{}, "HTTPConfig.URL"},
		{health.HTTPConfig{URL: "::nope"}, "HTTPConfig.URL"},
		{health.HTTPConfig{URL: srv.URL, MinStatus: 500, MaxStatus: 200}, "HTTPConfig.MaxStatus"},
		{health.HTTPConfig{URL: srv.URL, MinStatus: -1}, "HTTPConfig.MinStatus"},
		{health.HTTPConfig{URL: srv.URL, MaxStatus: -1}, "HTTPConfig.MaxStatus"},
		{health.HTTPConfig{URL: srv.URL, MaxStatus: 600}, "HTTPConfig.MaxStatus"},
		{health.HTTPConfig{URL: srv.URL, MinStatus: 99}, "HTTPConfig.MinStatus"},
	} {
		_, err := health.HTTPGet(bad.give)
		assert.ErrorIs(t, err, health.ErrInvalidConfig)
		var ce *health.ConfigError
		if assert.ErrorAs(t, err, &ce) {
			assert.Equal(t, bad.wantField, ce.Field)
		}
	}

	// A server that went away.
	url := srv.URL + "/ok"
	check, err := health.HTTPGet(health.HTTPConfig{URL: url})
	require.NoError(t, err)
	srv.Close()
	assert.Error(t, check(ctx))
}

func TestTCPDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	ctx := context.Background()
	assert.NoError(t, health.TCPDial(addr, nil)(ctx))
	<-accepted
	require.NoError(t, ln.Close())
	err = health.TCPDial(addr, &net.Dialer{Timeout: 5 * time.Second})(ctx)
	assert.ErrorContains(t, err, "connection refused")
}

func TestDNSLookup(t *testing.T) {
	ctx := context.Background()
	// localhost resolves locally (/etc/hosts or the resolver's built-in rule).
	assert.NoError(t, health.DNSLookup("localhost", nil)(ctx))
	// A name not in /etc/hosts goes to the DNS server: here a closed loopback port,
	// so the lookup fails without leaving the machine.
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, "127.0.0.1:1")
	}}
	assert.NoError(t, health.DNSLookup("localhost", r)(ctx))
	assert.Error(t, health.DNSLookup("no-such-host.invalid", r)(ctx))
}

func TestRuntimeChecks(t *testing.T) {
	ctx := context.Background()
	obs, err := health.Goroutines(0)(ctx)
	require.NoError(t, err)
	n, ok := obs[0].ObservedValue.(int)
	require.True(t, ok)
	assert.GreaterOrEqual(t, n, 1)
	assert.Equal(t, "goroutines", obs[0].ObservedUnit)
	assert.Equal(t, health.StatusPass, obs[0].Status)
	obs, err = health.Goroutines(1)(ctx)
	require.NoError(t, err)
	assert.Equal(t, health.StatusFail, obs[0].Status)

	keep := make([]byte, 4<<20)
	obs, err = health.Heap(0)(ctx)
	require.NoError(t, err)
	heap, ok := obs[0].ObservedValue.(uint64)
	require.True(t, ok)
	assert.GreaterOrEqual(t, heap, uint64(len(keep)))
	assert.Equal(t, "bytes", obs[0].ObservedUnit)
	obs, err = health.Heap(1)(ctx)
	require.NoError(t, err)
	assert.Equal(t, health.StatusFail, obs[0].Status)
	runtime.KeepAlive(keep)

	// Registered under their keys, they make the entries the agent reads.
	reg := newRegistry(t,
		health.Check{Name: health.KeyGoroutines, Kinds: health.Liveness, Observe: health.Goroutines(0)},
		health.Check{Name: health.KeyHeap, Kinds: health.Liveness, Observe: health.Heap(0)},
	)
	doc := reg.Document(ctx)
	g, ok := doc.Find("runtime:goroutines", "")
	require.True(t, ok)
	assert.Equal(t, "goroutines", g.ObservedUnit)
	h, ok := doc.Find("runtime:heap", "")
	require.True(t, ok)
	assert.Equal(t, "bytes", h.ObservedUnit)
	assert.Equal(t, "system", h.ComponentType)
}

func TestHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hb := health.NewHeartbeat(10 * time.Second)
		reg := newRegistry(t, health.Check{Name: "job:heartbeat", Kinds: health.Liveness, CacheTTL: health.Off, Func: hb.Check})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { // a job that ticks every 5 s until it is stopped
			defer close(done)
			tk := time.NewTicker(5 * time.Second)
			defer tk.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
					hb.Beat()
				}
			}
		}()
		bg := context.Background()
		for range 6 {
			time.Sleep(5 * time.Second)
			synctest.Wait()
			assert.Equal(t, health.StatusPass, reg.Evaluate(bg, health.Liveness))
		}
		cancel() // the job stops ticking
		<-done
		time.Sleep(10 * time.Second)
		assert.Equal(t, health.StatusPass, reg.Evaluate(bg, health.Liveness))
		time.Sleep(time.Nanosecond)
		assert.Equal(t, health.StatusFail, reg.Evaluate(bg, health.Liveness))
		err := hb.Check(bg)
		assert.ErrorIs(t, err, health.ErrNoHeartbeat)
		assert.EqualError(t, err, "health: no heartbeat for 10s (max 10s)")
		obs, err := hb.Observe(bg)
		require.NoError(t, err)
		assert.Equal(t, health.StatusFail, obs[0].Status)
		assert.Equal(t, 10.000000001, obs[0].ObservedValue)
		assert.Equal(t, "s", obs[0].ObservedUnit)
		hb.Beat()
		assert.NoError(t, hb.Check(bg))
		obs, err = hb.Observe(bg)
		require.NoError(t, err)
		assert.Equal(t, health.StatusPass, obs[0].Status)
		assert.Equal(t, 0.0, obs[0].ObservedValue)

		// The default maximum interval is a minute.
		def := health.NewHeartbeat(0)
		time.Sleep(time.Minute)
		assert.NoError(t, def.Check(bg))
		time.Sleep(time.Second)
		assert.ErrorIs(t, def.Check(bg), health.ErrNoHeartbeat)
	})
}
