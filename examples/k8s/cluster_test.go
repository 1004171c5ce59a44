//go:build linux

package k8s_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/k8s"
	"github.com/selfheal-go/selfheal/health"
)

// The tests in this file run on the cluster of .ci/k8s/cluster.sh: a control plane
// and two nodes (kubelet + containerd each) in network namespaces. CI starts it with
// .ci/k8s/service.sh and exports SELFHEAL_K8S_*; the tests reach the apiserver,
// the pods and the kubelets from inside the cluster's bridge namespace (the machine's
// own namespace has no route to the cluster, by design).

type fixture struct {
	t     *testing.T
	d     *k8s.Driver
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	image string
}

func script() string {
	if s := os.Getenv("SELFHEAL_K8S_SCRIPT"); s != "" {
		return s
	}
	return filepath.Join("..", "..", ".ci", "k8s", "cluster.sh")
}

// cluster returns a driver on the test cluster. Without SELFHEAL_K8S_KUBECONFIG the
// test fails when CI's services are configured (SELFHEAL_DOCKER_HOST is set: the
// cluster is missing), and skips only in a plain `go test` without them.
func cluster(t *testing.T, cfg k8s.Config) *fixture {
	t.Helper()
	kc := os.Getenv("SELFHEAL_K8S_KUBECONFIG")
	if kc == "" {
		if os.Getenv("SELFHEAL_DOCKER_HOST") != "" {
			t.Fatal("SELFHEAL_K8S_KUBECONFIG is not set but the CI services are (SELFHEAL_DOCKER_HOST): the Kubernetes cluster is missing (.ci/k8s/service.sh starts it)")
		}
		t.Skip("SELFHEAL_K8S_KUBECONFIG is not set: no cluster (start one with: eval \"$(bash .ci/k8s/cluster.sh start)\")")
	}
	ns := os.Getenv("SELFHEAL_K8S_NETNS")
	if ns == "" {
		ns = "/run/netns/shk8sbr"
	}
	dial := netnsDialer(ns)
	cfg.Kubeconfig, cfg.Dial = kc, dial
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	d, err := k8s.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	image := os.Getenv("SELFHEAL_K8S_IMAGE")
	if image == "" {
		image = "localhost/selfheal-k8s-testsvc:1"
	}
	return &fixture{t: t, d: d, dial: dial, image: image}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// netnsDialer dials from inside the network namespace at path: the socket is made on
// an OS thread that joined the namespace; the thread is never handed back to the Go
// scheduler (it ends with its goroutine), so no other goroutine runs in the namespace.
func netnsDialer(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread() // no Unlock: the thread exits with this goroutine
			f, err := os.Open(path)
			if err != nil {
				ch <- result{nil, err}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{nil, fmt.Errorf("setns %s: %w", path, err)}
				return
			}
			d := net.Dialer{Timeout: 2 * time.Second}
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

func (f *fixture) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	f.t.Cleanup(cancel)
	return ctx
}

// service applies a service of n replicas named after the test and removes it at the end.
func (f *fixture) service(name string, n int, version string, env ...string) driver.ServiceSpec {
	f.t.Helper()
	spec := driver.ServiceSpec{Name: name, Version: version, Image: f.image, Replicas: n,
		Env: env, Health: driver.HealthCheck{Path: "/readyz", Interval: time.Second}}
	require.NoError(f.t, f.d.Apply(f.ctx(20*time.Second), spec))
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = f.d.Remove(ctx, name)
		cs := f.d.Clientset()
		for ctx.Err() == nil {
			l, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: k8s.LabelService + "=" + name})
			if err == nil && len(l.Items) == 0 {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	return spec
}

// healthy waits until service has exactly n running pods whose health documents
// (read directly from the pods) pass, and returns them.
func (f *fixture) healthy(service string, n int, within time.Duration) []driver.Instance {
	f.t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		ins, err := f.d.Instances(context.Background(), service)
		require.NoError(f.t, err)
		var ok []driver.Instance
		live := 0
		for _, in := range ins {
			if in.State != driver.StateExited {
				live++
			}
			if in.State != driver.StateRunning || in.ExitReason == "terminating" {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			doc, _, err := f.d.Health(ctx, in.ID)
			cancel()
			if err == nil && doc.Status == health.StatusPass {
				ok = append(ok, in)
			}
		}
		last = fmt.Sprintf("%d healthy of %d: %+v", len(ok), len(ins), ins)
		if len(ok) == n && live == n {
			return ok
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("service %s: want %d healthy pods within %s; last: %s", service, n, within, last)
	return nil
}

func (f *fixture) post(in driver.Instance, path string) {
	f.t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: f.dial, DisableKeepAlives: true}}
	resp, err := c.Post("http://"+in.Addr+path, "text/plain", nil)
	require.NoError(f.t, err)
	resp.Body.Close()
}

func (f *fixture) script(args ...string) string {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script()}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	f.t.Logf("cluster.sh %s: %s", strings.Join(args, " "), strings.TrimSpace(stderr.String()))
	require.NoError(f.t, err, "cluster.sh %s", strings.Join(args, " "))
	return string(out)
}

