package core

import (
	"context"
	"fmt"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/selfheal-go/selfheal/health"

	"github.com/selfheal-go/selfheal/examples/agent/config"
)

// proberFor returns the prober of service c: grpc.health.v1 when its fleet entry
// asks for it (health.grpc), HTTP otherwise.
func proberFor(client *http.Client, c *config.Service) prober {
	if c.Health.GRPC != nil {
		return grpcProber{client: client}
	}
	return httpProber{client}
}

// grpcProber probes liveness and readiness through grpc.health.v1/Check and reads
// the health document over HTTP. It dials the instance for each probe (a probe an
// interval per instance; nothing to close when an instance goes away).
type grpcProber struct{ client *http.Client }

func (p grpcProber) probe(ctx context.Context, c *config.Service, t target) probeResult {
	r := probeResult{id: t.id}
	ctx, cancel := context.WithTimeout(ctx, c.Health.Timeout.D())
	defer cancel()
	service := c.Health.GRPC.Service
	cc, err := grpc.NewClient("passthrough:///"+t.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		r.err = "grpc health: " + err.Error()
		return r
	}
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	_ = cc.Close()
	switch {
	case ctx.Err() != nil:
		r.err = "grpc health probe timed out after " + c.Health.Timeout.D().String()
		return r
	case status.Code(err) == codes.NotFound:
		r.live, r.notReady = true, fmt.Sprintf("grpc health: unknown service %q", service)
	case err != nil:
		r.err = "grpc health: " + status.Convert(err).Message()
		if c := status.Code(err); c != codes.Unavailable && c != codes.Unknown {
			r.err = "grpc health: " + c.String() + ": " + status.Convert(err).Message()
		}
		return r
	case resp.GetStatus() == healthpb.HealthCheckResponse_SERVING:
		r.live, r.ready = true, true
	default:
		r.live, r.notReady = true, "grpc health: "+resp.GetStatus().String()
	}
	doc, _, err := health.Fetch(ctx, p.client, "http://"+t.addr+c.Health.Document)
	if err != nil {
		r.live, r.ready = false, false
		r.err = "health document: " + err.Error()
		return r
	}
	r.doc = doc
	notReady := r.notReady
	r.live, r.ready, r.err = judgeDocument(doc, r.ready)
	switch {
	case notReady != "":
		r.notReady = notReady // the gRPC status is the reason the probe gave
	case r.live && !r.ready && r.err != "":
		r.notReady = r.err
	}
	return r
}
