package docker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
)

// watcher collects the driver's events for a test.
type watcher struct {
	mu     sync.Mutex
	events []docker.Event
	cancel context.CancelFunc
	done   chan struct{}
}

func watch(t *testing.T, d *docker.Driver) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		d.Watch(ctx, func(e docker.Event) {
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
		})
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

func (w *watcher) has(pred func(docker.Event) bool) (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var kinds []string
	for _, e := range w.events {
		if pred(e) {
			return true, ""
		}
		kinds = append(kinds, e.Kind+"("+e.Message+")")
	}
	return false, strings.Join(kinds, ", ")
}

func TestCrashedInstanceIsRestarted(t *testing.T) {
	f := engine(t)
	w := watch(t, f.d)
	ctx := context.Background()
	spec := f.service(1, "v1")
	require.NoError(t, f.d.Apply(ctx, spec))
	old := f.waitLive(spec.Name, "v1", 1, 60*time.Second)[0]
	assert.Equal(t, fmt.Sprintf("127.0.0.1:%d", spec.BasePort), old.Addr)

	post(t, old.Addr, "/fault/crash")
	crashed := time.Now()
	var repl driver.Instance
	waitFor(t, 60*time.Second, "a healthy replacement", func(ctx context.Context) (bool, string) {
		live, state := f.live(ctx, spec.Name, "v1")
		if len(live) == 1 && live[0].ID != old.ID {
			repl = live[0]
			return true, ""
		}
		return false, state
	})
	t.Logf("figure: crash to healthy replacement: %v", time.Since(crashed).Round(10*time.Millisecond))
	assert.Equal(t, old.Addr, repl.Addr, "the replacement takes the crashed instance's slot and port")

	// The crashed task is listed as exited, with its exit code, until Stop forgets it.
	insts, err := f.d.Instances(ctx, spec.Name)
	require.NoError(t, err)
	i := slices.IndexFunc(insts, func(in driver.Instance) bool { return in.ID == old.ID })
	require.GreaterOrEqual(t, i, 0, "the crashed instance is listed")
	assert.Equal(t, driver.StateExited, insts[i].State)
	assert.Contains(t, insts[i].ExitReason, "3")
	tasks, err := f.d.Tasks(ctx, spec.Name)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(tasks), 2)
	for _, task := range tasks {
		assert.Equal(t, 1, task.Slot)
		switch task.ID {
		case old.ID:
			assert.Equal(t, "failed", task.TaskState)
			assert.Equal(t, "shutdown", task.DesiredState)
			assert.Contains(t, task.Message, "non-zero exit (3)")
		case repl.ID:
			assert.Equal(t, "running", task.TaskState)
			assert.Equal(t, "healthy", task.Health, "Swarm marks a task running once Docker's HEALTHCHECK passes")
			assert.NotEmpty(t, task.ContainerID)
		}
	}
	require.NoError(t, f.d.Stop(ctx, old.ID, 0))
	insts, err = f.d.Instances(ctx, spec.Name)
	require.NoError(t, err)
	assert.False(t, slices.ContainsFunc(insts, func(in driver.Instance) bool { return in.ID == old.ID }), "Stop forgets an exited instance")

	waitFor(t, 10*time.Second, "the exit in the event log", func(context.Context) (bool, string) {
		return w.has(func(e docker.Event) bool {
			return e.Kind == docker.EventInstanceExited && e.Instance == old.ID && e.Service == spec.Name
		})
	})
}

func TestUnhealthyInstanceIsReplaced(t *testing.T) {
	f := engine(t)
	ctx := context.Background()

	t.Run("by its health document, through Stop", func(t *testing.T) {
		f := &fixture{t: t, d: f.d}
		spec := f.service(2, "v1")
		require.NoError(t, f.d.Apply(ctx, spec))
		live := f.waitLive(spec.Name, "v1", 2, 60*time.Second)
		victim := live[0]
		post(t, victim.Addr, "/fault/degrade") // /livez still passes: Swarm sees nothing

		// The agent's part: read the documents, stop the instance that fails.
		var failing []driver.Instance
		for _, in := range live {
			status, _, err := healthDoc(ctx, in.Addr)
			require.NoError(t, err)
			if status == "fail" {
				failing = append(failing, in)
			}
		}
		require.Len(t, failing, 1)
		require.Equal(t, victim.ID, failing[0].ID)
		start := time.Now()
		require.NoError(t, f.d.Stop(ctx, victim.ID, 2*time.Second))
		waitFor(t, 60*time.Second, "a replacement that passes its health document", func(ctx context.Context) (bool, string) {
			live, state := f.live(ctx, spec.Name, "v1")
			for _, in := range live {
				if in.Addr == victim.Addr && in.ID != victim.ID {
					status, _, err := healthDoc(ctx, in.Addr)
					return err == nil && status == "pass", state
				}
			}
			return false, state
		})
		t.Logf("stop to healthy replacement: %v", time.Since(start).Round(10*time.Millisecond))
		err := f.d.Stop(ctx, "no-such-task", 0)
		assert.ErrorIs(t, err, driver.ErrNotFound)
	})

	t.Run("by Docker's HEALTHCHECK, through Swarm", func(t *testing.T) {
		f := &fixture{t: t, d: f.d}
		spec := f.service(1, "v1")
		require.NoError(t, f.d.Apply(ctx, spec))
		old := f.waitLive(spec.Name, "v1", 1, 60*time.Second)[0]
		post(t, old.Addr, "/fault/unhealthy")
		start := time.Now()
		waitFor(t, 60*time.Second, "Swarm to replace the unhealthy instance", func(ctx context.Context) (bool, string) {
			live, state := f.live(ctx, spec.Name, "v1")
			return len(live) == 1 && live[0].ID != old.ID, state
		})
		t.Logf("unhealthy to healthy replacement: %v", time.Since(start).Round(10*time.Millisecond))
	})
}

