package healgrpc_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	methodEmpty  = "/grpc.testing.TestService/EmptyCall"
	methodUnary  = "/grpc.testing.TestService/UnaryCall"
	methodDuplex = "/grpc.testing.TestService/FullDuplexCall"
)

// testServer is a TestService whose behaviour each test sets, and that counts the
// calls that reached it.
type testServer struct {
	testpb.UnimplementedTestServiceServer
	unary   func(ctx context.Context, n int64) error // n: 1 for the first call
	duplex  func(stream testpb.TestService_FullDuplexCallServer) error
	unaryN  atomic.Int64
	emptyN  atomic.Int64
	duplexN atomic.Int64
}

func (s *testServer) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	s.emptyN.Add(1)
	return &testpb.Empty{}, nil
}

func (s *testServer) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	n := s.unaryN.Add(1)
	if s.unary != nil {
		if err := s.unary(ctx, n); err != nil {
			return nil, err
		}
	}
	return &testpb.SimpleResponse{}, nil
}

func (s *testServer) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	s.duplexN.Add(1)
	if s.duplex != nil {
		return s.duplex(stream)
	}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: m.GetPayload()}); err != nil {
			return err
		}
	}
}

// serve starts a gRPC server on a loopback TCP port, registers what register
// registers, and stops it at the end of the test. It returns the address.
func serve(t testing.TB, register func(*grpc.Server), opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(opts...)
	register(srv)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	t.Cleanup(func() {
		srv.Stop()
		wg.Wait()
	})
	return lis.Addr().String()
}

// dial connects to addr with opts; the connection closes at the end of the test.
func dial(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	cc, err := grpc.NewClient(addr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type atomicBool = atomic.Bool

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }

// listen returns a loopback listener and a bare server, for tests that stop it
// themselves.
func listen(t *testing.T) (net.Listener, *grpc.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return lis, grpc.NewServer()
}