func TestClusterScale(t *testing.T) {
	f := cluster(t, k8s.Config{})
	f.service("scale", 2, "v1")
	f.healthy("scale", 2, 60*time.Second)
	t0 := time.Now()
	require.NoError(t, f.d.Scale(f.ctx(10*time.Second), "scale", 5))
	f.healthy("scale", 5, 60*time.Second)
	t.Logf("scaled 2 -> 5 healthy in %s", time.Since(t0).Round(time.Millisecond))
	sc, err := f.d.Clientset().AppsV1().Deployments("default").GetScale(f.ctx(5*time.Second), "scale", metav1.GetOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 5, sc.Spec.Replicas)
	require.NoError(t, f.d.Scale(f.ctx(10*time.Second), "scale", 1))
	f.healthy("scale", 1, 60*time.Second)
}

func TestClusterHPARespected(t *testing.T) {
	f := cluster(t, k8s.Config{})
	f.service("hpa", 1, "v1")
	f.healthy("hpa", 1, 60*time.Second)
	minR := int32(1)
	hpa := &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "hpa"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{MinReplicas: &minR, MaxReplicas: 3,
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "hpa"}},
	}
	hpas := f.d.Clientset().AutoscalingV1().HorizontalPodAutoscalers("default")
	_, err := hpas.Create(f.ctx(5*time.Second), hpa, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = hpas.Delete(context.Background(), "hpa", metav1.DeleteOptions{}) })
	owner, err := f.d.HPAOwner(f.ctx(5*time.Second), "hpa")
	require.NoError(t, err)
	require.Equal(t, "hpa", owner)
	err = f.d.Scale(f.ctx(5*time.Second), "hpa", 3)
	require.ErrorIs(t, err, k8s.ErrHPAOwned)
	sc, err := f.d.Clientset().AppsV1().Deployments("default").GetScale(f.ctx(5*time.Second), "hpa", metav1.GetOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 1, sc.Spec.Replicas, "the driver scaled a Deployment an HPA owns")
}

