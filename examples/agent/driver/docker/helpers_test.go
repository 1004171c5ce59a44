package docker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
)

var (
	buildOnce sync.Once
	buildErr  error
)

const testImage = "selfheal-testsvc:test"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture is a driver on the test engine with the test image built.
type fixture struct {
	t *testing.T
	d *docker.Driver
}

// engine returns a driver for the engine in SELFHEAL_DOCKER_HOST (.ci/run starts one
// with .ci/docker/engine.sh) and builds the test service's image on it once. It skips
// the test only when no engine is configured.
func engine(t *testing.T) *fixture {
	t.Helper()
	host := os.Getenv("SELFHEAL_DOCKER_HOST")
	if host == "" {
		t.Skip("SELFHEAL_DOCKER_HOST is not set: no Docker engine to test against (.ci/run starts one with .ci/docker/engine.sh start)")
	}
	d, err := docker.New(docker.Config{
		Host:              host,
		CallTimeout:       20 * time.Second,
		StopGrace:         3 * time.Second,
		HealthStartPeriod: 2 * time.Second,
		Logger:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, d.Ping(ctx), "the engine at %s", host)

	buildOnce.Do(func() {
		bctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_, buildErr = d.BuildGoImage(bctx, ".", "./internal/testsvc", docker.ImageSpec{Tag: testImage, HealthInterval: 500 * time.Millisecond})
	})
	require.NoError(t, buildErr, "building the test image")
	return &fixture{t: t, d: d}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// service declares a test service with a free port range and removes it when the test
// ends.
func (f *fixture) service(replicas int, version string) driver.ServiceSpec {
	f.t.Helper()
	name := strings.Trim(nonName.ReplaceAllString(strings.ToLower(f.t.Name()), "-"), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("%s-%04x", name, rand.IntN(1<<16))
	spec := driver.ServiceSpec{
		Name:     name,
		Version:  version,
		Image:    testImage,
		Replicas: replicas,
		BasePort: freeBase(f.t, 8),
		Health:   driver.HealthCheck{Path: "/livez", Interval: 500 * time.Millisecond, Timeout: 2 * time.Second, Retries: 2},
		Update:   driver.UpdatePolicy{Parallelism: 1, Delay: 500 * time.Millisecond, Monitor: 2 * time.Second, FailureAction: "rollback"},
	}
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := f.d.Remove(ctx, name); err != nil {
			f.t.Logf("removing %s: %v", name, err)
		}
		// Wait for the instances to free their ports, bounded.
		for slot := range 8 {
			addr := fmt.Sprintf("127.0.0.1:%d", spec.BasePort+slot)
			for ctx.Err() == nil {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					break
				}
				c.Close()
				sleep(ctx, 100*time.Millisecond)
			}
		}
	})
	return spec
}

// freeBase returns the first of n consecutive free loopback ports, below the
// kernel's ephemeral range (32768 and up) so that no outgoing connection takes one
// before an instance binds it.
func freeBase(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(12000)
		ok := true
		var lns []net.Listener
		for p := base; p < base+n; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// waitFor polls cond every 200 ms until it holds or timeout passes; on timeout it fails
// the test with cond's last description of the state.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		ok, state := cond(cctx)
		ccancel()
		if ok {
			return time.Since(start)
		}
		last = state
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, last)
		case <-tick.C:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

var httpc = &http.Client{Timeout: 2 * time.Second}

func get(ctx context.Context, addr, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func post(t *testing.T, addr, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, nil)
	require.NoError(t, err)
	resp, err := httpc.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	// /fault/crash exits before answering; an error is expected then.
}

// healthDoc reads an instance's health document status and version.
func healthDoc(ctx context.Context, addr string) (status, version string, err error) {
	code, body, err := get(ctx, addr, "/health")
	if err != nil {
		return "", "", err
	}
	var doc struct{ Status, Version string }
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return "", "", fmt.Errorf("status %d: %w", code, err)
	}
	return doc.Status, doc.Version, nil
}

// live returns the running instances of the service that answer /livez with 200 and
// run version ("" means any).
func (f *fixture) live(ctx context.Context, service, version string) ([]driver.Instance, string) {
	insts, err := f.d.Instances(ctx, service)
	if err != nil {
		return nil, err.Error()
	}
	var out []driver.Instance
	var desc []string
	for _, in := range insts {
		desc = append(desc, fmt.Sprintf("%s %s %s %s %s", in.ID[:8], in.State, in.Version, in.Addr, in.ExitReason))
		if in.State != driver.StateRunning || (version != "" && in.Version != version) {
			continue
		}
		if code, _, err := get(ctx, in.Addr, "/livez"); err == nil && code == http.StatusOK {
			out = append(out, in)
		}
	}
	return out, strings.Join(desc, "; ")
}

// waitLive waits until exactly n instances of version are live.
func (f *fixture) waitLive(service, version string, n int, timeout time.Duration) []driver.Instance {
	f.t.Helper()
	var got []driver.Instance
	waitFor(f.t, timeout, fmt.Sprintf("%d live instances of %s %s", n, service, version), func(ctx context.Context) (bool, string) {
		var state string
		got, state = f.live(ctx, service, version)
		return len(got) == n, state
	})
	return got
}

// engineScript runs .ci/docker/engine.sh (or $SELFHEAL_DOCKER_ENGINE) with cmd.
func engineScript(t *testing.T, cmd string) {
	t.Helper()
	script := os.Getenv("SELFHEAL_DOCKER_ENGINE")
	if script == "" {
		script = filepath.Join("..", "..", "..", "..", ".ci", "docker", "engine.sh")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", script, cmd).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", script, cmd, out)
}
