package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// With -grpc the service answers grpc.health.v1 on its HTTP port, from the same
// registry as /readyz: NOT_SERVING while readiness fails and from the moment it
// drains, when Watch streams see NOT_SERVING and end.
func TestServesGRPCHealthBesideHTTP(t *testing.T) {
	o, err := parse([]string{"-addr", "127.0.0.1:0", "-fault-token", "secret", "-drain", "200ms", "-grpc"}, io.Discard)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- serve(ctx, o, slog.New(slog.DiscardHandler), ready) }()
	addr := <-ready
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()

	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)
	check := func(service string) (healthpb.HealthCheckResponse_ServingStatus, codes.Code) {
		resp, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		return resp.GetStatus(), status.Code(err)
	}
	require.Eventually(t, func() bool { s, _ := check(""); return s == healthpb.HealthCheckResponse_SERVING }, 5*time.Second, 10*time.Millisecond)
	s, _ := check("selfheal.demo")
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, s)
	_, code := check("no.such.Service")
	assert.Equal(t, codes.NotFound, code)
	code2, _ := call(t, hc, http.MethodGet, "http://"+addr+"/readyz")
	assert.Equal(t, http.StatusOK, code2, "HTTP still served on the same port")

	code2, _ = call(t, hc, http.MethodPost, "http://"+addr+"/fault/unready", "X-Fault-Token", "secret")
	require.Equal(t, http.StatusOK, code2)
	s, _ = check("")
	assert.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, s)
	s, _ = check("liveness")
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, s, "liveness is not readiness")
	code2, _ = call(t, hc, http.MethodPost, "http://"+addr+"/fault/reset", "X-Fault-Token", "secret")
	require.Equal(t, http.StatusOK, code2)

	watch, err := client.Watch(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	first, err := watch.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, first.GetStatus())
	cancel() // SIGTERM: the service drains
	t0 := time.Now()
	next, err := watch.Recv()
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, next.GetStatus())
	assert.Less(t, time.Since(t0), 200*time.Millisecond, "NOT_SERVING from the moment it drains, before the listener closes")
	for err == nil {
		_, err = watch.Recv()
	}
	assert.NotEqual(t, codes.DeadlineExceeded, status.Code(err), "the stream ended with the server")
	cancel = func() {}
}
