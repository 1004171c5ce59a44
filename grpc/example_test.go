package healgrpc_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	healgrpc "github.com/selfheal-go/selfheal/grpc"
	"github.com/selfheal-go/selfheal/health"
)

// A server with shedding and a grpc.health.v1 service answering from a registry,
// and a client with breakers and retries asking it.
func Example() {
	reg := health.New(health.Config{})
	srvPolicies, _ := healgrpc.NewServer(healgrpc.ServerConfig{MaxConcurrent: 100})
	for _, c := range srvPolicies.Checks() {
		_ = reg.Register(c)
	}
	h, _ := healgrpc.NewHealth(healgrpc.HealthConfig{Registry: reg})

	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := grpc.NewServer(srvPolicies.ServerOptions()...)
	h.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	defer func() { h.Shutdown(); srv.GracefulStop() }()

	cli, _ := healgrpc.NewClient(healgrpc.ClientConfig{
		Idempotent: healgrpc.IdempotentMethods("/grpc.health.v1.Health/Check"),
	})
	opts := append(cli.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	cc, _ := grpc.NewClient(lis.Addr().String(), opts...)
	defer cc.Close()

	resp, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	fmt.Println(resp.GetStatus(), err)
	reg.SetDraining(true)
	resp, err = healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	fmt.Println(resp.GetStatus(), err)
	// Output:
	// SERVING <nil>
	// NOT_SERVING <nil>
}

// A dependency's grpc.health.v1 as a readiness check of this service.
func ExampleProbe() {
	dep := health.New(health.Config{})
	h, _ := healgrpc.NewHealth(healgrpc.HealthConfig{Registry: dep})
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := grpc.NewServer()
	h.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	defer func() { h.Shutdown(); srv.GracefulStop() }()

	cc, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer cc.Close()
	check, _ := healgrpc.Probe(healgrpc.ProbeConfig{Conn: cc})

	reg := health.New(health.Config{})
	_ = reg.Register(health.Check{Name: "users:grpc", Func: check})
	fmt.Println(reg.Evaluate(context.Background(), health.Readiness))
	dep.SetDraining(true)
	_ = reg.Register(health.Check{Name: "users:grpc2", Func: check})
	fmt.Println(reg.Evaluate(context.Background(), health.Readiness))
	// Output:
	// pass
	// fail
}
