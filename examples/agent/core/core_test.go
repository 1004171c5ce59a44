package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

var serviceBin string

// The tests run the real demo service as the instances: real processes, real HTTP.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "selfheal-core-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serviceBin = filepath.Join(dir, "service")
	out, err := exec.Command("go", "build", "-o", serviceBin, "github.com/selfheal-go/selfheal/examples/service").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build the demo service: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func fleetFile(t *testing.T, dir string, replicas int, extra string) *config.Fleet {
	t.Helper()
	y := fmt.Sprintf(`agent:
  stateFile: %q
%s
nodes: [node-1, node-2]
services:
  - name: web
    command: [%q, -addr, "127.0.0.1:{port}", -version, "{version}", -fault-token, tok, -drain, 50ms]
    replicas: %d
    stopGrace: 300ms
    frontDoor: 127.0.0.1:0
    health: {interval: 100ms, timeout: 100ms, failureThreshold: 2, startupGrace: 5s}
`, filepath.Join(dir, "state.json"), extra, serviceBin, replicas)
	f, err := config.Parse("fleet.yaml", []byte(y))
	require.NoError(t, err)
	return f
}

type run struct {
	a      *core.Agent
	d      *local.Driver
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, f *config.Fleet, stopOnExit bool) *run {
	t.Helper()
	d, err := local.New(local.Config{Nodes: f.Nodes, StateFile: f.Agent.StateFile})
	require.NoError(t, err)
	a, err := core.New(core.Config{Fleet: f, Driver: d, StopOnExit: stopOnExit, Events: eventlog.New(nil, 500)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{a: a, d: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		if t.Failed() { // what the agent saw and did, to find the cause
			for _, e := range a.Events().Recent(0) {
				t.Logf("%s %s %s %s inst=%s node=%s inc=%s: %s", e.Time.Format("15:04:05.000"), e.Kind, e.What, e.Service, e.Instance, e.Node, e.Incident, e.Why)
			}
		}
	})
	return r
}

func (r *run) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	assert.ErrorIs(t, <-r.done, context.Canceled)
	require.NoError(t, r.d.Close())
}

func noLeftovers(t *testing.T, marker string) {
	t.Helper()
	require.Eventually(t, func() bool { return len(local.Leftovers(marker)) == 0 }, 10*time.Second, 20*time.Millisecond,
		"processes left behind: %v", local.Leftovers(marker))
}

func ready(a *core.Agent, n int) func() bool {
	return func() bool { return len(a.Backends("web")) == n }
}

func events(a *core.Agent, kind, what string) []eventlog.Event {
	var out []eventlog.Event
	for _, e := range a.Events().Recent(0) {
		if e.Kind == kind && e.What == what {
			out = append(out, e)
		}
	}
	return out
}

func TestAdoptsTheFleetAfterARestart(t *testing.T) {
	dir := t.TempDir()
	f := fleetFile(t, dir, 2, "")
	r1 := start(t, f, false)
	require.Eventually(t, ready(r1.a, 2), 15*time.Second, 20*time.Millisecond)
	before, _ := r1.d.Instances(context.Background(), "web")
	r1.stop(t) // the agent goes away; the fleet stays

	r2 := start(t, f, true)
	require.Eventually(t, ready(r2.a, 2), 15*time.Second, 20*time.Millisecond)
	after, _ := r2.d.Instances(context.Background(), "web")
	require.Len(t, after, 2, "no duplicates")
	for i := range after {
		assert.Equal(t, before[i].PID, after[i].PID, "adopted, not replaced")
		assert.True(t, after[i].Adopted)
	}
	assert.Len(t, events(r2.a, eventlog.Acted, "adopt"), 2)
	assert.Empty(t, events(r2.a, eventlog.Acted, "start"))
	r2.stop(t)
	noLeftovers(t, r2.d.Marker())
}

// Instances of a service that is not in the fleet are reported and left alone,
// never adopted (nor stopped: another fleet or an operator may own them).
func TestAdoptionIgnoresServicesOutsideTheFleet(t *testing.T) {
	dir := t.TempDir()
	r1 := start(t, fleetFile(t, dir, 1, ""), false)
	require.Eventually(t, ready(r1.a, 1), 15*time.Second, 20*time.Millisecond)
	before, _ := r1.d.Instances(context.Background(), "web")
	require.Len(t, before, 1)
	r1.stop(t)

	// The same state file, a fleet whose only service is "api".
	f := fleetFile(t, dir, 1, "")
	f.Services[0].Name = "api"
	r2 := start(t, f, true)
	require.Eventually(t, func() bool { return len(r2.a.Backends("api")) == 1 }, 15*time.Second, 20*time.Millisecond)
	ignored := events(r2.a, eventlog.Observed, "adopt-ignored")
	require.Len(t, ignored, 1)
	assert.Equal(t, before[0].ID, ignored[0].Instance)
	assert.Contains(t, ignored[0].Why, `service "web" is not in this fleet`)
	assert.Empty(t, events(r2.a, eventlog.Acted, "adopt"))
	assert.Empty(t, r2.a.Backends("web"))
	r2.stop(t)
	// Left alone: the web instance outlived the agent's StopOnExit. A third
	// driver on the same state file takes it over, to end it.
	d, err := local.New(local.Config{Nodes: f.Nodes, StateFile: f.Agent.StateFile})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	after, err := d.Adopt(ctx)
	require.NoError(t, err)
	require.Len(t, after, 1)
	assert.Equal(t, before[0].PID, after[0].PID)
	require.NoError(t, d.Stop(ctx, after[0].ID, 0))
	require.NoError(t, d.Close())
	noLeftovers(t, d.Marker())
}

