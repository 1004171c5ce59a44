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
// # The default order
//
// The ready-made [Pipeline], which [New] builds from one [Config], wraps a call as
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
//   - The breaker sees every attempt's outcome, timeouts included, and fails fast
//     while open. It is inside retry so that each attempt is judged separately and
//     an open breaker stops a retry loop at once (its error is not retried and
//     carries how long the circuit stays open).
//   - Rejections by the rate limit and the bulkhead are not failures of the
//     dependency, and counting them as successes would hide failures (a run of
//     timeouts broken by rejections would never trip the breaker). So the pipeline
//     decides admission by the rate limit and the bulkhead before the breaker's:
//     a rejected attempt never reaches the breaker, and an admitted one is judged
//     by it, with the timeout running over the wait for a slot and the call. The
//     price: an attempt that an open breaker refuses has already spent a rate-limit
//     token. [Chain] with the same policies nests them strictly instead; the
//     breaker's Classify then classifies rejections like any other error (by
//     default, as failures).
//   - Retry is outside everything that may fail transiently, so that a timed-out or
//     rejected attempt is tried again after a backoff, and inside the fallback so
//     that the fallback is the last resort, used only after the retries are spent.
//   - The fallback is outermost: whatever failed, after all the rest, the caller
//     gets the substitute.
//
// [Chain] lets you choose another order where these reasons do not hold; give a
// retry policy in a chain [DefaultRetryClassify] as its Classify, so that it retries
// this package's timeouts and rejections and not an open breaker.
//
// # HTTP
//
// [Middleware] guards a server: panic recovery (500, logged with the stack),
// shedding by concurrency (503 with Retry-After) and by rate (429 with Retry-After),
// a request timeout, and a [Recorder] of latency percentiles, in-flight, shed
// requests and throughput over a sliding window.
//
// [Transport] guards a client: a circuit breaker per host, retries only for
// idempotent requests (by method, or carrying an Idempotency-Key header) with the
// body replayed through GetBody, 5xx and 429 counted as failures, Retry-After
// honoured (through the retry package's server-delay mechanism: the failed attempt's
// *[StatusError] carries the delay), and the body of every failed attempt drained and
// closed so that no connection leaks. When the last attempt fails with a status, the
// caller gets that response, as from any RoundTripper.
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
// attributes selfheal.policy and selfheal.name (built once per policy, never per
// call): selfheal.heal.bulkhead.rejections, selfheal.heal.ratelimit.rejections,
// selfheal.heal.timeout.timeouts, selfheal.heal.fallback.fallbacks,
// selfheal.heal.hedge.hedges, selfheal.heal.limit.rejections and the gauge
// selfheal.heal.limit.limit; the middleware adds selfheal.heal.server.shed (by
// selfheal.reason: concurrency or rate), selfheal.heal.server.panics,
// selfheal.heal.server.timeouts and the histogram selfheal.heal.server.duration.
// The success path records nothing but the duration histogram. Rejections,
// timeouts, fallbacks and hedges also add span events (selfheal.bulkhead.rejected,
// selfheal.ratelimit.rejected, selfheal.limit.rejected, selfheal.timeout.expired,
// selfheal.fallback.used, selfheal.hedge.started, selfheal.server.shed) to the span
// in the call's context, only when it is recording. Retries and breakers report
// through their own packages. Provider fields default to the global providers.
package heal
