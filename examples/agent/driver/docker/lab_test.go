//go:build linux

package docker_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
)

// The tests in this file run on the test-host lab (.ci/docker/lab.sh): hosts in network
// namespaces, each with its own Docker engine, joined as one swarm. CI starts it with
// .ci/services.d/lab.sh and exports SELFHEAL_LAB_*; the tests probe the instances from
// inside the manager host's namespace (the machine's own namespace has no route to the
// lab, by design).

type labFixture struct {
	t       *testing.T
	d       *docker.Driver
	script  string
	manager string // the manager host's name
	image   string
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	http    *http.Client
}

// labScript is .ci/docker/lab.sh (or $SELFHEAL_LAB_SCRIPT).
func labScript() string {
	if s := os.Getenv("SELFHEAL_LAB_SCRIPT"); s != "" {
		return s
	}
	return filepath.Join("..", "..", "..", "..", ".ci", "docker", "lab.sh")
}

// lab returns a driver on the lab's manager. Without SELFHEAL_LAB_MANAGER the test
// fails when CI's services are configured (SELFHEAL_DOCKER_HOST is set: the lab is
// missing), and skips only in a plain `go test` without any engine.
func lab(t *testing.T) *labFixture {
	t.Helper()
	host := os.Getenv("SELFHEAL_LAB_MANAGER")
	if host == "" {
		if os.Getenv("SELFHEAL_DOCKER_HOST") != "" {
			t.Fatal("SELFHEAL_LAB_MANAGER is not set but the CI services are (SELFHEAL_DOCKER_HOST): the test-host lab is missing (.ci/services.d/lab.sh starts it)")
		}
		t.Skip("SELFHEAL_LAB_MANAGER is not set: no test-host lab (start one with: eval \"$(bash .ci/docker/lab.sh start)\")")
	}
	d, err := docker.New(docker.Config{
		Host:              host,
		CallTimeout:       10 * time.Second,
		StopGrace:         2 * time.Second,
		HealthStartPeriod: 2 * time.Second,
		Logger:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, d.Ping(ctx), "the lab's manager at %s", host)
	manager := strings.TrimSuffix(filepath.Base(filepath.Dir(strings.TrimPrefix(host, "unix://"))), "/")
	dial := netnsDialer("/run/netns/" + manager)
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	image := os.Getenv("SELFHEAL_LAB_IMAGE")
	if image == "" {
		image = "selfheal-testsvc:lab"
	}
	return &labFixture{t: t, d: d, script: labScript(), manager: manager, image: image, dial: dial,
		http: &http.Client{Transport: tr, Timeout: 2 * time.Second}}
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
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// run runs the lab script with args and returns its standard output.
func (f *labFixture) run(args ...string) string {
	f.t.Helper()
	return runLab(f.t, nil, args...)
}

func runLab(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{labScript()}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Logf("lab.sh %s: %s", strings.Join(args, " "), strings.TrimSpace(stderr.String()))
	require.NoError(t, err, "lab.sh %s", strings.Join(args, " "))
	return string(out)
}

// service declares a lab service of n replicas on a random port range and removes it
// when the test ends.
func (f *labFixture) service(n int) driver.ServiceSpec {
	f.t.Helper()
	name := fmt.Sprintf("lab-%04x", rand.IntN(1<<16))
	spec := driver.ServiceSpec{
		Name:     name,
		Version:  "v1",
		Image:    f.image,
		Replicas: n,
		BasePort: 20000 + 16*rand.IntN(600),
		Env:      []string{"LISTEN_HOST=0.0.0.0"},
		Health:   driver.HealthCheck{Path: "/livez", Interval: 500 * time.Millisecond, Timeout: 2 * time.Second, Retries: 2},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(f.t, f.d.Apply(ctx, spec))
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := f.d.Remove(ctx, name); err != nil {
			f.t.Logf("removing %s: %v", name, err)
		}
	})
	return spec
}

// live returns the running instances of service that answer /livez, probed from the
// manager host.
func (f *labFixture) live(ctx context.Context, service string) ([]driver.Instance, string) {
	insts, err := f.d.Instances(ctx, service)
	if err != nil {
		return nil, err.Error()
	}
	var out []driver.Instance
	var desc []string
	for _, in := range insts {
		desc = append(desc, fmt.Sprintf("%s@%s %s %s", in.ID[:8], in.Node, in.State, in.Addr))
		if in.State != driver.StateRunning {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.Addr+"/livez", nil)
		resp, err := f.http.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			out = append(out, in)
		}
	}
	return out, strings.Join(desc, "; ")
}

