package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, version string) (addr string, crashed chan struct{}) {
	t.Helper()
	addr, crashed, _ = startDrain(t, version, 0)
	return addr, crashed
}

// startDrain is start with a drain; stop ends serve's context.
func startDrain(t *testing.T, version string, drain time.Duration) (addr string, crashed chan struct{}, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	crashed = make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, ln, version, drain, func() { crashed <- struct{}{} }) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-errc)
		http.DefaultClient.CloseIdleConnections()
	})
	return ln.Addr().String(), crashed, cancel
}

func call(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestFaults(t *testing.T) {
	addr, crashed := start(t, "v1")
	base := "http://" + addr
	tests := []struct {
		name          string
		fault         string
		livez, readyz int
		status        string
		crash         bool
	}{
		{"healthy", "", 200, 200, "pass", false},
		{"degraded: only the document fails", "/fault/degrade", 200, 200, "fail", false},
		{"unhealthy", "/fault/unhealthy", 503, 503, "fail", false},
		{"crash", "/fault/crash", 503, 503, "fail", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault != "" {
				code, _ := call(t, http.MethodPost, base+tt.fault)
				assert.Equal(t, 200, code)
			}
			code, _ := call(t, http.MethodGet, base+"/livez")
			assert.Equal(t, tt.livez, code)
			code, _ = call(t, http.MethodGet, base+"/readyz")
			assert.Equal(t, tt.readyz, code)
			_, body := call(t, http.MethodGet, base+"/health")
			var doc struct{ Status, Version string }
			require.NoError(t, json.Unmarshal([]byte(body), &doc))
			assert.Equal(t, tt.status, doc.Status)
			assert.Equal(t, "v1", doc.Version)
			if tt.crash {
				select {
				case <-crashed:
				default:
					t.Fatal("crash was not called")
				}
			}
		})
	}
}

func TestBadVersionIsUnhealthyFromTheStart(t *testing.T) {
	addr, _ := start(t, "v2-bad")
	code, _ := call(t, http.MethodGet, "http://"+addr+"/livez")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	_, body := call(t, http.MethodGet, "http://"+addr+"/")
	assert.True(t, strings.Contains(body, "v2-bad"), body)
}

func TestMalformedDocument(t *testing.T) {
	addr, _ := start(t, "v1")
	call(t, http.MethodPost, "http://"+addr+"/fault/baddoc")
	code, _ := call(t, http.MethodGet, "http://"+addr+"/livez")
	assert.Equal(t, http.StatusOK, code, "liveness still passes: only a reader of the document notices")
	_, body := call(t, http.MethodGet, "http://"+addr+"/health")
	var doc map[string]any
	assert.Error(t, json.Unmarshal([]byte(body), &doc))
}

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/livez" {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	t.Setenv("PROBE_TEST_BASE", srv.URL)
	tests := []struct {
		give string
		want int
	}{
		{"$PROBE_TEST_BASE/livez", 0},
		{"$PROBE_TEST_BASE/readyz", 1},
		{"http://127.0.0.1:1/livez", 1},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, probeURL(os.ExpandEnv(tt.give)), tt.give)
	}
}

// TestDrain: once stopped, the instance keeps serving with readiness failing for its
// drain, then closes its listener.
func TestDrain(t *testing.T) {
	addr, _, stop := startDrain(t, "v1", 300*time.Millisecond)
	base := "http://" + addr
	code, _ := call(t, http.MethodGet, base+"/readyz")
	require.Equal(t, http.StatusOK, code)
	stopped := time.Now()
	stop()
	require.Eventually(t, func() bool {
		code, _ := call(t, http.MethodGet, base+"/readyz")
		return code == http.StatusServiceUnavailable
	}, time.Second, 5*time.Millisecond, "readiness fails while draining")
	code, _ = call(t, http.MethodGet, base+"/")
	assert.Equal(t, http.StatusOK, code, "still serving while draining")
	assert.Less(t, time.Since(stopped), 300*time.Millisecond, "the checks above ran within the drain")
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 2*time.Second, 10*time.Millisecond, "the listener closes after the drain")
	assert.GreaterOrEqual(t, time.Since(stopped), 300*time.Millisecond, "closed after the drain, not before")
}
