// Package peerbench measures selfheal side by side with its peers (sony/gobreaker,
// cenkalti/backoff, failsafe-go, alexliesenfeld/health, thejerf/suture) in the same
// benchmark run, so that ratios, not absolute times, are compared.
//
// It is its own module so that the library's go.mod never requires a peer.
//
// Run everything with:
//
//	go test -run '^$' -bench . -benchmem -count 5 ./internal/peerbench/...
package peerbench
