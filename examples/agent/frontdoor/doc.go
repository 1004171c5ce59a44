// Package frontdoor is the agent's small readiness-aware reverse proxy: it sends
// each request to the ready instance with the fewest requests in flight, and
// retries an idempotent request (as [heal.DefaultIdempotent] decides: the same rule as
// the library's client transport) on another instance when one drops the connection,
// times out before answering, or answers 502, 503 or 504, so that clients keep being
// served while the fleet heals.
//
// The list of instances comes from a function (the agent's view of which instances
// are ready), called per request; an instance that failed a request is also kept
// out for a short time on the front door's own account (passive ejection), until
// the agent's next probe confirms or refutes it.
package frontdoor
