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
package fleetbench