func TestScale(t *testing.T) {
	f := engine(t)
	ctx := context.Background()
	spec := f.service(1, "v1")
	require.NoError(t, f.d.Apply(ctx, spec))
	f.waitLive(spec.Name, "v1", 1, 60*time.Second)

	start := time.Now()
	require.NoError(t, f.d.Scale(ctx, spec.Name, 3))
	assert.Less(t, time.Since(start), 10*time.Second, "Scale returns once Swarm accepted it")
	live := f.waitLive(spec.Name, "v1", 3, 60*time.Second)
	var addrs []string
	for _, in := range live {
		addrs = append(addrs, in.Addr)
	}
	slices.Sort(addrs)
	assert.Equal(t, []string{
		fmt.Sprintf("127.0.0.1:%d", spec.BasePort),
		fmt.Sprintf("127.0.0.1:%d", spec.BasePort+1),
		fmt.Sprintf("127.0.0.1:%d", spec.BasePort+2),
	}, addrs, "one port per replica slot")

	require.NoError(t, f.d.Scale(ctx, spec.Name, 1))
	waitFor(t, 60*time.Second, "scale in to 1", func(ctx context.Context) (bool, string) {
		insts, err := f.d.Instances(ctx, spec.Name)
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, in := range insts {
			if in.State != driver.StateExited {
				n++
			}
		}
		live, state := f.live(ctx, spec.Name, "v1")
		return n == 1 && len(live) == 1, state
	})

	// Concurrent writers: every write re-reads the version index and retries when
	// another writer came first, so none fails.
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() { errs[i] = f.d.Scale(ctx, spec.Name, 1+i%2) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, f.d.Scale(ctx, spec.Name, 1))

	// Applying the same spec again writes nothing; an unknown service is not found.
	spec.Replicas = 1
	require.NoError(t, f.d.Apply(ctx, spec))
	assert.ErrorIs(t, f.d.Scale(ctx, "no-such-service", 2), driver.ErrNotFound)
	assert.ErrorIs(t, f.d.Remove(ctx, "no-such-service"), driver.ErrNotFound)
}

// loadgen sends requests to the service's slots like the agent's front door: to a
// slot in turn, and on a failure once more to the next slot.
type loadgen struct {
	ok, failed, attempts, attemptFails atomic.Int64
	cancel                             context.CancelFunc
	wg                                 sync.WaitGroup
}

