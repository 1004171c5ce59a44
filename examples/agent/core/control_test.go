package core_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
)

// controlAgent is an agent that is not running (the control API needs no loop),
// served by a real HTTP server.
func controlAgent(t *testing.T, agentYAML, token string) (*core.Agent, *local.Driver, *httptest.Server) {
	t.Helper()
	f, err := config.Parse("fleet.yaml", []byte(agentYAML+`nodes: [node-1, node-2]
services:
  - name: web
    command: [/bin/true]
    replicas: 3
    minReplicas: 2
    maxReplicas: 6
`))
	require.NoError(t, err)
	d, err := local.New(local.Config{Nodes: f.Nodes})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	a, err := core.New(core.Config{Fleet: f, Driver: d, ControlToken: token})
	require.NoError(t, err)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return a, d, srv
}

// send sends a request to srv; hdr are header name/value pairs, and "Host" sets
// the Host a DNS-rebinding page would send.
func send(t *testing.T, srv *httptest.Server, method, target, contentType string, body io.Reader, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+target, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func desired(a *core.Agent) int { return a.Status(context.Background(), 0).Services[0].Desired }

func nodeState(t *testing.T, d *local.Driver, name string) driver.Node {
	nodes, err := d.Nodes(context.Background())
	require.NoError(t, err)
	for _, n := range nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no node %s", name)
	return driver.Node{}
}

func TestControlRefusesOtherOrigins(t *testing.T) {
	a, _, srv := controlAgent(t, "", "")
	self := srv.URL // the agent's own origin: http://127.0.0.1:port
	port := srv.Listener.Addr().String()
	port = port[strings.LastIndexByte(port, ':'):] // ":12345"
	tests := []struct {
		name string
		hdr  []string
		want int
	}{
		{"a form on another site", []string{"Origin", "http://evil.example"}, http.StatusForbidden},
		{"fetch from another site", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"a sandboxed page", []string{"Origin", "null"}, http.StatusForbidden},
		{"DNS rebinding", []string{"Host", "evil.example" + port, "Origin", "http://evil.example" + port}, http.StatusForbidden},
		{"DNS rebinding without Origin", []string{"Host", "evil.example" + port}, http.StatusForbidden},
		{"the status page itself", []string{"Origin", self, "Sec-Fetch-Site", "same-origin"}, http.StatusAccepted},
		{"the command line", nil, http.StatusAccepted},
		{"localhost", []string{"Host", "localhost" + port}, http.StatusAccepted},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := desired(a)
			n := 3 + i%2 // a change every time
			if before == n {
				n = 5
			}
			code, body := send(t, srv, http.MethodPost, fmt.Sprintf("/scale?service=web&replicas=%d", n), "", nil, tt.hdr...)
			assert.Equal(t, tt.want, code, body)
			if tt.want == http.StatusAccepted {
				assert.Equal(t, n, desired(a))
				assert.Equal(t, fmt.Sprintf("scale web: %d -> %d replicas\n", before, n), body, "the command says what it did")
			} else {
				assert.Equal(t, before, desired(a), "a refused command changes nothing")
			}
		})
	}
}

func TestStatusRefusesForeignHosts(t *testing.T) {
	_, _, srv := controlAgent(t, "agent:\n  listen: 127.0.0.1:7070\n  hosts: [agent.internal]\n", "")
	for _, path := range []string{"/", "/status"} {
		code, _ := send(t, srv, http.MethodGet, path, "", nil, "Host", "rebound.example:7070")
		assert.Equal(t, http.StatusForbidden, code, "DNS rebinding reads %s", path)
		for _, host := range []string{"127.0.0.1:7070", "localhost:7070", "[::1]:7070", "agent.internal:7070", "AGENT.internal"} {
			code, body := send(t, srv, http.MethodGet, path, "", nil, "Host", host)
			assert.Equal(t, http.StatusOK, code, "%s %s: %s", host, path, body)
		}
	}
}

func TestControlBounds(t *testing.T) {
	a, d, srv := controlAgent(t, "", "")
	for _, q := range []string{"replicas=1000000", "replicas=7", "replicas=1", "replicas=-1", "replicas=2.5", "replicas=x"} {
		code, body := send(t, srv, http.MethodPost, "/scale?service=web&"+q, "", nil)
		assert.Equal(t, http.StatusBadRequest, code, q)
		if strings.Contains(q, "1000000") {
			assert.Contains(t, body, "want 2 to 6 (minReplicas to maxReplicas)")
		}
	}
	assert.Equal(t, 3, desired(a))
	require.ErrorIs(t, a.Scale("web", 7), core.ErrOutOfBounds)

	// A 5 MiB reason in the body, in the query, and a 300-byte one: nothing is stored.
	big := strings.Repeat("x", 5<<20)
	code, _ := send(t, srv, http.MethodPost, "/node", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"name": {"node-1"}, "state": {"drained"}, "reason": {big}}.Encode()))
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)
	code, _ = send(t, srv, http.MethodPost, "/node?name=node-1&state=drained&reason="+strings.Repeat("x", 3000), "", nil)
	assert.Equal(t, http.StatusRequestURITooLong, code)
	code, body := send(t, srv, http.MethodPost, "/node?name=node-1&state=drained&reason="+strings.Repeat("x", 300), "", nil)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "reason longer than 256 bytes")
	assert.Equal(t, driver.NodeReady, nodeState(t, d, "node-1").State)

	for _, q := range []string{"service=web&version=" + strings.Repeat("v", 200), "service=web&version=../x", "service=web&version=",
		"service=" + strings.Repeat("w", 64) + "&version=v2"} {
		code, _ := send(t, srv, http.MethodPost, "/update?"+q, "", nil)
		assert.Equal(t, http.StatusBadRequest, code, q)
	}
	assert.Equal(t, "v1", a.Status(context.Background(), 0).Services[0].Version)
}

func TestNodeCommandTakesWhatOperatorsType(t *testing.T) {
	_, d, srv := controlAgent(t, "", "")
	code, body := send(t, srv, http.MethodPost, "/node?name=node-2&state=drain&reason=maintenance", "", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	assert.Equal(t, "node node-2: drained\n", body)
	assert.Equal(t, driver.Node{Name: "node-2", State: driver.NodeDrained, Reason: "maintenance"}, nodeState(t, d, "node-2"))
	code, body = send(t, srv, http.MethodPost, "/node?name=node-2&state=up", "", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	assert.Equal(t, "node node-2: ready\n", body)
	code, body = send(t, srv, http.MethodPost, "/node?name=node-2&state=sideways", "", nil)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "want ready (up), down, degraded or drained (drain)")
}

func TestControlTokenWhenConfigured(t *testing.T) {
	a, _, srv := controlAgent(t, "", "s3cret")
	for _, auth := range []string{"", "Bearer nope", "s3cret", "Bearer s3cret2"} {
		code, _ := send(t, srv, http.MethodPost, "/scale?service=web&replicas=4", "", nil, "Authorization", auth)
		assert.Equal(t, http.StatusUnauthorized, code, auth)
	}
	assert.Equal(t, 3, desired(a))
	code, body := send(t, srv, http.MethodPost, "/scale?service=web&replicas=4", "", nil, "Authorization", "Bearer s3cret")
	assert.Equal(t, http.StatusAccepted, code, body)
	assert.Equal(t, 4, desired(a))
	// Reads need no token.
	code, _ = send(t, srv, http.MethodGet, "/status", "", nil)
	assert.Equal(t, http.StatusOK, code)
}
