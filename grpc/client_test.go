package healgrpc_test

import (
	"context"
	"errors"
	"io"
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
	"github.com/selfheal-go/selfheal/retry"
)

// fastRetry retries at once, so that the tests time nothing but pushbacks.
var fastRetry = retry.Config{Backoff: retry.Constant(time.Millisecond)}

func newClient(t *testing.T, cfg healgrpc.ClientConfig) *healgrpc.Client {
	t.Helper()
	c, err := healgrpc.NewClient(cfg)
	require.NoError(t, err)
	return c
}

func TestClientBreakerTripsAndRecoversPerMethod(t *testing.T) {
	ts := &testServer{}
	var failing atomicBool
	failing.Store(true)
	ts.unary = func(context.Context, int64) error {
		if failing.Load() {
			return status.Error(codes.Unavailable, "down")
		}
		return nil
	}
	addr := serve(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, ts) })
	c := newClient(t, healgrpc.ClientConfig{
		Breaker: breaker.GroupConfig{Breaker: breaker.Config{ConsecutiveFailures: 3, OpenDuration: 200 * time.Millisecond}},
		Retry:   retry.Config{MaxAttempts: 1},
	})
	client := testpb.NewTestServiceClient(dial(t, addr, c.DialOptions()...))
	ctx := t.Context()

	for range 3 {
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
		require.Equal(t, codes.Unavailable, status.Code(err))
	}
	_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "a rejection is UNAVAILABLE to gRPC callers")
	require.ErrorIs(t, err, breaker.ErrOpen)
	assert.EqualValues(t, 3, ts.unaryN.Load(), "the open breaker kept the call from the server")

	_, err = client.EmptyCall(ctx, &testpb.Empty{})
	require.NoError(t, err, "another method has a breaker of its own")

	failing.Store(false)
	time.Sleep(250 * time.Millisecond) // the open wait; nothing to synchronise with
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{})
	require.NoError(t, err, "the probe after the open wait closes the breaker")
	for _, s := range c.Snapshot() {
		assert.Equal(t, breaker.StateClosed, s.State, s.Name)
	}
}

func TestClientRetriesUnavailableOnlyForIdempotentMethods(t *testing.T) {
	for _, tt := range []struct {
		name       string
		idempotent bool
		wantCalls  int64
		wantCode   codes.Code
	}{
		{"not idempotent: the server saw it, no retry", false, 1, codes.Unavailable},
		{"idempotent: retried", true, 3, codes.OK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := &testServer{unary: func(_ context.Context, n int64) error {
				if n < 3 {
					return status.Error(codes.Unavailable, "blip")
				}
				return nil
			}}
			addr := serve(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, ts) })
			cfg := healgrpc.ClientConfig{Retry: fastRetry}
			if tt.idempotent {
				cfg.Idempotent = healgrpc.IdempotentMethods(methodUnary)
			}
			c := newClient(t, cfg)
			client := testpb.NewTestServiceClient(dial(t, addr, c.DialOptions()...))
			_, err := client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
			assert.Equal(t, tt.wantCode, status.Code(err))
			assert.Equal(t, tt.wantCalls, ts.unaryN.Load())
		})
	}
}

// pushbackServer fails its first call with code and a pushback trailer of value v.
func pushbackServer(code codes.Code, v string) *testServer {
	return &testServer{unary: func(ctx context.Context, n int64) error {
		if n == 1 {
			if v != "" {
				_ = grpc.SetTrailer(ctx, metadata.Pairs(healgrpc.PushbackKey, v))
			}
			return status.Error(code, "busy")
		}
		return nil
	}}
}

