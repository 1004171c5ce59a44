package healgrpc_test

import (
	"testing"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	healgrpc "github.com/selfheal-go/selfheal/grpc"
)

// BenchmarkUnary compares a bare loopback unary call with the same call through
// the client interceptor chain (breaker and retry; the server side bare in both).
func BenchmarkUnary(b *testing.B) {
	addr := serve(b, func(s *grpc.Server) { testpb.RegisterTestServiceServer(s, &testServer{}) })
	c, err := healgrpc.NewClient(healgrpc.ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		opts []grpc.DialOption
	}{{"bare", nil}, {"selfheal", c.DialOptions()}} {
		b.Run(bc.name, func(b *testing.B) {
			client := testpb.NewTestServiceClient(dial(b, addr, bc.opts...))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.EmptyCall(b.Context(), &testpb.Empty{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
