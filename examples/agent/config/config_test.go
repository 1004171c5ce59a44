package config_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/config"
)

const good = `agent:
  listen: 127.0.0.1:7071
  budget:
    max: 4
nodes: [node-1, node-2]
services:
  - name: web
    command: ["./service", "-port", "{port}"]
    replicas: 3
    maxReplicas: 12
    frontDoor: 127.0.0.1:8080
    health:
      interval: 250ms
      failureThreshold: 2
    scale:
      latencyTarget: 100ms
    update:
      parallelism: 3
      delay: 2s
    limits:
      heap: 256MiB
`

func TestParseGood(t *testing.T) {
	f, err := config.Parse("fleet.yaml", []byte(good))
	require.NoError(t, err)
	assert.Equal(t, "local", f.Agent.Driver)
	assert.Equal(t, 4, f.Agent.Budget.Max)
	assert.Equal(t, []string{"node-1", "node-2"}, f.Nodes)
	s := f.Service("web")
	require.NotNil(t, s)
	assert.Equal(t, 3, s.Replicas)
	assert.Equal(t, 1, s.MinReplicas)
	assert.Equal(t, 12, s.MaxReplicas)
	assert.Equal(t, 250*time.Millisecond, s.Health.Interval.D())
	assert.Equal(t, 250*time.Millisecond, s.Health.Timeout.D(), "timeout defaults to the interval")
	assert.Equal(t, "/livez", s.Health.Liveness)
	assert.Equal(t, "rollback", s.Update.FailureAction)
	assert.Equal(t, config.Bytes(256<<20), s.Limits.Heap)
	assert.Equal(t, "v1", s.Version)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"unknown field", "services:\n  - name: web\n    command: [x]\n    replicaz: 3\n",
			`fleet.yaml:4:5: services[0].replicaz: unknown field "replicaz"`},
		{"wrong type", "services:\n  - name: web\n    command: [x]\n    replicas: three\n",
			"fleet.yaml:4:15: services[0].replicas: cannot unmarshal !!str `three` into int"},
		{"bad duration", "services:\n  - name: web\n    command: [x]\n    health:\n      interval: soon\n",
			`fleet.yaml:5:17: services[0].health.interval: want a duration such as 250ms, not "soon"`},
		{"negative duration", "services:\n  - name: web\n    command: [x]\n    health:\n      timeout: -1s\n",
			`fleet.yaml:5:16: services[0].health.timeout: must not be negative, not -1s`},
		{"negative duration in a flow mapping", "services:\n  - name: web\n    command: [x]\n    restart: {initial: 1s, max: -5s}\n",
			`fleet.yaml:4:33: services[0].restart.max: must not be negative, not -5s`},
		{"negative agent duration", "agent:\n  budget: {window: -1m}\nservices:\n  - name: web\n    command: [x]\n",
			`fleet.yaml:2:20: agent.budget.window: must not be negative, not -1m`},
		{"huge heap", "services:\n  - name: web\n    command: [x]\n    limits:\n      heap: 9000000TiB\n",
			`fleet.yaml:5:13: services[0].limits.heap: 9000000TiB is too large (at most 8EiB)`},
		{"huge heap in bytes", "services:\n  - name: web\n    command: [x]\n    limits:\n      heap: 99999999999999999999\n",
			`fleet.yaml:5:13: services[0].limits.heap: 99999999999999999999 is too large (at most 8EiB)`},
		{"fractional bytes", "services:\n  - name: web\n    command: [x]\n    limits:\n      heap: 1.5B\n",
			`fleet.yaml:5:13: services[0].limits.heap: 1.5B is not a whole number of bytes`},
		{"fractional replicas", "services:\n  - name: web\n    command: [x]\n    replicas: 2.5\n",
			`fleet.yaml:4:15: services[0].replicas: want a whole number, not 2.5`},
		{"fractional replicas through an alias", "services:\n  - name: web\n    command: [x]\n    env: [&n 2.5]\n    replicas: *n\n",
			`fleet.yaml:5:15: services[0].replicas: want a whole number, not 2.5`},
		{"fractional budget", "agent:\n  budget: {max: 1.5}\nservices:\n  - name: web\n    command: [x]\n",
			`fleet.yaml:2:17: agent.budget.max: want a whole number, not 1.5`},
		{"not a finite number", "services:\n  - name: web\n    command: [x]\n    scale: {tolerance: .nan}\n",
			`fleet.yaml:4:24: services[0].scale.tolerance: want a finite number, not .nan`},
		{"negative max step", "services:\n  - name: web\n    command: [x]\n    scale: {maxStep: -1}\n",
			`fleet.yaml:4:22: services[0].scale.maxStep: must not be negative`},
		{"negative success threshold", "services:\n  - name: web\n    command: [x]\n    health: {successThreshold: -1}\n",
			`fleet.yaml:4:32: services[0].health.successThreshold: must not be negative`},
		{"listen beyond loopback without a token", "agent: {listen: 0.0.0.0:7070}\nservices:\n  - name: web\n    command: [x]\n",
			`fleet.yaml:1:17: agent.listen: 0.0.0.0:7070 is not a loopback address: set agent.tokenFile, so that the control API takes commands only with the token`},
		{"bad host", "agent: {hosts: [\"a:80\"]}\nservices:\n  - name: web\n    command: [x]\n",
			`fleet.yaml:1:17: agent.hosts[0]: want a host name without port, not "a:80"`},
		{"failure action", "services:\n  - name: web\n    command: [x]\n    update:\n      failureAction: explode\n",
			`fleet.yaml:5:22: services[0].update.failureAction: must be rollback, pause or continue, not "explode"`},
		{"no services", "nodes: [a]\n", "fleet.yaml:1:1: services: at least one service is required"},
		{"missing command", "services:\n  - name: web\n", "fleet.yaml:2:5: services[0].command: required with the local driver"},
		{"duplicate node", "nodes: [a, a]\nservices:\n  - name: web\n    command: [x]\n", `fleet.yaml:1:12: nodes[1]: duplicate node "a"`},
		{"min above max", "services:\n  - name: web\n    command: [x]\n    minReplicas: 5\n    maxReplicas: 2\n",
			"fleet.yaml:4:18: services[0].minReplicas: 5 is above maxReplicas 2"},
		{"syntax", "services: [\n", "fleet.yaml:1: did not find expected node content"},
		{"empty", "", "fleet.yaml: empty file: want agent, nodes and services"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("fleet.yaml", []byte(tt.give))
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
			assert.ErrorIs(t, err, config.ErrInvalid)
			var ce *config.Error
			assert.True(t, errors.As(err, &ce))
		})
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fleet.yaml")
	require.NoError(t, os.WriteFile(p, []byte(good), 0o644))
	_, err := config.Load(p)
	require.NoError(t, err)
	_, err = config.Load(p + ".missing")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("services: [\n"))
	f.Add([]byte("services:\n  - name: web\n    command: [x]\n    limits: {heap: 1.5GiB}\n"))
	f.Add([]byte("services:\n  - name: web\n    command: [x]\n    replicas: 2.5\n    health: {timeout: -1s}\n"))
	f.Add([]byte("agent: {listen: 0.0.0.0:1, budget: {window: 1m}}\nservices:\n  - {name: a, command: [x], env: [&n 3], replicas: *n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := config.Parse("f.yaml", data)
		if err != nil {
			require.ErrorIs(t, err, config.ErrInvalid)
			var ce *config.Error
			require.ErrorAs(t, err, &ce)
			if ce.Field != "" {
				// A value's error names its place: line and column.
				assert.Positive(t, ce.Line, err.Error())
				assert.Positive(t, ce.Column, err.Error())
			}
			return
		}
		require.NotEmpty(t, fl.Services)
		assert.GreaterOrEqual(t, fl.Agent.Budget.Window, config.Duration(0))
		for _, s := range fl.Services {
			assert.GreaterOrEqual(t, s.Replicas, s.MinReplicas)
			assert.LessOrEqual(t, s.Replicas, s.MaxReplicas)
			assert.GreaterOrEqual(t, s.MinReplicas, 1)
			for _, d := range []config.Duration{s.StopGrace, s.Health.Interval, s.Health.Timeout, s.Health.StartupGrace,
				s.Health.MinUnhealthy, s.Restart.Initial, s.Restart.Max, s.Restart.CrashLoopWindow, s.Scale.LatencyTarget,
				s.Scale.UpWindow, s.Scale.DownWindow, s.Update.Delay, s.Update.Monitor, s.Update.StartTimeout, s.Limits.Horizon} {
				assert.GreaterOrEqual(t, d, config.Duration(0), "durations are never negative")
			}
			assert.GreaterOrEqual(t, s.Limits.Heap, config.Bytes(0))
			for _, x := range []float64{s.Restart.Jitter, s.Scale.Tolerance, s.Scale.UtilizationTarget, s.Update.MaxFailureRatio} {
				assert.False(t, math.IsNaN(x) || math.IsInf(x, 0))
			}
		}
	})
}

func ExampleParse() {
	_, err := config.Parse("fleet.yaml", []byte("services:\n  - name: web\n    command: [./service]\n    replicas: -1\n"))
	fmt.Println(err)
	// Output:
	// fleet.yaml:4:15: services[0].replicas: must not be negative
}

func TestTheExampleFleetFileIsValid(t *testing.T) {
	f, err := config.Load("../fleet.yaml")
	require.NoError(t, err)
	assert.Equal(t, 3, f.Service("web").Replicas)
}
