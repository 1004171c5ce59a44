package healgrpc_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
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

	healgrpc "github.com/selfheal-go/selfheal/grpc"
	"github.com/selfheal-go/selfheal/health"
)

func newServer(t *testing.T, cfg healgrpc.ServerConfig) *healgrpc.Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s, err := healgrpc.NewServer(cfg)
	require.NoError(t, err)
	return s
}

func TestServerRecoversPanics(t *testing.T) {
	ts := &testServer{unary: func(context.Context, int64) error { panic("boom") }}
	ts.duplex = func(testpb.TestService_FullDuplexCallServer) error { panic("boom") }
	s := newServer(t, healgrpc.ServerConfig{})
	addr := serve(t, func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, ts) }, s.ServerOptions()...)
	client := testpb.NewTestServiceClient(dial(t, addr))

	_, err := client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
	assert.Equal(t, codes.Internal, status.Code(err))
	assert.Equal(t, "internal error", status.Convert(err).Message(), "the panic value must not leak to the client")
	stream, err := client.FullDuplexCall(t.Context())
	require.NoError(t, err)
	_, err = stream.Recv()
	assert.Equal(t, codes.Internal, status.Code(err))

	_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
	require.NoError(t, err, "the server survived")
	assert.EqualValues(t, 2, s.Snapshot().Panics)
	assert.Zero(t, s.Snapshot().InFlight, "a panic leaked a concurrency slot")
}

// blockingServer holds every UnaryCall until release is closed.
func blockingServer() (*testServer, chan struct{}, chan struct{}) {
	entered, release := make(chan struct{}, 10), make(chan struct{})
	return &testServer{unary: func(ctx context.Context, n int64) error {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}}, entered, release
}

func TestServerShedsByConcurrencyWithPushback(t *testing.T) {
	ts, entered, release := blockingServer()
	s := newServer(t, healgrpc.ServerConfig{MaxConcurrent: 1, Pushback: 150 * time.Millisecond})
	addr := serve(t, func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, ts) }, s.ServerOptions()...)
	raw := testpb.NewTestServiceClient(dial(t, addr))

	var wg sync.WaitGroup
	wg.Go(func() { _, _ = raw.UnaryCall(t.Context(), &testpb.SimpleRequest{}) })
	<-entered

	// A plain client sees RESOURCE_EXHAUSTED and the pushback.
	var trailer metadata.MD
	_, err := raw.UnaryCall(t.Context(), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	assert.Equal(t, []string{"150"}, trailer.Get(healgrpc.PushbackKey))
	assert.EqualValues(t, 1, ts.unaryN.Load(), "a shed call reached the handler")

	// A selfheal client backs off for the pushback, then gets through.
	c := newClient(t, healgrpc.ClientConfig{Retry: fastRetry})
	client := testpb.NewTestServiceClient(dial(t, addr, c.DialOptions()...))
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
		done <- err
	}()
	require.Eventually(t, func() bool { return s.Snapshot().Shed == 2 }, 5*time.Second, time.Millisecond, "the first attempt was not shed")
	close(release)
	wg.Wait()
	<-entered // the retry reached the handler
	require.NoError(t, <-done)
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "the client retried before the pushback")
	assert.EqualValues(t, 2, s.Snapshot().Shed)
	assert.EqualValues(t, 2, s.Snapshot().Served)
}

func TestServerShedsByRate(t *testing.T) {
	ts := &testServer{}
	s := newServer(t, healgrpc.ServerConfig{Rate: 1, Burst: 1})
	addr := serve(t, func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, ts) }, s.ServerOptions()...)
	client := testpb.NewTestServiceClient(dial(t, addr))
	_, err := client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
	require.NoError(t, err)
	var trailer metadata.MD
	_, err = client.UnaryCall(t.Context(), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	d, ok := healgrpc.ParsePushback(trailer.Get(healgrpc.PushbackKey)[0])
	require.True(t, ok)
	assert.InDelta(t, float64(time.Second), float64(d), float64(100*time.Millisecond), "the pushback is when a token arrives")
	assert.EqualValues(t, 1, ts.unaryN.Load())
}

