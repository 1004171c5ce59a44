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
//
// # What it forwards
//
// It drops the hop-by-hop headers and every header the Connection header names
// (RFC 9110 section 7.6.1), both ways; it appends the client's address to
// X-Forwarded-For in a single field (the last address is the one the front door
// saw, earlier ones are what the client claimed); it refuses CONNECT (405) and
// request bodies over Config.MaxRequestBody (413); it bounds each attempt's wait
// for headers (Config.AttemptTimeout, whatever the transport) and each whole request
// (Config.ResponseTimeout, 504 or an aborted response); and its own error bodies
// name no instance: addresses and causes go to the log.
package frontdoor