// waitLive waits until n instances of service are live and none runs on a node in
// not; it returns them and how long it took.
func (f *labFixture) waitLive(service string, n int, not string, timeout time.Duration) ([]driver.Instance, time.Duration) {
	f.t.Helper()
	var got []driver.Instance
	took := waitForEvery(f.t, timeout, 50*time.Millisecond, fmt.Sprintf("%d live instances of %s off %q", n, service, not), func(ctx context.Context) (bool, string) {
		var state string
		got, state = f.live(ctx, service)
		for _, in := range got {
			if in.Node == not {
				return false, state
			}
		}
		return len(got) == n, state
	})
	return got, took
}

// waitForEvery is waitFor with a chosen poll period.
func waitForEvery(t *testing.T, timeout, every time.Duration, what string, cond func(ctx context.Context) (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := ""
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		ok, state := cond(cctx)
		ccancel()
		if ok {
			return time.Since(start)
		}
		last = state
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, last)
		case <-tick.C:
		}
	}
}

// victim returns a live worker that runs at least one instance of insts.
func (f *labFixture) victim(insts []driver.Instance) string {
	f.t.Helper()
	for _, in := range insts {
		if in.Node != f.manager {
			return in.Node
		}
	}
	f.t.Fatalf("no instance on a worker: %v", insts)
	return ""
}

// kill kills host (lab.sh kill-host) and returns the time its link was cut.
func (f *labFixture) kill(host string) time.Time {
	f.t.Helper()
	out := strings.TrimSpace(f.run("kill-host", host))
	ns, err := strconv.ParseInt(out, 10, 64)
	require.NoError(f.t, err, "kill-host printed %q", out)
	return time.Unix(0, ns)
}

