package main

import (
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"

	healgrpc "github.com/selfheal-go/selfheal/grpc"
	"github.com/selfheal-go/selfheal/health"
)

// grpcBeside serves gRPC beside HTTP on the same listener (-grpc): requests that
// are gRPC (HTTP/2 with an application/grpc content type) go to a grpc.Server that
// serves grpc.health.v1 from reg (readiness for the server as a whole and for
// "selfheal.demo"; liveness as "liveness"; any check by its name), the others to
// next. It returns the handler, the HTTP protocols the server must speak
// (HTTP/1 and plaintext HTTP/2, which gRPC clients use), and stop, which sends
// NOT_SERVING to every Watch stream (which see a drain within 100ms anyway) and ends them (call it before the HTTP
// server's Shutdown, which would wait for them).
func grpcBeside(reg *health.Registry, next http.Handler) (http.Handler, *http.Protocols, func(), error) {
	h, err := healgrpc.NewHealth(healgrpc.HealthConfig{Registry: reg, PollInterval: 100 * time.Millisecond,
		Services: map[string]health.Kind{"selfheal.demo": health.Readiness, "liveness": health.Liveness}})
	if err != nil {
		return nil, nil, nil, err
	}
	gs := grpc.NewServer()
	h.Register(gs)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
	return handler, &p, func() { h.Shutdown(); gs.Stop() }, nil
}