func TestClusterReplaceAndKubeletRestart(t *testing.T) {
	f := cluster(t, k8s.Config{})
	f.service("replace", 2, "v1")
	ins := f.healthy("replace", 2, 60*time.Second)

	// Stop deletes the pod; its ReplicaSet starts a replacement.
	t0 := time.Now()
	require.NoError(t, f.d.Stop(f.ctx(10*time.Second), ins[0].ID, time.Second))
	// the informer's cache learns of the deletion a moment after Stop returns
	require.Eventually(t, func() bool {
		all, err := f.d.Instances(context.Background(), "replace")
		require.NoError(t, err)
		for _, in := range all {
			if in.ID == ins[0].ID {
				return in.State == driver.StateExited || in.ExitReason == "terminating"
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "the stopped pod is not terminating")
	now := f.healthy("replace", 2, 60*time.Second)
	for _, in := range now {
		require.NotEqual(t, ins[0].ID, in.ID, "the stopped pod is still there")
	}
	t.Logf("replaced %s in %s", ins[0].ID, time.Since(t0).Round(time.Millisecond))

	// A crash is the kubelet's to restart: the same pod comes back, and the driver
	// reports it as starting (not exited), so that the agent does not replace it too.
	victim := now[0]
	f.post(victim, "/fault/crash")
	sawRestart := false
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && !sawRestart {
		all, err := f.d.Instances(context.Background(), "replace")
		require.NoError(t, err)
		for _, in := range all {
			if in.ID == victim.ID {
				require.NotEqual(t, driver.StateExited, in.State, "a container the kubelet restarts was reported exited")
				if strings.HasPrefix(in.ExitReason, "restarting (kubelet)") {
					sawRestart = true
				}
			}
		}
		p, err := f.d.Clientset().CoreV1().Pods("default").Get(context.Background(), victim.ID, metav1.GetOptions{})
		require.NoError(t, err)
		if len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount > 0 {
			sawRestart = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.True(t, sawRestart, "the kubelet did not restart the crashed container")
	after := f.healthy("replace", 2, 60*time.Second)
	ids := []string{after[0].ID, after[1].ID}
	require.Contains(t, ids, victim.ID, "the crashed pod was replaced, not restarted in place")
}

func TestClusterRolloutAndRollback(t *testing.T) {
	f := cluster(t, k8s.Config{})
	spec := f.service("roll", 3, "v1")
	f.healthy("roll", 3, 60*time.Second)

	// a good release: rolled out 2 at a time, completed
	spec.Version = "v2"
	spec.Update = driver.UpdatePolicy{Parallelism: 2, Monitor: 2 * time.Second}
	t0 := time.Now()
	require.NoError(t, f.d.Apply(f.ctx(10*time.Second), spec))
	f.waitRollout("roll", driver.RolloutCompleted, 90*time.Second)
	t.Logf("v2 rolled out in %s", time.Since(t0).Round(time.Millisecond))
	for _, in := range f.healthy("roll", 3, 30*time.Second) {
		require.Equal(t, "v2", in.Version)
	}

	// a bad release: its pods are ready for Kubernetes but report fail in their
	// health documents; the driver rolls back to v2
	bad := spec
	bad.Version = "v3"
	bad.Env = []string{"HEALTH=fail"}
	t0 = time.Now()
	require.NoError(t, f.d.Apply(f.ctx(10*time.Second), bad))
	st := f.waitRollout("roll", driver.RolloutRollbackCompleted, 90*time.Second)
	t.Logf("v3 rolled back in %s: %s", time.Since(t0).Round(time.Millisecond), st.Message)
	for _, in := range f.healthy("roll", 3, 60*time.Second) {
		require.Equal(t, "v2", in.Version)
	}
}

func (f *fixture) waitRollout(service string, want driver.RolloutState, within time.Duration) driver.RolloutStatus {
	f.t.Helper()
	deadline := time.Now().Add(within)
	var st driver.RolloutStatus
	for time.Now().Before(deadline) {
		var err error
		st, err = f.d.Rollout(context.Background(), service)
		require.NoError(f.t, err)
		if st.State == want {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("rollout of %s: want %s within %s, have %+v", service, want, within, st)
	return st
}

// TestClusterDrainRespectsPDB drains a node through the Eviction API: a pod that a
// PodDisruptionBudget protects stays until the budget allows its eviction.
func TestClusterDrainRespectsPDB(t *testing.T) {
	f := cluster(t, k8s.Config{})
	f.service("drain", 2, "v1")
	ins := f.healthy("drain", 2, 60*time.Second)
	node := ins[0].Node
	minA := intstr.FromInt32(2)
	pdbs := f.d.Clientset().PolicyV1().PodDisruptionBudgets("default")
	_, err := pdbs.Create(f.ctx(5*time.Second), &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "drain"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &minA,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{k8s.LabelService: "drain"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pdbs.Delete(context.Background(), "drain", metav1.DeleteOptions{}) })
	// the disruption controller must have computed the budget before it blocks anything
	require.Eventually(t, func() bool {
		p, err := pdbs.Get(context.Background(), "drain", metav1.GetOptions{})
		return err == nil && p.Status.ObservedGeneration == p.Generation && p.Status.CurrentHealthy == 2
	}, 30*time.Second, 100*time.Millisecond)
	t.Cleanup(func() { _ = f.d.SetNodeState(context.Background(), node, driver.NodeReady, "") })

	require.NoError(t, f.d.SetNodeState(f.ctx(10*time.Second), node, driver.NodeDrained, "test"))
	nodes, err := f.d.Nodes(context.Background())
	require.NoError(t, err)
	for _, n := range nodes {
		if n.Name == node {
			require.Equal(t, driver.NodeDrained, n.State)
		}
	}
	time.Sleep(2 * time.Second)
	p, err := f.d.Clientset().CoreV1().Pods("default").Get(context.Background(), ins[0].ID, metav1.GetOptions{})
	require.NoError(t, err, "the budget allowed no disruption, yet the pod went")
	require.Nil(t, p.DeletionTimestamp, "the budget allowed no disruption, yet the pod is terminating")

	// the budget relaxed: the background drain evicts it, its replacement runs elsewhere
	require.NoError(t, pdbs.Delete(context.Background(), "drain", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		ins, err := f.d.Instances(context.Background(), "drain")
		require.NoError(t, err)
		for _, in := range ins {
			if in.Node == node && in.State != driver.StateExited {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "the drained node kept its pods")
	for _, in := range f.healthy("drain", 2, 60*time.Second) {
		require.NotEqual(t, node, in.Node)
	}
}
