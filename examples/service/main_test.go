package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal/health"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, version string, args ...string) (string, *http.Client, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o, err := parse(append([]string{"-addr", "127.0.0.1:0", "-fault-token", "secret", "-version", version, "-drain", "10ms"}, args...), io.Discard)
	require.NoError(t, err)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, o, slog.New(slog.DiscardHandler), ready) }()
	addr := <-ready
	tr := &http.Transport{}
	c := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	return "http://" + addr, c, func() {
		cancel()
		require.NoError(t, <-done)
		tr.CloseIdleConnections()
	}
}

func call(t *testing.T, c *http.Client, method, url string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServesAndPublishesTheDocument(t *testing.T) {
	base, c, stop := start(t, "v9")
	defer stop()
	code, body := call(t, c, "GET", base+"/api/hello")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "(v9): the best way")
	code, _ = call(t, c, "GET", base+"/livez")
	assert.Equal(t, 200, code)
	_, body = call(t, c, "GET", base+"/health")
	doc, err := health.ParseDocument([]byte(body))
	require.NoError(t, err)
	assert.Equal(t, "v9", doc.Version)
	for _, key := range []string{"http:responseTime", "http:utilization", "runtime:heap", "runtime:goroutines", "breaker:state", "supervisor:state"} {
		_, ok := doc.Find(key, "")
		assert.True(t, ok, key)
	}
}

func TestFaultsNeedTheToken(t *testing.T) {
	base, c, stop := start(t, "v1")
	defer stop()
	code, _ := call(t, c, "POST", base+"/fault/unready")
	assert.Equal(t, http.StatusForbidden, code)
	code, _ = call(t, c, "GET", base+"/readyz")
	assert.Equal(t, 200, code)
	code, _ = call(t, c, "POST", base+"/fault/unready", "X-Fault-Token", "secret")
	assert.Equal(t, 200, code)
	code, _ = call(t, c, "GET", base+"/readyz")
	assert.Equal(t, 503, code)
	code, _ = call(t, c, "POST", base+"/fault/latency?ms=50", "X-Fault-Token", "secret")
	assert.Equal(t, 200, code)
	t0 := time.Now()
	call(t, c, "GET", base+"/api/hello")
	assert.GreaterOrEqual(t, time.Since(t0), 50*time.Millisecond)
	call(t, c, "POST", base+"/fault/reset", "X-Fault-Token", "secret")
	code, _ = call(t, c, "GET", base+"/readyz")
	assert.Equal(t, 200, code)
}

func TestBrokenReleaseIsNeverReady(t *testing.T) {
	base, c, stop := start(t, "v3-broken")
	defer stop()
	code, _ := call(t, c, "GET", base+"/livez")
	assert.Equal(t, 200, code)
	code, _ = call(t, c, "GET", base+"/readyz")
	assert.Equal(t, 503, code)
}

func TestWorkerPanicIsSupervised(t *testing.T) {
	base, c, stop := start(t, "v1")
	defer stop()
	call(t, c, "POST", base+"/fault/panic", "X-Fault-Token", "secret")
	require.Eventually(t, func() bool {
		_, body := call(t, c, "GET", base+"/health")
		var d struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal([]byte(body), &d)
		return strings.Contains(body, "root/workers/ticker") && d.Status != ""
	}, 5*time.Second, 20*time.Millisecond)
	code, _ := call(t, c, "GET", base+"/livez")
	assert.Equal(t, 200, code, "the worker was restarted by its supervisor; the process lives")
}

func TestProbeMode(t *testing.T) {
	base, _, stop := start(t, "v1")
	assert.Equal(t, 0, run([]string{"-probe", base + "/livez"}, io.Discard))
	assert.Equal(t, 1, run([]string{"-probe", base + "/nope"}, io.Discard))
	stop()
	assert.Equal(t, 1, run([]string{"-probe", base + "/livez"}, io.Discard))
	http.DefaultClient.CloseIdleConnections()
}

// Docker runs an exec-form HEALTHCHECK without a shell, so the probe URL's
// $PORT must be expanded by the service itself.
func TestProbeModeExpandsEnvironment(t *testing.T) {
	base, _, stop := start(t, "v1")
	defer stop()
	u, err := url.Parse(base)
	require.NoError(t, err)
	t.Setenv("PORT", u.Port())
	t.Setenv("PROBE_PATH", "/livez")
	for _, tc := range []struct {
		name, url string
		want      int
	}{
		{"braced", "http://127.0.0.1:${PORT}/livez", 0},
		{"bare", "http://127.0.0.1:$PORT/livez", 0},
		{"path from the environment", "http://127.0.0.1:${PORT}${PROBE_PATH}", 0},
		{"unset variable", "http://127.0.0.1:${SELFHEAL_NO_SUCH_VAR}/livez", 1},
		{"missing path", "http://127.0.0.1:${PORT}/nope", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, run([]string{"-probe", tc.url}, io.Discard))
		})
	}
	http.DefaultClient.CloseIdleConnections()
}

// Swarm passes settings through the environment: DRAIN sets the drain, the flag
// still wins, and a malformed value is an error, not a silent default.
func TestDrainFromEnvironment(t *testing.T) {
	t.Setenv("DRAIN", "1250ms")
	o, err := parse(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 1250*time.Millisecond, o.drain)
	o, err = parse([]string{"-drain", "2s"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, o.drain)
	t.Setenv("DRAIN", "soon")
	var stderr strings.Builder
	_, err = parse(nil, &stderr)
	require.Error(t, err)
	assert.Contains(t, stderr.String(), "env DRAIN")
	assert.Equal(t, 2, run(nil, io.Discard))
}
