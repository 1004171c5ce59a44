package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal/examples/agent/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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

func TestMetricsHandler(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	c, err := mp.Meter("t").Int64Counter("selfheal.agent.actions")
	require.NoError(t, err)
	c.Add(context.Background(), 2, metric.WithAttributes(attribute.String("action", "restart")))
	rec := httptest.NewRecorder()
	metricsHandler(reader).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	assert.Contains(t, rec.Body.String(), `"selfheal.agent.actions"`)
	assert.Contains(t, rec.Body.String(), `"action": "restart"`)
	assert.Contains(t, rec.Body.String(), `"value": 2`)
}

func TestDriversAreBuilt(t *testing.T) {
	for name, mk := range drivers {
		d, err := mk(&config.Fleet{Nodes: []string{"node-1"}}, nil)
		require.NoError(t, err, name)
		assert.Equal(t, name, d.Name())
		assert.NoError(t, d.Close())
	}
}
