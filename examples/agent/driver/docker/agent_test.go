package docker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// TestAgentOnSwarm runs the agent's loop (examples/agent/core) on this driver with the
// test service: the agent creates the service, replaces an instance whose health
// document fails, and Swarm restarts a crashed one.
func TestAgentOnSwarm(t *testing.T) {
	f := engine(t)
	spec := f.service(2, "v1")
	yaml := fmt.Sprintf(`agent:
  driver: docker
  listen: "off"
  budget: {max: 30, window: 1m}
services:
  - name: %s
    version: v1
    image: %s
    replicas: 2
    basePort: %d
    frontDoor: 127.0.0.1:0
    health: {interval: 500ms, timeout: 400ms, failureThreshold: 2, startupGrace: 3s}
    update: {parallelism: 1, delay: 500ms, monitor: 2s}
`, spec.Name, testImage, spec.BasePort)
	path := filepath.Join(t.TempDir(), "fleet.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	fleet, err := config.Parse(path, []byte(yaml))
	require.NoError(t, err)
	ev := eventlog.New(testWriter{t}, 500)
	a, err := core.New(core.Config{Fleet: fleet, Driver: f.d, Events: ev})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, 60*time.Second, "2 backends", func(context.Context) (bool, string) {
		return len(a.Backends(spec.Name)) == 2, fmt.Sprint(a.Backends(spec.Name))
	})
	live := f.waitLive(spec.Name, "v1", 2, 30*time.Second)
	post(t, live[0].Addr, "/fault/baddoc") // the agent reads it; Swarm cannot
	waitFor(t, 60*time.Second, "the agent to replace the degraded instance", func(ctx context.Context) (bool, string) {
		l, s := f.live(ctx, spec.Name, "v1")
		for _, in := range l {
			if in.Addr == live[0].Addr && in.ID != live[0].ID {
				return true, s
			}
		}
		return false, s
	})
	post(t, live[1].Addr, "/fault/crash")
	// The crash reaches the event log as the engine's exit event ("crash") or, when
	// the agent's probes find the dead listener first (on a loaded machine the event
	// can come late), as that instance observed unhealthy, refusing connections.
	waitFor(t, 60*time.Second, "the crash in the event log", func(context.Context) (bool, string) {
		var whats []string
		for _, e := range ev.Recent(500) {
			if e.What == "crash" || e.What == "unhealthy" && e.Instance == live[1].ID && strings.Contains(e.Why, "connection refused") {
				return true, ""
			}
			whats = append(whats, e.Kind+":"+e.What)
		}
		return false, strings.Join(whats, " ")
	})
	f.waitLive(spec.Name, "v1", 2, 60*time.Second)
	_ = driver.StateRunning
}
