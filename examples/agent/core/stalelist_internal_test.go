package core

import (
	"context"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// staleListDriver is the real local driver with one interleaving forced: the
// first Stop of target (the agent forgetting its exited instance) waits until a
// list of the service that still holds target has been taken, and that list is
// handed to the agent only after the Stop finished and the agent removed the
// member. This is the race a loaded machine makes (a round lists the instances,
// the forget completes, the round goes on with its list); TestNodeFailureReschedules
// in examples/demo/play failed about one run in four on it.
type staleListDriver struct {
	*local.Driver
	a      *Agent
	target string

	listed  chan struct{} // closed when a list holding target was taken after its Stop began
	stopped chan struct{} // closed when the real Stop of target returned
	stopReq chan struct{} // closed when the Stop of target was called
	reqOnce sync.Once
	stale   sync.Once
	handed  bool
}

func (d *staleListDriver) Stop(ctx context.Context, id string, grace time.Duration) error {
	if id != d.target {
		return d.Driver.Stop(ctx, id, grace)
	}
	first := false
	d.reqOnce.Do(func() { first = true; close(d.stopReq) })
	if !first {
		return d.Driver.Stop(ctx, id, grace)
	}
	select {
	case <-d.listed:
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
	err := d.Driver.Stop(ctx, id, grace)
	close(d.stopped)
	return err
}

func (d *staleListDriver) Instances(ctx context.Context, service string) ([]driver.Instance, error) {
	insts, err := d.Driver.Instances(ctx, service)
	select {
	case <-d.stopReq:
	default:
		return insts, err // the forget has not begun
	}
	holds := false
	for _, in := range insts {
		holds = holds || in.ID == d.target
	}
	if !holds {
		return insts, err
	}
	gate := false
	d.stale.Do(func() { gate = true })
	if !gate {
		return insts, err
	}
	close(d.listed)
	<-d.stopped
	// Wait until the forget removed the member (it takes a.mu after the Stop).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		d.a.mu.Lock()
		_, ok := d.a.svcs["web"].members[d.target]
		d.a.mu.Unlock()
		if !ok {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	d.a.mu.Lock()
	d.handed = true
	d.a.mu.Unlock()
	return insts, err
}

// demoService builds the demo service into a directory of t's (the build cache
// makes it quick after the first time).
func demoService(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "service")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/selfheal-go/selfheal/examples/service").CombinedOutput()
	require.NoError(t, err, "build the demo service: %s", out)
	return bin
}

// A node-down exit is observed once, and its incident heals, even when a list
// of the instances taken before the agent forgot the exited instance reaches the
// agent after it: the stale entry must not come back as a new member, whose exit
// would open a second incident that nothing heals (its restart was done already).
func TestAStaleListDoesNotReopenAForgottenExit(t *testing.T) {
	bin := demoService(t)
	dir := t.TempDir()
	f, err := config.Parse("fleet.yaml", []byte(`agent:
  stateFile: `+filepath.Join(dir, "state.json")+`
nodes: [node-1, node-2]
services:
  - name: web
    command: [`+bin+`, -addr, "127.0.0.1:{port}", -version, "{version}", -drain, 50ms]
    replicas: 1
    stopGrace: 300ms
    health: {interval: 100ms, timeout: 100ms, failureThreshold: 2, startupGrace: 5s}
`))
	require.NoError(t, err)
	ld, err := local.New(local.Config{Nodes: f.Nodes, StateFile: f.Agent.StateFile})
	require.NoError(t, err)
	// The agent names its instances web-1, web-2, ...: the first is the target.
	d := &staleListDriver{Driver: ld, target: "web-1", listed: make(chan struct{}), stopped: make(chan struct{}), stopReq: make(chan struct{})}
	a, err := New(Config{Fleet: f, Driver: d, StopOnExit: true, Events: eventlog.New(nil, 500)})
	require.NoError(t, err)
	d.a = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		require.NoError(t, ld.Close())
		require.Eventually(t, func() bool { return len(local.Leftovers(ld.Marker())) == 0 }, 10*time.Second, 20*time.Millisecond)
	}()

	require.Eventually(t, func() bool { return len(a.Backends("web")) == 1 }, 15*time.Second, 20*time.Millisecond)
	first, err := ld.Instances(ctx, "web")
	require.NoError(t, err)
	require.Len(t, first, 1)
	require.Equal(t, d.target, first[0].ID)
	require.NoError(t, a.SetNodeState(ctx, first[0].Node, driver.NodeDown, "test"))

	incidents := func() (observed, healed map[string]int) {
		observed, healed = map[string]int{}, map[string]int{}
		for _, e := range a.Events().Recent(0) {
			switch {
			case e.Kind == eventlog.Observed && e.What == "node-down":
				observed[e.Incident]++
			case e.Kind == eventlog.Healed:
				healed[e.Incident]++
			}
		}
		return observed, healed
	}
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return d.handed
	}, 10*time.Second, 10*time.Millisecond, "the stale list was handed to the agent")
	// The replacement becomes ready in the stale round or after it (one loop runs
	// the rounds in turn), so once its incident healed, the stale list was judged.
	require.Eventually(t, func() bool {
		obs, healed := incidents()
		for inc := range obs {
			if healed[inc] == 0 {
				return false
			}
		}
		return len(obs) > 0 && len(a.Backends("web")) == 1
	}, 10*time.Second, 20*time.Millisecond)
	obs, healed := incidents()
	n := 0
	for _, e := range a.Events().Recent(0) {
		if e.Kind == eventlog.Observed && (e.What == "node-down" || e.What == "crash") && e.Instance == first[0].ID {
			n++
		}
	}
	assert.Equal(t, 1, n, "the exit of %s is observed once", first[0].ID)
	for inc := range obs {
		assert.Equal(t, 1, healed[inc], "incident %s healed", inc)
	}
	a.mu.Lock()
	open := len(a.incs)
	a.mu.Unlock()
	assert.Zero(t, open, "no incident left open")
}