func TestClientHonoursPushback(t *testing.T) {
	for _, tt := range []struct {
		name       string
		code       codes.Code
		pushback   string
		idempotent bool
		wantCalls  int64
		minWait    time.Duration
	}{
		{"RESOURCE_EXHAUSTED with pushback: retried after it, even not idempotent", codes.ResourceExhausted, "150", false, 2, 150 * time.Millisecond},
		{"RESOURCE_EXHAUSTED without pushback: not retried", codes.ResourceExhausted, "", true, 1, 0},
		{"UNAVAILABLE with pushback: retried after it", codes.Unavailable, "100", false, 2, 100 * time.Millisecond},
		{"negative pushback: never retried", codes.Unavailable, "-1", true, 1, 0},
		{"malformed pushback: never retried", codes.Unavailable, "soon", true, 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := pushbackServer(tt.code, tt.pushback)
			addr := serve(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, ts) })
			cfg := healgrpc.ClientConfig{Retry: fastRetry}
			if tt.idempotent {
				cfg.Idempotent = healgrpc.IdempotentMethods(methodUnary)
			}
			client := testpb.NewTestServiceClient(dial(t, addr, newClient(t, cfg).DialOptions()...))
			start := time.Now()
			_, err := client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
			assert.Equal(t, tt.wantCalls, ts.unaryN.Load())
			if tt.wantCalls == 2 {
				require.NoError(t, err)
				assert.GreaterOrEqual(t, time.Since(start), tt.minWait, "retried before the pushback")
			} else {
				assert.Equal(t, tt.code, status.Code(err))
			}
		})
	}
}

func TestClientCallerDeadlineWins(t *testing.T) {
	t.Run("a pushback past the deadline ends the call at once", func(t *testing.T) {
		ts := pushbackServer(codes.ResourceExhausted, "5000")
		addr := serve(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, ts) })
		client := testpb.NewTestServiceClient(dial(t, addr, newClient(t, healgrpc.ClientConfig{}).DialOptions()...))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
		assert.Less(t, time.Since(start), 500*time.Millisecond, "waited for a pushback that ends after the deadline")
		assert.Equal(t, codes.ResourceExhausted, status.Code(err))
		assert.ErrorIs(t, err, retry.ErrExhausted)
		assert.EqualValues(t, 1, ts.unaryN.Load())
	})
	t.Run("the deadline passing during a backoff gives DEADLINE_EXCEEDED", func(t *testing.T) {
		ts := &testServer{unary: func(context.Context, int64) error { return status.Error(codes.Unavailable, "down") }}
		addr := serve(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, ts) })
		c := newClient(t, healgrpc.ClientConfig{
			Idempotent: healgrpc.IdempotentMethods(methodUnary),
			Retry:      retry.Config{MaxAttempts: 100, Backoff: retry.Constant(20 * time.Millisecond)},
			Breaker:    breaker.GroupConfig{Breaker: breaker.Config{ConsecutiveFailures: 1000}},
		})
		client := testpb.NewTestServiceClient(dial(t, addr, c.DialOptions()...))
		ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
		defer cancel()
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
		dl, _ := ctx.Deadline()
		assert.False(t, time.Now().After(dl.Add(50*time.Millisecond)), "returned well after the deadline")
		assert.Contains(t, []codes.Code{codes.DeadlineExceeded, codes.Unavailable}, status.Code(err))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestClientCallerCancellationEndsTheBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	ts := &testServer{unary: func(context.Context, int64) error { return status.Error(codes.Unavailable, "down") }}
	addr := serve(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, ts) })
	c := newClient(t, healgrpc.ClientConfig{
		Idempotent: healgrpc.IdempotentMethods(methodUnary),
		Retry: retry.Config{Backoff: retry.Constant(time.Minute), MaxServerDelay: retry.Off,
			// The caller gives up as the client starts to back off.
			OnRetry: func(context.Context, int, error, time.Duration) { cancel() }},
	})
	client := testpb.NewTestServiceClient(dial(t, addr, c.DialOptions()...))
	start := time.Now()
	_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, codes.Canceled, status.Code(err), "the caller's context decides the code")
	assert.ErrorIs(t, err, context.Canceled)
	assert.EqualValues(t, 1, ts.unaryN.Load())
}

func TestClientBudgetBoundsRetriesPerTarget(t *testing.T) {
	ts := &testServer{unary: func(context.Context, int64) error { return status.Error(codes.Unavailable, "down") }}
	addr := serve(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, ts) })
	c := newClient(t, healgrpc.ClientConfig{
		Idempotent: healgrpc.IdempotentMethods(methodUnary),
		Retry:      retry.Config{MaxAttempts: 5, Backoff: retry.Constant(time.Millisecond)},
		Budget:     retry.BudgetConfig{Ratio: 0.1, MinPerSecond: retry.Off},
		Breaker:    breaker.GroupConfig{Breaker: breaker.Config{ConsecutiveFailures: 100000}},
	})
	client := testpb.NewTestServiceClient(dial(t, addr, c.DialOptions()...))
	const calls = 50
	for range calls {
		_, err := client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
		require.Error(t, err)
	}
	// Without the budget: 250 attempts. With it: 50 calls + at most 10% retries.
	assert.LessOrEqual(t, ts.unaryN.Load(), int64(calls+calls/10+1))
}

