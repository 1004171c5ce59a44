package docker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/swarm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

// These tests need no engine: they run everywhere, the integration tests in
// swarm_test.go need SELFHEAL_DOCKER_HOST.

func newOffline(t *testing.T, cfg Config) *Driver {
	t.Helper()
	if cfg.Host == "" {
		cfg.Host = "unix:///nonexistent/selfheal/docker.sock"
	}
	d, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		give Config
		want string
	}{
		{"bad host", Config{Host: "nonsense"}, "Config.Host"},
		{"empty probe", Config{Host: "unix:///x.sock", ProbeCommand: []string{}}, "Config.ProbeCommand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.give)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestMissingEngineIsAClearError(t *testing.T) {
	d := newOffline(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls := map[string]func() error{
		"Ping":      func() error { return d.Ping(ctx) },
		"Instances": func() error { _, err := d.Instances(ctx, ""); return err },
		"Nodes":     func() error { _, err := d.Nodes(ctx); return err },
		"Scale":     func() error { return d.Scale(ctx, "web", 2) },
		"Rollback":  func() error { return d.Rollback(ctx, "web") },
		"Remove":    func() error { return d.Remove(ctx, "web") },
		"Stop":      func() error { return d.Stop(ctx, "task", time.Second) },
		"Apply": func() error {
			return d.Apply(ctx, driver.ServiceSpec{Name: "web", Image: "web:v1", BasePort: 18080})
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			require.ErrorIs(t, err, ErrEngineUnavailable)
			var ee *EngineError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, "unix:///nonexistent/selfheal/docker.sock", ee.Host)
			assert.Contains(t, err.Error(), "docker: engine unavailable")
		})
	}
}

func TestClosedDriver(t *testing.T) {
	d := newOffline(t, Config{})
	require.NoError(t, d.Close())
	require.NoError(t, d.Close(), "Close is idempotent")
	ctx := context.Background()
	_, err := d.Instances(ctx, "")
	assert.ErrorIs(t, err, driver.ErrClosed)
	assert.ErrorIs(t, d.Scale(ctx, "web", 1), driver.ErrClosed)
	assert.ErrorIs(t, d.Watch(ctx, func(Event) {}), driver.ErrClosed)
}

func TestApplyValidatesTheSpec(t *testing.T) {
	d := newOffline(t, Config{})
	ok := driver.ServiceSpec{Name: "web", Image: "web:v1", BasePort: 18080}
	tests := []struct {
		name   string
		modify func(*driver.ServiceSpec)
		want   string
		is     error
	}{
		{"no name", func(s *driver.ServiceSpec) { s.Name = "" }, "ServiceSpec.Name", nil},
		{"no image", func(s *driver.ServiceSpec) { s.Image = "" }, "ServiceSpec.Image", nil},
		{"no base port", func(s *driver.ServiceSpec) { s.BasePort = 0 }, "ServiceSpec.BasePort", nil},
		{"port placeholder", func(s *driver.ServiceSpec) { s.Command = []string{"/service", "-addr", ":{port}"} }, "$PORT", driver.ErrUnsupported},
		{"failure action", func(s *driver.ServiceSpec) { s.Update.FailureAction = "explode" }, "FailureAction", nil},
		{"failure ratio", func(s *driver.ServiceSpec) { s.Rollback.MaxFailureRatio = 2 }, "MaxFailureRatio", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := ok
			tt.modify(&spec)
			err := d.Apply(context.Background(), spec)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.False(t, errors.Is(err, ErrEngineUnavailable), "validation comes before any call")
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
		})
	}
}

