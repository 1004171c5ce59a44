package healgrpc_test

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	healgrpc "github.com/selfheal-go/selfheal/grpc"
	"github.com/selfheal-go/selfheal/health"
)

// checkStatus asks cc's health service about service and returns the serving
// status, or the status code's name when the call fails.
func checkStatus(t *testing.T, cc grpc.ClientConnInterface, service string) string {
	t.Helper()
	resp, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return status.Code(err).String()
	}
	return resp.GetStatus().String()
}

// probeExitCode answers as grpc_health_probe (github.com/grpc-ecosystem/grpc-health-probe)
// does with its exit code: 0 SERVING, 2 connection failure, 3 RPC failure (NOT_FOUND
// for an unknown service, UNIMPLEMENTED for a server without the health service),
// 4 unhealthy.
func probeExitCode(ctx context.Context, addr, service string) int {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecureCreds()))
	if err != nil {
		return 2
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if status.Code(err) == codes.Unavailable {
		return 2 // grpc_health_probe dials first (blocking): no connection
	}
	if err != nil {
		return 3
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return 4
	}
	return 0
}

// healthServer serves a Health over reg on loopback.
func healthServer(t *testing.T, cfg healgrpc.HealthConfig) (*healgrpc.Health, string) {
	t.Helper()
	h, err := healgrpc.NewHealth(cfg)
	require.NoError(t, err)
	addr := serve(t, func(s *grpc.Server) { h.Register(s) })
	t.Cleanup(h.Shutdown) // before the server stops, so that watchers end
	return h, addr
}

func TestHealthCheckAnswersFromTheRegistry(t *testing.T) {
	reg := health.New(health.Config{})
	var dbDown, cacheDown atomic.Bool
	require.NoError(t, reg.Register(health.Check{Name: "db:ping", CacheTTL: health.Off, Func: func(context.Context) error {
		if dbDown.Load() {
			return errors.New("down")
		}
		return nil
	}}))
	require.NoError(t, reg.Register(health.Check{Name: "loop:heartbeat", Kinds: health.Liveness, CacheTTL: health.Off, Func: func(context.Context) error {
		if cacheDown.Load() {
			return errors.New("stuck")
		}
		return nil
	}}))
	_, addr := healthServer(t, healgrpc.HealthConfig{Registry: reg, Services: map[string]health.Kind{"liveness": health.Liveness}})
	cc := dial(t, addr)
	ctx := t.Context()

	assert.Equal(t, "SERVING", checkStatus(t, cc, ""))
	assert.Equal(t, 0, probeExitCode(ctx, addr, ""))
	assert.Equal(t, 0, probeExitCode(ctx, addr, "db:ping"))
	assert.Equal(t, "NotFound", checkStatus(t, cc, "nope"))
	assert.Equal(t, 3, probeExitCode(ctx, addr, "nope"), "grpc_health_probe: unknown service is an RPC failure")

	dbDown.Store(true)
	assert.Equal(t, "NOT_SERVING", checkStatus(t, cc, ""), "readiness fails with a dependency")
	assert.Equal(t, 4, probeExitCode(ctx, addr, ""))
	assert.Equal(t, "NOT_SERVING", checkStatus(t, cc, "db:ping"))
	assert.Equal(t, "SERVING", checkStatus(t, cc, "liveness"), "liveness does not check dependencies")
	assert.Equal(t, "SERVING", checkStatus(t, cc, "loop:heartbeat"))

	cacheDown.Store(true)
	assert.Equal(t, "NOT_SERVING", checkStatus(t, cc, "liveness"))

	dbDown.Store(false)
	cacheDown.Store(false)
	reg.SetDraining(true)
	assert.Equal(t, "NOT_SERVING", checkStatus(t, cc, ""), "draining")
	assert.Equal(t, "NOT_SERVING", checkStatus(t, cc, "db:ping"), "a readiness check while draining")
	assert.Equal(t, "SERVING", checkStatus(t, cc, "liveness"), "liveness passes while draining")

	list, err := healthpb.NewHealthClient(cc).List(ctx, &healthpb.HealthListRequest{})
	require.NoError(t, err)
	assert.Len(t, list.GetStatuses(), 4)
	assert.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, list.GetStatuses()[""].GetStatus())
}

func recvStatus(t *testing.T, w grpc.ServerStreamingClient[healthpb.HealthCheckResponse]) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := w.Recv()
	require.NoError(t, err)
	return resp.GetStatus()
}

func TestHealthWatchSeesFailureWithinOneCheckInterval(t *testing.T) {
	const interval = 100 * time.Millisecond
	reg := health.New(health.Config{})
	var down atomic.Bool
	var failedAt atomic.Int64
	require.NoError(t, reg.Register(health.Check{Name: "db:ping", Interval: interval, Func: func(context.Context) error {
		if down.Load() {
			failedAt.CompareAndSwap(0, time.Now().UnixNano())
			return errors.New("down")
		}
		return nil
	}}))
	ctx, cancel := context.WithCancel(t.Context())
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = reg.Run(ctx) }()
	defer func() { cancel(); <-runDone }()

	// The poll is far longer than the check's interval: only the listener can be fast.
	_, addr := healthServer(t, healgrpc.HealthConfig{Registry: reg, PollInterval: time.Hour})
	wctx, wcancel := context.WithTimeout(t.Context(), 5*time.Second) // a missed change fails, not hangs
	defer wcancel()
	w, err := healthpb.NewHealthClient(dial(t, addr)).Watch(wctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	first := recvStatus(t, w)
	if first == healthpb.HealthCheckResponse_NOT_SERVING { // the check had not run yet
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, recvStatus(t, w))
	}
	start := time.Now()
	down.Store(true)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, recvStatus(t, w))
	assert.Less(t, time.Since(start), interval+50*time.Millisecond, "NOT_SERVING later than one check interval")
	down.Store(false)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, recvStatus(t, w), "recovery pushed too")
}

