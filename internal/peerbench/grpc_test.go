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
