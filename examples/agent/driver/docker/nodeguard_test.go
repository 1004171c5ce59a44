package docker

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func newTestGuard(t *testing.T, cfg NodeGuardConfig) *NodeGuard {
	t.Helper()
	d, err := New(Config{Host: "unix:///nonexistent/docker.sock"})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	cfg.Driver = d
	g, err := NewNodeGuard(cfg)
	require.NoError(t, err)
	return g
}

// round feeds one probe round to judge and returns the name of the node it would
// remove ("" for none).
func round(g *NodeGuard, now time.Time, nodes []*guardNode, silent ...bool) string {
	target, _ := g.judge(nodes, silent, now)
	if target == nil {
		return ""
	}
	// what remove does to the guard's state once it acted
	g.mu.Lock()
	g.lastAct = now
	delete(g.silent, target.id)
	delete(g.since, target.id)
	g.mu.Unlock()
	return target.name
}

func labNodes() []*guardNode {
	return []*guardNode{
		{id: "m", name: "m", manager: true},
		{id: "w1", name: "w1"},
		{id: "w2", name: "w2"},
	}
}

func TestNodeGuardConfirmsBeforeActing(t *testing.T) {
	g := newTestGuard(t, NodeGuardConfig{})
	require.Equal(t, 3, g.cfg.Confirm)
	now := time.Unix(1000, 0)
	nodes := labNodes()
	// one missed round, then the node answers again: never removed, counter reset
	require.Empty(t, round(g, now, nodes, false, true, false))
	require.Empty(t, round(g, now.Add(time.Second), nodes, false, false, false))
	require.Empty(t, g.Snapshot().Silent)
	// two silent rounds are not enough, the third confirms
	require.Empty(t, round(g, now.Add(2*time.Second), nodes, false, true, false))
	require.Empty(t, round(g, now.Add(3*time.Second), nodes, false, true, false))
	require.Equal(t, "w1", round(g, now.Add(4*time.Second), nodes, false, true, false))
}

func TestNodeGuardConfirmAtLeastTwo(t *testing.T) {
	g := newTestGuard(t, NodeGuardConfig{Confirm: 1})
	require.Equal(t, 2, g.cfg.Confirm, "a single missed round must never be enough")
	now := time.Unix(1000, 0)
	nodes := labNodes()
	require.Empty(t, round(g, now, nodes, false, true, false))
	require.Equal(t, "w1", round(g, now.Add(time.Second), nodes, false, true, false))
}

func TestNodeGuardSwarmDownNeedsOneSilentRound(t *testing.T) {
	g := newTestGuard(t, NodeGuardConfig{})
	nodes := labNodes()
	nodes[2].down = true
	// Swarm says down but the node answers: the guard believes the probes
	require.Empty(t, round(g, time.Unix(1000, 0), nodes, false, false, false))
	require.Equal(t, "w2", round(g, time.Unix(1001, 0), nodes, false, false, true))
}

func TestNodeGuardNeverTheManager(t *testing.T) {
	g := newTestGuard(t, NodeGuardConfig{})
	nodes := labNodes()
	nodes[0].down = true
	for i := range 10 {
		require.Empty(t, round(g, time.Unix(int64(1000+i), 0), nodes, true, false, false))
	}
}

func TestNodeGuardOneNodeAtATime(t *testing.T) {
	g := newTestGuard(t, NodeGuardConfig{Cooldown: 10 * time.Second})
	now := time.Unix(1000, 0)
	nodes := labNodes()
	// two workers silent together: neither is removed
	for i := range 5 {
		require.Empty(t, round(g, now.Add(time.Duration(i)*time.Second), nodes, false, true, true))
	}
	// a second worker falls silent a round later: still neither (it is not yet
	// confirmed, but it is silent too)
	g = newTestGuard(t, NodeGuardConfig{Cooldown: 10 * time.Second})
	require.Empty(t, round(g, now, nodes, false, true, false))
	for i := 1; i < 5; i++ {
		require.Empty(t, round(g, now.Add(time.Duration(i)*time.Second), nodes, false, true, true))
	}
	// nobody answers (the guard's own network is cut): nothing is removed
	g = newTestGuard(t, NodeGuardConfig{Cooldown: 10 * time.Second})
	for i := range 5 {
		require.Empty(t, round(g, now.Add(time.Duration(i)*time.Second), nodes[:2], true, true))
	}
	// one removal, then no other within the cooldown
	g = newTestGuard(t, NodeGuardConfig{Cooldown: 10 * time.Second})
	for i := range 2 {
		require.Empty(t, round(g, now.Add(time.Duration(i)*time.Second), nodes, false, true, false))
	}
	require.Equal(t, "w1", round(g, now.Add(2*time.Second), nodes, false, true, false))
	rest := []*guardNode{nodes[0], nodes[2]}
	for i := 3; i < 12; i++ {
		require.Empty(t, round(g, now.Add(time.Duration(i)*time.Second), rest, false, true), "round %d", i)
	}
	require.Equal(t, "w2", round(g, now.Add(12*time.Second), rest, false, true))
}

func TestNodeGuardProbeVerdicts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	open := ln.Addr().String()
	defer ln.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := closed.Addr().String()
	closed.Close()

	// a real connection and a real refusal are answers: the host is alive
	g := newTestGuard(t, NodeGuardConfig{})
	ctx := context.Background()
	require.False(t, g.nodeSilent(ctx, []string{open}))
	require.False(t, g.nodeSilent(ctx, []string{refused}), "a refused connection is the host's kernel answering")

	// timeouts and no route are silence; one answer among them is not
	silentDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		switch addr {
		case "timeout:1":
			<-ctx.Done()
			return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
		case "unreach:1":
			return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("connect: %w", syscall.EHOSTUNREACH)}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	g = newTestGuard(t, NodeGuardConfig{Dial: silentDial, ProbeTimeout: 50 * time.Millisecond})
	require.True(t, g.nodeSilent(ctx, []string{"timeout:1", "unreach:1"}))
	require.False(t, g.nodeSilent(ctx, []string{"timeout:1", "unreach:1", refused}))
}

func TestNodeGuardConfig(t *testing.T) {
	_, err := NewNodeGuard(NodeGuardConfig{})
	require.Error(t, err)
	g := newTestGuard(t, NodeGuardConfig{})
	require.Equal(t, 250*time.Millisecond, g.cfg.Interval)
	require.Equal(t, 300*time.Millisecond, g.cfg.ProbeTimeout)
	require.Equal(t, 7946, g.cfg.NodePort)
	require.Equal(t, 30*time.Second, g.cfg.Cooldown)
}