func TestAdoptionTrimsToTheWantedCount(t *testing.T) {
	dir := t.TempDir()
	r1 := start(t, fleetFile(t, dir, 3, ""), false)
	require.Eventually(t, ready(r1.a, 3), 15*time.Second, 20*time.Millisecond)
	r1.stop(t)

	r2 := start(t, fleetFile(t, dir, 1, ""), true)
	require.Eventually(t, func() bool {
		insts, _ := r2.d.Instances(context.Background(), "web")
		return len(insts) == 1 && len(r2.a.Backends("web")) == 1
	}, 15*time.Second, 20*time.Millisecond)
	assert.Len(t, events(r2.a, eventlog.Acted, "scale-in"), 2)
	r2.stop(t)
	noLeftovers(t, r2.d.Marker())
}

func TestDryRunActsOnNothing(t *testing.T) {
	f := fleetFile(t, t.TempDir(), 2, "  dryRun: true")
	r := start(t, f, true)
	require.Eventually(t, func() bool { return len(events(r.a, eventlog.Held, "count")) > 0 }, 10*time.Second, 20*time.Millisecond)
	e := events(r.a, eventlog.Held, "count")[0]
	assert.True(t, e.DryRun)
	assert.Contains(t, e.Why, "would start or stop 2")
	insts, _ := r.d.Instances(context.Background(), "")
	assert.Empty(t, insts)
	r.stop(t)
}

