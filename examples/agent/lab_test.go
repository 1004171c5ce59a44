//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// TestLabAgentNodeLoss runs the agent (run, as `go run ./examples/agent` does) on the
// test-host lab (.ci/docker/lab.sh): a service of 3 replicas behind the agent's front
// door, clients sending through it, and a worker host killed. The agent's node guard
// confirms the loss and removes the node, the replicas run elsewhere, the clients see
// >= 99.9% success across the step, the agent provisions a replacement host
// (nodePool.min) and spreads the service onto it; every step is an incident in the
// event log.
//
// The lab's hosts are reachable only from inside their network namespaces, so the
// test runs itself again inside the manager host's namespace (ip netns exec), where
// the agent runs as it would on a manager. Provisioning a host (a cloud's API call in
// production) is done in the machine's own namespaces, those of the outer test
// process (nsenter): lab.sh add-host makes namespaces and mounts there.
func TestLabAgentNodeLoss(t *testing.T) {
	manager := os.Getenv("SELFHEAL_LAB_MANAGER")
	if manager == "" {
		if os.Getenv("SELFHEAL_DOCKER_HOST") != "" {
			t.Fatal("SELFHEAL_LAB_MANAGER is not set but the CI services are (SELFHEAL_DOCKER_HOST): the test-host lab is missing (.ci/services.d/lab.sh starts it)")
		}
		t.Skip("SELFHEAL_LAB_MANAGER is not set: no test-host lab (start one with: eval \"$(bash .ci/docker/lab.sh start)\")")
	}
	if os.Getenv("SELFHEAL_LAB_IN_NS") == "" {
		host := filepath.Base(filepath.Dir(strings.TrimPrefix(manager, "unix://")))
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", host, os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "SELFHEAL_LAB_IN_NS=1", "DOCKER_HOST="+manager, fmt.Sprintf("SELFHEAL_LAB_OUTSIDE_PID=%d", os.Getpid()))
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = cmd.Stdout
		require.NoError(t, cmd.Start())
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			t.Log(sc.Text())
		}
		require.NoError(t, cmd.Wait(), "the test inside %s's namespace", host)
		return
	}
	labAgentNodeLoss(t, manager)
}

