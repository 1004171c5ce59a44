package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
	"github.com/selfheal-go/selfheal/examples/internal/obs/otlptest"
)

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// recorded runs events through the agent's telemetry under the SDK and returns the
// spans it ended, and the collected metrics.
func recorded(t *testing.T, events ...eventlog.Event) ([]sdktrace.ReadOnlySpan, metricdata.ResourceMetrics) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tel, err := newTelemetry(tp, mp)
	require.NoError(t, err)
	log := eventlog.New(nil, 0)
	stop := tel.watch(log)
	for _, e := range events {
		log.Emit(e)
	}
	stop()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	return rec.Ended(), rm
}

func find(spans []sdktrace.ReadOnlySpan, name string, attrs map[string]string) sdktrace.ReadOnlySpan {
next:
	for _, s := range spans {
		if s.Name() != name {
			continue
		}
		got := attrMap(s.Attributes())
		for k, v := range attrs {
			if got[k] != v {
				continue next
			}
		}
		return s
	}
	return nil
}

// A crash, the restart decided, the start that carried it out, the healing: an
// incident span, with the restart as its child from decision to start.
func TestSpansOfAnIncident(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	spans, rm := recorded(t,
		eventlog.Event{Time: at(0), Kind: eventlog.Observed, What: "crash", Service: "web", Instance: "web-1", Node: "node-1", Incident: "web#1", Why: "exit status 2", DetectMs: 40},
		eventlog.Event{Time: at(5), Kind: eventlog.Decided, What: "restart", Service: "web", Incident: "web#1", Why: "restart 1 of 5"},
		eventlog.Event{Time: at(30), Kind: eventlog.Acted, What: "start", Service: "web", Instance: "web-2", Node: "node-2", Incident: "web#1"},
		eventlog.Event{Time: at(400), Kind: eventlog.Healed, What: "restarted", Service: "web", Instance: "web-2", Incident: "web#1"},
		// no incident: an action of its own
		eventlog.Event{Time: at(500), Kind: eventlog.Acted, What: "scale-in", Service: "web", Instance: "web-3", Node: "node-1", Why: "scale in"},
		eventlog.Event{Time: at(600), Kind: eventlog.Held, What: "restart", Service: "api", Why: "disruption budget spent"},
	)
	inc := find(spans, "selfheal.agent.incident", map[string]string{"selfheal.agent.incident": "web#1"})
	require.NotNil(t, inc)
	assert.Equal(t, map[string]string{"selfheal.agent.incident": "web#1", "selfheal.agent.service": "web", "selfheal.agent.instance": "web-1",
		"selfheal.agent.node": "node-1", "selfheal.agent.fault": "crash", "selfheal.agent.outcome": "healed"}, attrMap(inc.Attributes()))
	assert.False(t, inc.Parent().IsValid(), "an incident is a root")
	assert.Equal(t, at(0), inc.StartTime())
	assert.Equal(t, at(400), inc.EndTime())
	assert.Equal(t, codes.Ok, inc.Status().Code)
	var kinds []string
	for _, e := range inc.Events() {
		kinds = append(kinds, e.Name)
	}
	assert.Equal(t, []string{"selfheal.agent.observed", "selfheal.agent.decided", "selfheal.agent.acted", "selfheal.agent.healed"}, kinds)

	restart := find(spans, "selfheal.agent.action", map[string]string{"selfheal.agent.action": "restart", "selfheal.agent.incident": "web#1"})
	require.NotNil(t, restart)
	assert.Equal(t, inc.SpanContext().SpanID(), restart.Parent().SpanID())
	assert.Equal(t, inc.SpanContext().TraceID(), restart.SpanContext().TraceID())
	a := attrMap(restart.Attributes())
	assert.Equal(t, "start", a["selfheal.agent.step"])
	assert.Equal(t, "web-2", a["selfheal.agent.instance"], "the instance the restart started")
	assert.Equal(t, "node-2", a["selfheal.agent.node"])
	assert.Equal(t, "acted", a["selfheal.agent.outcome"])
	assert.Equal(t, "restart 1 of 5", a["selfheal.agent.why"])
	assert.Equal(t, at(5), restart.StartTime())
	assert.Equal(t, at(30), restart.EndTime())

	scaleIn := find(spans, "selfheal.agent.action", map[string]string{"selfheal.agent.action": "scale-in", "selfheal.agent.outcome": "acted", "selfheal.agent.instance": "web-3"})
	require.NotNil(t, scaleIn)
	assert.False(t, scaleIn.Parent().IsValid())
	assert.Equal(t, scaleIn.StartTime(), scaleIn.EndTime())
	assert.NotNil(t, find(spans, "selfheal.agent.action", map[string]string{"selfheal.agent.action": "restart", "selfheal.agent.outcome": "held",
		"selfheal.agent.service": "api", "selfheal.agent.why": "disruption budget spent"}))
	assert.Len(t, spans, 4)

	// The time to detect, in seconds, by service and kind (the keys of the agent's
	// other metrics).
	var detect *metricdata.Histogram[float64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "selfheal.agent.detect.duration" {
				h := m.Data.(metricdata.Histogram[float64])
				detect = &h
				assert.Equal(t, "s", m.Unit)
			}
		}
	}
	require.NotNil(t, detect)
	require.Len(t, detect.DataPoints, 1)
	assert.Equal(t, uint64(1), detect.DataPoints[0].Count)
	assert.InDelta(t, 0.040, detect.DataPoints[0].Sum, 1e-9)
	assert.Equal(t, map[string]string{"service": "web", "kind": "crash"}, attrMap(detect.DataPoints[0].Attributes.ToSlice()))
}

