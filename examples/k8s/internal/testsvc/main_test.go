package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/health"
)

// TestMain runs the service itself when asked to, so that the test can start it as
// a real process.
func TestMain(m *testing.M) {
	if os.Getenv("TESTSVC_RUN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func start(t *testing.T, env ...string) string {
	t.Helper()
	_, base := startCmd(t, env...)
	return base
}

// startCmd starts the service with env (after VERSION=v7: env may override it).
func startCmd(t *testing.T, env ...string) (*exec.Cmd, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"TESTSVC_RUN=1", "PORT=" + itoa(port), "VERSION=v7"}, env...)...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://127.0.0.1:" + itoa(port)
	require.Eventually(t, func() bool {
		r, err := http.Get(base + "/livez")
		if err == nil {
			r.Body.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	return cmd, base
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestHealthDocument(t *testing.T) {
	base := start(t)
	doc, code, err := health.Fetch(t.Context(), nil, base+"/health")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, health.StatusPass, doc.Status)
	require.Equal(t, "v7", doc.Version)

	r, err := http.Post(base+"/fault/fail", "text/plain", nil)
	require.NoError(t, err)
	r.Body.Close()
	doc, code, err = health.Fetch(t.Context(), nil, base+"/health")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, health.StatusFail, doc.Status)
}

func TestBadRelease(t *testing.T) {
	base := start(t, "HEALTH=fail")
	doc, _, err := health.Fetch(t.Context(), nil, base+"/health")
	require.NoError(t, err)
	require.Equal(t, health.StatusFail, doc.Status)
	r, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusOK, r.StatusCode, "a bad release is ready for Kubernetes: only its document says fail")
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	r, err := http.Get(url)
	require.NoError(t, err)
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return r.StatusCode, string(b)
}

// TestBadVersion: a version containing "bad" serves its clients 500 and reports fail
// in its document, while its probes pass (Kubernetes counts it ready).
func TestBadVersion(t *testing.T) {
	good := start(t)
	code, body := get(t, good+"/api/hello")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "v7")

	base := start(t, "VERSION=v3-bad")
	code, _ = get(t, base+"/api/hello")
	require.Equal(t, http.StatusInternalServerError, code)
	doc, _, err := health.Fetch(t.Context(), nil, base+"/health")
	require.NoError(t, err)
	require.Equal(t, health.StatusFail, doc.Status)
	code, _ = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code)
}

// TestDrain: on SIGTERM the service fails /readyz at once but keeps serving its
// clients for DRAIN, then exits.
func TestDrain(t *testing.T) {
	cmd, base := startCmd(t, "DRAIN=1s")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool {
		code, _ := get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable
	}, 2*time.Second, 10*time.Millisecond, "readiness still passes after SIGTERM")
	code, _ := get(t, base+"/api/hello")
	require.Equal(t, http.StatusOK, code, "the clients' endpoint stopped at SIGTERM, before the drain")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "the service did not exit cleanly after its drain")
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("the service did not exit after its drain")
	}
}

func post(t *testing.T, url string) (int, string) {
	t.Helper()
	r, err := http.Post(url, "text/plain", nil)
	require.NoError(t, err)
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return r.StatusCode, string(b)
}

// TestFaultsOff: the hang and leak faults exist only with FAULTS=on.
func TestFaultsOff(t *testing.T) {
	base := start(t)
	for _, f := range []string{"/fault/hang", "/fault/leak?mbps=8"} {
		code, _ := post(t, base+f)
		require.Equal(t, http.StatusNotFound, code, f)
	}
	code, _ := get(t, base+"/livez")
	require.Equal(t, http.StatusOK, code)
}

// TestHang: after /fault/hang no request gets an answer, the probes and the health
// document included, while the process lives; a client that gives up frees its
// request, and more than maxHung waiting requests are closed at once.
func TestHang(t *testing.T) {
	cmd, base := startCmd(t, "FAULTS=on")
	code, _ := post(t, base+"/fault/hang")
	require.Equal(t, http.StatusOK, code)
	c := &http.Client{Timeout: 300 * time.Millisecond}
	for _, p := range []string{"/livez", "/readyz", "/health", "/api/hello"} {
		_, err := c.Get(base + p)
		require.Error(t, err, "%s answered during the hang", p)
	}
	require.NoError(t, cmd.Process.Signal(syscall.Signal(0)), "the process died")

	// more waiting clients than the bound: the extra ones are closed at once
	long := &http.Client{Timeout: 3 * time.Second}
	errs := make(chan time.Duration, maxHung+20)
	for range maxHung + 20 {
		go func() {
			t0 := time.Now()
			r, err := long.Get(base + "/api/hello")
			if err == nil {
				r.Body.Close()
			}
			errs <- time.Since(t0)
		}()
	}
	fast := 0
	for range maxHung + 20 {
		if d := <-errs; d < 2*time.Second {
			fast++
		}
	}
	require.Equal(t, 20, fast, "requests beyond the bound were held, or those within it answered")
}

// TestLeak: the heap in the health document grows at the asked rate; bad rates are
// refused.
func TestLeak(t *testing.T) {
	base := start(t, "FAULTS=on")
	for _, q := range []string{"", "?mbps=0", "?mbps=65", "?mbps=-1", "?mbps=x", "?mbps=99999999999999999999"} {
		code, _ := post(t, base+"/fault/leak"+q)
		require.Equal(t, http.StatusBadRequest, code, q)
	}
	heap := func() float64 {
		doc, _, err := health.Fetch(t.Context(), nil, base+"/health")
		require.NoError(t, err)
		c, ok := doc.Find(health.KeyHeap, "")
		require.True(t, ok, "no %s in the document", health.KeyHeap)
		v, ok := c.Float()
		require.True(t, ok)
		return v
	}
	h0 := heap()
	code, _ := post(t, base+"/fault/leak?mbps=32")
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool { return heap() > h0+20<<20 }, 5*time.Second, 100*time.Millisecond, "the heap did not grow")
}
