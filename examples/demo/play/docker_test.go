package play_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
	"github.com/selfheal-go/selfheal/examples/demo/play"
)

// The demo's Docker path end to end on a real engine: the image built from the demo
// service, the agent with the Swarm driver, load through the front door, a crash
// that Swarm heals and a rolling update, then no service left behind. It runs
// wherever SELFHEAL_DOCKER_HOST names an engine (.ci/run always starts one).
func TestDockerCrashAndRollingUpdate(t *testing.T) {
	host := os.Getenv("SELFHEAL_DOCKER_HOST")
	if host == "" {
		t.Skip("SELFHEAL_DOCKER_HOST is not set: no Docker engine to test against (.ci/run starts one with .ci/docker/engine.sh start)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, err := play.NewDocker(ctx, host)
	require.NoError(t, err)
	name := fmt.Sprintf("playtest-%04x", rand.IntN(1<<16))
	f, err := play.StartDocker(ctx, play.DockerOptions{Driver: d, Dir: t.TempDir(), Service: name, MaxReplicas: 3,
		Parallelism: 1, UpdateDelay: 500 * time.Millisecond, Timeline: logWriter{t}})
	require.NoError(t, err)
	closed := false
	defer func() {
		if !closed {
			assert.NoError(t, f.Close())
		}
	}()

	check(t, play.DockerCrash(ctx, f))
	r := play.DockerRollout(ctx, f, "v2", false)
	check(t, r)
	assert.Equal(t, 3, f.ReadyCount("v2"))

	closed = true
	require.NoError(t, f.Close(), "teardown")
	// Nothing left behind: the service is gone from the engine.
	d2, err := docker.New(docker.Config{Host: host})
	require.NoError(t, err)
	defer d2.Close()
	names, err := d2.Services(ctx)
	require.NoError(t, err)
	assert.False(t, slices.Contains(names, name), "service %s left behind: %v", name, names)
}