// A failed step ends its decision with an Error status and no error text; a second
// decision supersedes the first; a dry run's decision ends at once; what is open
// when the agent stops ends unfinished.
func TestSpansOfFailuresAndLeftovers(t *testing.T) {
	t0 := time.Now()
	spans, _ := recorded(t,
		eventlog.Event{Time: t0, Kind: eventlog.Observed, What: "unhealthy", Service: "web", Instance: "web-1", Incident: "web#1"},
		eventlog.Event{Time: t0, Kind: eventlog.Decided, What: "replace", Service: "web", Instance: "web-1", Incident: "web#1"},
		eventlog.Event{Time: t0, Kind: eventlog.Failed, What: "start", Service: "web", Incident: "web#1", Why: "fork/exec /secret/path: permission denied"},
		eventlog.Event{Time: t0, Kind: eventlog.Decided, What: "scale-out", Service: "web", Incident: "web#2"},
		eventlog.Event{Time: t0, Kind: eventlog.Decided, What: "rollback", Service: "web", Incident: "web#2"},
		eventlog.Event{Time: t0, Kind: eventlog.Decided, What: "restart", Service: "api", Incident: "api#1", DryRun: true},
	)
	replace := find(spans, "selfheal.agent.action", map[string]string{"selfheal.agent.action": "replace"})
	require.NotNil(t, replace)
	assert.Equal(t, codes.Error, replace.Status().Code)
	assert.Equal(t, "failed: start", replace.Status().Description)
	assert.Equal(t, "failed", attrMap(replace.Attributes())["selfheal.agent.outcome"])
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			assert.NotContains(t, kv.Value.String(), "permission denied", "a driver's error text is never an attribute")
		}
		for _, e := range s.Events() {
			for _, kv := range e.Attributes {
				assert.NotContains(t, kv.Value.String(), "permission denied")
			}
		}
	}
	assert.NotNil(t, find(spans, "selfheal.agent.action", map[string]string{"selfheal.agent.action": "scale-out", "selfheal.agent.outcome": "superseded"}))
	assert.NotNil(t, find(spans, "selfheal.agent.action", map[string]string{"selfheal.agent.action": "rollback", "selfheal.agent.outcome": "unfinished"}))
	assert.NotNil(t, find(spans, "selfheal.agent.action", map[string]string{"selfheal.agent.action": "restart", "selfheal.agent.outcome": "dry_run", "selfheal.agent.dry_run": "true"}))
	for _, id := range []string{"web#1", "web#2", "api#1"} {
		assert.NotNil(t, find(spans, "selfheal.agent.incident", map[string]string{"selfheal.agent.incident": id, "selfheal.agent.outcome": "unfinished"}), id)
	}
}

// At most maxOpenIncidents incident spans stay open: the stalest is ended first.
func TestOpenIncidentsAreBounded(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tel, err := newTelemetry(tp, sdkmetric.NewMeterProvider())
	require.NoError(t, err)
	t0 := time.Now()
	for i := range maxOpenIncidents + 1 {
		tel.handle(eventlog.Event{Time: t0.Add(time.Duration(i) * time.Millisecond), Kind: eventlog.Observed, What: "crash", Service: "web", Incident: fmt.Sprint("web#", i)})
	}
	assert.Len(t, tel.open, maxOpenIncidents)
	require.Len(t, rec.Ended(), 1)
	assert.Equal(t, "web#0", attrMap(rec.Ended()[0].Attributes())["selfheal.agent.incident"])
	tel.close(time.Now())
	assert.Empty(t, tel.open)
	assert.Len(t, rec.Ended(), maxOpenIncidents+1)
}

// serviceBuildDir holds what buildService built, if it ran.
var serviceBuildDir string

// removeServiceBuild removes it (TestMain calls it, after the tests).
func removeServiceBuild() {
	if serviceBuildDir != "" {
		os.RemoveAll(serviceBuildDir)
	}
}

