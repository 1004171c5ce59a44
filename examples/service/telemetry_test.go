package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/internal/obs/otlptest"
)

// flakyGated is a downstream whose every other request fails with 503 (each
// /api/hello then takes a retry), and which records each request's traceparent.
// gate, when set, holds the downstream's requests: each one sends on arrived,
// then waits for release to be closed.
type gate struct {
	on      atomic.Bool
	arrived chan struct{}
	release chan struct{}

	mu      sync.Mutex
	parents []string // the traceparent of each request
}

func (g *gate) traceparents() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.parents...)
}

func flakyGated(t *testing.T) (string, *gate) {
	t.Helper()
	var n atomic.Int64
	g := &gate{arrived: make(chan struct{}, 16), release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.parents = append(g.parents, r.Header.Get("traceparent"))
		g.mu.Unlock()
		if g.on.Load() {
			g.arrived <- struct{}{}
			<-g.release
		}
		if n.Add(1)%2 == 1 {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("quote"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, g
}

func scrape(t *testing.T, c *http.Client, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"), resp.Header.Get("Content-Type"))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// has reports whether family name has a series whose labels include want.
func has(fams map[string]*dto.MetricFamily, name string, want map[string]string) bool {
	f := fams[name]
	if f == nil {
		return false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return true
	}
	return false
}

// The demo service exports every selfheal instrument it uses on /metrics, in the
// Prometheus text format, through the SDK MeterProvider given to its policies.
func TestMetricsScrape(t *testing.T) {
	down, g := flakyGated(t)
	base, c, stop := start(t, "v7", "-downstream", down, "-max-concurrent", "1", "-id", "web-7")
	defer stop()

	for range 4 {
		code, _ := call(t, c, "GET", base+"/api/hello")
		require.Equal(t, 200, code)
	}
	// Shed: one request holds the only slot (its downstream call is held) while
	// another arrives.
	g.on.Store(true)
	var wg sync.WaitGroup
	held := 0
	wg.Go(func() { held, _ = call(t, c, "GET", base+"/api/hello") })
	<-g.arrived
	code, _ := call(t, c, "GET", base+"/api/hello")
	assert.Equal(t, http.StatusServiceUnavailable, code, "shed")
	g.on.Store(false)
	close(g.release)
	wg.Wait()
	assert.Equal(t, http.StatusOK, held)
	// A supervised worker panics and is restarted.
	call(t, c, "POST", base+"/fault/panic", "X-Fault-Token", "secret")
	restart := map[string]string{"selfheal_supervisor_name": "root/workers", "selfheal_child_name": "ticker", "selfheal_restart_cause": "panic"}
	require.Eventually(t, func() bool { return has(scrape(t, c, base), "selfheal_supervise_restarts_total", restart) },
		5*time.Second, 20*time.Millisecond)

	code, _ = call(t, c, "GET", base+"/readyz") // a probe runs the readiness checks
	require.Equal(t, 200, code)
	fams := scrape(t, c, base)
	host := strings.TrimPrefix(down, "http://")
	for _, tt := range []struct {
		name   string
		kind   dto.MetricType
		labels map[string]string
	}{
		{"selfheal_heal_server_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"selfheal_policy_name": "server"}},
		{"selfheal_heal_server_shed_total", dto.MetricType_COUNTER, map[string]string{"selfheal_policy_name": "server", "selfheal_reason": "concurrency"}},
		{"selfheal_breaker_calls_total", dto.MetricType_COUNTER, map[string]string{"selfheal_policy_name": "downstream/" + host, "selfheal_outcome": "failure"}},
		{"selfheal_breaker_calls_total", dto.MetricType_COUNTER, map[string]string{"selfheal_policy_name": "downstream/" + host, "selfheal_outcome": "success"}},
		// unit "1": the exporter adds _ratio (the translation rule for that unit)
		{"selfheal_breaker_state_ratio", dto.MetricType_GAUGE, map[string]string{"selfheal_policy_name": "downstream/" + host}},
		{"selfheal_retry_attempts_total", dto.MetricType_COUNTER, map[string]string{"selfheal_outcome": "retry"}},
		{"selfheal_health_check_status", dto.MetricType_GAUGE, map[string]string{"selfheal_check_name": "worker:heartbeat"}},
		{"selfheal_health_check_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"selfheal_check_name": "release:ready", "selfheal_state": "pass"}},
		{"selfheal_supervise_restarts_total", dto.MetricType_COUNTER, restart},
		{"selfheal_supervise_children_running", dto.MetricType_GAUGE, map[string]string{"selfheal_supervisor_name": "root"}},
		{"http_server_request_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"http_request_method": "GET"}},
		{"target_info", dto.MetricType_GAUGE, map[string]string{"service_name": "selfheal-demo", "service_instance_id": "web-7", "service_version": "v7"}},
	} {
		f := fams[tt.name]
		if !assert.NotNil(t, f, "no family %s", tt.name) {
			continue
		}
		assert.Equal(t, tt.kind, f.GetType(), tt.name)
		assert.True(t, has(fams, tt.name, tt.labels), "%s: no series with %v", tt.name, tt.labels)
	}
}

// /metrics is a plain scrape: no other method, no query, no body.
func TestMetricsRefusesWhatIsNotAScrape(t *testing.T) {
	base, c, stop := start(t, "v1")
	defer stop()
	for _, tt := range []struct {
		give     string
		method   string
		url      string
		body     string
		wantCode int
	}{
		{"scrape", "GET", "/metrics", "", 200},
		{"head", "HEAD", "/metrics", "", 200},
		{"post", "POST", "/metrics", "", 405},
		{"delete", "DELETE", "/metrics", "", 405},
		{"query", "GET", "/metrics?name[]=selfheal_breaker_state", "", 400},
		{"empty query", "GET", "/metrics?", "", 400},
		{"body", "GET", "/metrics", "x", 400},
	} {
		t.Run(tt.give, func(t *testing.T) {
			req, err := http.NewRequestWithContext(context.Background(), tt.method, base+tt.url, strings.NewReader(tt.body))
			require.NoError(t, err)
			if tt.body == "" {
				req.Body, req.ContentLength = nil, 0
			}
			resp, err := c.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.wantCode, resp.StatusCode)
		})
	}
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, the service sends its spans over
// OTLP/HTTP: the request's server span continues the caller's trace, and the
// transport's retry and the health checks are on it with their selfheal attributes.
func TestTracesOverOTLP(t *testing.T) {
	rcv := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("SERVICE", "web")
	down, g := flakyGated(t)
	base, c, stop := start(t, "v2", "-downstream", down, "-id", "web-2")
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	code, _ := call(t, c, "GET", base+"/api/hello", "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	require.Equal(t, 200, code)
	code, _ = call(t, c, "GET", base+"/livez") // a probe runs the liveness checks
	require.Equal(t, 200, code)
	stop() // flushes the batch

	server := rcv.Wait(t, 5*time.Second, func(s otlptest.Span) bool { return s.Name == "GET /api/hello" })
	assert.Equal(t, traceID, server.TraceID, "the caller's traceparent is the server span's parent")
	assert.Equal(t, "00f067aa0ba902b7", server.ParentSpanID)
	assert.Equal(t, "web", server.Resource["service.name"])
	assert.Equal(t, "web-2", server.Resource["service.instance.id"])
	assert.Equal(t, "v2", server.Resource["service.version"])

	// The first attempt is the request's child; the retry is a retry attempt span
	// with the second attempt's client span under it.
	first := rcv.Wait(t, time.Second, func(s otlptest.Span) bool {
		return s.Name == "selfheal.heal.transport.attempt" && s.ParentSpanID == server.SpanID
	})
	assert.Equal(t, traceID, first.TraceID)
	assert.True(t, first.Error, "the first attempt got a 503")
	retry := rcv.Wait(t, time.Second, func(s otlptest.Span) bool { return s.Name == "selfheal.retry.attempt" })
	assert.Equal(t, server.SpanID, retry.ParentSpanID)
	assert.Equal(t, "2", retry.Attrs["selfheal.attempt"])
	second := rcv.Wait(t, time.Second, func(s otlptest.Span) bool {
		return s.Name == "selfheal.heal.transport.attempt" && s.ParentSpanID == retry.SpanID
	})
	// The downstream saw each attempt's own span as its parent (W3C traceparent).
	assert.Equal(t, []string{"00-" + traceID + "-" + first.SpanID + "-01", "00-" + traceID + "-" + second.SpanID + "-01"}, g.traceparents())
	var retried bool
	for _, e := range server.Events {
		if e.Name == "selfheal.retry.retry" {
			retried = true
			assert.Equal(t, "1", e.Attrs["selfheal.attempt"])
		}
	}
	assert.True(t, retried, "selfheal.retry.retry on the request's span: %+v", server.Events)

	check := rcv.Wait(t, time.Second, func(s otlptest.Span) bool {
		return s.Name == "selfheal.health.check" && s.Attrs["selfheal.check.name"] == "worker:heartbeat"
	})
	assert.Equal(t, "web-2", check.Resource["service.instance.id"])
	for _, s := range rcv.Spans() {
		assert.NotContains(t, []string{"GET /livez", "GET /readyz", "GET /metrics"}, s.Name)
	}
}
