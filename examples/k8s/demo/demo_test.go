//go:build linux

package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemo plays the classic demonstration on the cluster, as `go run
// ./examples/k8s/demo` does (CI's cluster, .ci/k8s/service.sh): the steps with
// the agent, then with Kubernetes alone, side by side, printed as FIGURE lines. The
// agent's pass must heal every step with >= 99% of the clients served. A crashed
// process must leave the agent's front door in under 3 s and come back restarted by
// the kubelet in the same pod (the agent replaces nothing); a hung pod must be
// reported unhealthy in under 6 s and replaced in under 20 s, where Kubernetes alone
// restarts it only after its liveness probe's 3 x 10 s; a leaking pod must be seen
// on its heap trend in under 8 s and replaced before it dies, where Kubernetes alone
// lets the kernel OOM-kill it at its memory limit. It must
// detect a lost node in under 3 s and run its pods on the other node in under 10 s,
// where Kubernetes alone detects it later and has not moved them within the
// node deadline (its toleration is 300 s); the bad version must be rolled back by
// the agent and not by Kubernetes alone.
//
// The pods are reachable only inside the cluster's bridge namespace, so the test
// runs itself again there, as the demo does.
func TestDemo(t *testing.T) {
	if os.Getenv("SELFHEAL_K8S_KUBECONFIG") == "" {
		if os.Getenv("SELFHEAL_DOCKER_HOST") != "" {
			t.Fatal("SELFHEAL_K8S_KUBECONFIG is not set but the CI services are (SELFHEAL_DOCKER_HOST): the Kubernetes cluster is missing (.ci/k8s/service.sh starts it)")
		}
		t.Skip("SELFHEAL_K8S_KUBECONFIG is not set: no cluster (start one with: eval \"$(bash .ci/k8s/cluster.sh start)\")")
	}
	limit := 15 * time.Minute
	if os.Getenv(inside) != "" {
		limit -= time.Minute // the test inside ends (and cleans up) before the one outside gives up
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if os.Getenv(inside) == "" {
		w := &lineLogger{t: t}
		code := runInside(ctx, []string{os.Args[0], "-test.run", "^" + t.Name() + "$", "-test.v", "-test.count=1"}, w, w)
		w.flush()
		require.Equal(t, 0, code, "the test inside the cluster's bridge namespace")
		return
	}

	out := &lineLogger{t: t}
	c := demoConfig{o: options{interval: 500 * time.Millisecond, updateDelay: 2 * time.Second, nodeDeadline: 60 * time.Second, rps: 40},
		agent: true, alone: true}
	agent, alone, err := playPasses(ctx, c, out, out)
	var table bytes.Buffer
	failed := printTable(&table, "FIGURE k8s demo: ", agent, alone)
	out.flush()
	for _, l := range strings.Split(strings.TrimRight(table.String(), "\n"), "\n") {
		t.Log(l)
	}
	require.NoError(t, err)
	require.Zero(t, failed, "failed steps")
	require.Len(t, agent, 8)
	require.Len(t, alone, 8)
	for _, r := range agent[1:] {
		assert.GreaterOrEqual(t, r.SuccessRate(), 0.99, "clients through the agent's front door in %q", r.Step)
		assert.Greater(t, r.Requests, 50, "too few requests to judge %q", r.Step)
	}
	// a crash: out of the agent's front door from its probes; the kubelet's restart
	// in place brings it back (the step fails if a pod was replaced besides)
	crashA := agent[1]
	assert.Positive(t, crashA.Detect)
	assert.Less(t, crashA.Detect, 3*time.Second, "with the agent")
	assert.Positive(t, crashA.Heal)
	assert.Less(t, crashA.Heal, 20*time.Second, "with the agent")
	// a hang: the agent's probes (3 failures, 2 s at least) against the liveness
	// probe's 3 x 10 s
	hangA, hangK := agent[2], alone[2]
	assert.Positive(t, hangA.Detect)
	assert.Less(t, hangA.Detect, 6*time.Second, "with the agent")
	assert.Positive(t, hangA.Heal)
	assert.Less(t, hangA.Heal, 20*time.Second, "with the agent")
	assert.Greater(t, hangK.Heal, 20*time.Second, "Kubernetes alone restarted the hung pod before its liveness probe's 3 x 10 s")
	// a leak: replaced on its heap trend before it dies; OOM-killed at the memory
	// limit with Kubernetes alone
	leakA, leakK := agent[3], alone[3]
	assert.Contains(t, leakK.Note, "OOMKilled", "Kubernetes alone")
	assert.Positive(t, leakA.Detect)
	assert.Less(t, leakA.Detect, 8*time.Second, "with the agent")
	assert.Positive(t, leakA.Heal)
	assert.Less(t, leakA.Heal, 20*time.Second, "with the agent")
	assert.True(t, leakA.GoalMet, "with the agent: %s", leakA.Note)
	lostA, lostK := agent[4], alone[4]
	// the driver's node guard: 3 failed rounds of 250 ms; Kubernetes: the
	// node-monitor grace period (50 s by default)
	assert.Positive(t, lostA.Detect)
	assert.Less(t, lostA.Detect, 3*time.Second, "with the agent")
	assert.Positive(t, lostA.Heal)
	assert.Less(t, lostA.Heal, 10*time.Second, "with the agent")
	assert.Greater(t, lostK.Detect, 20*time.Second, "Kubernetes alone")
	assert.Zero(t, lostK.Heal, "Kubernetes alone moved the lost node's pods within its deadline: %s", lostK.Note)
	// the bad version: rolled back with the agent; rolled out by Kubernetes alone
	badA, badK := agent[7], alone[7]
	assert.Positive(t, badA.Detect)
	assert.Positive(t, badA.Heal)
	assert.Zero(t, badK.Heal)
	assert.Less(t, badK.SuccessRate(), 0.9, "Kubernetes alone: the bad release served its clients")
}

// lineLogger writes each complete line to t.Log.
type lineLogger struct {
	t   *testing.T
	mu  sync.Mutex
	buf []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.t.Log(strings.TrimRight(string(l.buf[:i]), " "))
		l.buf = l.buf[i+1:]
	}
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.t.Log(string(l.buf))
		l.buf = nil
	}
}