// buildService builds the demo service once for the package's tests.
var buildService = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "selfheal-agent-telemetry-")
	if err != nil {
		return "", err
	}
	serviceBuildDir = dir
	bin := filepath.Join(dir, "service")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/selfheal-go/selfheal/examples/service").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the demo service: %v\n%s", err, out)
	}
	return bin, nil
})

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// The real thing: the agent runs real service processes (local driver) with
// OTEL_EXPORTER_OTLP_ENDPOINT set; one is killed; the restart span arrives at a real
// OTLP receiver with the incident id, and the restarted instance's own spans arrive
// under the service.instance.id the restart span names. The agent's /metrics parses.
func TestAgentExportsItsDecisions(t *testing.T) {
	t0 := time.Now()
	bin, err := buildService()
	require.NoError(t, err)
	t.Logf("built in %s", time.Since(t0))
	rcv := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100") // ms: the agent's and the services' batches

	dir := t.TempDir()
	listen := freeAddr(t)
	events := filepath.Join(dir, "events.jsonl")
	fleet := filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(fleet, []byte(fmt.Sprintf(`agent:
  listen: %s
  eventLog: %s
  stateFile: %s
nodes: [node-1]
services:
  - name: web
    command: [%q, -addr, "127.0.0.1:{port}", -version, "{version}", -drain, 50ms]
    replicas: 1
    stopGrace: 300ms
    health: {interval: 100ms, timeout: 500ms, failureThreshold: 2, startupGrace: 5s}
    restart: {initial: 10ms, max: 100ms}
`, listen, events, filepath.Join(dir, "state.json"), bin)), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-config", fleet, "-stop-on-exit"}, &bytes.Buffer{}, &stderr) }()

	started := func() []eventlog.Event {
		var out []eventlog.Event
		b, _ := os.ReadFile(events)
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e eventlog.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Kind == eventlog.Acted && e.What == "start" {
				out = append(out, e)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(started()) == 1 }, 20*time.Second, 20*time.Millisecond)
	first := started()[0]
	t.Logf("started at %s", time.Since(t0))
	pid := int(first.Detail["pid"].(float64))
	// Ready before the kill, so that the crash is a crash of a healthy instance.
	rcv.Wait(t, 20*time.Second, func(s otlptest.Span) bool {
		return s.Name == "selfheal.health.check" && s.Resource["service.instance.id"] == first.Instance
	})
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	t.Logf("killed at %s", time.Since(t0))

	restart := rcv.Wait(t, 20*time.Second, func(s otlptest.Span) bool {
		return s.Name == "selfheal.agent.action" && s.Attrs["selfheal.agent.action"] == "restart"
	})
	t.Logf("restart span at %s", time.Since(t0))
	assert.Equal(t, "selfheal-agent", restart.Resource["service.name"])
	assert.Equal(t, "web", restart.Attrs["selfheal.agent.service"])
	assert.Equal(t, "start", restart.Attrs["selfheal.agent.step"])
	assert.Equal(t, "acted", restart.Attrs["selfheal.agent.outcome"])
	assert.Equal(t, "node-1", restart.Attrs["selfheal.agent.node"])
	id := restart.Attrs["selfheal.agent.incident"]
	require.True(t, strings.HasPrefix(id, "web#"), "the incident id: %q", id)
	newInstance := restart.Attrs["selfheal.agent.instance"]
	require.NotEmpty(t, newInstance)
	assert.NotEqual(t, first.Instance, newInstance)

	inc := rcv.Wait(t, 20*time.Second, func(s otlptest.Span) bool {
		return s.Name == "selfheal.agent.incident" && s.Attrs["selfheal.agent.incident"] == id
	})
	assert.Equal(t, restart.ParentSpanID, inc.SpanID)
	assert.Equal(t, restart.TraceID, inc.TraceID)
	assert.Contains(t, []string{"crash", "unhealthy"}, inc.Attrs["selfheal.agent.fault"], "the exit, or the probes that saw it first")
	assert.Equal(t, first.Instance, inc.Attrs["selfheal.agent.instance"], "the incident names the instance that failed")
	assert.Equal(t, "healed", inc.Attrs["selfheal.agent.outcome"])

	// From the agent's action to the service's spans: the restarted instance's
	// spans carry the instance id the restart span names.
	svc := rcv.Wait(t, 20*time.Second, func(s otlptest.Span) bool { return s.Resource["service.instance.id"] == newInstance })
	assert.Equal(t, "web", svc.Resource["service.name"])

	t.Logf("service span at %s", time.Since(t0))
	// The agent's metrics, in the Prometheus text format.
	resp, err := http.Get("http://" + listen + "/metrics")
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	for name, kind := range map[string]dto.MetricType{
		"selfheal_agent_incidents_total":         dto.MetricType_COUNTER,
		"selfheal_agent_actions_total":           dto.MetricType_COUNTER,
		"selfheal_agent_heal_duration_seconds":   dto.MetricType_HISTOGRAM,
		"selfheal_agent_detect_duration_seconds": dto.MetricType_HISTOGRAM,
	} {
		if assert.Contains(t, fams, name) {
			assert.Equal(t, kind, fams[name].GetType(), name)
		}
	}
	http.DefaultClient.CloseIdleConnections()

	cancel()
	assert.Equal(t, 0, <-done, stderr.String())
	t.Logf("stopped at %s", time.Since(t0))
}
