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
//
// # Hot paths of issue 18
//
// Medians of 5 interleaved rounds (table.sh), ratio selfheal/peer, on a 2-core
// machine shared with other work (load average 3 before, 20 and more after: compare
// the ratios, not the times):
//
//	benchmark                       before                      after
//	BreakerSuccess vs gobreaker     0.26x, 0 allocs             0.22x, 0 allocs
//	BreakerSuccessParallel          0.42x, 0 allocs             0.36x, 0 allocs
//	RetryFailure vs backoff         1.08x, 12 allocs (vs 6)     0.18x, 0 allocs (vs 6)
//	HealTransport vs plain client   1.24x (1 s apart, noisy)    0.96x; alternating 0.96x
//	HealTransportOverhead vs floor  -                           +375 ns, +1 alloc a request
//	HealMiddlewareTimeout vs bare   +11 allocs, 1096 B          +2 allocs, 624 B
//
// RetryFailure is two failed attempts then a success, without waits; the failures
// return the caller's own preallocated error. HealTransport/alternating sends one
// request each way per iteration, so that both see the same load.
// HealTransportOverhead puts heal.Transport over a round tripper that answers at
// once: what the transport adds to a request, a few hundred nanoseconds against the
// 50-100 us of a loopback round trip.
//
// The agent at fleet scale is measured by examples/agent/fleetbench
// (BenchmarkFleet), whose documentation lists its figures.
package peerbench