// TestFillCheckFloors: Config.CheckTimeout, CheckRetries and CheckInterval make the
// engine's own health check lenient (the lab demo); a service asking for more keeps it.
func TestFillCheckFloors(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		health   driver.HealthCheck
		timeout  time.Duration
		retries  int
		interval time.Duration
	}{
		{"defaults", Config{}, driver.HealthCheck{Path: "/readyz", Timeout: 300 * time.Millisecond, Retries: 2}, 2 * time.Second, 2, time.Second},
		{"unset retries", Config{}, driver.HealthCheck{Path: "/readyz", Interval: 500 * time.Millisecond}, 2 * time.Second, 3, 500 * time.Millisecond},
		{"floors", Config{CheckTimeout: 5 * time.Second, CheckRetries: 4, CheckInterval: 2 * time.Second}, driver.HealthCheck{Path: "/readyz", Interval: time.Second, Timeout: time.Second, Retries: 2}, 5 * time.Second, 4, 2 * time.Second},
		{"the service asks for more", Config{CheckTimeout: 5 * time.Second, CheckRetries: 4, CheckInterval: 2 * time.Second}, driver.HealthCheck{Path: "/readyz", Interval: 3 * time.Second, Timeout: 8 * time.Second, Retries: 6}, 8 * time.Second, 6, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newOffline(t, tt.cfg)
			var s swarm.ServiceSpec
			require.NoError(t, d.fill(&s, driver.ServiceSpec{Name: "web", Version: "v1", Image: "web:v1", Replicas: 1, BasePort: 18080, Health: tt.health}, true))
			h := s.TaskTemplate.ContainerSpec.Healthcheck
			assert.Equal(t, tt.timeout, h.Timeout)
			assert.Equal(t, tt.retries, h.Retries)
			assert.Equal(t, tt.interval, h.Interval)
		})
	}
}

func TestFillBuildsTheSwarmSpec(t *testing.T) {
	d := newOffline(t, Config{RestartDelay: time.Second})
	spec := driver.ServiceSpec{
		Name: "web", Version: "v2", Image: "web:v2", Replicas: 3, BasePort: 18080,
		Command: []string{"/service", "-version", "{version}", "-name", "{service}"},
		Env:     []string{"FAULT_TOKEN=x"},
		Health:  driver.HealthCheck{Path: "/readyz", Timeout: 300 * time.Millisecond}, // below the floor
		Update:  driver.UpdatePolicy{Parallelism: 3, Delay: 10 * time.Second, Monitor: 5 * time.Second},
	}
	var s swarm.ServiceSpec
	require.NoError(t, d.fill(&s, spec, true))

	assert.Equal(t, "web", s.Name)
	assert.Equal(t, map[string]string{
		LabelManaged: "true", LabelVersion: "v2", LabelBasePort: "18080",
		"selfheal.port.1": "18080", "selfheal.port.2": "18081", "selfheal.port.3": "18082",
		LabelUpdateParallelism: "3", LabelRollbackParallelism: "3",
	}, s.Labels)
	assert.Equal(t, uint64(3), *s.Mode.Replicated.Replicas)
	c := s.TaskTemplate.ContainerSpec
	assert.Equal(t, []string{"/service", "-version", "v2", "-name", "web"}, c.Command)
	assert.Contains(t, c.Env, "FAULT_TOKEN=x")
	assert.Contains(t, c.Env, `PORT={{index .Service.Labels (printf "selfheal.port.%s" .Task.Slot)}}`)
	assert.Contains(t, c.Env, "VERSION=v2")
	assert.Equal(t, []string{"CMD", "/service", "-probe", "http://127.0.0.1:${PORT}/readyz"}, c.Healthcheck.Test)
	assert.Equal(t, 2*time.Second, c.Healthcheck.Timeout)
	assert.Equal(t, swarm.RestartPolicyConditionAny, s.TaskTemplate.RestartPolicy.Condition)
	assert.Equal(t, time.Second, *s.TaskTemplate.RestartPolicy.Delay)
	assert.Equal(t, []swarm.NetworkAttachmentConfig{{Target: "host"}}, s.TaskTemplate.Networks)
	// Stop-first with 3 replicas: a batch of 3 would stop them all, so Swarm gets 2.
	assert.Equal(t, &swarm.UpdateConfig{Parallelism: 2, Delay: 10 * time.Second, Monitor: 5 * time.Second,
		FailureAction: "rollback", Order: "stop-first"}, s.UpdateConfig)
	assert.Equal(t, uint64(2), s.RollbackConfig.Parallelism)
	assert.Equal(t, "pause", s.RollbackConfig.FailureAction, "a rollback cannot roll back")

	// Filling the same spec again changes nothing: Apply then writes nothing.
	again := deepCopySpec(s)
	require.NoError(t, d.fill(&again, spec, false))
	assert.Equal(t, s, again)

	// The cap follows the replica count; the asked-for parallelism is kept.
	for _, tc := range []struct{ replicas, want int }{{12, 3}, {4, 3}, {3, 2}, {2, 1}, {1, 1}, {0, 1}} {
		c := deepCopySpec(s)
		capParallelism(&c, tc.replicas)
		assert.Equal(t, uint64(tc.want), c.UpdateConfig.Parallelism, "replicas %d", tc.replicas)
		assert.Equal(t, uint64(tc.want), c.RollbackConfig.Parallelism, "replicas %d", tc.replicas)
	}
	big := spec
	big.Replicas = 12
	var s12 swarm.ServiceSpec
	require.NoError(t, d.fill(&s12, big, true))
	assert.Equal(t, uint64(3), s12.UpdateConfig.Parallelism)

	// Scaling keeps the labels of higher slots, which Swarm may still use.
	require.NoError(t, setPortLabels(&s, 1))
	assert.Equal(t, "18082", s.Labels["selfheal.port.3"])
	assert.Error(t, setPortLabels(&swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "x"}}, 1), "no base port label")
}

