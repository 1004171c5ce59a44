package config_test

import (
	"errors"
	"fmt"
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
			`fleet.yaml:4: services[0].replicaz: unknown field "replicaz"`},
		{"wrong type", "services:\n  - name: web\n    command: [x]\n    replicas: three\n",
			"fleet.yaml:4: services[0].replicas: cannot unmarshal !!str `three` into int"},
		{"bad duration", "services:\n  - name: web\n    command: [x]\n    health:\n      interval: soon\n",
			`fleet.yaml:5: services[0].health.interval: want a duration such as 250ms, not "soon"`},
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
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := config.Parse("f.yaml", data)
		if err == nil {
			require.NotEmpty(t, fl.Services)
		} else {
			require.ErrorIs(t, err, config.ErrInvalid)
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
