package obs_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal/examples/internal/obs"
	"github.com/selfheal-go/selfheal/examples/internal/obs/otlptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Without an OTLP endpoint in the environment there is no exporter and no goroutine.
func TestNoTracesWithoutEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	before := runtime.NumGoroutine()
	tp, shutdown, err := obs.NewTraces(context.Background(), nil)
	require.NoError(t, err)
	assert.IsType(t, noop.TracerProvider{}, tp)
	assert.Equal(t, before, runtime.NumGoroutine())
	assert.NoError(t, shutdown(context.Background()))
}

// Either variable turns traces on; the traces-only one alone is enough.
func TestTracesEndpointVariables(t *testing.T) {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Run(name, func(t *testing.T) {
			rcv := otlptest.Start(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
			url := rcv.URL
			if name == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" {
				url += "/v1/traces" // the signal's variable is the whole URL
			}
			t.Setenv(name, url)
			require.True(t, obs.TracesEnabled())
			tp, shutdown, err := obs.NewTraces(context.Background(), nil)
			require.NoError(t, err)
			_, span := tp.Tracer("t").Start(context.Background(), "hello")
			span.End()
			require.NoError(t, shutdown(context.Background()))
			assert.Equal(t, "hello", rcv.Wait(t, time.Second, func(s otlptest.Span) bool { return true }).Name)
		})
	}
}

// The environment's service name and attributes override the defaults given.
func TestResourceFromEnvironment(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	def := []attribute.KeyValue{attribute.String("service.name", "web"), attribute.String("service.instance.id", "web-1")}
	res, err := obs.Resource(context.Background(), def...)
	require.NoError(t, err)
	get := func(k string) string { v, _ := res.Set().Value(attribute.Key(k)); return v.AsString() }
	assert.Equal(t, "web", get("service.name"))

	t.Setenv("OTEL_SERVICE_NAME", "shop")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=lab")
	res, err = obs.Resource(context.Background(), def...)
	require.NoError(t, err)
	assert.Equal(t, "shop", get("service.name"))
	assert.Equal(t, "lab", get("deployment.environment.name"))
	assert.Equal(t, "web-1", get("service.instance.id"))

	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "this is not a list")
	res, err = obs.Resource(context.Background(), def...)
	assert.Error(t, err, "a malformed variable is reported")
	require.NotNil(t, res, "and a resource is still returned")
}

func TestGuard(t *testing.T) {
	ok := obs.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("metrics")) }))
	for _, tt := range []struct {
		give, method, target, body string
		want                       int
	}{
		{"get", "GET", "/metrics", "", 200},
		{"head", "HEAD", "/metrics", "", 200},
		{"post", "POST", "/metrics", "", 405},
		{"put", "PUT", "/metrics", "", 405},
		{"query", "GET", "/metrics?collect[]=go", "", 400},
		{"empty query", "GET", "/metrics?", "", 400},
		{"body", "GET", "/metrics", "name=x", 400},
	} {
		t.Run(tt.give, func(t *testing.T) {
			var body *strings.Reader
			req := httptest.NewRequest(tt.method, tt.target, nil)
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				req = httptest.NewRequest(tt.method, tt.target, body)
			}
			rec := httptest.NewRecorder()
			ok.ServeHTTP(rec, req)
			assert.Equal(t, tt.want, rec.Code)
		})
	}
}
