package obs

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Propagator is the text map propagator of the demo's processes: W3C Trace Context.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Resource returns the resource of a process: the defaults given (service.name and
// the like), overridden by OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES. It
// always returns a resource; the error says what of the environment was not
// taken (a malformed OTEL_RESOURCE_ATTRIBUTES), for the caller to log.
func Resource(ctx context.Context, defaults ...attribute.KeyValue) (*resource.Resource, error) {
	// Detectors are merged in order, a later one winning: the environment last.
	res, err := resource.New(ctx, resource.WithAttributes(defaults...), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if res == nil {
		res = resource.NewSchemaless(defaults...)
	}
	return res, err
}

// Metrics serves a MeterProvider's metrics in the Prometheus text format.
type Metrics struct {
	// Provider is the MeterProvider to pass to the policies' MeterProvider fields.
	Provider *sdkmetric.MeterProvider
	// Handler serves GET /metrics (see the package documentation for what it refuses).
	Handler http.Handler
}

// NewMetrics returns an SDK MeterProvider read by the Prometheus exporter on a
// registry of its own, and the handler that serves it; opts add to the provider's
// options (views). Call Provider.Shutdown when done. It starts no goroutine.
func NewMetrics(res *resource.Resource, opts ...sdkmetric.Option) (*Metrics, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	opts = append(opts, sdkmetric.WithReader(exp))
	if res != nil {
		opts = append(opts, sdkmetric.WithResource(res))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: 2,
		Timeout:             5 * time.Second,
		ErrorHandling:       promhttp.ContinueOnError,
	})
	return &Metrics{Provider: mp, Handler: Guard(h)}, nil
}

// Guard lets only a plain scrape through to h: GET or HEAD, no query string, no
// body. Anything else gets 405 or 400, without reaching h.
func Guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "metrics: GET only", http.StatusMethodNotAllowed)
		case r.URL.RawQuery != "" || r.URL.ForceQuery:
			http.Error(w, "metrics: no query parameters", http.StatusBadRequest)
		case r.ContentLength != 0 || len(r.TransferEncoding) > 0:
			http.Error(w, "metrics: no request body", http.StatusBadRequest)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// TracesEnabled reports whether the environment asks for traces over OTLP:
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
func TracesEnabled() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// NewTraces returns the TracerProvider of a process and its shutdown function,
// which flushes the spans still batched. When [TracesEnabled] is false it returns
// the no-op provider and a shutdown that does nothing: no exporter, no goroutine.
// Otherwise spans are batched and sent over OTLP/HTTP to the endpoint the
// environment names, with res as their resource.
func NewTraces(ctx context.Context, res *resource.Resource) (trace.TracerProvider, func(context.Context) error, error) {
	if !TracesEnabled() {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp)}
	if res != nil {
		opts = append(opts, sdktrace.WithResource(res))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return tp, tp.Shutdown, nil
}
