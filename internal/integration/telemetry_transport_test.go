package integration_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

func init() { scenarios = append(scenarios, transportScenario) }

// flaky is a server that answers 503 to every other request (the first included),
// and keeps the traceparent header of each.
type flaky struct {
	*httptest.Server
	mu     sync.Mutex
	n      int
	parent []string
}

func newFlaky(t *testing.T) *flaky {
	f := &flaky{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.n++
		n := f.n
		f.parent = append(f.parent, r.Header.Get("Traceparent"))
		f.mu.Unlock()
		if n%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	return f
}

func newTransport(t *testing.T, s *sdk) (*http.Client, *heal.Transport) {
	tr, err := heal.NewTransport(heal.TransportConfig{Name: "api", TracerProvider: s.tp, MeterProvider: s.mp,
		Retry: retry.Config{MaxAttempts: 2, Backoff: retry.Constant(time.Millisecond)}})
	require.NoError(t, err)
	return &http.Client{Transport: tr}, tr
}

// transportScenario: a request retried once (a 503, then a 200), under the
// caller's recording span.
func transportScenario(t *testing.T, s *sdk) {
	srv := newFlaky(t)
	defer srv.Close()
	c, _ := newTransport(t, s)
	defer c.CloseIdleConnections()
	ctx, end := s.caller(t.Context())
	defer end()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/items", nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	s.collect(t) // the breaker's and the retry's instruments, while they live
}

func attrMap(kvs []attribute.KeyValue) map[string]any {
	m := map[string]any{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

// A Transport's request retried once shows one client span per attempt, children of
// the caller's span (the retry inside the retry policy's attempt span), with the
// HTTP semantic conventions' attributes, no credentials and no query in url.full;
// each attempt's span context reaches the server in its traceparent header. With the
// caller's span sampled out, or no span at all, there is none.
func TestTransportAttemptSpans(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	defer otel.SetTextMapPropagator(prev)
	s := newSDK(t)
	srv := newFlaky(t)
	defer srv.Close()
	c, _ := newTransport(t, s)
	defer c.CloseIdleConnections()
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	u.User = url.UserPassword("user", "secret")
	u.Path, u.RawQuery = "/items/7", "token=secret"

	ctx, caller := s.tp.Tracer("test").Start(t.Context(), "test.caller", trace.WithSpanKind(trace.SpanKindClient))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	caller.End()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, req.Header.Get("Traceparent"), "the caller's request is not written")

	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	var attempts []sdktrace.ReadOnlySpan
	for _, sp := range s.spans.Ended() {
		byID[sp.SpanContext().SpanID()] = sp
		if sp.Name() == "selfheal.heal.transport.attempt" {
			attempts = append(attempts, sp)
		}
	}
	require.Len(t, attempts, 2, "one span per attempt")
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	for i, sp := range attempts {
		assert.Equal(t, trace.SpanKindClient, sp.SpanKind())
		a := attrMap(sp.Attributes())
		assert.Equal(t, "GET", a["http.request.method"])
		assert.Equal(t, "http://"+u.Host+"/items/7", a["url.full"], "no credentials, no query")
		assert.Equal(t, u.Hostname(), a["server.address"])
		assert.EqualValues(t, port, a["server.port"])
		assert.EqualValues(t, i+1, a["selfheal.attempt"])
		assert.Equal(t, "api", a["selfheal.policy.name"])
		// The server saw this attempt as its parent.
		srv.mu.Lock()
		assert.Equal(t, "00-"+sp.SpanContext().TraceID().String()+"-"+sp.SpanContext().SpanID().String()+"-01", srv.parent[i])
		srv.mu.Unlock()
	}
	first, second := attrMap(attempts[0].Attributes()), attrMap(attempts[1].Attributes())
	assert.EqualValues(t, 503, first["http.response.status_code"])
	assert.Equal(t, "503", first["error.type"])
	assert.Equal(t, "Error", attempts[0].Status().Code.String())
	assert.NotContains(t, first, "http.request.resend_count")
	assert.EqualValues(t, 200, second["http.response.status_code"])
	assert.NotContains(t, second, "error.type")
	assert.EqualValues(t, 1, second["http.request.resend_count"])

	assert.Equal(t, caller.SpanContext().SpanID(), attempts[0].Parent().SpanID(), "attempt 1: a child of the caller's span")
	retrySpan := byID[attempts[1].Parent().SpanID()]
	require.NotNil(t, retrySpan, "attempt 2's parent")
	assert.Equal(t, "selfheal.retry.attempt", retrySpan.Name())
	assert.Equal(t, caller.SpanContext().SpanID(), retrySpan.Parent().SpanID())

	// Sampled out, and no span: no attempt span.
	n := len(s.spans.Ended())
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer func() { _ = unsampled.Shutdown(context.Background()) }()
	octx, out := unsampled.Tracer("test").Start(t.Context(), "test.caller")
	for _, ctx := range []context.Context{octx, t.Context()} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
	}
	out.End()
	assert.Len(t, s.spans.Ended(), n)
}
