package core_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
	"github.com/selfheal-go/selfheal/examples/agent/frontdoor"
)

// grayFleet is fleetFile with health and service settings of the test's own.
func grayFleet(t *testing.T, replicas int, health, service string) *config.Fleet {
	t.Helper()
	dir := t.TempDir()
	y := fmt.Sprintf(`agent:
  stateFile: %q
nodes: [node-1, node-2]
services:
  - name: web
    command: [%q, -addr, "127.0.0.1:{port}", -version, "{version}", -fault-token, tok, -drain, 50ms, -window, 1s]
    replicas: %d
    stopGrace: 300ms
    frontDoor: 127.0.0.1:0
    health: {interval: 100ms, timeout: 300ms, failureThreshold: 2, startupGrace: 5s%s}
%s`, filepath.Join(dir, "state.json"), serviceBin, replicas, health, service)
	f, err := config.Parse("fleet.yaml", []byte(y))
	require.NoError(t, err)
	return f
}

func fault(t *testing.T, addr, what string) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/fault/"+what, nil)
	req.Header.Set("X-Fault-Token", "tok")
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func routed(a interface {
	Backends(string) []frontdoor.Backend
}, id string) bool {
	return slices.ContainsFunc(a.Backends("web"), func(b frontdoor.Backend) bool { return b.ID == id })
}

func eventFor(a interface{ Events() *eventlog.Log }, kind, what, id string) (eventlog.Event, bool) {
	for _, e := range a.Events().Recent(0) {
		if e.Kind == kind && e.What == what && (id == "" || e.Instance == id) {
			return e, true
		}
	}
	return eventlog.Event{}, false
}

// watchBackends samples the front door's backends every 5 ms until stop is
// called and returns the fewest it saw.
func watchBackends(r *run) (stop func() int) {
	var fewest atomic.Int64
	fewest.Store(1 << 30)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				if n := int64(len(r.a.Backends("web"))); n < fewest.Load() {
					fewest.Store(n)
				}
			}
		}
	})
	return func() int { close(done); wg.Wait(); return int(fewest.Load()) }
}

// An instance whose readiness fails while its liveness passes leaves the front
// door at once with an event naming it, and is replaced, surge first, when it is
// still not ready after notReadyTimeout.
func TestNotReadyLeavesRotationThenIsReplaced(t *testing.T) {
	r := start(t, grayFleet(t, 3, ", notReadyTimeout: 1500ms", ""), true)
	defer noLeftovers(t, r.d.Marker())
	defer r.stop(t)
	require.Eventually(t, ready(r.a, 3), 15*time.Second, 20*time.Millisecond)
	victim := r.a.Backends("web")[0]
	stop := watchBackends(r)

	t0 := time.Now()
	fault(t, victim.Addr, "unready")
	require.Eventually(t, func() bool { return !routed(r.a, victim.ID) }, 2*time.Second, 5*time.Millisecond)
	out := time.Since(t0)
	require.Eventually(t, func() bool { _, ok := eventFor(r.a, eventlog.Observed, "not-ready", victim.ID); return ok }, 2*time.Second, 5*time.Millisecond,
		"an event names the instance")
	obs, _ := eventFor(r.a, eventlog.Observed, "not-ready", victim.ID)
	assert.Contains(t, obs.Why, "release:ready", "the reason the instance gives")
	assert.NotEmpty(t, obs.Incident)
	st := r.a.Status(context.Background(), 0).Services[0]
	assert.Equal(t, 2, st.Ready, "the status reports the ready count")
	assert.Equal(t, 3, st.Running)

	require.Eventually(t, func() bool { _, ok := eventFor(r.a, eventlog.Decided, "replace", victim.ID); return ok }, 5*time.Second, 10*time.Millisecond)
	dec, _ := eventFor(r.a, eventlog.Decided, "replace", victim.ID)
	decided := dec.Time.Sub(t0)
	assert.GreaterOrEqual(t, decided, 1500*time.Millisecond, "not before notReadyTimeout")
	assert.Contains(t, dec.Why, "not ready for")
	assert.Equal(t, obs.Incident, dec.Incident)

	require.Eventually(t, func() bool { _, ok := eventFor(r.a, eventlog.Acted, "retire", victim.ID); return ok }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, ready(r.a, 3), 10*time.Second, 10*time.Millisecond)
	fewest := stop()
	assert.Equal(t, 2, fewest, "capacity never dropped below the two ready instances")
	healed, ok := func() (eventlog.Event, bool) {
		for _, e := range r.a.Events().Recent(0) {
			if e.Kind == eventlog.Healed && e.Incident == obs.Incident {
				return e, true
			}
		}
		return eventlog.Event{}, false
	}()
	require.True(t, ok, "the incident heals")
	t.Logf("out of rotation after %s; replacement decided after %s; healed in %.0f ms", out.Round(time.Millisecond), decided.Round(time.Millisecond), healed.HealMs)
}

