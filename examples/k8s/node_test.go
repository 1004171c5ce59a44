//go:build linux

package k8s_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/k8s"
)

// TestClusterNodeLoss kills node 2 (kubelet, containerd, shims and pods, kill -9) and
// checks that the driver's node guard notices it from its probes, cordons it and
// deletes its pods, so that every replica runs healthy on node 1 within seconds
// (Kubernetes alone: ~50 s to mark the node NotReady plus the 300 s toleration).
// It restarts node 2 at the end and checks that the driver uncordons it.
func TestClusterNodeLoss(t *testing.T) {
	f := cluster(t, k8s.Config{})
	f.service("nodeloss", 4, "v1")
	ins := f.healthy("nodeloss", 4, 90*time.Second)
	on2 := 0
	for _, in := range ins {
		if in.Node == "shk8s2" {
			on2++
		}
	}
	require.Positive(t, on2, "no pod on shk8s2 to lose: %+v", ins)
	t.Cleanup(func() {
		f.script("restart-node", "2")
		require.Eventually(t, func() bool {
			nodes, err := f.d.Nodes(context.Background())
			require.NoError(t, err)
			for _, n := range nodes {
				if n.Name == "shk8s2" {
					return n.State == driver.NodeReady
				}
			}
			return false
		}, 90*time.Second, 100*time.Millisecond, "the driver did not take node 2 back (uncordon)")
	})

	out := strings.TrimSpace(f.script("kill-node", "2"))
	ns, err := strconv.ParseInt(out[strings.LastIndexByte(out, '\n')+1:], 10, 64)
	require.NoError(t, err, "kill-node printed %q", out)
	killed := time.Unix(0, ns)

	var inc k8s.NodeIncident
	require.Eventually(t, func() bool {
		for _, i := range f.d.Incidents() {
			if i.Node == "shk8s2" && !i.Healed.IsZero() {
				inc = i
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "the node guard did not notice the lost node")
	require.Len(t, inc.Pods, on2)
	nodes, err := f.d.Nodes(context.Background())
	require.NoError(t, err)
	for _, n := range nodes {
		if n.Name == "shk8s2" {
			require.Equal(t, driver.NodeDown, n.State)
		}
	}
	after := f.healthy("nodeloss", 4, 60*time.Second)
	healed := time.Since(killed)
	for _, in := range after {
		require.Equal(t, "shk8s1", in.Node)
	}
	t.Logf("node shk8s2 killed: detected (cordoned) after %s, pods deleted after %s, all 4 replicas healthy on shk8s1 after %s",
		inc.Confirmed.Sub(killed).Round(time.Millisecond), inc.Healed.Sub(killed).Round(time.Millisecond), healed.Round(time.Millisecond))
	require.Less(t, healed, 30*time.Second)
}
