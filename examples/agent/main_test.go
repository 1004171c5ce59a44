package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { removeServiceBuild() }))
}

func TestConfigErrorStopsTheAgent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fleet.yaml")
	require.NoError(t, os.WriteFile(p, []byte("services:\n  - name: web\n    command: [x]\n    replicas: lots\n"), 0o644))
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"-config", p}, &bytes.Buffer{}, &stderr)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr.String(), p+":4:15: services[0].replicas: cannot unmarshal")
}

func TestDryRunStartsNothingAndExitsCleanly(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`agent:
  listen: 127.0.0.1:0
  eventLog: `+filepath.Join(dir, "events.jsonl")+`
services:
  - name: web
    command: [/bin/false]
    replicas: 2
    health: {interval: 50ms}
`), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var stderr bytes.Buffer
	code := run(ctx, []string{"-config", p, "-dry-run"}, &bytes.Buffer{}, &stderr)
	assert.Equal(t, 0, code, stderr.String())
	b, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"dryRun":true`)
}

func TestControlCommands(t *testing.T) {
	var stderr bytes.Buffer
	assert.Equal(t, 2, run(context.Background(), []string{"frobnicate"}, &bytes.Buffer{}, &stderr))
	assert.Contains(t, stderr.String(), "usage:")
	// No agent listens there.
	assert.Equal(t, 1, run(context.Background(), []string{"-addr", "127.0.0.1:1", "status"}, &bytes.Buffer{}, &bytes.Buffer{}))
}

func TestDriversAreBuilt(t *testing.T) {
	for name, mk := range drivers {
		d, err := mk(&config.Fleet{Nodes: []string{"node-1"}}, nil)
		require.NoError(t, err, name)
		assert.Equal(t, name, d.Name())
		assert.NoError(t, d.Close())
	}
}

// controlTarget serves the control API of an agent that is not running (commands
// need no loop) on a real listener, and returns its address.
func controlTarget(t *testing.T, token string) (*core.Agent, string) {
	t.Helper()
	f, err := config.Parse("fleet.yaml", []byte("nodes: [node-1]\nservices:\n  - name: web\n    command: [/bin/true]\n    replicas: 2\n"))
	require.NoError(t, err)
	d, err := local.New(local.Config{Nodes: f.Nodes})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	a, err := core.New(core.Config{Fleet: f, Driver: d, ControlToken: token})
	require.NoError(t, err)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return a, strings.TrimPrefix(srv.URL, "http://")
}

func TestControlCommandsPrintWhatTheyDid(t *testing.T) {
	a, addr := controlTarget(t, "")
	tests := []struct {
		give       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{[]string{"node", "node-1", "up"}, 0, "node node-1: ready\n", ""},
		{[]string{"node", "node-1", "drain"}, 0, "node node-1: drained\n", ""},
		{[]string{"node", "node-1", "sideways"}, 2, "", "ready (or up), down, degraded, drained (or drain)"},
		{[]string{"scale", "web", "4"}, 0, "scale web: 2 -> 4 replicas\n", ""},
		{[]string{"scale", "web", "400"}, 1, "", "400 Bad Request: agent: out of the fleet file's bounds: scale web to 400 replicas: want 1 to 10"},
		{[]string{"update", "web", "v2"}, 0, "update web: v1 -> v2, rolling\n", ""},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"-addr", addr}, tt.give...), &stdout, &stderr)
		assert.Equal(t, tt.wantCode, code, "%v: %s", tt.give, stderr.String())
		assert.Equal(t, tt.wantStdout, stdout.String(), tt.give)
		assert.Contains(t, stderr.String(), tt.wantStderr, tt.give)
	}
	assert.Equal(t, 4, a.Status(context.Background(), 0).Services[0].Desired)
}

func TestControlCommandsSendTheToken(t *testing.T) {
	a, addr := controlTarget(t, "s3cret")
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("s3cret\n"), 0o600))
	var stderr bytes.Buffer
	assert.Equal(t, 1, run(context.Background(), []string{"-addr", addr, "scale", "web", "3"}, &bytes.Buffer{}, &stderr))
	assert.Contains(t, stderr.String(), "401 Unauthorized")
	assert.Equal(t, 0, run(context.Background(), []string{"-addr", addr, "-token-file", tok, "scale", "web", "3"}, &bytes.Buffer{}, &stderr))
	assert.Equal(t, 3, a.Status(context.Background(), 0).Services[0].Desired)

	// A token others can read is refused, by the commands and by the agent.
	require.NoError(t, os.Chmod(tok, 0o644))
	stderr.Reset()
	assert.Equal(t, 1, run(context.Background(), []string{"-addr", addr, "-token-file", tok, "scale", "web", "4"}, &bytes.Buffer{}, &stderr))
	assert.Contains(t, stderr.String(), "other users may read or write it (mode 0644)")
	p := filepath.Join(t.TempDir(), "fleet.yaml")
	require.NoError(t, os.WriteFile(p, []byte("agent:\n  listen: 127.0.0.1:0\n  tokenFile: "+tok+"\nservices:\n  - name: web\n    command: [/bin/true]\n"), 0o644))
	stderr.Reset()
	assert.Equal(t, 1, run(context.Background(), []string{"-config", p, "-dry-run"}, &bytes.Buffer{}, &stderr))
	assert.Contains(t, stderr.String(), "agent.tokenFile: "+tok+": other users may read or write it")
}
