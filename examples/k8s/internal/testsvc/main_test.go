package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "TESTSVC_RUN=1", "PORT="+itoa(port), "VERSION=v7")...)
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
	return base
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