func TestInstanceMapsTaskStates(t *testing.T) {
	d := newOffline(t, Config{})
	nodes := map[string]nodeInfo{"n1": {name: "vm", addr: "127.0.0.1"}}
	now := time.Now()
	task := func(state, desired swarm.TaskState, mod func(*swarm.Task)) swarm.Task {
		t := swarm.Task{ID: "t1", Slot: 2, NodeID: "n1", DesiredState: desired,
			Spec:   swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Labels: map[string]string{LabelVersion: "v1", LabelBasePort: "18080"}}},
			Status: swarm.TaskStatus{State: state, Timestamp: now}}
		if mod != nil {
			mod(&t)
		}
		return t
	}
	tests := []struct {
		name   string
		give   swarm.Task
		want   driver.State
		reason string
		listed bool
	}{
		{"running", task(swarm.TaskStateRunning, swarm.TaskStateRunning, nil), driver.StateRunning, "", true},
		{"pending", task(swarm.TaskStatePending, swarm.TaskStateRunning, func(t *swarm.Task) { t.NodeID = "" }), driver.StateStarting, "", true},
		{"starting", task(swarm.TaskStateStarting, swarm.TaskStateRunning, nil), driver.StateStarting, "", true},
		{"crashed", task(swarm.TaskStateFailed, swarm.TaskStateShutdown, func(t *swarm.Task) {
			t.Status.Err = "task: non-zero exit (2)"
			t.Status.ContainerStatus = &swarm.ContainerStatus{ExitCode: 2}
		}), driver.StateExited, "task: non-zero exit (2)", true},
		{"stopped", task(swarm.TaskStateComplete, swarm.TaskStateShutdown, func(t *swarm.Task) {
			t.Status.ContainerStatus = &swarm.ContainerStatus{ExitCode: 0}
		}), driver.StateExited, "exit status 0", true},
		{"rejected", task(swarm.TaskStateRejected, swarm.TaskStateShutdown, func(t *swarm.Task) {
			t.Status.Message = "no such image"
		}), driver.StateExited, "rejected: no such image", true},
		{"replaced by an update", task(swarm.TaskStateShutdown, swarm.TaskStateShutdown, nil), "", "", false},
		{"stopping: Swarm stops it", task(swarm.TaskStateRunning, swarm.TaskStateShutdown, nil), "", "", false},
		{"being removed", task(swarm.TaskStateRunning, swarm.TaskStateRemove, nil), "", "", false},
		{"never started, not wanted", task(swarm.TaskStatePending, swarm.TaskStateShutdown, nil), "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, listed := d.instance(tt.give, "web", nodes)
			require.Equal(t, tt.listed, listed)
			if !listed {
				return
			}
			assert.Equal(t, tt.want, inst.State)
			assert.Equal(t, tt.reason, inst.ExitReason)
			assert.Equal(t, "127.0.0.1:18081", inst.Addr, "slot 2")
			assert.Equal(t, "v1", inst.Version)
			assert.Equal(t, "web", inst.Service)
		})
	}
}