func startLoad(base, slots, workers int, path string) *loadgen {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loadgen{cancel: cancel}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for i := w; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				success := false
				for try := range 2 {
					addr := fmt.Sprintf("127.0.0.1:%d", base+(i+try)%slots)
					rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
					code, _, err := get(rctx, addr, path)
					rcancel()
					if ctx.Err() != nil {
						return
					}
					l.attempts.Add(1)
					if err == nil && code == http.StatusOK {
						success = true
						break
					}
					l.attemptFails.Add(1)
				}
				if success {
					l.ok.Add(1)
				} else {
					l.failed.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *loadgen) stop() (rate float64, n int64, rawRate float64) {
	l.cancel()
	l.wg.Wait()
	ok, failed := l.ok.Load(), l.failed.Load()
	att, af := l.attempts.Load(), l.attemptFails.Load()
	return float64(ok) / float64(max(ok+failed, 1)), ok + failed, float64(att-af) / float64(max(att, 1))
}

func TestRollingUpdate(t *testing.T) {
	f := engine(t)
	w := watch(t, f.d)
	ctx := context.Background()
	spec := f.service(3, "v1")
	require.NoError(t, f.d.Apply(ctx, spec))
	f.waitLive(spec.Name, "v1", 3, 60*time.Second)

	load := startLoad(spec.BasePort, 3, 4, "/")
	defer load.stop()
	spec.Version = "v2"
	start := time.Now()
	require.NoError(t, f.d.Apply(ctx, spec))
	waitFor(t, 90*time.Second, "the rollout to v2", func(ctx context.Context) (bool, string) {
		st, err := f.d.Rollout(ctx, spec.Name)
		if err != nil {
			return false, err.Error()
		}
		live, state := f.live(ctx, spec.Name, "v2")
		return st.State == driver.RolloutCompleted && len(live) == 3, fmt.Sprintf("rollout %q %s; %s", st.State, st.Message, state)
	})
	took := time.Since(start)
	rate, n, raw := load.stop()
	t.Logf("figure: rolling update of 3 replicas: %v; client success rate %.4f over %d requests (%.4f of single attempts)",
		took.Round(100*time.Millisecond), rate, n, raw)
	assert.GreaterOrEqual(t, rate, 0.99, "clients that retry on another replica keep being served")

	st, err := f.d.Rollout(ctx, spec.Name)
	require.NoError(t, err)
	assert.Equal(t, "v2", st.Version)
	for _, in := range f.waitLive(spec.Name, "v2", 3, 10*time.Second) {
		_, version, err := healthDoc(ctx, in.Addr)
		require.NoError(t, err)
		assert.Equal(t, "v2", version)
	}
	waitFor(t, 10*time.Second, "the rollout in the event log", func(context.Context) (bool, string) {
		return w.has(func(e docker.Event) bool {
			return e.Kind == docker.EventServiceUpdated && e.Service == spec.Name && strings.Contains(e.Message, "completed")
		})
	})

	// A manual rollback goes back to v1.
	require.NoError(t, f.d.Rollback(ctx, spec.Name))
	waitFor(t, 90*time.Second, "the rollback to v1", func(ctx context.Context) (bool, string) {
		st, err := f.d.Rollout(ctx, spec.Name)
		if err != nil {
			return false, err.Error()
		}
		live, state := f.live(ctx, spec.Name, "v1")
		return st.State == driver.RolloutRollbackCompleted && len(live) == 3, fmt.Sprintf("rollout %q; %s", st.State, state)
	})
}

func TestBadVersionIsRolledBack(t *testing.T) {
	f := engine(t)
	ctx := context.Background()
	spec := f.service(2, "v1")
	require.NoError(t, f.d.Apply(ctx, spec))
	f.waitLive(spec.Name, "v1", 2, 60*time.Second)

	spec.Version = "v2-bad" // fails its liveness probe from the start
	start := time.Now()
	require.NoError(t, f.d.Apply(ctx, spec))
	var last driver.RolloutStatus
	waitFor(t, 120*time.Second, "the automatic rollback", func(ctx context.Context) (bool, string) {
		st, err := f.d.Rollout(ctx, spec.Name)
		if err != nil {
			return false, err.Error()
		}
		last = st
		live, state := f.live(ctx, spec.Name, "v1")
		return st.State == driver.RolloutRollbackCompleted && len(live) == 2, fmt.Sprintf("rollout %q %s; %s", st.State, st.Message, state)
	})
	t.Logf("bad version rolled back in %v (%s)", time.Since(start).Round(100*time.Millisecond), last.Message)
	assert.Equal(t, "v1", last.Version, "the service declares v1 again")
}

func TestDriverSurvivesEngineRestart(t *testing.T) {
	f := engine(t)
	w := watch(t, f.d)
	ctx := context.Background()
	spec := f.service(1, "v1")
	require.NoError(t, f.d.Apply(ctx, spec))
	f.waitLive(spec.Name, "v1", 1, 60*time.Second)

	engineScript(t, "stop-dockerd")
	restarted := false
	defer func() {
		if !restarted {
			engineScript(t, "start-dockerd")
		}
	}()
	_, err := f.d.Instances(ctx, spec.Name)
	require.ErrorIs(t, err, docker.ErrEngineUnavailable)
	var ee *docker.EngineError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, strings.TrimPrefix(f.d.Host(), "unix://"), strings.TrimPrefix(ee.Host, "unix://"))
	assert.ErrorIs(t, f.d.Scale(ctx, spec.Name, 2), docker.ErrEngineUnavailable)

	engineScript(t, "start-dockerd")
	restarted = true
	waitFor(t, 60*time.Second, "the driver to reach the engine again", func(ctx context.Context) (bool, string) {
		_, err := f.d.Instances(ctx, spec.Name)
		return err == nil, fmt.Sprint(err)
	})
	require.NoError(t, f.d.Scale(ctx, spec.Name, 2))
	f.waitLive(spec.Name, "v1", 2, 90*time.Second)
	waitFor(t, 30*time.Second, "the watcher to report the loss and the reconnection", func(context.Context) (bool, string) {
		lost, s := w.has(func(e docker.Event) bool { return e.Kind == docker.EventEngineLost })
		back, _ := w.has(func(e docker.Event) bool { return e.Kind == docker.EventEngineRestored })
		return lost && back, s
	})
}

