package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// With health.grpc the agent probes grpc.health.v1 (the demo service serves it
// with GRPC=1): an instance that answers NOT_SERVING leaves the front door as not
// ready, with the gRPC status as its reason, and is not restarted; SERVING again,
// it comes back. The HTTP readiness path is pointed at /livez, which always
// passes, so only the gRPC probe can see the instance as not ready (over HTTP its
// failing health document would make it unhealthy instead).
func TestGRPCProbeNotServingIsNotReady(t *testing.T) {
	r := start(t, grayFleet(t, 2, ", readiness: /livez, notReadyTimeout: 30s, grpc: {service: selfheal.demo}", "    env: [GRPC=1]\n"), true)
	defer noLeftovers(t, r.d.Marker())
	defer r.stop(t)
	require.Eventually(t, ready(r.a, 2), 15*time.Second, 20*time.Millisecond)
	victim := r.a.Backends("web")[0]

	t0 := time.Now()
	fault(t, victim.Addr, "unready")
	require.Eventually(t, func() bool { return !routed(r.a, victim.ID) }, 2*time.Second, 5*time.Millisecond)
	out := time.Since(t0)
	require.Eventually(t, func() bool { _, ok := eventFor(r.a, eventlog.Observed, "not-ready", victim.ID); return ok }, 2*time.Second, 5*time.Millisecond,
		"events: %v", r.a.Events().Recent(0))
	obs, _ := eventFor(r.a, eventlog.Observed, "not-ready", victim.ID)
	assert.Contains(t, obs.Why, "grpc health: NOT_SERVING")
	time.Sleep(500 * time.Millisecond) // five probe intervals
	assert.False(t, routed(r.a, victim.ID))
	assert.Empty(t, events(r.a, eventlog.Decided, "restart"), "a not-serving instance is not restarted")

	fault(t, victim.Addr, "reset")
	require.Eventually(t, func() bool { return routed(r.a, victim.ID) }, 2*time.Second, 5*time.Millisecond)
	t.Logf("out of rotation %s after NOT_SERVING", out.Round(time.Millisecond))
}

// A service name the instance does not know (NOT_FOUND) keeps it out of rotation,
// though everything served over HTTP passes.
func TestGRPCProbeUnknownServiceIsNotReady(t *testing.T) {
	r := start(t, grayFleet(t, 1, ", notReadyTimeout: 30s, grpc: {service: no.such.Service}", "    env: [GRPC=1]\n"), true)
	defer noLeftovers(t, r.d.Marker())
	defer r.stop(t)
	require.Eventually(t, func() bool { return r.a.Status(context.Background(), 0).Services[0].Running == 1 }, 15*time.Second, 20*time.Millisecond)
	time.Sleep(time.Second) // ten probe intervals
	assert.Empty(t, r.a.Backends("web"))
	assert.Zero(t, r.a.Status(context.Background(), 0).Services[0].Ready)
}