func TestNodeStates(t *testing.T) {
	tests := []struct {
		name string
		give swarm.Node
		want driver.NodeState
	}{
		{"ready", swarm.Node{Status: swarm.NodeStatus{State: swarm.NodeStateReady}, Spec: swarm.NodeSpec{Availability: swarm.NodeAvailabilityActive}}, driver.NodeReady},
		{"drained", swarm.Node{Status: swarm.NodeStatus{State: swarm.NodeStateReady}, Spec: swarm.NodeSpec{Availability: swarm.NodeAvailabilityDrain}}, driver.NodeDrained},
		{"paused", swarm.Node{Status: swarm.NodeStatus{State: swarm.NodeStateReady}, Spec: swarm.NodeSpec{Availability: swarm.NodeAvailabilityPause}}, driver.NodeDrained},
		{"down", swarm.Node{Status: swarm.NodeStatus{State: swarm.NodeStateDown}, Spec: swarm.NodeSpec{Availability: swarm.NodeAvailabilityActive}}, driver.NodeDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.give.Description.Hostname = "vm"
			n := nodeOf(tt.give)
			assert.Equal(t, tt.want, n.State)
			assert.Equal(t, "vm", n.Name)
		})
	}
}

func TestTranslateEvents(t *testing.T) {
	managed := map[string]string{LabelManaged: "true", "com.docker.swarm.service.name": "web",
		"com.docker.swarm.task.id": "t1", "com.docker.swarm.node.id": "n1", "exitCode": "2"}
	tests := []struct {
		name string
		give events.Message
		want Event
		ok   bool
	}{
		{"container died", events.Message{Type: events.ContainerEventType, Action: events.ActionDie, Actor: events.Actor{Attributes: managed}, TimeNano: 1},
			Event{Time: time.Unix(0, 1), Kind: EventInstanceExited, Service: "web", Instance: "t1", Node: "n1", Message: "exit code 2"}, true},
		{"unhealthy", events.Message{Type: events.ContainerEventType, Action: events.ActionHealthStatusUnhealthy, Actor: events.Actor{Attributes: managed}, TimeNano: 1},
			Event{Time: time.Unix(0, 1), Kind: EventInstanceUnhealthy, Service: "web", Instance: "t1", Node: "n1"}, true},
		{"someone else's container", events.Message{Type: events.ContainerEventType, Action: events.ActionDie, Actor: events.Actor{Attributes: map[string]string{}}}, Event{}, false},
		{"uninteresting action", events.Message{Type: events.ContainerEventType, Action: events.ActionAttach, Actor: events.Actor{Attributes: managed}}, Event{}, false},
		{"rollout state", events.Message{Type: events.ServiceEventType, Action: events.ActionUpdate, TimeNano: 1,
			Actor: events.Actor{Attributes: map[string]string{"name": "web", "updatestate.old": "updating", "updatestate.new": "rollback_started"}}},
			Event{Time: time.Unix(0, 1), Kind: EventServiceUpdated, Service: "web", Message: "rollout updating -> rollback_started"}, true},
		{"scale", events.Message{Type: events.ServiceEventType, Action: events.ActionUpdate, TimeNano: 1,
			Actor: events.Actor{Attributes: map[string]string{"name": "web", "replicas.old": "1", "replicas.new": "3"}}},
			Event{Time: time.Unix(0, 1), Kind: EventServiceUpdated, Service: "web", Message: "replicas 1 -> 3"}, true},
		{"node drained", events.Message{Type: events.NodeEventType, Action: events.ActionUpdate, Time: 5,
			Actor: events.Actor{ID: "n1", Attributes: map[string]string{"availability.old": "active", "availability.new": "drain"}}},
			Event{Time: time.Unix(5, 0), Kind: EventNodeUpdated, Node: "n1", Message: "availability active -> drain"}, true},
		{"image", events.Message{Type: events.ImageEventType, Action: events.ActionTag}, Event{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := translate(tt.give)
			require.Equal(t, tt.ok, ok)
			if ok {
				assert.Equal(t, tt.want, got)
			}
		})
	}
}