func TestServerExemptsHealthAndFeedsTheRegistry(t *testing.T) {
	ts, entered, release := blockingServer()
	s := newServer(t, healgrpc.ServerConfig{MaxConcurrent: 1})
	reg := health.New(health.Config{})
	for _, c := range s.Checks() {
		require.NoError(t, reg.Register(c))
	}
	h, err := healgrpc.NewHealth(healgrpc.HealthConfig{Registry: reg})
	require.NoError(t, err)
	addr := serve(t, func(g *grpc.Server) {
		testpb.RegisterTestServiceServer(g, ts)
		h.Register(g)
	}, s.ServerOptions()...)
	cc := dial(t, addr)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = testpb.NewTestServiceClient(cc).UnaryCall(t.Context(), &testpb.SimpleRequest{}) })
	<-entered
	require.Equal(t, "SERVING", checkStatus(t, cc, ""), "the health service was shed")
	close(release)
	wg.Wait()

	doc := reg.Document(t.Context())
	require.Contains(t, doc.Checks, healgrpc.CheckResponseTime)
	require.Contains(t, doc.Checks, healgrpc.CheckUtilization)
	assert.Len(t, doc.Checks[healgrpc.CheckResponseTime], 2)
	assert.Positive(t, doc.Checks[healgrpc.CheckResponseTime][1].ObservedValue, "p99 of the served call")
	assert.EqualValues(t, 1, s.Snapshot().Served, "the exempt health checks were recorded")
}

func TestNewServerInvalidConfig(t *testing.T) {
	for _, tt := range []struct {
		give  healgrpc.ServerConfig
		field string
	}{
		{healgrpc.ServerConfig{MaxConcurrent: -2}, "ServerConfig.MaxConcurrent"},
		{healgrpc.ServerConfig{Rate: -1}, "ServerConfig.Rate"},
		{healgrpc.ServerConfig{Rate: math.NaN()}, "ServerConfig.Rate"},
		{healgrpc.ServerConfig{Burst: -1}, "ServerConfig.Burst"},
		{healgrpc.ServerConfig{Pushback: -1}, "ServerConfig.Pushback"},
		{healgrpc.ServerConfig{Window: -1}, "ServerConfig.Window"},
	} {
		_, err := healgrpc.NewServer(tt.give)
		var ce *healgrpc.ConfigError
		require.True(t, errors.As(err, &ce), tt.field)
		assert.ErrorIs(t, err, healgrpc.ErrInvalidConfig)
		assert.Equal(t, tt.field, ce.Field)
	}
	s, err := healgrpc.NewServer(healgrpc.ServerConfig{MaxConcurrent: healgrpc.Off})
	require.NoError(t, err)
	assert.Zero(t, s.Snapshot().MaxConcurrent)
}

// TestServerPanicLogging: a configured Logger gets the recovered panic; a nil Logger
// means no logging (slog.Default stays silent), the rule of every selfheal package.
func TestServerPanicLogging(t *testing.T) {
	var def, own lockedBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&def, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	ts := &testServer{unary: func(context.Context, int64) error { panic("boom") }}
	for _, logger := range []*slog.Logger{nil, slog.New(slog.NewTextHandler(&own, nil))} {
		s, err := healgrpc.NewServer(healgrpc.ServerConfig{Logger: logger})
		require.NoError(t, err)
		addr := serve(t, func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, ts) }, s.ServerOptions()...)
		_, err = testpb.NewTestServiceClient(dial(t, addr)).UnaryCall(t.Context(), &testpb.SimpleRequest{})
		assert.Equal(t, codes.Internal, status.Code(err))
	}
	assert.Empty(t, def.String(), "a nil Logger logged through slog.Default")
	assert.Contains(t, own.String(), "healgrpc: panic in handler")
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
