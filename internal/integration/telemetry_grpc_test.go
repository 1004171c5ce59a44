package integration_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	healgrpc "github.com/selfheal-go/selfheal/grpc"
)

func init() { scenarios = append(scenarios, grpcScenario) }

// grpcScenario runs healgrpc's server interceptor as grpc-go calls it: a call shed
// by the rate inside a recording server span (an event), one with no span (a span
// of its own), and a handler that panics, with and without a span.
func grpcScenario(t *testing.T, s *sdk) {
	srv, err := healgrpc.NewServer(healgrpc.ServerConfig{Rate: 0.001, Burst: 1,
		MeterProvider: s.mp, TracerProvider: s.tp, Logger: s.log})
	require.NoError(t, err)
	intercept := srv.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/shop.Cart/Add"}
	ok := func(context.Context, any) (any, error) { return "ok", nil }

	_, err = intercept(context.Background(), nil, info, ok)
	require.NoError(t, err)
	ctx, end := s.caller(t.Context())
	_, err = intercept(ctx, nil, info, ok)
	end()
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	_, err = intercept(context.Background(), nil, info, ok)
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))

	panicky, err := healgrpc.NewServer(healgrpc.ServerConfig{MeterProvider: s.mp, TracerProvider: s.tp, Logger: s.log})
	require.NoError(t, err)
	for _, c := range []context.Context{context.Background(), t.Context()} {
		var end func()
		if c != context.Background() {
			c, end = s.caller(c)
		}
		_, err = panicky.UnaryServerInterceptor()(c, nil, info, func(context.Context, any) (any, error) {
			panic("boom")
		})
		assert.Equal(t, codes.Internal, status.Code(err))
		if end != nil {
			end()
		}
	}
}
