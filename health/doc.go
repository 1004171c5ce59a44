// Package health runs health checks and serves their results to the machines that
// act on them: orchestrators and load balancers through Kubernetes-style probes
// (/livez, /readyz, /startupz), and the selfheal agent through the health document
// of the IETF draft "Health Check Response Format for HTTP APIs" (/health,
// application/health+json).
//
// A [Registry] holds named checks ([Check]); [New] creates one, [Registry.Register]
// and [Registry.Remove] change its checks at any time, [Registry.Run] runs the
// periodic ones in the background, and [Registry.Mount] serves every endpoint on a
// [net/http.ServeMux] in one call.
//
// # Configuration
//
// Every Config of the package ([Config], [Check], [HandlerConfig], [HTTPConfig],
// [DrainConfig]) follows selfheal's conventions: the zero value of every field is its
// documented default; a limit that can be turned off ([Check.CacheTTL],
// [Check.Timeout], [DrainConfig.Delay], [DrainConfig.ShutdownTimeout]) is turned off
// with [Off]; other negative values are invalid, and the call that takes the Config
// ([Registry.Register], [HTTPGet], [Registry.Drain]) returns a *[ConfigError] naming
// the field, matching [ErrInvalidConfig]. A Registry's Config cannot be invalid, so
// [New] returns no error.
//
// # Kinds: liveness, readiness, startup
//
// Each check belongs to one or more probes ([Kind], a bit set):
//
//   - [Liveness]: is this process beyond repair? A failing liveness probe gets the
//     process restarted. Check only what a restart fixes: a deadlocked loop (a
//     [Heartbeat]), a leak that only grows.
//   - [Readiness]: should this instance get traffic now? A failing readiness probe
//     takes the instance out of load balancing until it passes again; nothing is
//     restarted. Dependencies belong here.
//   - [Startup]: has the process finished starting (migrations, warm caches)? Until
//     it passes, orchestrators hold off the other probes.
//
// A check whose Kinds is zero is a readiness check. That default is deliberate: a
// liveness probe that checks a database restarts every replica at once when the
// database blinks, turning a short outage of one dependency into a full outage of
// the service, and restarts fix nothing the database got wrong. Put a dependency in
// liveness only when this process alone can repair it by restarting.
//
// # Statuses
//
// A check passes, warns or fails ([StatusPass], [StatusWarn], [StatusFail]). A
// probe answers 200 "ok" when all its checks pass or warn and 503 when one fails;
// the document answers 200 for pass and warn and 503 for fail. A probe (or the
// document) whose checks are all excluded or absent passes.
//
// A [CheckFunc] passes when it returns nil and fails otherwise (the error text is the
// output). An [ObserveFunc] reports [Observation] values, each with its own status;
// the check's status is the worst of them, and fail when it also returns an error.
// A check that panics fails with the panic value as output; the panic does not
// propagate.
//
// # Thresholds and criticality
//
// [Check.FailureThreshold] (N) and [Check.SuccessThreshold] (M) keep one blip from
// flipping a probe: a passing check fails only after N consecutive failures (it
// reports warn before that, so the document shows the trouble while probes still
// pass), and a failing check passes again only after M consecutive successes. The
// first result of a check counts as it is: a service that starts with its database
// down is not ready, whatever N says.
//
// A [Check.NonCritical] check degrades fail to warn: it shows in the document and in
// the listeners, and never fails a probe. Use it for what the service can do without
// (a recommendation engine, a cache).
//
// Status changes go to [Config.OnStatusChange] and to listeners added with
// [Registry.OnStatusChange], in order per check, on the goroutine that finished the
// run, before the probes that waited for the run return.
//
// # Execution: periodic or on demand
//
// A check with an [Check.Interval] is periodic: [Registry.Run] runs it every
// Interval (after [Check.InitialDelay], plus a random [Check.Jitter] per period and
// before the first run, measured from the end of the previous run) and probes only
// ever read the cached result. Jitter keeps replicas started together from hitting a
// shared dependency in step. Until its first run ends a periodic check reports fail ("has not run
// yet"): the service is not ready (and not started) before its checks have run
// once. A liveness probe alone passes such a check, as Kubernetes counts a liveness
// probe as passing until its first run: a liveness check with an InitialDelay must
// not have every slow starter restarted. Periodic checks
// suit expensive checks and many probers: the dependency sees one check per
// Interval per instance, however often the instance is probed.
//
// A check without an Interval runs on demand: a probe runs it when its cached
// result is older than [Check.CacheTTL] (1 s by default; [Off] disables the cache).
// On-demand checks need no Run.
//
// # Reading the results
//
// [Registry.Snapshot] returns the last result of every check and runs nothing: it
// has no side effects, calls no listener, and is safe from a listener. Probes,
// [Registry.Evaluate] and [Registry.Document] first run the stale on-demand checks
// (sharing runs in flight), then answer.
//
// Either way, checks run concurrently (a probe of five stale checks waits for the
// slowest, not for the sum), and one check never runs twice at once: concurrent
// probes that find a check stale share its one run in flight. With a 100 ms check,
// four concurrent probes each finish in about 100 ms, not 100, 200, 300 and 400 ms,
// and the dependency sees one request. A probe whose caller goes away stops waiting
// at once and leaves the shared run to the others.
//
// # Timeouts and goroutines
//
// Every run gets a context that ends after [Check.Timeout] (5 s by default; keep it
// below the orchestrator's probe timeout; [Off] for none). When the timeout passes,
// the run is recorded as failed ([ErrTimeout]) and the probes waiting for it return,
// whether or not the check function has returned. A check that honours its context returns
// then and its goroutine ends. A check that ignores its context keeps its goroutine
// until it returns; meanwhile the registry does not start the check again (runs
// fail at once with [ErrStillRunning]), so a stuck check holds at most one
// goroutine. Run returns when its scheduling goroutines have exited, without
// waiting for such a stuck check.
//
// # Observations and keys
//
// The check's Name is its key in the document; by the draft's convention it reads
// "component:measurement" ("postgres:ping", "http:responseTime"). One check can
// publish several entries under its key, one per [Observation]: the p50 and the p99
// of a latency, or one entry per circuit breaker, told apart by ComponentID. Other
// packages register such checks at run time: selfheal's heal package publishes
// "http:responseTime", "http:utilization", "breaker:state" and more this way.
//
// # Endpoints
//
// [Registry.Mount] registers all of them on a ServeMux; [Registry.Handler] is the
// one handler behind them; [Registry.ProbeHandler] and [Registry.DocumentHandler]
// serve one each, for your own patterns.
//
//	GET /livez              200 "ok" or 503 "livez check failed"
//	GET /readyz             the same for readiness; also fails while draining
//	GET /startupz           the same for startup
//	GET /readyz?verbose     one line per check: "[+]name ok" or "[-]name failed: <output>"
//	GET /readyz?exclude=a   leaves check a out (repeatable: ?exclude=a&exclude=b)
//	GET /readyz/<name>      one check of that probe: 200, 503, or 404 when unknown
//	GET /health             the health document
//
// As in kube-apiserver, an excluded check keeps its line ("[+]a excluded: ok"), and
// exclude names that match no check of the probe get one warning line:
//
//	warn: some health checks cannot be excluded: no matches for "x","y"
//
// The names come back quoted, so a hostile name cannot forge a line. A query longer
// than 16 KiB, with more than 64 exclude parameters, or that does not parse (a bad
// percent-escape, a semicolon) gets 400 Bad Request with a text/plain reason.
//
// The probe responses are text/plain and never cached (Cache-Control: no-store).
//
// # The health document
//
// /health serves a [Document]: status, version, releaseId, serviceId, description,
// notes, output, and checks keyed "component:measurement", each an array of entries
// with componentId, componentType, observedValue, observedUnit, status,
// affectedEndpoints, time and output. The registry encodes the document once per
// change of the results (with [Document.AppendJSON], no reflection) and serves the
// same bytes to every request until the next change, so a scrape costs about a
// microsecond.
//
// Its response carries the verdicts the liveness and readiness probes give at the
// same moment in a [ProbesHeader] ("Selfheal-Probes: liveness=pass, readiness=fail",
// draining included), so a client that reads the document anyway needs one request
// per probe instead of three: the agent in examples/agent probes a thousand
// instances a second with about a fifth of one core that way. [ParseProbes] reads it.
//
// The client side is [ParseDocument] (tolerant of unknown fields, strict about
// types, bounded by [MaxDocumentSize], never panics) and [Fetch]. As the draft
// allows, they read the statuses case-insensitively and accept its aliases ("ok" and
// "up" for pass, "error" and "down" for fail), so the documents of Spring Boot's
// actuator ({"status":"UP",...}), NestJS Terminus and
// github.com/alexliesenfeld/health parse too.
//
// # Security
//
// Outputs carry error texts of dependencies (host names, addresses, user names) and
// observed values describe the internals of the service. They go only to callers
// that [HandlerConfig.Authorize] accepts: use [BearerToken] (a constant-time
// comparison) or [LoopbackOnly], or your own function. Everyone else gets the status
// alone: "ok" or "<probe> check failed" from the probes (?verbose is ignored), and
// {"status":"..."} from /health. With no Authorize, nobody gets details.
//
// # Draining
//
// [Registry.DrainOnSignal] waits for SIGTERM (or os.Interrupt) and then
// [Registry.Drain]s: readiness (and the document) fail at once while liveness keeps
// passing, so the orchestrator stops sending traffic without restarting the
// process; after [DrainConfig.Delay] the http.Server shuts down gracefully, bounded
// by [DrainConfig.ShutdownTimeout] (either can be [Off]). [Registry.SetDraining]
// flips readiness alone.
//
// # Built-in checks
//
// [HTTPGet] (a status range), [TCPDial], [DNSLookup], [Ping] (database/sql's
// PingContext, or any [Pinger]; the package imports no driver), [DiskFree]
// (statfs), [Goroutines] and [Heap] (runtime/metrics, which does not stop the
// world; register them under [KeyGoroutines] and [KeyHeap]), and [Heartbeat] for
// jobs that must tick.
//
// # Telemetry
//
// Through the OpenTelemetry API, [Config.MeterProvider] and [Config.TracerProvider]
// (nil means the global providers), with the attribute keys shared by every selfheal
// package (the root package's TELEMETRY.md lists them all):
//
//   - the gauge "selfheal.health.check.status" (0 pass, 1 warn, 2 fail, by
//     selfheal.check.name) and the histogram "selfheal.health.check.duration"
//     (seconds, by selfheal.check.name and selfheal.state, the run's status). The
//     gauge's callback holds the registry weakly and is unregistered once the
//     registry is garbage, so a provider that outlives registries (a test suite's, a
//     plugin host's) does not keep them alive;
//   - a "selfheal.health.check" span for every run of a check, a child of the span in
//     the context of [Registry.Run] (periodic checks) or of the probe that started the
//     run (on-demand checks), with selfheal.check.name and selfheal.state, and
//     error.type and an Error status when the check failed with an error. The check
//     function's context carries the span, so that its own spans are its children. A
//     run that changes the check's status adds a "selfheal.health.status_change" event
//     (selfheal.state, selfheal.state.previous) to it;
//   - with [Config.Logger], a record for every status change, with the same keys and
//     the check's output under "output".
package health