// A Watch that starts before the checks have run once sees NOT_SERVING, then the
// first pass (which the registry's listeners do not hear as a change).
func TestHealthWatchSeesTheFirstRun(t *testing.T) {
	reg := health.New(health.Config{})
	require.NoError(t, reg.Register(health.Check{Name: "db:ping", Interval: time.Hour, InitialDelay: 200 * time.Millisecond,
		Func: func(context.Context) error { return nil }}))
	ctx, cancel := context.WithCancel(t.Context())
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = reg.Run(ctx) }()
	defer func() { cancel(); <-runDone }()

	_, addr := healthServer(t, healgrpc.HealthConfig{Registry: reg, PollInterval: time.Hour})
	wctx, wcancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer wcancel()
	services := []string{"", "db:ping"}
	var watches []grpc.ServerStreamingClient[healthpb.HealthCheckResponse]
	for _, service := range services {
		w, err := healthpb.NewHealthClient(dial(t, addr)).Watch(wctx, &healthpb.HealthCheckRequest{Service: service})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, recvStatus(t, w), "%q before the first run", service)
		watches = append(watches, w)
	}
	for i, w := range watches {
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, recvStatus(t, w), "%q after the first run", services[i])
	}
}

func TestHealthWatchOnDrainAndShutdown(t *testing.T) {
	reg := health.New(health.Config{})
	// No polling within the test: the drain reaches Watch through the listeners.
	h, addr := healthServer(t, healgrpc.HealthConfig{Registry: reg, PollInterval: time.Hour})
	client := healthpb.NewHealthClient(dial(t, addr))
	w, err := client.Watch(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, recvStatus(t, w))

	unknown, err := client.Watch(t.Context(), &healthpb.HealthCheckRequest{Service: "nope"})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVICE_UNKNOWN, recvStatus(t, unknown), "an unknown service stays watched")

	start := time.Now()
	reg.SetDraining(true)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, recvStatus(t, w))
	assert.Less(t, time.Since(start), 150*time.Millisecond, "drain not pushed at once")

	reg.SetDraining(false)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, recvStatus(t, w))
	h.Shutdown()
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, recvStatus(t, w))
	_, err = w.Recv()
	assert.ErrorIs(t, err, io.EOF, "the stream ends cleanly on shutdown")
	assert.Equal(t, "NOT_SERVING", checkStatus(t, dial(t, addr), ""))
}

func TestHealthShutdownLetsGracefulStopReturn(t *testing.T) {
	reg := health.New(health.Config{})
	h, err := healgrpc.NewHealth(healgrpc.HealthConfig{Registry: reg})
	require.NoError(t, err)
	lis, srv := listen(t)
	h.Register(srv)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	w, err := healthpb.NewHealthClient(dial(t, lis.Addr().String())).Watch(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, recvStatus(t, w))
	h.Shutdown()
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		srv.Stop()
		t.Fatal("GracefulStop waited for a Watch")
	}
	<-served
}

func TestProbe(t *testing.T) {
	reg := health.New(health.Config{})
	var down atomic.Bool
	require.NoError(t, reg.Register(health.Check{Name: "db:ping", CacheTTL: health.Off, Func: func(context.Context) error {
		if down.Load() {
			return errors.New("down")
		}
		return nil
	}}))
	_, addr := healthServer(t, healgrpc.HealthConfig{Registry: reg})
	cc := dial(t, addr)
	check, err := healgrpc.Probe(healgrpc.ProbeConfig{Conn: cc})
	require.NoError(t, err)
	require.NoError(t, check(t.Context()))
	down.Store(true)
	assert.ErrorIs(t, check(t.Context()), healgrpc.ErrNotServing)

	unknown, err := healgrpc.Probe(healgrpc.ProbeConfig{Conn: cc, Service: "nope"})
	require.NoError(t, err)
	assert.Equal(t, codes.NotFound, status.Code(unknown(t.Context())))

	// A dependency's probe as a check of this service's own registry.
	mine := health.New(health.Config{})
	require.NoError(t, mine.Register(health.Check{Name: "users:grpc", Func: check}))
	assert.Equal(t, health.StatusFail, mine.Evaluate(t.Context(), health.Readiness))

	_, err = healgrpc.Probe(healgrpc.ProbeConfig{})
	assert.ErrorIs(t, err, healgrpc.ErrInvalidConfig)
	_, err = healgrpc.NewHealth(healgrpc.HealthConfig{})
	assert.ErrorIs(t, err, healgrpc.ErrInvalidConfig)
	_, err = healgrpc.NewHealth(healgrpc.HealthConfig{Registry: reg, PollInterval: -1})
	assert.ErrorIs(t, err, healgrpc.ErrInvalidConfig)
}

// The two exit codes of grpc_health_probe that are not about the registry: 2 when
// nothing listens, 3 when the server does not implement grpc.health.v1.
func TestHealthProbeExitCodesWithoutHealth(t *testing.T) {
	lis, srv := listen(t)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	assert.Equal(t, 2, probeExitCode(ctx, addr, ""), "nothing listens")

	bare := serve(t, func(*grpc.Server) {})
	assert.Equal(t, 3, probeExitCode(t.Context(), bare, ""), "no health service")
}
