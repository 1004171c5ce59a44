package core

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/health"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
)

func newTestAgent(t *testing.T) *Agent {
	t.Helper()
	f, err := config.Parse("fleet.yaml", []byte(`nodes: [node-1]
services:
  - name: web
    command: [/bin/true]
    replicas: 2
    health: {liveness: /alive, readiness: /ready, document: /doc, interval: 100ms, timeout: 1s, failureThreshold: 4}
`))
	require.NoError(t, err)
	d, err := local.New(local.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	a, err := New(Config{Fleet: f, Driver: d})
	require.NoError(t, err)
	return a
}

// The orchestrator's health check must probe readiness: Swarm judges a rolling
// update by it, so a release that never becomes ready is rolled back.
func TestServiceSpecHealthCheckIsReadiness(t *testing.T) {
	a := newTestAgent(t)
	spec := a.serviceSpec(a.svcs["web"])
	assert.Equal(t, "/ready", spec.Health.Path)
	assert.Equal(t, 4, spec.Health.Retries)
	assert.Equal(t, 2, spec.Replicas)
}

func TestOwnInstances(t *testing.T) {
	a := newTestAgent(t)
	for _, tt := range []struct {
		name         string
		in           []string // services of the adopted instances
		own, foreign int
	}{
		{"none", nil, 0, 0},
		{"all ours", []string{"web", "web"}, 2, 0},
		{"all foreign", []string{"db", "other"}, 0, 2},
		{"mixed", []string{"web", "db", "web", "cache"}, 2, 2},
		{"empty service name", []string{""}, 0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var insts []driver.Instance
			for i, s := range tt.in {
				insts = append(insts, driver.Instance{ID: s + "-" + string(rune('a'+i)), Service: s})
			}
			own, foreign := a.ownInstances(insts)
			assert.Len(t, own, tt.own)
			assert.Len(t, foreign, tt.foreign)
			for _, in := range own {
				assert.Equal(t, "web", in.Service)
			}
			for _, in := range foreign {
				assert.NotEqual(t, "web", in.Service)
			}
		})
	}
}

func TestJudgeDocument(t *testing.T) {
	for _, tt := range []struct {
		name        string
		doc         *health.Document
		ready       bool
		live, rdy   bool
		errContains string
	}{
		{"pass", &health.Document{Status: health.StatusPass}, true, true, true, ""},
		{"pass, not ready", &health.Document{Status: health.StatusPass}, false, true, false, ""},
		{"warn counts as pass", &health.Document{Status: health.StatusWarn, Output: "warning: breaker"}, true, true, true, ""},
		{"fail while ready counts as a failed probe", &health.Document{Status: health.StatusFail, Output: "failing: db"}, true, false, false, "says fail: failing: db"},
		{"fail without output", &health.Document{Status: health.StatusFail}, true, false, false, "says fail"},
		{"fail and not ready: only not ready", &health.Document{Status: health.StatusFail, Output: "failing: release:ready"}, false, true, false, "release:ready"},
		{"draining: only not ready", &health.Document{Status: health.StatusFail, Notes: []string{"draining"}, Output: "draining: shutting down"}, true, true, false, "draining"},
		{"draining among other notes", &health.Document{Status: health.StatusFail, Notes: []string{"v2", "draining"}}, false, true, false, "says fail"},
		{"a note that merely mentions draining does not count", &health.Document{Status: health.StatusFail, Notes: []string{"draining soon"}}, true, false, false, "says fail"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			live, rdy, err := judgeDocument(tt.doc, tt.ready)
			assert.Equal(t, tt.live, live, "live")
			assert.Equal(t, tt.rdy, rdy, "ready")
			if tt.errContains == "" {
				assert.Empty(t, err)
			} else {
				assert.Contains(t, err, tt.errContains)
			}
		})
	}
}

// probe against a real HTTP server that serves each kind of health document.
func TestProbeHealthDocument(t *testing.T) {
	a := newTestAgent(t)
	defer a.tr.CloseIdleConnections()
	c := a.svcs["web"].cfg
	for _, tt := range []struct {
		name      string
		readyCode int
		doc       string
		docCode   int
		live, rdy bool
		errPrefix string
	}{
		{"pass", 200, `{"status":"pass"}`, 200, true, true, ""},
		{"fail while ready", 200, `{"status":"fail","output":"failing: db:ping"}`, 503, false, false, "health document says fail"},
		{"fail and not ready", 503, `{"status":"fail","output":"failing: release:ready"}`, 503, true, false, "health document says fail"},
		{"draining", 503, `{"status":"fail","notes":["draining"],"output":"draining: shutting down"}`, 503, true, false, "health document says fail"},
		{"malformed", 200, `{"status":`, 200, false, false, "health document:"},
		{"wrong type", 200, `{"status":42}`, 200, false, false, "health document:"},
		// Documents of other libraries, through the draft's status aliases.
		{"spring boot up", 200, `{"status":"UP","components":{"db":{"status":"UP","details":{"database":"PostgreSQL"}}}}`, 200, true, true, ""},
		{"spring boot down while ready", 200, `{"status":"DOWN","components":{"db":{"status":"DOWN"}}}`, 503, false, false, "health document says fail"},
		{"alexliesenfeld/health up", 200, `{"status":"up","details":{"database":{"status":"up","timestamp":"2024-05-01T08:05:14Z"}}}`, 200, true, true, ""},
		{"alexliesenfeld/health down, not ready", 503, `{"status":"down","details":{"database":{"status":"down","error":"ping failed"}}}`, 503, true, false, "health document says fail"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /alive", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
			mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tt.readyCode) })
			mux.HandleFunc("GET /doc", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", health.ContentType)
				w.WriteHeader(tt.docCode)
				w.Write([]byte(tt.doc))
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			r := a.probe(context.Background(), c, "web-1", strings.TrimPrefix(srv.URL, "http://"))
			assert.Equal(t, tt.live, r.live, "live")
			assert.Equal(t, tt.rdy, r.ready, "ready")
			if tt.errPrefix == "" {
				assert.Empty(t, r.err)
			} else {
				assert.True(t, strings.HasPrefix(r.err, tt.errPrefix), "err %q", r.err)
			}
		})
	}
}
