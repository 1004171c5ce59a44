package core_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// A rolling update waits update.delay between batches: from the moment a batch's
// new instances have been monitored (rollout-batch-done) to the start of the next
// batch, and it waits no longer than a probe round or two beyond it.
func TestRolloutWaitsTheDelayBetweenBatches(t *testing.T) {
	const delay = 1500 * time.Millisecond
	dir := t.TempDir()
	y := fmt.Sprintf(`agent:
  stateFile: %q
nodes: [node-1, node-2]
services:
  - name: web
    command: [%q, -addr, "127.0.0.1:{port}", -version, "{version}", -fault-token, tok, -drain, 50ms]
    replicas: 3
    stopGrace: 300ms
    frontDoor: 127.0.0.1:0
    health: {interval: 100ms, timeout: 100ms, failureThreshold: 2, startupGrace: 5s}
    update: {parallelism: 1, delay: %s, monitor: 200ms, startTimeout: 5s}
`, filepath.Join(dir, "state.json"), serviceBin, delay)
	f, err := config.Parse("fleet.yaml", []byte(y))
	require.NoError(t, err)
	r := start(t, f, true)
	defer func() {
		r.stop(t)
		noLeftovers(t, r.d.Marker())
	}()
	require.Eventually(t, ready(r.a, 3), 15*time.Second, 20*time.Millisecond)
	require.NoError(t, r.a.Update("web", "v2"))
	require.Eventually(t, func() bool { return len(events(r.a, eventlog.Healed, "rollout")) == 1 }, 30*time.Second, 20*time.Millisecond)

	batches := events(r.a, eventlog.Acted, "rollout-batch")
	done := events(r.a, eventlog.Acted, "rollout-batch-done")
	require.Len(t, batches, 3, "one instance a batch")
	require.GreaterOrEqual(t, len(done), 2)
	for i := 1; i < len(batches); i++ {
		gap := batches[i].Time.Sub(done[i-1].Time)
		t.Logf("batch %d done -> batch %d: %s", i, i+1, gap.Round(time.Millisecond))
		assert.GreaterOrEqual(t, gap, delay, "batch %d started before the delay passed", i+1)
		// The next round after the delay starts it; a loaded machine may be a few
		// rounds late, never a whole delay.
		assert.Less(t, gap, 2*delay, "batch %d started long after the delay", i+1)
	}
	for _, in := range r.a.Status(context.Background(), 0).Services[0].Instances {
		if !in.Stopping {
			assert.Equal(t, "v2", in.Version)
		}
	}
}
