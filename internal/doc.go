// Package internal groups what the selfheal packages share and do not export:
// telemetry wiring (internal/telemetry) and similar helpers. Nothing here is API.
package internal
