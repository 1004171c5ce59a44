package healgrpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	healgrpc "github.com/selfheal-go/selfheal/grpc"
	"github.com/selfheal-go/selfheal/retry"
)

// sdk is an OpenTelemetry SDK recording everything: metrics read on demand, spans
// kept once ended.
type sdk struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
}

func newSDK(t *testing.T) *sdk {
	s := &sdk{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	s.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	t.Cleanup(func() {
		_ = s.mp.Shutdown(context.Background())
		_ = s.tp.Shutdown(context.Background())
	})
	return s
}

// sum returns the value of counter name at the data point with exactly attrs.
func (s *sdk) sum(t *testing.T, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, s.reader.Collect(context.Background(), &rm))
	want := attribute.NewSet(attrs...)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if dp.Attributes.Equals(&want) {
					return dp.Value
				}
			}
			t.Fatalf("%s has no data point with %v", name, want.Encoded(attribute.DefaultEncoder()))
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func (s *sdk) span(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, sp := range s.spans.Ended() {
		if sp.Name() == name {
			return sp
		}
	}
	t.Fatalf("no span %s", name)
	return nil
}

var rpcUnary = []attribute.KeyValue{
	attribute.String("rpc.system", "grpc"),
	attribute.String("rpc.service", "grpc.testing.TestService"),
	attribute.String("rpc.method", "UnaryCall"),
}

func TestServerTelemetryUnderTheSDK(t *testing.T) {
	otel := newSDK(t)
	ts, entered, release := blockingServer()
	ts.duplex = func(testpb.TestService_FullDuplexCallServer) error { panic("boom") }
	s := newServer(t, healgrpc.ServerConfig{MaxConcurrent: 1, Pushback: 250 * time.Millisecond,
		MeterProvider: otel.mp, TracerProvider: otel.tp})
	addr := serve(t, func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, ts) }, s.ServerOptions()...)
	client := testpb.NewTestServiceClient(dial(t, addr))

	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
	}()
	<-entered
	_, err := client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	close(release)
	<-done

	assert.EqualValues(t, 1, otel.sum(t, "selfheal.grpc.server.shed", append(rpcUnary, attribute.String("selfheal.reason", "concurrency"))...))
	// The call had no span (no stats handler): the event is a span of its own.
	sp := otel.span(t, "selfheal.grpc.server.shed")
	assert.ElementsMatch(t, append(rpcUnary,
		attribute.String("selfheal.reason", "concurrency"),
		attribute.Int("rpc.grpc.status_code", int(codes.ResourceExhausted)),
		attribute.Float64("selfheal.retry_after", 0.25)), sp.Attributes())

	stream, err := client.FullDuplexCall(t.Context())
	require.NoError(t, err)
	_, err = stream.Recv()
	require.Equal(t, codes.Internal, status.Code(err))
	assert.EqualValues(t, 1, otel.sum(t, "selfheal.grpc.server.panics",
		attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", "grpc.testing.TestService"),
		attribute.String("rpc.method", "FullDuplexCall")))
	otel.span(t, "selfheal.grpc.server.panic")
}

func TestServerShedIsAnEventOnTheCallsSpan(t *testing.T) {
	otel := newSDK(t)
	s := newServer(t, healgrpc.ServerConfig{Rate: 1, Burst: 1, MeterProvider: otel.mp, TracerProvider: otel.tp})
	// A server span for every call, as a stats handler (otelgrpc) would start it.
	spanning := grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		ctx, sp := otel.tp.Tracer("test").Start(ctx, info.FullMethod)
		defer sp.End()
		return h(ctx, req)
	})
	addr := serve(t, func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, &testServer{}) },
		append([]grpc.ServerOption{spanning}, s.ServerOptions()...)...)
	client := testpb.NewTestServiceClient(dial(t, addr))
	_, err := client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
	require.NoError(t, err)
	_, err = client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
	require.Equal(t, codes.ResourceExhausted, status.Code(err))

	assert.EqualValues(t, 1, otel.sum(t, "selfheal.grpc.server.shed", append(rpcUnary, attribute.String("selfheal.reason", "rate"))...))
	assert.EqualValues(t, 1, otel.sum(t, "selfheal.heal.ratelimit.rejections", attribute.String("selfheal.policy.name", "grpc.server")),
		"the rate limit built from Rate reports to the Server's MeterProvider")
	var events []string
	for _, sp := range otel.spans.Ended() {
		assert.NotEqual(t, "selfheal.grpc.server.shed", sp.Name(), "an event was a span of its own though the call had one")
		for _, ev := range sp.Events() {
			events = append(events, ev.Name)
		}
	}
	assert.Contains(t, events, "selfheal.grpc.server.shed")
}

func TestClientProvidersReachTheBreakersAndRetries(t *testing.T) {
	otel := newSDK(t)
	ts := &testServer{unary: func(_ context.Context, n int64) error {
		if n == 1 {
			return status.Error(codes.Unavailable, "down")
		}
		return nil
	}}
	addr := serve(t, func(g *grpc.Server) { testpb.RegisterTestServiceServer(g, ts) })
	c := newClient(t, healgrpc.ClientConfig{Name: "users", Retry: retry.Config{Backoff: retry.Constant(time.Millisecond)},
		Idempotent: healgrpc.IdempotentMethods(methodUnary), MeterProvider: otel.mp, TracerProvider: otel.tp})
	client := testpb.NewTestServiceClient(dial(t, addr, c.DialOptions()...))
	_, err := client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
	require.NoError(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, otel.reader.Collect(context.Background(), &rm))
	var names []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			names = append(names, m.Name)
		}
	}
	assert.Contains(t, names, "selfheal.retry.attempts")
	assert.Contains(t, names, "selfheal.breaker.calls")
}