func TestClientStreamIsNeverReplayed(t *testing.T) {
	ts := &testServer{duplex: func(stream testpb.TestService_FullDuplexCallServer) error {
		if _, err := stream.Recv(); err != nil {
			return err
		}
		return status.Error(codes.Unavailable, "went away mid-stream")
	}}
	addr := serve(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, ts) })
	c := newClient(t, healgrpc.ClientConfig{
		Idempotent: healgrpc.IdempotentMethods(methodDuplex), // even so
		Retry:      fastRetry,
	})
	client := testpb.NewTestServiceClient(dial(t, addr, c.DialOptions()...))
	stream, err := client.FullDuplexCall(t.Context())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&testpb.StreamingOutputCallRequest{}))
	_, err = stream.Recv()
	assert.Equal(t, codes.Unavailable, status.Code(err), "the stream's error reaches the caller as it is")
	assert.EqualValues(t, 1, ts.duplexN.Load(), "the stream was replayed")
}

func TestClientStreamGuardedWhenOpened(t *testing.T) {
	ts := &testServer{duplex: func(testpb.TestService_FullDuplexCallServer) error {
		return status.Error(codes.Internal, "broken")
	}}
	addr := serve(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, ts) })
	c := newClient(t, healgrpc.ClientConfig{
		Breaker: breaker.GroupConfig{Breaker: breaker.Config{ConsecutiveFailures: 2}},
	})
	client := testpb.NewTestServiceClient(dial(t, addr, c.DialOptions()...))
	for range 2 {
		stream, err := client.FullDuplexCall(t.Context())
		require.NoError(t, err)
		_, err = stream.Recv()
		require.Equal(t, codes.Internal, status.Code(err))
	}
	_, err := client.FullDuplexCall(t.Context())
	require.ErrorIs(t, err, breaker.ErrOpen, "the stream's end was not reported to its breaker")
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.EqualValues(t, 2, ts.duplexN.Load())

	// A stream that ends well counts as a success.
	ok := newClient(t, healgrpc.ClientConfig{Breaker: breaker.GroupConfig{Breaker: breaker.Config{ConsecutiveFailures: 1}}})
	echo := &testServer{}
	addr2 := serve(t, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, echo) })
	client2 := testpb.NewTestServiceClient(dial(t, addr2, ok.DialOptions()...))
	for range 3 {
		stream, err := client2.FullDuplexCall(t.Context())
		require.NoError(t, err)
		require.NoError(t, stream.CloseSend())
		_, err = stream.Recv()
		require.ErrorIs(t, err, io.EOF)
	}
}

func TestNewClientInvalidConfig(t *testing.T) {
	for _, tt := range []struct {
		give  healgrpc.ClientConfig
		field string
	}{
		{healgrpc.ClientConfig{Retry: retry.Config{Classify: retry.DefaultClassify}}, "ClientConfig.Retry.Classify"},
		{healgrpc.ClientConfig{Breaker: breaker.GroupConfig{Breaker: breaker.Config{Classify: breaker.DefaultClassify}}}, "ClientConfig.Breaker.Breaker.Classify"},
		{healgrpc.ClientConfig{RetryCodes: []codes.Code{codes.OK}}, "ClientConfig.RetryCodes"},
	} {
		_, err := healgrpc.NewClient(tt.give)
		require.ErrorIs(t, err, healgrpc.ErrInvalidConfig)
		var ce *healgrpc.ConfigError
		require.True(t, errors.As(err, &ce))
		assert.Equal(t, tt.field, ce.Field)
	}
	_, err := healgrpc.NewClient(healgrpc.ClientConfig{Retry: retry.Config{MaxAttempts: -1}})
	assert.ErrorIs(t, err, retry.ErrInvalidConfig)
	_, err = healgrpc.NewClient(healgrpc.ClientConfig{Budget: retry.BudgetConfig{Ratio: -1}})
	assert.ErrorIs(t, err, retry.ErrInvalidConfig)
}
