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