func TestReadBuildStream(t *testing.T) {
	tests := []struct {
		name, give, want, err string
	}{
		{"aux id", `{"stream":"Step 1/4 : FROM scratch\n"}{"aux":{"ID":"sha256:abc"}}{"stream":"Successfully built abc\n"}`, "sha256:abc", ""},
		{"classic id", `{"stream":"Successfully built 0123abcd\n"}`, "0123abcd", ""},
		{"error", `{"stream":"Step 2/4 : COPY service /service\n"}{"error":"COPY failed","errorDetail":{"message":"COPY failed"}}`, "", "COPY failed"},
		{"garbage", `{"stream":`, "", "reading the build output"},
		{"empty", ``, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readBuildStream(strings.NewReader(tt.give))
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzReadBuildStream(f *testing.F) {
	f.Add(`{"stream":"Successfully built 0123abcd\n"}`)
	f.Add(`{"aux":{"ID":"sha256:abc"}}{"error":"x"}`)
	f.Add(`{"stream":1}`)
	f.Fuzz(func(t *testing.T, s string) {
		id, err := readBuildStream(strings.NewReader(s))
		if err != nil && id != "" {
			t.Fatalf("an error and an id: %q, %v", id, err)
		}
	})
}

func TestDockerfile(t *testing.T) {
	d := newOffline(t, Config{HealthStartPeriod: 2 * time.Second})
	df, err := d.dockerfile(ImageSpec{Args: []string{"-drain", "1s"}, HealthInterval: 500 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, `FROM scratch
COPY service /service
HEALTHCHECK --interval=500ms --timeout=2s --start-period=2s --retries=3 CMD ["/service","-probe","http://127.0.0.1:${PORT}/livez"]
ENTRYPOINT ["/service","-drain","1s"]
`, df)
}

func TestWriteRetriesStaleVersions(t *testing.T) {
	d := newOffline(t, Config{WriteAttempts: 4})
	stale := errors.New("Error response from daemon: rpc error: code = Unknown desc = update out of sequence")
	tests := []struct {
		name     string
		fails    int // stale refusals before the write succeeds
		wantErr  error
		attempts int
	}{
		{"first try", 0, nil, 1},
		{"after two stale reads", 2, nil, 3},
		{"stale every time", 10, ErrStaleVersion, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				attempts := 0
				start := time.Now()
				err := d.writeRetry(context.Background(), "scale service web", func() error {
					attempts++
					if attempts <= tt.fails {
						return stale
					}
					return nil
				})
				assert.Equal(t, tt.attempts, attempts)
				if tt.wantErr == nil {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, tt.wantErr)
					assert.Contains(t, err.Error(), "scale service web")
				}
				// 50 ms more before every retry.
				want := time.Duration(0)
				for i := 1; i < attempts; i++ {
					want += time.Duration(i) * 50 * time.Millisecond
				}
				assert.Equal(t, want, time.Since(start))
			})
		})
	}
	t.Run("context done while backing off", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 75*time.Millisecond)
			defer cancel()
			err := d.writeRetry(ctx, "scale service web", func() error { return stale })
			require.ErrorIs(t, err, ErrStaleVersion)
		})
	})
}

func TestEngineErrorIs(t *testing.T) {
	err := error(&EngineError{Op: "scale service web", Host: "unix:///x.sock", Kind: ErrStaleVersion, Err: errors.New("update out of sequence")})
	assert.ErrorIs(t, err, ErrStaleVersion)
	assert.NotErrorIs(t, err, ErrEngineUnavailable)
	assert.Equal(t, "docker: stale version: scale service web: unix:///x.sock (update out of sequence)", err.Error())
}