// replace adds a host to the lab and waits until Swarm reports it ready.
func (f *labFixture) replace() string {
	f.t.Helper()
	name := strings.TrimSpace(f.run("add-host"))
	waitForEvery(f.t, 60*time.Second, 100*time.Millisecond, "host "+name+" ready", func(ctx context.Context) (bool, string) {
		nodes, err := f.d.Nodes(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range nodes {
			if n.Name == name {
				return n.State == driver.NodeReady, fmt.Sprint(nodes)
			}
		}
		return false, fmt.Sprint(nodes)
	})
	return name
}

// TestLabWorkerLostGuardRemovesIt: a worker host is killed (kill -9 of everything on
// it, its link cut); the NodeGuard confirms the loss and removes the node from the
// swarm, and the replicas run elsewhere within seconds instead of Swarm's 12.5-14.5 s.
// A replacement host then joins and takes replicas when the service scales up.
func TestLabWorkerLostGuardRemovesIt(t *testing.T) {
	f := lab(t)
	spec := f.service(3)
	insts, _ := f.waitLive(spec.Name, 3, "", 90*time.Second)
	victim := f.victim(insts)

	var mu sync.Mutex
	var incidents []docker.NodeIncident
	g, err := docker.NewNodeGuard(docker.NodeGuardConfig{
		Driver:   f.d,
		Dial:     f.dial,
		Cooldown: time.Second,
		OnIncident: func(in docker.NodeIncident) {
			mu.Lock()
			defer mu.Unlock()
			incidents = append(incidents, in)
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	// A few rounds with every host alive: nothing is removed.
	waitForEvery(t, 30*time.Second, 50*time.Millisecond, "5 guard rounds", func(context.Context) (bool, string) {
		s := g.Snapshot()
		return s.Rounds >= 5, fmt.Sprint(s)
	})
	require.Empty(t, g.Snapshot().Incidents, "the guard removed a node of a healthy lab")

	killed := f.kill(victim)
	f.waitLive(spec.Name, 3, victim, 60*time.Second)
	took := time.Since(killed)
	t.Logf("FIGURE agent: %s killed -> 3 replicas live elsewhere in %v", victim, took.Round(10*time.Millisecond))

	mu.Lock()
	require.Len(t, incidents, 1, "exactly one incident")
	in := incidents[0]
	mu.Unlock()
	require.Equal(t, victim, in.Node)
	require.NoError(t, in.Err)
	require.False(t, in.Removed.IsZero())
	t.Logf("FIGURE agent: silent %v after the kill, confirmed %v, removed %v; %s",
		in.SilentFrom.Sub(killed).Round(time.Millisecond), in.Confirmed.Sub(killed).Round(time.Millisecond),
		in.Removed.Sub(killed).Round(time.Millisecond), in.Reason)
	// Confirmation takes Confirm (3) silent rounds: never a single missed probe.
	require.GreaterOrEqual(t, in.Confirmed.Sub(in.SilentFrom), 2*250*time.Millisecond)
	// Loaded CI machines stretch it; Swarm alone takes 12.5-14.5 s.
	require.Less(t, took, 8*time.Second, "replicas elsewhere after the kill")
	nodes, err := f.d.Nodes(context.Background())
	require.NoError(t, err)
	for _, n := range nodes {
		require.NotEqual(t, victim, n.Name, "the lost node is still in the swarm")
	}

	// A replacement host joins; scaling up places replicas on it.
	fresh := f.replace()
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	require.NoError(t, f.d.Scale(sctx, spec.Name, 6))
	insts, _ = f.waitLive(spec.Name, 6, victim, 90*time.Second)
	on := 0
	for _, in := range insts {
		if in.Node == fresh {
			on++
		}
	}
	require.Positive(t, on, "no replica on the replacement host %s: %v", fresh, insts)
	require.Len(t, g.Snapshot().Incidents, 1, "the guard acted again")
}

// TestLabWorkerLostSwarmAlone: the same loss without the guard; Swarm reschedules only
// after its heartbeat timeout. The lab is restored (the node removed, a host added).
func TestLabWorkerLostSwarmAlone(t *testing.T) {
	f := lab(t)
	spec := f.service(3)
	insts, _ := f.waitLive(spec.Name, 3, "", 90*time.Second)
	victim := f.victim(insts)
	killed := f.kill(victim)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := f.d.RemoveNode(ctx, victim, "test cleanup"); err != nil {
			t.Logf("removing %s: %v", victim, err)
		}
		f.replace()
	})
	f.waitLive(spec.Name, 3, victim, 90*time.Second)
	took := time.Since(killed)
	t.Logf("FIGURE swarm alone: %s killed -> 3 replicas live elsewhere in %v", victim, took.Round(10*time.Millisecond))
	// Swarm waits for missed heartbeats (5 s period) before it marks the node down.
	require.Greater(t, took, 5*time.Second)
}

// TestLabGuardNeverRemovesManager: RemoveNode refuses the manager.
func TestLabGuardNeverRemovesManager(t *testing.T) {
	f := lab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := f.d.RemoveNode(ctx, f.manager, "test")
	require.ErrorIs(t, err, docker.ErrManagerNode)
	var ne *driver.NodeError
	require.ErrorAs(t, err, &ne)
	require.ErrorIs(t, f.d.RemoveNode(ctx, "no-such-node", "test"), driver.ErrNotFound)
}

// TestLabStopLeavesNothing starts a second, small lab of its own (its own directory,
// prefix and subnet), runs a service on it, kills a host as a crashed test would
// leave it, and checks that stop removes every namespace, process, mount, cgroup and
// file, adds nothing to the machine's own network namespace, and is idempotent.
func TestLabStopLeavesNothing(t *testing.T) {
	lab(t) // only where a lab can run
	dir := fmt.Sprintf("/tmp/shlt-%04x", rand.IntN(1<<16))
	env := []string{"SELFHEAL_LAB_DIR=" + dir, "SELFHEAL_LAB_PREFIX=shlt", "SELFHEAL_LAB_NET=10.214.0"}
	_, etcDockerErr := os.Stat("/etc/docker")
	t.Cleanup(func() { runLab(t, env, "stop") })

	start := time.Now()
	out := runLab(t, env, "start", "2")
	t.Logf("FIGURE lab of 2 hosts started in %v", time.Since(start).Round(10*time.Millisecond))
	vars := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			vars[k] = strings.Trim(v, "'")
		}
	}
	require.Equal(t, "unix://"+dir+"/hosts/shlt1/docker.sock", vars["SELFHEAL_LAB_MANAGER"])
	cli := vars["SELFHEAL_DOCKER_CLI"]
	require.NotEmpty(t, cli)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dk := func(args ...string) string {
		out, err := exec.CommandContext(ctx, cli, append([]string{"-H", vars["SELFHEAL_LAB_MANAGER"]}, args...)...).CombinedOutput()
		require.NoError(t, err, "docker %v: %s", args, out)
		return string(out)
	}
	dk("service", "create", "-d", "--name", "leftover", "--replicas", "2", "--network", "host",
		"--no-resolve-image", "--env", "LISTEN_HOST=0.0.0.0", "--env", "PORT=1808{{.Task.Slot}}", vars["SELFHEAL_LAB_IMAGE"])
	waitForEvery(t, 60*time.Second, 100*time.Millisecond, "2 running tasks", func(context.Context) (bool, string) {
		out := dk("service", "ps", "--filter", "desired-state=running", "--format", "{{.CurrentState}}", "leftover")
		return strings.Count(out, "Running") == 2, out
	})
	require.NotEmpty(t, labLeftovers(t, dir, "shlt"), "the lab is running: leftovers() sees nothing")
	require.Empty(t, hostLabInterfaces(t, "shlt", "10.214.0."), "the lab added to the machine's own namespace")
	runLab(t, env, "kill-host", "shlt2")
	// back again (its engine restarted on its old state, still a member), then lost
	// again as a crashed test leaves it
	runLab(t, env, "revive-host", "shlt2")
	waitForEvery(t, 60*time.Second, 100*time.Millisecond, "shlt2 ready again", func(context.Context) (bool, string) {
		out := dk("node", "ls", "--format", "{{.Hostname}}:{{.Status}}")
		return strings.Contains(out, "shlt2:Ready"), out
	})
	runLab(t, env, "kill-host", "shlt2")

	start = time.Now()
	runLab(t, env, "stop")
	t.Logf("FIGURE lab of 2 hosts stopped in %v", time.Since(start).Round(10*time.Millisecond))
	require.Empty(t, labLeftovers(t, dir, "shlt"))
	require.Empty(t, hostLabInterfaces(t, "shlt", "10.214.0."))
	_, err := os.Stat("/etc/docker")
	require.Equal(t, os.IsNotExist(etcDockerErr), os.IsNotExist(err), "/etc/docker")
	runLab(t, env, "stop") // idempotent
	require.Empty(t, labLeftovers(t, dir, "shlt"))
	runLab(t, env, "leftovers") // and the script agrees
}

