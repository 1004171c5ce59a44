// Package selfheal is an embeddable library for application-level self-healing in Go
// services, with a companion agent (in the examples module) that turns what services
// export into system- and node-level healing.
//
// # Three levels of self-healing
//
// Software fails: a dependency times out, a goroutine panics, a process dies, a node
// disappears. A self-healing system notices what is not working and, with no human in
// the loop, brings itself back to its designed state, and isolates what it cannot
// repair so that the rest keeps working.
//
//   - Application level, inside each service: this module. A failing call is retried,
//     a failing dependency is isolated behind a circuit breaker, load beyond capacity is
//     shed, a crashed goroutine is restarted by its supervisor, and the service reports
//     all of it through its health endpoints.
//   - System level, the companion agent (examples/agent): it reads the health document
//     each instance exports, restarts failed or hung processes, scales out or in on
//     latency and saturation, and rolls updates out with automatic rollback.
//   - Node level, the agent through a real orchestrator (Docker Swarm first; a
//     local-process driver with virtual nodes is the embedded default): the instances
//     of a failed node are rescheduled onto healthy ones.
//
// # Which package does what
//
//   - [github.com/selfheal-go/selfheal/breaker]: circuit breakers (consecutive
//     failures, failure rate and slow-call rate over exact sliding windows, an open
//     wait that grows on repeated re-opens, a bounded half-open state), a two-step
//     permit for streams, and a bounded per-key Group. Its state machine is its own:
//     sony/gobreaker v2, its first engine, could not keep those guarantees (its state
//     read moves open to half-open, its window rounds up, its half-open state can
//     wait forever), and the peer benchmarks still measure against it.
//   - [github.com/selfheal-go/selfheal/retry]: retries with jitter, limits, a retry
//     budget and Retry-After, in a loop of its own that allocates nothing on success
//     (it honours cenkalti/backoff v4's Permanent errors, so code written for that
//     library keeps working).
//   - [github.com/selfheal-go/selfheal/health]: checks, the Kubernetes-style probe
//     endpoints /livez, /readyz and /startupz, and the health document
//     (application/health+json) that the agent reads.
//   - [github.com/selfheal-go/selfheal/supervise]: Erlang-style supervision trees for
//     goroutines.
//   - [github.com/selfheal-go/selfheal/heal]: composition of all of the above, the
//     remaining policies (bulkhead, rate limit, timeout, fallback, hedging, adaptive
//     concurrency), and the net/http client transport and server middleware.
//
// breaker, retry, health and supervise import none of each other; a service that only
// wants retries gets only retries. heal is the one package that wires them together.
//
// # How policies compose
//
// Every policy has the method
//
//	Do(ctx context.Context, fn func(context.Context) error) error
//
// so that heal.Chain(outer, ..., inner) composes any of them in any order, and generic
// helpers such as heal.Call carry a result through. The ready-made pipeline uses the
// order users know from resilience4j and Polly:
//
//	fallback( retry( breaker( rate limit( timeout( bulkhead( fn ))))))
//
// The heal package documentation gives the reasons for that order.
//
// # API conventions
//
// Every package follows the same conventions, so that what is learnt in one holds in
// all of them:
//
//   - Construction. Everything a user configures is built by New (the package's main
//     type) or NewX (type X) from a Config (XConfig) struct passed by value:
//     breaker.New(breaker.Config{Name: "payments"}). The name is always the Config's
//     Name field. A zero Config is valid, and every field documents its default; the
//     only exceptions are the few fields a thing cannot do without (a Timeout's
//     duration, a RateLimit's rate, a Fallback's function), which say so and whose
//     absence the constructor reports as a ConfigError. Constructors start no
//     goroutines.
//   - Invalid configuration. A constructor that can fail returns an error that matches
//     the package's ErrInvalidConfig with errors.Is and unwraps, with errors.As, to the
//     package's *ConfigError, which names the field and the reason. A constructor that
//     cannot fail returns no error.
//   - Zero and off. Zero (or nil) always means the documented default. A limit or
//     optional feature that can be turned off is turned off with the package's Off
//     constant (-1, the same value everywhere; see [Off]), and its field says so; other
//     negative values are invalid. An optional stage of a composite (the heal Pipeline)
//     is a pointer to its Config: nil leaves the stage out.
//   - Point-in-time reads. A method named Snapshot returns a copy of the current state
//     (counts, state, in-flight calls, restarts). It is cheap, safe for concurrent use,
//     and has no side effects: state changes only on calls and timers, never because
//     something looked.
//   - Classification. Every policy that judges a call takes a [Classifier], a
//     func(result any, err error) [Outcome], in a field named Classify, and classifies
//     each call as [Success], [Failure] or [Ignored], on its error and on its result.
//   - Results on error. The generic helpers (breaker.Call, retry.Call, heal.Call)
//     return, with the error, the value that the last run of fn (or the fallback)
//     returned; the zero value when fn never ran (a rejection).
//   - Engines stay inside. No type of an engine (x/time/rate, cenkalti/backoff) appears
//     in an exported signature; moving to a new major version of an engine is not a
//     new major version of selfheal.
//   - The exported API is kept in api/ as a golden file that CI checks; every change to
//     it is a reviewed diff.
//
// # Telemetry
//
// Every package reports metrics and traces through the OpenTelemetry API, and logs
// through an optional *slog.Logger (nil: no logging), in one scheme: every
// instrument, span and span event is named selfheal.<package>.<what> (for example
// selfheal.breaker.calls, selfheal.retry.attempt), units follow the OpenTelemetry
// semantic conventions, and metrics, spans, span events and log records share one
// set of attribute keys under the selfheal. namespace (selfheal.policy.name,
// selfheal.outcome, selfheal.state, ...) plus the conventions' error.type: an error's
// text is never an attribute. Every Config with a MeterProvider field has a
// TracerProvider field next to it; nil means the global providers, and selfheal never
// sets them. What happens to a call (a rejection, a retry, a fallback, a hedge) is an
// event on the caller's span, added only when that span is recording; spans of a
// package's own are the work it does itself (a call's retries, a health
// check's runs, a supervisor's restarts, a breaker's state changes). Without an SDK
// tracing allocates nothing on a call. Log records follow one rule for levels: what a
// policy does to one call (a retry, a rejection, a fallback) is Debug, a change of
// state is Info or worse. Hooks, where a policy has them, have the same names
// everywhere (OnReject, OnRetry, OnGiveUp, OnStateChange, OnFallback, and OnTimeout
// and OnHedge for the two policies that have those events); each says when and on
// which goroutine it runs.
//
// TELEMETRY.md, at the root of the repository
// (https://github.com/selfheal-go/selfheal/blob/main/TELEMETRY.md), lists every
// span, span event, metric, attribute and log key selfheal emits; a test runs every
// package under the OpenTelemetry SDK and fails unless the code emits exactly that
// list.
package selfheal
