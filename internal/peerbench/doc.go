// Package peerbench measures selfheal side by side with its peers (sony/gobreaker,
// cenkalti/backoff, failsafe-go, alexliesenfeld/health, thejerf/suture) in the same
// benchmark run, so that ratios, not absolute times, are compared.
//
// It is its own module so that the library's go.mod never requires a peer.
//
// Run everything with:
//
//	go test -run '^$' -bench . -benchmem -count 5 ./internal/peerbench/...
//
// On a shared machine prefer table.sh, which runs the selection in interleaved
// rounds (-count 1, five times), so that selfheal and each peer are measured
// seconds apart rather than minutes, and prints a table of medians with the ratios
// selfheal/peer:
//
//	internal/peerbench/table.sh -rounds 5 -bench 'Breaker|Group'
package peerbench
