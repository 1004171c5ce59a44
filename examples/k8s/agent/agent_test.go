//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/k8s"
	"github.com/selfheal-go/selfheal/health"
)

// The agent runs as its own process inside the cluster's bridge namespace, where pod
// IPs are routed, as an agent deployed in the cluster reaches its pods: the test
// binary re-executes itself there (ip netns exec) with childEnv set, and TestMain runs
// the agent's main instead of the tests.
const childEnv = "SELFHEAL_K8S_AGENT_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		code := run(ctx, strings.Split(args, "\x1f"), os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

type env struct {
	t     *testing.T
	netns string
	kc    string
	image string
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	d     *k8s.Driver // the test's own view of the cluster (node guard off)
}

func clusterEnv(t *testing.T) *env {
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
	image := os.Getenv("SELFHEAL_K8S_IMAGE")
	if image == "" {
		image = "localhost/selfheal-k8s-testsvc:1"
	}
	e := &env{t: t, netns: ns, kc: kc, image: image, dial: netnsDialer(ns)}
	d, err := k8s.New(k8s.Config{Kubeconfig: kc, Dial: e.dial, NodeProbeInterval: k8s.Off})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	e.d = d
	return e
}

// agent starts the agent on a fleet of one service (name, replicas) in the bridge
// namespace and stops it (SIGTERM, by pid) and the service at the end.
func (e *env) agent(name string, replicas int, extra ...string) {
	t := e.t
	fleet := fmt.Sprintf(`agent:
  driver: kubernetes
  listen: 127.0.0.1:17071
  budget: {max: 20, window: 1m}
services:
  - name: %s
    version: v1
    image: %s
    replicas: %d
    stopGrace: 1s
    health:
      liveness: /livez
      readiness: /readyz
      document: /health
      interval: 250ms
      failureThreshold: 3
      startupGrace: 10s
`, name, e.image, replicas)
	file := filepath.Join(t.TempDir(), "fleet.yaml")
	require.NoError(t, os.WriteFile(file, []byte(fleet), 0o600))
	args := append([]string{"-fleet", file, "-kubeconfig", e.kc, "-v"}, extra...)
	cmd := exec.Command("ip", "netns", "exec", filepath.Base(e.netns), os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(args, "\x1f"))
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var logs sync.WaitGroup
	logs.Go(func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			t.Logf("agent: %s", sc.Text())
		}
	})
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			require.NoError(t, err, "the agent did not exit cleanly")
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Error("the agent did not exit within 20 s of SIGTERM")
		}
		pw.Close()
		logs.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.d.Remove(ctx, name)
		for ctx.Err() == nil {
			l, err := e.d.Clientset().CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: k8s.LabelService + "=" + name})
			if err == nil && len(l.Items) == 0 {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// healthy waits until service has exactly n live pods whose health documents pass.
func (e *env) healthy(service string, n int, within time.Duration) []driver.Instance {
	e.t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		ins, err := e.d.Instances(context.Background(), service)
		require.NoError(e.t, err)
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
			doc, _, err := e.d.Health(ctx, in.ID)
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
	e.t.Fatalf("service %s: want %d healthy pods within %s; last: %s", service, n, within, last)
	return nil
}

func (e *env) post(in driver.Instance, path string) {
	e.t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: e.dial, DisableKeepAlives: true}}
	resp, err := c.Post("http://"+in.Addr+path, "text/plain", nil)
	require.NoError(e.t, err)
	resp.Body.Close()
}

// TestAgentReplacesPodWhoseDocumentFails: a pod whose health document reports fail,
// while its liveness and readiness probes pass (Kubernetes sees nothing wrong and
// never acts), is replaced by the agent: deleted, and its ReplicaSet's replacement
// reports pass. With -dry-run the agent only logs, and the pod stays (the control).
func TestAgentReplacesPodWhoseDocumentFails(t *testing.T) {
	e := clusterEnv(t)
	e.agent("agentdoc", 2)
	ins := e.healthy("agentdoc", 2, 90*time.Second)
	victim := ins[0]
	t0 := time.Now()
	e.post(victim, "/fault/fail")
	var gone time.Duration
	require.Eventually(t, func() bool {
		p, err := e.d.Clientset().CoreV1().Pods("default").Get(context.Background(), victim.ID, metav1.GetOptions{})
		if err != nil || p.DeletionTimestamp != nil {
			gone = time.Since(t0)
			return true
		}
		require.Zero(t, restarts(p.Status.ContainerStatuses), "the kubelet restarted the container: its probes saw the fault")
		return false
	}, 30*time.Second, 20*time.Millisecond, "the agent did not replace the pod whose document reports fail")
	after := e.healthy("agentdoc", 2, 60*time.Second)
	for _, in := range after {
		require.NotEqual(t, victim.ID, in.ID)
	}
	t.Logf("document fail -> pod deleted by the agent after %s, 2 healthy pods again after %s",
		gone.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}

func restarts(st []corev1.ContainerStatus) int32 {
	var n int32
	for _, s := range st {
		n += s.RestartCount
	}
	return n
}

// netnsDialer dials from inside the network namespace at path (the test's own view;
// the agent runs in the namespace and needs none): the socket is made on an OS thread
// that joined the namespace and is never handed back to the scheduler.
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
