package peerbench

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafegrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	healgrpc "github.com/selfheal-go/selfheal/grpc"
)

type emptyServer struct {
	testpb.UnimplementedTestServiceServer
}

func (emptyServer) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

// BenchmarkGRPCUnary is a unary gRPC call on loopback (an empty request and
// response): bare, through healgrpc's client interceptor (a breaker per target and
// method, retries with a budget per target), and through failsafe-go's
// failsafegrpc interceptor with its retry policy and a circuit breaker. The
// interceptors' cost is the difference to bare.
func BenchmarkGRPCUnary(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, emptyServer{})
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	b.Cleanup(func() {
		srv.Stop()
		wg.Wait()
	})

	hc, err := healgrpc.NewClient(healgrpc.ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	fsRetry := failsafegrpc.NewRetryPolicyBuilder[any]().Build()
	fsBreaker := circuitbreaker.NewBuilder[any]().Build()

	run := func(b *testing.B, opts ...grpc.DialOption) {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
		cc, err := grpc.NewClient(lis.Addr().String(), opts...)
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		client := testpb.NewTestServiceClient(cc)
		ctx := context.Background()
		if _, err := client.EmptyCall(ctx, &testpb.Empty{}); err != nil { // connect
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := client.EmptyCall(ctx, &testpb.Empty{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("bare", func(b *testing.B) { run(b) })
	b.Run("selfheal", func(b *testing.B) {
		run(b, grpc.WithUnaryInterceptor(hc.UnaryClientInterceptor()))
	})
	b.Run("failsafe-go", func(b *testing.B) {
		run(b, grpc.WithUnaryInterceptor(failsafegrpc.NewUnaryClientInterceptor[any](fsRetry, fsBreaker)))
	})
}

// BenchmarkGRPCClientChain is the client interceptors alone: the invoker returns at
// once, so the figure is what each chain adds to a call (compare with
// BenchmarkGRPCUnary/bare, which a loaded machine makes noisy).
func BenchmarkGRPCClientChain(b *testing.B) {
	cc, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	hc, err := healgrpc.NewClient(healgrpc.ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	fs := failsafegrpc.NewUnaryClientInterceptor[any](failsafegrpc.NewRetryPolicyBuilder[any]().Build(),
		circuitbreaker.NewBuilder[any]().Build())
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	ctx := context.Background()
	req, reply := &testpb.Empty{}, &testpb.Empty{}
	const method = "/grpc.testing.TestService/EmptyCall"
	for _, ic := range []struct {
		name string
		i    grpc.UnaryClientInterceptor
	}{{"selfheal", hc.UnaryClientInterceptor()}, {"failsafe-go", fs}} {
		b.Run(ic.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := ic.i(ctx, method, req, reply, cc, invoker); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
