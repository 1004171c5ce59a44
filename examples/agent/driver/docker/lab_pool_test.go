//go:build linux

package docker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
)

// incidentLog collects a guard's incidents.
type incidentLog struct {
	mu  sync.Mutex
	all []docker.NodeIncident
}

func (l *incidentLog) add(in docker.NodeIncident) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, in)
}

func (l *incidentLog) of(action string) []docker.NodeIncident {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []docker.NodeIncident
	for _, in := range l.all {
		if in.Action == action {
			out = append(out, in)
		}
	}
	return out
}

// startGuard runs g until the test ends.
func startGuard(t *testing.T, g *docker.NodeGuard) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitForEvery(t, 30*time.Second, 50*time.Millisecond, "3 guard rounds", func(context.Context) (bool, string) {
		s := g.Snapshot()
		return s.Rounds >= 3, fmt.Sprint(s)
	})
}

// labAddHost is a NodeGuardConfig.Provision: lab.sh add-host.
func labAddHost(t *testing.T, added *[]string, mu *sync.Mutex) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, "bash", labScript(), "add-host")
		cmd.Env = os.Environ()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		t.Logf("provision: lab.sh add-host: %s %s", strings.TrimSpace(string(out)), strings.TrimSpace(stderr.String()))
		if err != nil {
			return fmt.Errorf("lab.sh add-host: %w: %s", err, stderr.String())
		}
		mu.Lock()
		*added = append(*added, strings.TrimSpace(string(out)))
		mu.Unlock()
		return nil
	}
}

// readyNodes returns the names of the schedulable nodes.
func (f *labFixture) readyNodes(ctx context.Context) ([]string, error) {
	nodes, err := f.d.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nodes {
		if n.State == driver.NodeReady {
			out = append(out, n.Name)
		}
	}
	return out, nil
}

