//go:build linux

package k8s_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/k8s"
)

// TestClusterNodePressure puts node 2 under real memory pressure (cluster.sh
// pressure-node: its kubelet restarted with a soft eviction threshold above the
// machine's memory and an hour's grace, so that the kubelet reports MemoryPressure
// and evicts nothing itself) and checks that the driver's guard drains it before it
// fails: cordoned, its pods evicted through the Eviction API only as the
// PodDisruptionBudget allows (they stay while it allows no disruption), their
// replacements healthy on node 1; and that it uncordons the node when the pressure
// ends.
// Kubernetes alone would only stop scheduling there (the memory-pressure taint) and
// leave the pods until its own eviction.
func TestClusterNodePressure(t *testing.T) {
	// a kubelet restart silences /healthz for a few seconds: not a lost node here
	f := cluster(t, k8s.Config{NodeDownAfter: 80})
	f.service("pressure", 4, "v1")
	ins := f.healthy("pressure", 4, 90*time.Second)
	on2 := 0
	for _, in := range ins {
		if in.Node == "shk8s2" {
			on2++
		}
	}
	require.Positive(t, on2, "no pod on shk8s2 to drain: %+v", ins)
	// a budget that allows no disruption at first: the drain must wait for it
	minA := intstr.FromInt32(4)
	pdbs := f.d.Clientset().PolicyV1().PodDisruptionBudgets("default")
	_, err := pdbs.Create(f.ctx(5*time.Second), &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "pressure"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &minA,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{k8s.LabelService: "pressure"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pdbs.Delete(context.Background(), "pressure", metav1.DeleteOptions{}) })
	require.Eventually(t, func() bool {
		p, err := pdbs.Get(context.Background(), "pressure", metav1.GetOptions{})
		return err == nil && p.Status.ObservedGeneration == p.Generation && p.Status.CurrentHealthy == 4
	}, 30*time.Second, 100*time.Millisecond)
	t.Cleanup(func() {
		f.script("pressure-node", "2", "off")
		_ = f.d.SetNodeState(context.Background(), "shk8s2", driver.NodeReady, "")
	})

	t0 := time.Now()
	f.script("pressure-node", "2", "on")
	pressured := time.Since(t0)
	require.Eventually(t, func() bool {
		n, err := f.d.Clientset().CoreV1().Nodes().Get(context.Background(), "shk8s2", metav1.GetOptions{})
		return err == nil && n.Spec.Unschedulable
	}, 60*time.Second, 100*time.Millisecond, "the guard did not cordon the node under pressure")
	cordoned := time.Since(t0)
	// the budget holds: its pods stay (not terminating) while it allows no disruption
	time.Sleep(3 * time.Second)
	pods, err := f.d.Clientset().CoreV1().Pods("default").List(f.ctx(5*time.Second), metav1.ListOptions{LabelSelector: k8s.LabelService + "=pressure"})
	require.NoError(t, err)
	stay := 0
	for _, p := range pods.Items {
		if p.Spec.NodeName == "shk8s2" {
			require.Nil(t, p.DeletionTimestamp, "pod %s went while the budget allowed no disruption", p.Name)
			stay++
		}
	}
	require.Equal(t, on2, stay)
	for _, i := range f.d.Incidents() {
		require.False(t, i.Node == "shk8s2" && i.Pressure != nil, "the node was reported drained while its pods stayed")
	}
	// the budget allows one at a time: the drain goes on
	p, err := pdbs.Get(f.ctx(5*time.Second), "pressure", metav1.GetOptions{})
	require.NoError(t, err)
	maxU := intstr.FromInt32(1)
	relaxed := time.Now()
	p.Spec.MinAvailable, p.Spec.MaxUnavailable = nil, &maxU
	_, err = pdbs.Update(f.ctx(5*time.Second), p, metav1.UpdateOptions{})
	require.NoError(t, err)
	var inc k8s.NodeIncident
	require.Eventually(t, func() bool {
		for _, i := range f.d.Incidents() {
			if i.Node == "shk8s2" && i.Pressure != nil && !i.Healed.IsZero() {
				inc = i
				return true
			}
		}
		return false
	}, 90*time.Second, 100*time.Millisecond, "the guard did not drain the node under pressure")
	require.Contains(t, inc.Pressure, "MemoryPressure")
	require.Len(t, inc.Pods, on2)
	after := f.healthy("pressure", 4, 60*time.Second)
	for _, in := range after {
		require.Equal(t, "shk8s1", in.Node)
	}
	for _, p := range inc.Pods {
		require.False(t, slices.ContainsFunc(after, func(in driver.Instance) bool { return in.ID == p }), "pod %s still runs", p)
	}
	t.Logf("node shk8s2 under MemoryPressure %s after its kubelet's restart began: cordoned after %s; its %d pods held by the budget, then evicted and running on shk8s1 %s after the budget allowed it",
		pressured.Round(time.Millisecond), cordoned.Round(time.Millisecond), len(inc.Pods), inc.Healed.Sub(relaxed).Round(time.Millisecond))

	// the pressure ends: uncordoned
	t1 := time.Now()
	f.script("pressure-node", "2", "off")
	require.Eventually(t, func() bool {
		nodes, err := f.d.Nodes(context.Background())
		require.NoError(t, err)
		for _, n := range nodes {
			if n.Name == "shk8s2" {
				return n.State == driver.NodeReady
			}
		}
		return false
	}, 60*time.Second, 100*time.Millisecond, "the node was not uncordoned when its pressure ended")
	for _, i := range f.d.Incidents() {
		if i.Node == "shk8s2" && i.Pressure != nil {
			require.False(t, i.Recovered.IsZero(), "the incident was not closed")
		}
	}
	t.Logf("the pressure ended: uncordoned %s after the kubelet's restart began", time.Since(t1).Round(time.Millisecond))
}
