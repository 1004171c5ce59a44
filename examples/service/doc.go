// Command service is the demo service of selfheal: an HTTP service built on every
// package of the library, with fault injection for the agent's demo.
//
//   - heal server middleware: panic recovery, load shedding over -max-concurrent,
//     a request timeout, and a latency recorder published in the health document
//     (http:responseTime p50/p99, http:utilization, http:inFlight, http:shed,
//     http:throughput);
//   - a heal client transport (retries with backoff, a circuit breaker per host)
//     calling a downstream (-downstream; by default the service's own /quote);
//   - health: /livez, /readyz, /startupz and the health document /health (details
//     for loopback callers), with runtime:heap and runtime:goroutines;
//   - a supervise tree for its background workers (a ticker that beats the
//     liveness heartbeat, and the health registry's runner);
//   - graceful drain on SIGTERM: readiness fails at once, in-flight requests finish,
//     then the process exits.
//
// # Telemetry
//
// Every selfheal policy of the service (the middleware, the transport's breakers and
// retries, the health registry, the supervisors) gets the same SDK MeterProvider and
// TracerProvider (package examples/internal/obs says how they are built and why the
// OpenTelemetry Prometheus exporter):
//
//	GET /metrics    every instrument, in the Prometheus text format: selfheal_*
//	                (TELEMETRY.md names them; dots become underscores, counters end
//	                in _total, seconds in _seconds), http_server_* (otelhttp), and
//	                target_info (the resource). GET or HEAD only, no
//	                query, no body (else 405 or 400), two scrapes at a time.
//
// Traces go over OTLP/HTTP only when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; otherwise nothing is exported and no
// goroutine runs for it. The resource is service.name (OTEL_SERVICE_NAME, else -name,
// whose default is $SERVICE, which the agent's drivers set, else "selfheal-demo"),
// service.instance.id (-id) and service.version (-version), and
// OTEL_RESOURCE_ATTRIBUTES adds to them. Each request but the probes and /metrics gets
// a server span that continues the caller's W3C traceparent; each attempt of the
// downstream call is a client span of the heal Transport's
// (selfheal.heal.transport.attempt; a retry's under its selfheal.retry.attempt span)
// whose traceparent the downstream continues (the service installs W3C Trace Context
// as the global propagator, through which the Transport injects), and the health
// checks' runs are spans of their own (selfheal.health.check). The
// agent's action spans name the instance they started or stopped
// (selfheal.agent.instance): that is this process's service.instance.id, the key from
// an incident to this service's spans.
//
// Fault injection (for the demo; off unless -fault-token or FAULT_TOKEN is set,
// and every request must carry the header X-Fault-Token with that token):
//
//	POST /fault/crash            exit(2) at once
//	POST /fault/hang             every request, probes included, blocks forever
//	POST /fault/latency?ms=200   add latency to /api/hello (0 removes it)
//	POST /fault/unready          fail readiness
//	POST /fault/garble           serve a malformed health document
//	POST /fault/panic            make a supervised worker panic (restarted by its supervisor)
//	POST /fault/leak?mbps=20     leak memory at that rate until -heap-limit kills the process
//	POST /fault/reset            undo latency, unready and leak
//
// A version whose name ends in "-broken" never becomes ready: the demo's bad
// release.
//
// Probe mode, for a Docker HEALTHCHECK in a scratch image:
//
//	service -probe 'http://127.0.0.1:${PORT}/livez'
//
// exits 0 when the URL answers 200 within 2 s, 1 otherwise. The URL's environment
// variables ($PORT, ${PORT}) are expanded by the service itself, because Docker runs
// a HEALTHCHECK given in exec form without a shell and each replica slot has its own
// PORT.
package main
