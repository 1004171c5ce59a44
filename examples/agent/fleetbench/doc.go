// Package fleetbench measures the agent at fleet scale: N instances that serve
// real health documents (a [health.Registry] each, over loopback HTTP) in one
// helper process, and the agent probing them every second, as it would a fleet.
//
// The benchmark, BenchmarkFleet, runs N = 10, 100 and 1000 and reports per N:
//
//	cpu-%core      the agent process's CPU time (user + system, getrusage) over the
//	               steady window, in percent of one core
//	cpu-us/probe   the same CPU time per instance probe (a probe is the liveness,
//	               readiness and document requests of one instance)
//	heap-MB        the agent's heap in use at the end of the steady window
//	goroutines+    goroutines at the end of the window minus at its start
//	conns+         connections the instances accepted during the window (0: every
//	               probe reused a kept-alive connection)
//	probes/s       instance probes per second (N at a 1 s interval)
//	false-unhealthy  instances the agent observed unhealthy in the window, on a
//	               healthy fleet (probes that timed out under load)
//	detect-ms      from a fault injected into one instance (its liveness check
//	               starts failing) to the agent's "unhealthy" observation or
//	               decision, whichever comes first
//	undetected     1 when the fault was not observed within 10 intervals (then no
//	               detect-ms)
//	status-ms      GET / (the status page), median of 5, over loopback
//	statusjson-ms  GET /status (the Status as JSON), median of 5
//
// The instances live in a helper process (the test binary run again), so that the
// CPU time and memory measured are the agent's own. The steady window is 10 s;
// set FLEETBENCH_STEADY (a Go duration) for a longer run, such as the 5-minute run
// that checks that goroutines and connections do not grow:
//
//	cd examples && go test -run '^$' -bench Fleet -benchtime 1x ./agent/fleetbench/
//	FLEETBENCH_STEADY=5m go test -run '^$' -bench 'Fleet/N=1000$' -benchtime 1x -timeout 20m ./agent/fleetbench/
//
// # Figures
//
// On a 2-core machine shared with other sessions (load average 2.6 to 3.5), 10 s
// steady window, failureThreshold 1, one run each (2026-12-05). A probe is one
// request: the instances' documents carry the probes' verdicts
// (health.ProbesHeader), so the agent asks for nothing else (req/probe 1.0).
//
//	N     cpu-%core  cpu-us/probe  heap-MB  conns+  false  detect-ms  status p50/p99 ms  json p50/p99 ms
//	10    0.6        619           4.5      0       0      867        0.12 / 2.8         0.09 / 0.8
//	100   5.4        538           5.8      0       0      864        0.07 / 2.7         0.08 / 0.7
//	1000  23.1       231           23.9     0       0      759        0.24 / 42          0.31 / 8.0
//
// The 5-minute run at N = 1000 (FLEETBENCH_STEADY=5m; load average 1.3 to 12, the
// peak from another session's Kubernetes cluster starting): 21.4% of a core
// (19.0 to 22.7% per minute), 214 us of CPU per probe, heap 20 to 34 MB, goroutines
// 2007 to 2011 at every minute (two per kept-alive connection, net/http's; the
// probes in flight come and go), 3 new connections in 5 minutes (probes that timed
// out at the load peak: 55 false unhealthy observations, no action), the fault
// detected after 1.23 s (2 intervals: 2 s), the status page 0.17 ms median and 125 ms
// p99 (at the peak), /status 0.23 ms median and 8.7 ms p99.
//
// Before the document carried the probes' verdicts (three requests a probe) the same
// fleet cost 34 to 40% of a core (343 to 396 us a probe); a CPU profile showed the
// write system calls of the requests (loopback delivery runs in the sender's system
// call), their read loops and the scheduling around them, not the agent's own
// logic. CPU grows linearly with N; the cost per probe falls as N grows (the loop's
// fixed work per round is shared by more probes). The status page and /status are
// rendered in the background and served from memory, so their time hardly depends
// on N; their p99 is the machine's scheduling under load.
package fleetbench