func TestNodeDrainAndActivate(t *testing.T) {
	f := engine(t)
	ctx := context.Background()
	nodes, err := f.d.Nodes(ctx)
	require.NoError(t, err)
	require.Len(t, nodes, 1)
	node := nodes[0]
	require.Equal(t, driver.NodeReady, node.State)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := f.d.SetNodeState(ctx, node.Name, driver.NodeReady, ""); err != nil {
			t.Errorf("re-activating %s: %v", node.Name, err)
		}
	})

	spec := f.service(2, "v1")
	require.NoError(t, f.d.Apply(ctx, spec))
	f.waitLive(spec.Name, "v1", 2, 60*time.Second)

	require.NoError(t, f.d.SetNodeState(ctx, node.Name, driver.NodeDrained, "test drain"))
	nodes, err = f.d.Nodes(ctx)
	require.NoError(t, err)
	assert.Equal(t, driver.NodeDrained, nodes[0].State)
	waitFor(t, 60*time.Second, "the instances to go pending", func(ctx context.Context) (bool, string) {
		insts, err := f.d.Instances(ctx, spec.Name)
		if err != nil {
			return false, err.Error()
		}
		pending := 0
		var desc []string
		for _, in := range insts {
			desc = append(desc, fmt.Sprintf("%s %s node=%q", in.ID[:8], in.State, in.Node))
			switch {
			case in.State == driver.StateRunning:
				return false, strings.Join(desc, "; ")
			case in.State == driver.StateStarting && in.Node == "":
				pending++
			}
		}
		return pending == 2, strings.Join(desc, "; ")
	})

	require.NoError(t, f.d.SetNodeState(ctx, node.Name, driver.NodeReady, ""))
	f.waitLive(spec.Name, "v1", 2, 60*time.Second)

	err = f.d.SetNodeState(ctx, node.Name, driver.NodeDown, "")
	assert.ErrorIs(t, err, driver.ErrUnsupported)
	var ne *driver.NodeError
	assert.True(t, errors.As(err, &ne))
	assert.ErrorIs(t, f.d.SetNodeState(ctx, "no-such-node", driver.NodeDrained, ""), driver.ErrNotFound)
}

// TestSpreadWaitsUntilServicesSettle: Spread rolls nothing while a service has fewer
// running tasks than replicas (just created, as after a lost node), a task running
// for less than the settle time, or an update in progress (its own previous roll),
// and rolls once the service is settled. A
// stop-first roll of an unsettled service can stop every task that serves.
func TestSpreadWaitsUntilServicesSettle(t *testing.T) {
	f := engine(t)
	ctx := context.Background()
	spec := f.service(2, "v1")
	require.NoError(t, f.d.Apply(ctx, spec))
	rolled, err := f.d.Spread(ctx, "test: tasks still starting", 0)
	require.ErrorIs(t, err, docker.ErrUnsettled, "spread while the tasks start")
	require.ErrorContains(t, err, "tasks running")
	require.Empty(t, rolled)

	old := f.waitLive(spec.Name, "v1", 2, 60*time.Second)
	rolled, err = f.d.Spread(ctx, "test: tasks running for less than settle", time.Hour)
	require.ErrorIs(t, err, docker.ErrUnsettled, "spread before the tasks ran for settle")
	require.ErrorContains(t, err, "less than 1h0m0s")
	require.Empty(t, rolled)
	waitFor(t, 30*time.Second, "a spread of the settled service", func(ctx context.Context) (bool, string) {
		rolled, err = f.d.Spread(ctx, "test: settled", time.Second)
		return err == nil, fmt.Sprint(err)
	})
	require.Equal(t, []string{spec.Name}, rolled)
	rolled, err = f.d.Spread(ctx, "test: while its roll runs", 0)
	require.ErrorIs(t, err, docker.ErrUnsettled, "spread while the previous roll is in progress")
	require.ErrorContains(t, err, "in progress")
	require.Empty(t, rolled)

	// the roll replaced both tasks
	waitFor(t, 60*time.Second, "both tasks replaced", func(ctx context.Context) (bool, string) {
		got, state := f.live(ctx, spec.Name, "v1")
		fresh := 0
		for _, in := range got {
			if in.ID != old[0].ID && in.ID != old[1].ID {
				fresh++
			}
		}
		return fresh == 2, state
	})
}
