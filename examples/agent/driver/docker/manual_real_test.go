//go:build manual

// TestRealService runs the demo service (examples/service) on Swarm: crash and
// replacement, a rolling update under load, and a broken version rolled back by Swarm
// on its /readyz health check. The demo service's probe mode now expands $PORT, so it
// passes; it stays behind the "manual" build tag only for its run time (about 35 s),
// since examples/demo/play's TestDockerCrashAndRollingUpdate runs the same service
// through the agent in CI:
//
//	SELFHEAL_DOCKER_HOST=... go test -tags manual -run TestRealService -v .
//
// REAL_BIN names a prebuilt static binary of the service; by default the test builds
// it.
package docker_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
)

func TestRealService(t *testing.T) {
	f := engine(t)
	ctx := context.Background()
	bin := os.Getenv("REAL_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "service")
		require.NoError(t, docker.GoBuild(ctx, ".", "../../../service", bin))
	}
	_, err := f.d.BuildImage(ctx, docker.ImageSpec{Tag: "selfheal-demo:test", Binary: bin})
	require.NoError(t, err)
	spec := f.service(3, "v1")
	spec.Image = "selfheal-demo:test"
	spec.Env = []string{"FAULT_TOKEN=tok"}
	spec.Health = driver.HealthCheck{Path: "/readyz", Interval: 500 * time.Millisecond, Retries: 2}
	require.NoError(t, f.d.Apply(ctx, spec))
	live := f.waitLive(spec.Name, "v1", 3, 60*time.Second)

	req, _ := http.NewRequest(http.MethodPost, "http://"+live[0].Addr+"/fault/crash", nil)
	req.Header.Set("X-Fault-Token", "tok")
	resp, err := httpc.Do(req)
	if err == nil {
		t.Logf("crash answered %s", resp.Status)
		resp.Body.Close()
	}
	start := time.Now()
	waitFor(t, 60*time.Second, "replacement", func(ctx context.Context) (bool, string) {
		l, s := f.live(ctx, spec.Name, "v1")
		for _, in := range l {
			if in.Addr == live[0].Addr && in.ID != live[0].ID {
				return true, s
			}
		}
		return false, s
	})
	t.Logf("figure(real): crash to healthy replacement %v", time.Since(start))

	load := startLoad(spec.BasePort, 3, 4, "/api/hello")
	spec.Version = "v2"
	start = time.Now()
	require.NoError(t, f.d.Apply(ctx, spec))
	waitFor(t, 120*time.Second, "rollout", func(ctx context.Context) (bool, string) {
		st, _ := f.d.Rollout(ctx, spec.Name)
		l, s := f.live(ctx, spec.Name, "v2")
		return st.State == driver.RolloutCompleted && len(l) == 3, fmt.Sprint(st.State, s)
	})
	rate, n, raw := load.stop()
	t.Logf("figure(real): rolling update %v, success %.4f of %d (raw %.4f)", time.Since(start), rate, n, raw)

	spec.Version = "v3-broken"
	start = time.Now()
	require.NoError(t, f.d.Apply(ctx, spec))
	waitFor(t, 120*time.Second, "rollback", func(ctx context.Context) (bool, string) {
		st, _ := f.d.Rollout(ctx, spec.Name)
		l, s := f.live(ctx, spec.Name, "v2")
		return st.State == driver.RolloutRollbackCompleted && len(l) == 3, fmt.Sprint(st.State, s)
	})
	t.Logf("real: broken version rolled back in %v", time.Since(start))
}
