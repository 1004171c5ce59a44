package healgrpc_test

import (
	"fmt"

	"google.golang.org/grpc"

	healgrpc "github.com/selfheal-go/selfheal/grpc"
	"github.com/selfheal-go/selfheal/heal"
)

// A server whose concurrency bound follows its latency (an adaptive limit) and
// whose rate limit is shared with the HTTP side of the same process: calls over
// either are shed with RESOURCE_EXHAUSTED and a grpc-retry-pushback-ms trailer.
func ExampleServerConfig_adaptive() {
	limit := heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{Name: "api"})
	rate, _ := heal.NewRateLimit(heal.RateLimitConfig{Name: "api", Rate: 500})
	s, err := healgrpc.NewServer(healgrpc.ServerConfig{
		MaxConcurrent: healgrpc.Off, // the adaptive limit bounds concurrency
		Limit:         limit,
		RateLimit:     rate,
	})
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer(s.ServerOptions()...)
	defer srv.Stop()
	fmt.Println(limit.Limit(), s.Snapshot().MaxConcurrent)
	// Output: 20 0
}