func labAgentNodeLoss(t *testing.T, manager string) {
	script := os.Getenv("SELFHEAL_LAB_SCRIPT")
	if script == "" {
		script = filepath.Join("..", "..", ".ci", "docker", "lab.sh")
	}
	image := os.Getenv("SELFHEAL_LAB_IMAGE")
	if image == "" {
		image = "selfheal-testsvc:lab"
	}
	d, err := docker.New(docker.Config{Host: manager, CallTimeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() }) // after the service's removal below (cleanups run last first)
	ctx := context.Background()
	nodes, err := d.Nodes(ctx)
	require.NoError(t, err)
	ready := 0
	for _, n := range nodes {
		if n.State == driver.NodeReady {
			ready++
		}
	}
	name := fmt.Sprintf("lab-agent-%04x", rand.IntN(1<<16))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	door := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	fleet := fmt.Sprintf(`agent:
  driver: docker
  listen: "off"
  eventLog: %s
  budget: {max: 30, window: 1m}
nodePool:
  min: %d
  provision: nsenter --target %s --mount --net -- bash %s add-host
services:
  - name: %s
    version: v1
    image: %s
    replicas: 3
    basePort: %d
    env: [LISTEN_HOST=0.0.0.0]
    frontDoor: %s
    health: {interval: 500ms, timeout: 2s, failureThreshold: 2, startupGrace: 5s}
    update: {parallelism: 1, delay: 500ms, monitor: 2s}
`, events, ready, os.Getenv("SELFHEAL_LAB_OUTSIDE_PID"), script, name, image, 20000+16*rand.IntN(600), door)
	p := filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(p, []byte(fleet), 0o600))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := d.Remove(ctx, name); err != nil {
			t.Logf("removing %s: %v", name, err)
		}
	})

	actx, stop := context.WithCancel(context.Background())
	code := make(chan int, 1)
	var agentOut syncBuffer
	go func() { code <- run(actx, []string{"-config", p}, io.Discard, &agentOut) }()
	defer func() {
		stop()
		select {
		case c := <-code:
			require.Equal(t, 0, c, "the agent's exit code; its output:\n%s", agentOut.String())
		case <-time.After(30 * time.Second):
			t.Fatal("the agent did not exit")
		}
	}()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() bool {
		resp, err := client.Get("http://" + door + "/")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	wait(t, 120*time.Second, "3 instances live and the front door serving", func() (bool, string) {
		insts, err := d.Instances(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for _, in := range insts {
			if in.State == driver.StateRunning {
				running++
			}
		}
		return running == 3 && get(), fmt.Sprint(insts)
	})
	time.Sleep(3 * time.Second) // past the startup grace: every instance probed healthy

	// clients through the front door, for the whole step
	var ok, failed atomic.Int64
	lctx, lstop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for lctx.Err() == nil {
				if get() {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	stopLoad := func() { lstop(); wg.Wait() }
	defer stopLoad()
	time.Sleep(2 * time.Second)

	insts, err := d.Instances(ctx, name)
	require.NoError(t, err)
	victim := ""
	for _, in := range insts {
		if in.State == driver.StateRunning && in.Node != filepath.Base(filepath.Dir(strings.TrimPrefix(manager, "unix://"))) {
			victim = in.Node
		}
	}
	require.NotEmpty(t, victim, "no instance on a worker: %v", insts)
	kill := exec.Command("bash", script, "kill-host", victim)
	kill.Stderr = os.Stderr
	outb, err := kill.Output()
	require.NoError(t, err)
	ns, err := strconv.ParseInt(strings.TrimSpace(string(outb)), 10, 64)
	require.NoError(t, err, "kill-host printed %q", outb)
	killed := time.Unix(0, ns) // the time its link was cut
	t.Logf("killed %s (%s)", victim, strings.TrimSpace(string(outb)))

	wait(t, 90*time.Second, "3 instances running off "+victim, func() (bool, string) {
		insts, err := d.Instances(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, in := range insts {
			if in.State == driver.StateRunning && in.Node != victim {
				n++
			}
		}
		return n == 3, fmt.Sprint(insts)
	})
	took := time.Since(killed)
	time.Sleep(3 * time.Second) // the clients keep going on the new instances
	stopLoad()
	total := ok.Load() + failed.Load()
	rate := float64(ok.Load()) / float64(total)
	t.Logf("FIGURE agent (run): %s killed -> 3 replicas running elsewhere in %v; clients through the front door: %d of %d ok (%.3f%%)",
		victim, took.Round(10*time.Millisecond), ok.Load(), total, 100*rate)
	require.Greater(t, total, int64(100), "too few requests to judge")
	require.GreaterOrEqual(t, rate, 0.999, "client success through the front door across the host kill")

	// the incidents: the node lost (removed), a node asked for, the service spread
	wait(t, 150*time.Second, "node-lost, nodes-below-min and node-joined healed in the event log", func() (bool, string) {
		healed := map[string]int{}
		for _, e := range readEvents(t, events) {
			if e.Kind == eventlog.Healed {
				healed[e.What]++
			}
		}
		return healed["node-lost"] == 1 && healed["nodes-below-min"] == 1 && healed["node-joined"] >= 1, fmt.Sprint(healed)
	})
	for _, e := range readEvents(t, events) {
		if strings.HasPrefix(e.Incident, "node#") {
			t.Logf("event %s %s %s %s: %s (detect %.0f ms, heal %.0f ms) +%v", e.Kind, e.What, e.Node, e.Incident, e.Why,
				e.DetectMs, e.HealMs, e.Time.Sub(killed).Round(10*time.Millisecond))
		}
	}
}

// wait polls cond every 100 ms until it holds, and returns how long that took.
func wait(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, last)
	return 0
}

func readEvents(t *testing.T, file string) []eventlog.Event {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var out []eventlog.Event
	for line := range strings.SplitSeq(string(b), "\n") {
		var e eventlog.Event
		if json.Unmarshal([]byte(line), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// syncBuffer is a strings.Builder safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
