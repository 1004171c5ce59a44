package healgrpc

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/selfheal-go/selfheal/health"
)

// ProbeConfig configures a [Probe].
type ProbeConfig struct {
	// Conn is the connection to the dependency (a *grpc.ClientConn). Required.
	Conn grpc.ClientConnInterface
	// Service is the service whose health is asked for. Empty (the default): the
	// server's overall health.
	Service string
}

// Probe returns a health check that asks a dependency's grpc.health.v1.Health
// service: it passes when the answer is SERVING, and otherwise fails with an error
// that matches [ErrNotServing] (NOT_SERVING, SERVICE_UNKNOWN) or with the call's
// status error (NOT_FOUND for an unknown service, UNIMPLEMENTED for a server
// without the health service, UNAVAILABLE, ...). The call is bounded by the check's
// context, which carries the check's Timeout. An invalid cfg gives an error that
// matches [ErrInvalidConfig] and is a *[ConfigError] naming the field.
func Probe(cfg ProbeConfig) (health.CheckFunc, error) {
	if cfg.Conn == nil {
		return nil, invalid("ProbeConfig.Conn", "is required")
	}
	client := healthpb.NewHealthClient(cfg.Conn)
	req := &healthpb.HealthCheckRequest{Service: cfg.Service}
	return func(ctx context.Context) error {
		resp, err := client.Check(ctx, req)
		if err != nil {
			return err
		}
		if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%w: %q is %v", ErrNotServing, cfg.Service, st)
		}
		return nil
	}, nil
}
