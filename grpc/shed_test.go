package healgrpc_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/selfheal-go/selfheal/breaker"
	healgrpc "github.com/selfheal-go/selfheal/grpc"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

// oneSlot is an adaptive limit that stays at one call at a time.
func oneSlot(t *testing.T) *heal.AdaptiveLimit {
	t.Helper()
	alg, err := heal.NewAIMD(heal.AIMDConfig{InitialLimit: 1, MinLimit: 1, MaxLimit: 1})
	require.NoError(t, err)
	return heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{Name: "grpc", Algorithm: alg})
}

func TestServerShedsByAdaptiveLimitAndClientsBackOff(t *testing.T) {
	ts, entered, release := blockingServer()
	limit := oneSlot(t)
	s := newServer(t, healgrpc.ServerConfig{MaxConcurrent: healgrpc.Off, Limit: limit, Pushback: 150 * time.Millisecond})
	addr := serve(t, func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, ts) }, s.ServerOptions()...)
	raw := testpb.NewTestServiceClient(dial(t, addr))

	var wg sync.WaitGroup
	wg.Go(func() { _, _ = raw.UnaryCall(t.Context(), &testpb.SimpleRequest{}) })
	<-entered
	assert.Equal(t, 1, limit.InFlight())

	var trailer metadata.MD
	_, err := raw.UnaryCall(t.Context(), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	assert.Equal(t, []string{"150"}, trailer.Get(healgrpc.PushbackKey))
	assert.EqualValues(t, 1, ts.unaryN.Load(), "a shed call reached the handler")
	assert.EqualValues(t, 1, limit.Snapshot().Rejected)

	// A selfheal client (its method not idempotent: only the pushback makes the
	// call retryable) backs off for the pushback, then gets through.
	c := newClient(t, healgrpc.ClientConfig{Retry: fastRetry})
	client := testpb.NewTestServiceClient(dial(t, addr, c.DialOptions()...))
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
		done <- err
	}()
	require.Eventually(t, func() bool { return limit.Snapshot().Rejected == 2 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	<-entered
	require.NoError(t, <-done)
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "the client retried before the pushback")
	assert.Zero(t, limit.InFlight(), "a slot leaked")
	assert.Zero(t, s.Snapshot().InFlight)
}

func TestServerAdaptiveLimitHoldsStreamsAndReleasesOnPanic(t *testing.T) {
	ts := &testServer{unary: func(context.Context, int64) error { panic("boom") }}
	limit := oneSlot(t)
	s := newServer(t, healgrpc.ServerConfig{Limit: limit})
	addr := serve(t, func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, ts) }, s.ServerOptions()...)
	client := testpb.NewTestServiceClient(dial(t, addr))

	_, err := client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
	require.Equal(t, codes.Internal, status.Code(err))
	assert.Zero(t, limit.InFlight(), "a panic leaked the limit's slot")

	ctx, cancel := context.WithCancel(t.Context())
	stream, err := client.FullDuplexCall(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&testpb.StreamingOutputCallRequest{}))
	_, err = stream.Recv()
	require.NoError(t, err)
	assert.Equal(t, 1, limit.InFlight(), "an open stream holds a slot")
	_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), "the stream's slot was not counted")
	cancel()
	require.Eventually(t, func() bool { return limit.InFlight() == 0 }, 5*time.Second, time.Millisecond, "the stream's slot was not given back")
	_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
	require.NoError(t, err)
}

func TestServerSharedRateLimitAndClientsBackOff(t *testing.T) {
	rl, err := heal.NewRateLimit(heal.RateLimitConfig{Name: "shared", Rate: 5, Burst: 1})
	require.NoError(t, err)
	ts := &testServer{}
	s := newServer(t, healgrpc.ServerConfig{RateLimit: rl})
	addr := serve(t, func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, ts) }, s.ServerOptions()...)
	raw := testpb.NewTestServiceClient(dial(t, addr))
	_, err = raw.UnaryCall(t.Context(), &testpb.SimpleRequest{})
	require.NoError(t, err)
	var trailer metadata.MD
	_, err = raw.UnaryCall(t.Context(), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	d, ok := healgrpc.ParsePushback(trailer.Get(healgrpc.PushbackKey)[0])
	require.True(t, ok)
	assert.InDelta(t, float64(200*time.Millisecond), float64(d), float64(50*time.Millisecond), "the pushback is when the next token arrives")

	// Five calls through a selfheal client: each shed call waits for its pushback,
	// so five calls take about a second at 5/s, and every one succeeds.
	c := newClient(t, healgrpc.ClientConfig{Retry: retry.Config{MaxAttempts: 10, Backoff: retry.Constant(time.Millisecond)}})
	client := testpb.NewTestServiceClient(dial(t, addr, c.DialOptions()...))
	start := time.Now()
	for range 5 {
		_, err := client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
		require.NoError(t, err)
	}
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, 700*time.Millisecond, "the client did not wait for the pushbacks")
	assert.EqualValues(t, 6, ts.unaryN.Load())

	_, err = healgrpc.NewServer(healgrpc.ServerConfig{RateLimit: rl, Rate: 1})
	require.ErrorIs(t, err, healgrpc.ErrInvalidConfig)
}

// TestClientStateIsBounded: many targets and hostile method names grow neither the
// targets nor the breakers past their bounds, on real connections.
func TestClientStateIsBounded(t *testing.T) {
	ts := &testServer{}
	addr := serve(t, func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, ts) })
	c := newClient(t, healgrpc.ClientConfig{MaxTargets: 2, Breaker: breaker.GroupConfig{MaxKeys: 8}})
	_, port, _ := net.SplitHostPort(addr)
	for _, target := range []string{addr, "localhost:" + port, "passthrough:///" + addr, "dns:///" + addr} {
		cc := dial(t, target, c.DialOptions()...)
		require.NoError(t, cc.Invoke(t.Context(), methodEmpty, &testpb.Empty{}, &testpb.Empty{}))
		for i := range 20 {
			err := cc.Invoke(t.Context(), fmt.Sprintf("/hostile.S/M%d", i), &testpb.Empty{}, &testpb.Empty{})
			require.Equal(t, codes.Unimplemented, status.Code(err))
		}
	}
	assert.Equal(t, 2, c.Targets())
	assert.LessOrEqual(t, len(c.Snapshot()), 8)
}
