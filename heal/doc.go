// Package heal composes selfheal's resilience policies and puts them at the edges of
// an HTTP service: the client side (an [http.RoundTripper]) and the server side (a
// middleware), and it turns their state into health checks.
//
// # The model
//
// Every primitive is a [Policy]: a value with the method
//
//	Do(ctx context.Context, fn func(context.Context) error) error
//
// that runs fn, perhaps more than once, perhaps not at all, and returns what fn
// returned or why it did not run it. The circuit breakers of package breaker, the
// retry policies of package retry and the policies of this package all have it:
//
//   - [Bulkhead]: at most N calls at once, a bounded queue, a bounded wait.
//   - [RateLimit] and [RateLimitGroup]: a token bucket (golang.org/x/time/rate), in
//     reject or wait mode; per key, with a bound on the keys.
//   - [Timeout]: the function's context expires; the error matches [ErrTimeout] and
//     [context.DeadlineExceeded].
//   - [Fallback]: handled failures are replaced by a function's result
//     ([CallWithFallback] for values).
//   - [Hedge]: a slow call gets a concurrent second attempt; the first success wins.
//   - [AdaptiveLimit]: a concurrency bound that follows latency ([NewAIMD],
//     [NewGradient], as in Netflix's concurrency-limits).
//
// [Chain] composes policies in any order, the outermost first, and [Call] carries a
// result through any policy:
//
//	p := heal.Chain(retrier, cb, timeout)
//	user, err := heal.Call(ctx, p, func(ctx context.Context) (User, error) { ... })
//
// A policy that refuses a call without running it returns a *[RejectedError]
// matching [ErrBulkheadFull], [ErrRateLimited] or [ErrLimitExceeded]; [RetryAfter]
// extracts the delay it suggests, and [IsRejected] tells rejections from failures.
//
// Contract: a Policy never calls fn after its Do has returned (even a hedge waits for
// its losers), and context is passed, never stored.
//
// # The Pipeline and its order
//
// The ready-made [Pipeline], which [New] builds from one [Config], has the stages the
// Config names (each a pointer to its own configuration; nil leaves it out, and the
// zero Config has none) and always nests them in this order:
//
//	fallback( retry( breaker( rate limit( timeout( bulkhead( fn ))))))
//
// the order resilience4j and Polly document, for these reasons, from the inside out:
//
//   - The bulkhead is innermost so that it bounds exactly the calls in progress
//     against the dependency: a slot is held only while fn runs, never while the
//     call waits for a retry's backoff or a rate limiter's token.
//   - The timeout wraps the bulkhead so that it also bounds the wait for a slot:
//     a call stuck in a full bulkhead's queue times out like a slow call.
//   - The rate limit sits outside the timeout so that waiting for a token does not
//     eat into the call's own time budget, and inside the breaker and retry so that
//     every attempt, including retries, spends a token: retries cannot exceed the
//     rate the dependency was promised.
//   - The breaker is outside the rate limit, so that an open breaker refuses a call
//     before it spends a token. It sees every attempt's outcome, timeouts included
//     (failures), and fails fast while open. The rejections of the rate limit and
//     the bulkhead inside it are not failures of the dependency, and counting them
//     as successes would hide failures (a run of timeouts broken by rejections would
//     never trip the breaker): the Pipeline's breaker classifies them
//     [github.com/selfheal-go/selfheal.Ignored], counted neither way, before its own Classify is asked.
//   - Retry is outside the breaker so that each attempt is judged separately and an
//     open breaker stops a retry loop at once (its error is not retried and carries
//     how long the circuit stays open). It is outside everything that may fail
//     transiently, so that a timed-out or rejected attempt is tried again after a
//     backoff ([DefaultRetryClassify]), and inside the fallback so that the fallback
//     is the last resort, used only after the retries are spent.
//   - The fallback is outermost: whatever failed, after all the rest, the caller
//     gets the substitute.
//
// Beyond the stages it is given, the Pipeline adds nothing but the two
// classifications above and the stages' default names and meter provider (see
// [Config]). [Chain] composes the same policies in any other order, strictly nested;
// give a retry policy in a chain [DefaultRetryClassify] as its Classify, so that it
// retries this package's timeouts and rejections and not an open breaker, and a
// breaker a Classify that ignores rejections if it sits around a bulkhead or a rate
// limit.
//
// # Classification
//
// Every policy here that judges a call takes a Classify field of type
// [github.com/selfheal-go/selfheal.Classifier], as the breaker and retry packages do: [Fallback]
// ([DefaultFallbackClassify]: replace every error but the caller's cancellation),
// [Transport] ([DefaultTransportClassify], which judges the *http.Response: 5xx and
// 429 are failures, 501 and 505 are ignored) and [AdaptiveLimit]
// ([DefaultLimitClassify]: timeouts and rejections are drops). [Call] returns, with
// the error, the value the last run of fn returned; [CallWithFallback] shows that
// value to its classifier, so that a result can be replaced as well as an error.
//
// # Configuration
//
// Every constructor takes a Config passed by value whose zero fields mean the
// documented defaults, and reports an invalid field with an error that matches
// [ErrInvalidConfig] and is a *[ConfigError] naming it. A limit that can be turned
// off says so and takes [Off]: MiddlewareConfig.MaxConcurrent (zero means 1000),
// TransportConfig's MaxDrain, DrainTimeout and ResponseHeaderTimeout. A bulkhead's
// MaxConcurrent has a default (25) and no Off: a Pipeline without a bulkhead simply
// has no Bulkhead stage.
//
// # HTTP
//
// [Middleware] guards a server: panic recovery (500, logged with the stack),
// shedding by concurrency (503 with Retry-After) and by rate (429 with Retry-After),
// a request timeout, and a [Recorder] of latency percentiles, in-flight, shed
// requests and throughput over a sliding window. It guarantees, whatever the handler
// does:
//
//   - One response per request, and only its own bytes: every request gets a new
//     writer, never reused, and once the handler has returned, a goroutine it left
//     behind writes nowhere (its writes return [ErrResponseDone]) and cannot crash
//     the server, as with plain net/http.
//   - With a Timeout, an answer by the deadline: a handler that ignores its context
//     runs on its own goroutine, the client gets 503 at the deadline (as with
//     [net/http.TimeoutHandler]) and the handler's late writes go nowhere; a
//     response already started is aborted so that the client sees it is
//     incomplete. The handler keeps its concurrency slot until it returns: a stuck
//     handler still counts against MaxConcurrent.
//
// [Transport] guards a client: a circuit breaker per host, retries only for
// idempotent requests (by method, or carrying an Idempotency-Key header) with the
// body replayed through GetBody, 5xx (but 501 and 505) and 429 counted as failures,
// Retry-After honoured in both its forms, seconds and HTTP-date (through the retry
// package's server-delay mechanism: the failed attempt's *[StatusError] carries the
// delay), and the body of every failed attempt drained and closed so that no
// connection leaks. The drain is bounded in bytes (MaxDrain) and in time
// (DrainTimeout): a failed response's slow body never holds up the retry or the
// caller. A zero-config Transport bounds the wait for response headers (30s). When
// the last attempt fails with a status, the caller gets that response, as from any
// RoundTripper: check its status. The Transport is a complete retry layer for HTTP:
// do not wrap its requests in another retry policy (a Pipeline's), whose attempts
// would multiply its own.
//
// Put the Middleware outermost in the handler chain and mount the probe endpoints
// outside it (or mark them with MiddlewareConfig.Exempt), so that an overloaded
// instance still answers its probes.
//
// # Health
//
// [RegisterHealth] publishes, as checks of a health.Registry, the components the
// selfheal agent reads:
//
//   - from a [Middleware] ([ServerChecks]): "http:responseTime" (entries "p50" and
//     "p99", in ms), "http:utilization" (in-flight over the concurrency limit, in %),
//     "http:inFlight", "http:shed" (requests shed in the recorder's window) and
//     "http:throughput" (req/s);
//   - [BreakerCheck]: "breaker:state", one entry per breaker of any [BreakerStates]
//     (a breaker.Group, a [Transport], a [Pipeline], or [Breakers]);
//   - [BulkheadCheck]: "bulkhead:saturation", one entry per bulkhead;
//   - [SupervisorCheck]: "supervisor:state", one entry per supervisor and child of a
//     supervision tree, keyed by path ("root/worker").
//
// They are readiness checks that never fail: an open breaker, a full bulkhead or a
// child backing off makes readiness warn, which the agent and /readyz?verbose see, and
// nothing here is a liveness check: restarting a process because a dependency is down
// or load is high heals nothing.
//
// # Telemetry
//
// Every policy counts its notable outcomes through the OpenTelemetry API, with the
// attribute selfheal.policy.name of the scheme every selfheal package shares (built
// once per policy, never per call; the root package's TELEMETRY.md lists every
// name and key): selfheal.heal.bulkhead.rejections, selfheal.heal.ratelimit.rejections,
// selfheal.heal.timeout.timeouts, selfheal.heal.fallback.fallbacks,
// selfheal.heal.hedge.hedges, selfheal.heal.limit.rejections, the gauge
// selfheal.heal.limit.limit and the bulkhead's selfheal.heal.bulkhead.in_flight and
// selfheal.heal.bulkhead.queued (read when the meter collects); the middleware (selfheal.policy.name "server") adds
// selfheal.heal.server.shed (by selfheal.reason: concurrency or rate),
// selfheal.heal.server.panics, selfheal.heal.server.timeouts and the histogram
// selfheal.heal.server.duration. The success path records nothing but the duration
// histogram. Rejections, timeouts, fallbacks and hedges are also visible on a trace
// (selfheal.heal.bulkhead.rejected, selfheal.heal.ratelimit.rejected,
// selfheal.heal.limit.rejected, selfheal.heal.timeout.expired,
// selfheal.heal.fallback.used, selfheal.heal.hedge.started,
// selfheal.heal.server.shed): an event on the span in the call's context when that
// span is recording; when the call has no span at all, a span of its own of the same
// name from the policy's TracerProvider; nothing when the call's span is sampled
// out. Retries and breakers report through their own packages. Provider fields
// default to the global providers.
//
// A [Transport] request whose context's span is recording runs each attempt in a
// client span, selfheal.heal.transport.attempt, with the HTTP semantic conventions'
// attributes (url.full without credentials or query), and injects that span's
// context into the attempt's headers with the global propagator; a retried request
// shows one span per attempt.
//
// # Logs and hooks
//
// Every policy, the Transport and the Pipeline take an optional *slog.Logger (nil:
// no logging). A policy logs what it does to a call, at Debug, with the keys of its
// metrics: "heal: bulkhead rejected", "heal: rate limit rejected", "heal: limit
// rejected", "heal: timeout expired", "heal: fallback used" (with error.type and the
// error) and "heal: hedge started" (with selfheal.attempt); the Middleware "heal:
// request shed" (with selfheal.reason) at Debug and "heal: handler panicked" at
// Error. The Transport's and the Pipeline's Logger serve every breaker, retry policy
// and stage whose own config has none.
//
// Hooks are function fields, nil meaning none, that must not block: OnReject
// (Bulkhead, RateLimit, AdaptiveLimit) on the refused caller's goroutine;
// OnTimeout (Timeout) on the caller's goroutine once the function has returned;
// OnFallback (Fallback) on the caller's goroutine before Func; OnHedge (Hedge) on the
// hedge's own goroutine as it starts. Breakers (OnStateChange) and retry policies
// (OnRetry, OnGiveUp) have theirs in their packages.
package heal
