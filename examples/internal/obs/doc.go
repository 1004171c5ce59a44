// Package obs sets up OpenTelemetry export for the demo service and the agent: their
// metrics in the Prometheus text format on /metrics, and their traces over OTLP/HTTP
// when the standard environment variables ask for it. selfheal itself never installs
// a provider (its packages take MeterProvider and TracerProvider fields); this is the
// application's side of that contract, and it sets no global provider either.
//
// # Metrics
//
// [NewMetrics] builds an SDK MeterProvider whose reader is the OpenTelemetry
// Prometheus exporter (go.opentelemetry.io/otel/exporters/prometheus) on a registry
// of its own (never prometheus.DefaultRegisterer), and a handler that serves it.
// The exporter is a pull reader: it starts no goroutine, and a scrape collects.
//
// Why the exporter and not a small encoder of our own over the SDK's ManualReader:
// the weight is in prometheus/client_golang (and procfs), which a module that
// already carries Docker, gRPC and chromedp hardly notices, while the correctness
// is in the translation from OpenTelemetry to Prometheus, which the exporter does
// by the compatibility specification and we would have to re-derive and keep in
// step: names (selfheal.breaker.calls becomes selfheal_breaker_calls_total, a
// histogram in seconds selfheal_heal_server_duration_seconds), unit suffixes and
// the dropping of annotations ({call}), label escaping, histogram buckets with
// +Inf, counters that are not monotonic (gauges), target_info for the resource,
// otel_scope_* labels, and content negotiation (text, OpenMetrics). The test
// parses what it serves with the Prometheus text parser (prometheus/common/expfmt).
//
// The handler is not steerable: it answers GET and HEAD only (other methods get 405
// from the mux pattern), refuses any query string and any request body (400), allows
// two scrapes at a time (503 beyond, so that a flood of scrapes cannot make the
// process collect in a loop), and bounds a scrape to 5 s. What it serves is bounded
// by the instruments of the process and their attributes, which selfheal keeps
// bounded (a breaker group holds at most MaxKeys breakers).
//
// # Traces
//
// [NewTraces] returns a TracerProvider that exports over OTLP/HTTP
// (otlptracehttp) when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, and the no-op provider otherwise: no
// exporter, no batcher, no goroutine. The exporter and the SDK read the standard
// variables themselves (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION,
// OTEL_TRACES_SAMPLER and its argument, OTEL_BSP_*), and the resource takes
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES over the defaults the caller gives
// (its service.name, service.instance.id, service.version). Spans are batched;
// the shutdown function flushes them, within the context it is given.
//
// The propagator is W3C Trace Context ([Propagator]). The package installs nothing
// global; the demo service, an application, installs it as the global propagator,
// through which the heal Transport injects each attempt's span context.
package obs
