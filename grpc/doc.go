// Package healgrpc puts selfheal's policies at the edges of a gRPC service, as
// package heal does for net/http: client interceptors (a circuit breaker per target
// and method, safe retries), server interceptors (panic recovery, load shedding, a
// latency recorder) and a grpc.health.v1 server that answers from a
// [health.Registry]. It is a module of its own (github.com/selfheal-go/selfheal/grpc),
// so that the selfheal module does not depend on google.golang.org/grpc.
//
// # Client
//
// [NewClient] builds a [Client]; install its interceptors with
// [Client.DialOptions] (or [Client.UnaryClientInterceptor] and
// [Client.StreamClientInterceptor]). For a unary call:
//
//   - Every attempt passes the breaker of its ClientConn target and method (a
//     [breaker.Group], bounded by ClientConfig.Breaker.MaxKeys). ClientConfig.Classify
//     judges it, by default [DefaultClassify]: UNAVAILABLE, DEADLINE_EXCEEDED,
//     RESOURCE_EXHAUSTED, INTERNAL, UNKNOWN and DATA_LOSS are failures, CANCELED is
//     ignored, other codes are answers. A call the breaker refuses fails at once
//     with UNAVAILABLE, and the error matches breaker.ErrOpen; it is not retried.
//   - A failed attempt is retried only when that is safe. A server that sent a
//     grpc-retry-pushback-ms trailer (gRFC A6) has said whether: a non-negative
//     value asks for a retry after that many milliseconds, for any method, when
//     the code is RESOURCE_EXHAUSTED or one of RetryCodes; any other value forbids
//     it. Without a pushback, the server may have run the call, so only methods
//     that ClientConfig.Idempotent accepts are retried, on RetryCodes (UNAVAILABLE
//     by default); RESOURCE_EXHAUSTED never is. Calls that never reached the server
//     are retried by grpc-go itself (transparent retry).
//   - The retries follow package retry: a pushback replaces the backoff, as a
//     Retry-After does ([retry.DelayHint]); a pushback longer than
//     Retry.MaxServerDelay, or one that would end after ctx's deadline, ends the
//     call at once; a retry budget per target (ClientConfig.Budget) keeps retries
//     to a share of the target's calls.
//   - The caller's deadline wins: no wait is started that cannot end before it,
//     and once ctx is done the call returns with ctx's code (DEADLINE_EXCEEDED or
//     CANCELED).
//
// Errors keep the gRPC contract: status.Code gives the code of the last attempt
// (or of the context, or UNAVAILABLE for a rejection), and the error still wraps
// what the policies said (errors.Is(err, retry.ErrExhausted),
// errors.Is(err, breaker.ErrOpen)).
//
// A stream is guarded when it is opened: its breaker must let it through, and an
// opening that fails on one of RetryCodes (no message has been sent) is retried.
// An open stream is never replayed: its errors reach the caller as they are, and
// its end (RecvMsg returning io.EOF or an error) is reported to its breaker.
//
// # Server
//
// [NewServer] builds a [Server]; install its interceptors with
// [Server.ServerOptions]. Before the handler runs, a call over
// ServerConfig.MaxConcurrent (1000 by default), over the current limit of
// ServerConfig.Limit (a heal.AdaptiveLimit, which the latency of the unary calls
// served moves, and their DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED bring down) or
// over the rate (ServerConfig.Rate, or a shared heal.RateLimit in
// ServerConfig.RateLimit) is shed with RESOURCE_EXHAUSTED and a
// grpc-retry-pushback-ms trailer (ServerConfig.Pushback for the concurrency
// bounds, the time until the next token for the rate), so that selfheal
// clients back off for exactly that long and may retry even a non-idempotent call:
// the server guarantees that a call it pushes back has not run. A panic of a
// handler becomes INTERNAL ("internal error"; the value and stack go to the
// logger), and the server goes on. The latency of every unary call served goes to a
// heal.Recorder (the Server's own, or the HTTP middleware's, so that one document
// covers both), and [Server.Checks] publishes it in the health document as
// grpc:responseTime, grpc:inFlight, grpc:shed, grpc:throughput and
// grpc:utilization. grpc.health.v1 and reflection are exempt ([DefaultExempt]):
// an overloaded server still answers its probes.
//
// # grpc.health.v1
//
// [NewHealth] builds a [Health] server over a [health.Registry]. The service ""
// answers for readiness (HealthConfig.Kinds), names in HealthConfig.Services for
// the probes they map to (liveness, say), and any other name for the registry's
// check of that name; an unknown name gets NOT_FOUND from Check and
// SERVICE_UNKNOWN from Watch, as the protocol says. A pass or a warn is SERVING, a
// fail NOT_SERVING; readiness is NOT_SERVING from the moment the registry drains.
// Watch sends the current status, then every change: the registry's status-change
// listener pushes it as the check that changed finishes (so a periodic check's
// failure is seen within its interval), and a re-evaluation every
// HealthConfig.PollInterval catches on-demand checks and the start of a drain.
// [Health.Shutdown] turns every service NOT_SERVING and ends the Watch streams
// cleanly, so that GracefulStop does not wait for them. The standard
// grpc_health_probe and Kubernetes' grpc probes work against it unchanged.
//
// [Probe] is the other side: a health.CheckFunc that asks a dependency's
// grpc.health.v1 and fails unless it answers SERVING.
//
// # Telemetry
//
// In the scheme of the rest of selfheal (TELEMETRY.md at the repository's root),
// with the gRPC semantic conventions' names: the client's breakers and retries
// report as selfheal.breaker.* and selfheal.retry.* (ClientConfig.MeterProvider and
// TracerProvider reach them); the server counts selfheal.grpc.server.shed (with
// selfheal.reason concurrency, limit or rate) and selfheal.grpc.server.panics, with
// rpc.system=grpc, rpc.service and rpc.method, and adds an event of each to the
// call's span (with rpc.grpc.status_code and, for a pushback, selfheal.retry_after),
// or records it as a span of its own when the call has none. A call served
// normally records nothing but its latency in the recorder.
//
// # Bounds
//
// Nothing grows with hostile input: the breakers are bounded by
// ClientConfig.Breaker.MaxKeys, the targets a Client keeps a retry budget for by
// ClientConfig.MaxTargets (256 by default, least recently used forgotten), the
// cached method keys per target by 1024, the method names in the server's
// attributes by 1000 (then _OTHER), and a Watch's queue by 64 statuses.
//
// # Concurrency and cost
//
// Every type here is safe for concurrent use and starts no goroutines (a Watch
// runs on its stream's goroutine). The client interceptor alone (an invoker that
// returns at once) costs a few microseconds and 4 allocations, against failsafe-go's
// gRPC interceptor's 19 (internal/peerbench BenchmarkGRPCClientChain); on loopback
// a unary call through it is within the noise of a bare call
// (BenchmarkGRPCUnary).
package healgrpc
