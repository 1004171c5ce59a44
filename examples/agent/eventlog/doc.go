// Package eventlog is the agent's structured event log: what it saw, what it decided
// and why, what it did, and how long healing took. Every event is written as one
// JSON line, kept in a ring of recent events for the status page, and delivered to
// subscribers (the demo's timeline).
package eventlog