func TestHoldsStillWhenMostLookBroken(t *testing.T) {
	f := fleetFile(t, t.TempDir(), 3, "")
	r := start(t, f, true)
	require.Eventually(t, ready(r.a, 3), 15*time.Second, 20*time.Millisecond)
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	insts, _ := r.d.Instances(context.Background(), "web")
	for _, in := range insts[:2] {
		req, _ := http.NewRequest(http.MethodPost, "http://"+in.Addr+"/fault/hang", nil)
		req.Header.Set("X-Fault-Token", "tok")
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	require.Eventually(t, func() bool { return len(events(r.a, eventlog.Held, "replace")) > 0 }, 10*time.Second, 20*time.Millisecond)
	assert.Contains(t, events(r.a, eventlog.Held, "replace")[0].Why, "2 of 3 instances look broken")
	assert.Empty(t, events(r.a, eventlog.Decided, "replace"))
	r.stop(t)
	noLeftovers(t, r.d.Marker())
}

func TestStatusAndControl(t *testing.T) {
	f := fleetFile(t, t.TempDir(), 1, "")
	r := start(t, f, true)
	require.Eventually(t, ready(r.a, 1), 15*time.Second, 20*time.Millisecond)
	srv := httptest.NewServer(r.a.Handler())
	defer srv.Close()
	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var st core.Status
	require.NoError(t, json.Unmarshal([]byte(get("/status")), &st))
	require.Len(t, st.Services, 1)
	assert.Equal(t, 1, st.Services[0].Desired)
	assert.Equal(t, "local", st.Driver)
	assert.Contains(t, get("/"), "web-1")

	resp, err := http.Post(srv.URL+"/scale?service=web&replicas=2", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Eventually(t, ready(r.a, 2), 15*time.Second, 20*time.Millisecond)

	resp, err = http.Post(srv.URL+"/scale?service=nope&replicas=2", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// The front door serves through the ready instances.
	resp, err = http.Get("http://" + r.a.FrontDoorAddr("web") + "/api/hello")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.True(t, strings.HasPrefix(string(b), "hello from"), string(b))
	http.DefaultClient.CloseIdleConnections()
	r.stop(t)
	noLeftovers(t, r.d.Marker())
}

func TestNewRequiresFleetAndDriver(t *testing.T) {
	_, err := core.New(core.Config{})
	assert.ErrorContains(t, err, "Fleet")
}

func TestCrashLoopGivesUp(t *testing.T) {
	y := `agent:
  listen: "off"
services:
  - name: web
    command: [/bin/false]
    replicas: 1
    health: {interval: 50ms}
    restart: {initial: 10ms, max: 20ms, crashLoopRestarts: 3, crashLoopWindow: 1m}
`
	f, err := config.Parse("fleet.yaml", []byte(y))
	require.NoError(t, err)
	r := start(t, f, true)
	require.Eventually(t, func() bool { return len(events(r.a, eventlog.Failed, "crash-loop")) > 0 }, 10*time.Second, 20*time.Millisecond)
	assert.Contains(t, events(r.a, eventlog.Failed, "crash-loop")[0].Why, "3 restarts within 1m0s: giving up")
	assert.Len(t, events(r.a, eventlog.Decided, "restart"), 3, "it stopped restarting")
	assert.NotEmpty(t, events(r.a, eventlog.Decided, "backoff"), "restarts were spaced")
	r.stop(t)
	noLeftovers(t, r.d.Marker())
}

func TestDegradedNodeIsDrained(t *testing.T) {
	f := fleetFile(t, t.TempDir(), 2, "")
	r := start(t, f, true)
	require.Eventually(t, ready(r.a, 2), 15*time.Second, 20*time.Millisecond)
	insts, _ := r.d.Instances(context.Background(), "web")
	require.NotEqual(t, insts[0].Node, insts[1].Node, "spread over the nodes")
	require.NoError(t, r.a.SetNodeState(context.Background(), "node-2", "degraded", "disk pressure"))
	require.Eventually(t, func() bool {
		insts, _ := r.d.Instances(context.Background(), "web")
		on1 := 0
		for _, in := range insts {
			if in.Node == "node-1" {
				on1++
			}
		}
		return len(insts) == 2 && on1 == 2 && len(r.a.Backends("web")) == 2
	}, 15*time.Second, 20*time.Millisecond)
	obs := events(r.a, eventlog.Observed, "node-degraded")
	require.Len(t, obs, 1)
	assert.Contains(t, obs[0].Why, "node node-2 reports itself degraded")
	assert.Len(t, events(r.a, eventlog.Healed, "replaced"), 1)
	r.stop(t)
	noLeftovers(t, r.d.Marker())
}

func TestMalformedDocumentCountsAgainstTheInstance(t *testing.T) {
	f := fleetFile(t, t.TempDir(), 3, "")
	r := start(t, f, true)
	require.Eventually(t, ready(r.a, 3), 15*time.Second, 20*time.Millisecond)
	insts, _ := r.d.Instances(context.Background(), "web")
	victim := insts[0]
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, "http://"+victim.Addr+"/fault/garble", nil)
	req.Header.Set("X-Fault-Token", "tok")
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Eventually(t, func() bool {
		for _, e := range events(r.a, eventlog.Healed, "replaced") {
			if e.Incident != "" {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond)
	obs := events(r.a, eventlog.Observed, "unhealthy")
	require.NotEmpty(t, obs)
	assert.Equal(t, victim.ID, obs[0].Instance)
	assert.Contains(t, obs[0].Why, "health document")
	r.stop(t)
	noLeftovers(t, r.d.Marker())
}

func crash(t *testing.T, addr string) {
	t.Helper()
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/fault/crash", nil)
	req.Header.Set("X-Fault-Token", "tok")
	resp, err := c.Do(req)
	if err != nil {
		// The process may end before its answer is out (EOF): the crash happened.
		// A request that never reached it fails the test on the heal it waits for.
		t.Logf("crash %s: %v", addr, err)
		return
	}
	resp.Body.Close()
}

func TestARelapseEscalatesToAnotherNode(t *testing.T) {
	f := fleetFile(t, t.TempDir(), 1, "")
	// Crashes are seen by their exit or by refused probes; a loaded machine must
	// not turn slow probes into failures besides (at 100 ms, about one run in
	// ten at a load of 30 on 2 cores replaced a healthy instance).
	f.Services[0].Health.Timeout = config.Duration(time.Second)
	r := start(t, f, true)
	require.Eventually(t, ready(r.a, 1), 15*time.Second, 20*time.Millisecond)
	// A crash is healed by a restart when its exit is seen first, by a
	// replacement when two refused probes are (the exit listed later); either
	// escalates when it relapses.
	healed := func(n int) func() bool {
		return func() bool {
			return len(events(r.a, eventlog.Healed, "restarted"))+len(events(r.a, eventlog.Healed, "replaced")) == n
		}
	}
	var insts []driver.Instance
	one := func() bool { // the exited instance forgotten, no other started
		insts, _ = r.d.Instances(context.Background(), "web")
		return len(insts) == 1 && insts[0].State == driver.StateRunning
	}
	first, _ := r.d.Instances(context.Background(), "web")
	crash(t, first[0].Addr)
	require.Eventually(t, healed(1), 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, one, 5*time.Second, 20*time.Millisecond, "one instance wanted: %v", insts)
	second := insts[0]
	crash(t, second.Addr) // within the monitor window
	require.Eventually(t, healed(2), 10*time.Second, 20*time.Millisecond)
	require.Len(t, events(r.a, eventlog.Failed, "verify"), 1)
	require.Eventually(t, one, 5*time.Second, 20*time.Millisecond, "one instance wanted: %v", insts)
	assert.NotEqual(t, second.Node, insts[0].Node, "escalated to another node")
	// An extra start (count() missed a replacement whose old instance exited)
	// shows as a scale-in.
	assert.Empty(t, events(r.a, eventlog.Acted, "scale-in"), "no instance started beyond the one wanted")
	r.stop(t)
	noLeftovers(t, r.d.Marker())
}