// An instance that is ready again before the timeout comes back into rotation and
// its incident heals; nothing is replaced.
func TestNotReadyRecovers(t *testing.T) {
	r := start(t, grayFleet(t, 2, ", notReadyTimeout: 5s", ""), true)
	defer noLeftovers(t, r.d.Marker())
	defer r.stop(t)
	require.Eventually(t, ready(r.a, 2), 15*time.Second, 20*time.Millisecond)
	victim := r.a.Backends("web")[0]
	fault(t, victim.Addr, "unready")
	require.Eventually(t, func() bool { _, ok := eventFor(r.a, eventlog.Observed, "not-ready", victim.ID); return ok }, 2*time.Second, 5*time.Millisecond,
		"events: %v", r.a.Events().Recent(0))
	assert.False(t, routed(r.a, victim.ID))
	fault(t, victim.Addr, "reset")
	require.Eventually(t, func() bool { _, ok := eventFor(r.a, eventlog.Healed, "ready", victim.ID); return ok }, 2*time.Second, 5*time.Millisecond)
	assert.True(t, routed(r.a, victim.ID))
	e, _ := eventFor(r.a, eventlog.Healed, "ready", victim.ID)
	assert.Contains(t, e.Why, "back in the front door's rotation")
	assert.Empty(t, events(r.a, eventlog.Decided, "replace"))
}

// clients sends GET /api/hello through the front door from n goroutines until the
// returned stop is called, which returns the requests sent and those that failed.
func clients(t *testing.T, r *run, n int) (stop func() (total, failed int64)) {
	t.Helper()
	addr := r.a.FrontDoorAddr("web")
	require.NotEmpty(t, addr)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	var tot, bad atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
				}
				tot.Add(1)
				resp, err := c.Get("http://" + addr + "/api/hello")
				if err != nil {
					bad.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					bad.Add(1)
				}
			}
		})
	}
	return func() (int64, int64) { close(done); wg.Wait(); c.CloseIdleConnections(); return tot.Load(), bad.Load() }
}

// One slow instance (a gray failure) is ejected from the front door as an
// outlier, with an event naming it and its numbers, for a growing time; still slow
// when it returns, it is ejected again and replaced. It never scales the fleet
// out, though the fleet scales on latency.
func TestSlowInstanceIsEjectedNotScaledFor(t *testing.T) {
	r := start(t, grayFleet(t, 3, "", `    minReplicas: 3
    maxReplicas: 7
    scale: {latencyTarget: 100ms, upWindow: 500ms}
    outliers: {minRequests: 10, window: 2s, baseEjection: 1s}
`), true)
	defer noLeftovers(t, r.d.Marker())
	defer r.stop(t)
	require.Eventually(t, ready(r.a, 3), 15*time.Second, 20*time.Millisecond)
	stopClients := clients(t, r, 6)
	victim := r.a.Backends("web")[0]
	t0 := time.Now()
	fault(t, victim.Addr, "latency?ms=400")

	if !assert.Eventually(t, func() bool { _, ok := eventFor(r.a, eventlog.Acted, "eject", victim.ID); return ok }, 10*time.Second, 10*time.Millisecond) {
		for _, e := range r.a.Events().Recent(0) {
			t.Log(e.Kind, e.What, e.Instance, e.Why)
		}
		t.Fatalf("traffic %v", r.a.FrontDoor("web").BackendStats())
	}
	detected := time.Since(t0)
	obs, ok := eventFor(r.a, eventlog.Observed, "outlier-slow", victim.ID)
	require.True(t, ok, "an event names the instance")
	assert.Contains(t, obs.Why, "its peers' median")
	assert.Contains(t, obs.Why, "(ejection 1)")
	assert.Greater(t, obs.Detail["latencyMs"], 300.0)
	assert.False(t, routed(r.a, victim.ID), "out of the front door")

	// Back after 1 s, still slow: ejected for 2 s and replaced.
	require.Eventually(t, func() bool { _, ok := eventFor(r.a, eventlog.Acted, "return", victim.ID); return ok }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { _, ok := eventFor(r.a, eventlog.Decided, "replace", victim.ID); return ok }, 15*time.Second, 10*time.Millisecond)
	rep, _ := eventFor(r.a, eventlog.Decided, "replace", victim.ID)
	assert.Contains(t, rep.Why, "an outlier again at its ejection 2")
	require.Eventually(t, func() bool { _, ok := eventFor(r.a, eventlog.Acted, "retire", victim.ID); return ok }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, ready(r.a, 3), 10*time.Second, 10*time.Millisecond)
	total, failed := stopClients()

	for _, what := range []string{"scale-out", "scale-out-early"} {
		assert.Empty(t, events(r.a, eventlog.Decided, what), "one slow instance must not scale the fleet out")
	}
	assert.Equal(t, 3, r.a.Status(context.Background(), 0).Services[0].Desired)
	assert.Zero(t, failed, "of %d client requests", total)
	t.Logf("ejected %s after the fault (%s); replaced %s after it; clients %d/%d", detected.Round(time.Millisecond), obs.Why,
		rep.Time.Sub(t0).Round(time.Millisecond), total-failed, total)
}