// labLeftovers lists what of the lab in dir with prefix is still on the machine: its
// directory, namespaces, processes, mounts and cgroups.
func labLeftovers(t *testing.T, dir, prefix string) []string {
	t.Helper()
	var out []string
	if _, err := os.Stat(dir); err == nil {
		out = append(out, "directory "+dir)
	}
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) {
				out = append(out, "namespace "+e.Name())
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), dir+"/") {
			out = append(out, "process "+p+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	require.NoError(t, err)
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 1 && (strings.HasPrefix(f[1], dir+"/") || strings.HasPrefix(f[1], "/run/netns/"+prefix)) {
			out = append(out, "mount "+f[1])
		}
	}
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*/" + prefix)
	for _, c := range cgs {
		out = append(out, "cgroup "+c)
	}
	return out
}

// hostLabInterfaces lists the interfaces of the machine's own network namespace that
// the lab could have made: named after its prefix or its bridge ports, or with an
// address in its subnet.
func hostLabInterfaces(t *testing.T, prefix, subnet string) []string {
	t.Helper()
	ifs, err := net.Interfaces()
	require.NoError(t, err)
	var out []string
	for _, i := range ifs {
		addrs, _ := i.Addrs()
		bad := strings.HasPrefix(i.Name, prefix)
		if len(i.Name) > 1 && i.Name[0] == 'p' && strings.Trim(i.Name[1:], "0123456789") == "" {
			bad = true
		}
		for _, a := range addrs {
			bad = bad || strings.HasPrefix(a.String(), subnet)
		}
		if bad {
			out = append(out, fmt.Sprint(i.Name, addrs))
		}
	}
	return out
}