// TestLabGuardReplacesLostNodeAndSpreads: with MinNodes 3, a worker killed is removed,
// the guard provisions a replacement (lab.sh add-host) and, once it joined, rolls the
// service so that it takes replicas (no scaling up asked). The lost host then comes
// back (revive-host): it joins again cleanly as a new node, is never removed, and the
// service is spread again.
func TestLabGuardReplacesLostNodeAndSpreads(t *testing.T) {
	f := lab(t)
	ctx := context.Background()
	ready, err := f.readyNodes(ctx)
	require.NoError(t, err)
	spec := f.service(len(ready))
	insts, _ := f.waitLive(spec.Name, len(ready), "", 90*time.Second)
	victim := f.victim(insts)

	var log incidentLog
	var mu sync.Mutex
	var added []string
	g, err := docker.NewNodeGuard(docker.NodeGuardConfig{
		Driver:     f.d,
		Dial:       f.dial,
		Cooldown:   5 * time.Second,
		MinNodes:   len(ready),
		Provision:  labAddHost(t, &added, &mu),
		Spread:     true,
		OnIncident: log.add,
	})
	require.NoError(t, err)
	startGuard(t, g)
	require.Empty(t, g.Snapshot().Incidents, "the guard acted on a healthy lab")

	killed := f.kill(victim)
	// removed, a node provisioned, and the service spread onto it
	waitForEvery(t, 90*time.Second, 100*time.Millisecond, "remove, provision, spread", func(context.Context) (bool, string) {
		return len(log.of(docker.ActionRemove)) == 1 && len(log.of(docker.ActionProvision)) == 1 && len(log.of(docker.ActionSpread)) == 1,
			fmt.Sprint(g.Snapshot().Incidents)
	})
	prov := log.of(docker.ActionProvision)[0]
	require.NoError(t, prov.Err)
	require.Contains(t, prov.Reason, "fewer than the minimum")
	mu.Lock()
	require.Len(t, added, 1)
	fresh := added[0]
	mu.Unlock()
	sp := log.of(docker.ActionSpread)[0]
	require.NoError(t, sp.Err)
	require.Equal(t, fresh, sp.Node)
	require.Contains(t, sp.Instances, spec.Name)
	// every node, the fresh one included, runs a replica again
	waitForEvery(t, 90*time.Second, 100*time.Millisecond, "a replica on "+fresh, func(ctx context.Context) (bool, string) {
		got, state := f.live(ctx, spec.Name)
		on := false
		for _, in := range got {
			on = on || in.Node == fresh
		}
		return on && len(got) == spec.Replicas, state
	})
	t.Logf("FIGURE agent: %s killed -> replacement %s provisioned in %v, replicas spread onto it %v after the kill",
		victim, fresh, prov.Removed.Sub(prov.Confirmed).Round(10*time.Millisecond), time.Since(killed).Round(10*time.Millisecond))

	// The lost host comes back: it joins again as a new node, is not removed, and (a
	// new node) takes replicas.
	f.run("revive-host", victim)
	waitForEvery(t, 60*time.Second, 100*time.Millisecond, victim+" ready again", func(ctx context.Context) (bool, string) {
		r, err := f.readyNodes(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range r {
			if n == victim {
				return true, ""
			}
		}
		return false, fmt.Sprint(r)
	})
	// it joined as a new node: the guard spread the service again (3 replicas over 4
	// nodes: Swarm's spread need not pick it), and the replicas run on 3 nodes
	waitForEvery(t, 90*time.Second, 100*time.Millisecond, "a spread onto "+victim, func(context.Context) (bool, string) {
		sp := log.of(docker.ActionSpread)
		return len(sp) == 2 && sp[1].Node == victim && sp[1].Err == nil, fmt.Sprint(sp)
	})
	waitForEvery(t, 90*time.Second, 100*time.Millisecond, "3 replicas on 3 nodes", func(ctx context.Context) (bool, string) {
		got, state := f.live(ctx, spec.Name)
		on := map[string]bool{}
		for _, in := range got {
			on[in.Node] = true
		}
		return len(got) == spec.Replicas && len(on) == spec.Replicas, state
	})
	require.Len(t, log.of(docker.ActionRemove), 1, "the guard removed a node that came back")
	require.Len(t, log.of(docker.ActionProvision), 1, "provisioned again with enough nodes")
}

// TestLabGuardDrainsUnderPressure: a worker reports its disk filling (node labels
// selfheal.pressure.disk rising); the guard drains it before it is full, the incident
// says why, and its replicas run elsewhere. A second node reporting pressure at the
// same time is left alone: one node at a time.
func TestLabGuardDrainsUnderPressure(t *testing.T) {
	f := lab(t)
	spec := f.service(3)
	insts, _ := f.waitLive(spec.Name, 3, "", 90*time.Second)
	victim := f.victim(insts)
	var other string
	ready, err := f.readyNodes(context.Background())
	require.NoError(t, err)
	for _, n := range ready {
		if n != victim && n != f.manager {
			other = n
		}
	}
	t.Cleanup(func() {
		for _, n := range []string{victim, other} {
			if n == "" {
				continue
			}
			f.run("pressure", n, "disk", "-")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			if err := f.d.SetNodeState(ctx, n, driver.NodeReady, ""); err != nil {
				t.Logf("activating %s: %v", n, err)
			}
			cancel()
		}
	})

	var log incidentLog
	g, err := docker.NewNodeGuard(docker.NodeGuardConfig{
		Driver: f.d, Dial: f.dial, Cooldown: time.Second, DrainAt: 90, Horizon: time.Minute, OnIncident: log.add,
	})
	require.NoError(t, err)
	f.run("pressure", victim, "disk", "40")
	startGuard(t, g)
	time.Sleep(time.Second) // a few rounds at 40%: nothing happens
	require.Empty(t, log.of(docker.ActionDrain), "drained at 40%% used")
	f.run("pressure", victim, "disk", "70") // +30% in about 1 s: full within the minute
	start := time.Now()
	waitForEvery(t, 30*time.Second, 50*time.Millisecond, "drain of "+victim, func(context.Context) (bool, string) {
		return len(log.of(docker.ActionDrain)) > 0, fmt.Sprint(g.Snapshot().Incidents)
	})
	t.Logf("FIGURE agent: drained %v after the rising report", time.Since(start).Round(10*time.Millisecond))
	in := log.of(docker.ActionDrain)[0]
	require.NoError(t, in.Err)
	require.Equal(t, victim, in.Node)
	require.Contains(t, in.Reason, "disk 70% used and rising")
	f.waitLive(spec.Name, 3, victim, 90*time.Second)

	// another node at 95%: not drained while the first is
	if other != "" {
		f.run("pressure", other, "disk", "95")
		time.Sleep(2 * time.Second)
		require.Len(t, log.of(docker.ActionDrain), 1, "a second node drained at once")
	}
}
