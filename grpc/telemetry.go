package healgrpc

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// The gRPC semantic conventions' attributes, beside selfheal's own (see TELEMETRY.md).
const (
	keyRPCSystem     = attribute.Key("rpc.system")
	keyRPCService    = attribute.Key("rpc.service")
	keyRPCMethod     = attribute.Key("rpc.method")
	keyRPCStatusCode = attribute.Key("rpc.grpc.status_code")
)

// Why a call was shed: the selfheal.reason of the shed metric and event.
const (
	reasonConcurrency = "concurrency"
	reasonLimit       = "limit"
	reasonRateLimit   = "rate"
)

// rpcAttrs are the attributes naming a call: rpc.system=grpc, rpc.service and
// rpc.method from its full method name "/pkg.Service/Method".
func rpcAttrs(fullMethod string) []attribute.KeyValue {
	svc, m := splitMethod(fullMethod)
	return []attribute.KeyValue{keyRPCSystem.String("grpc"), keyRPCService.String(svc), keyRPCMethod.String(m)}
}

// splitMethod splits "/pkg.Service/Method" into "pkg.Service" and "Method".
func splitMethod(fullMethod string) (service, method string) {
	m := strings.TrimPrefix(fullMethod, "/")
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		return m[:i], m[i+1:]
	}
	return "", m
}

// serverTelemetry is what a Server reports: counters of shed calls and recovered
// panics, and an event of each on the call's span (a span of its own when the call
// has none). Nothing is recorded for a call that is served normally.
type serverTelemetry struct {
	tracer  trace.Tracer
	shed    metric.Int64Counter
	panics  metric.Int64Counter
	methods *methodSet
}

// maxMethodAttrs bounds the method names a Server puts in attributes: a server with
// an UnknownServiceHandler sees any name a client sends, so past this many the
// others are named "_OTHER", as the semantic conventions do for unknown methods.
const maxMethodAttrs = 1000

// methodSet is the method names a Server has named in attributes.
type methodSet struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// name returns fullMethod, or "_OTHER" once maxMethodAttrs others were named.
func (m *methodSet) name(fullMethod string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.seen[fullMethod]; ok {
		return fullMethod
	}
	if len(m.seen) >= maxMethodAttrs {
		return "/_OTHER/_OTHER"
	}
	m.seen[fullMethod] = struct{}{}
	return fullMethod
}

func newServerTelemetry(mp metric.MeterProvider, tp trace.TracerProvider) serverTelemetry {
	m := telemetry.Meter(mp, "grpc")
	t := serverTelemetry{tracer: telemetry.Tracer(tp, "grpc"), methods: &methodSet{seen: map[string]struct{}{}}}
	// A broken meter must not break the server: the API returns usable no-ops with
	// its errors.
	t.shed, _ = m.Int64Counter("selfheal.grpc.server.shed",
		metric.WithDescription("Calls a gRPC server shed with RESOURCE_EXHAUSTED."), metric.WithUnit("{call}"))
	t.panics, _ = m.Int64Counter("selfheal.grpc.server.panics",
		metric.WithDescription("Panics of gRPC handlers recovered into INTERNAL."), metric.WithUnit("{panic}"))
	return t
}

// event adds name to the span of ctx when it is recording, or records it as a span
// of its own when ctx has no span; a span sampled out gets nothing.
func (t serverTelemetry) event(ctx context.Context, name string, attrs []attribute.KeyValue) {
	sp := trace.SpanFromContext(ctx)
	switch {
	case sp.IsRecording():
		sp.AddEvent(name, trace.WithAttributes(attrs...))
	case !sp.SpanContext().IsValid() && t.tracer != nil:
		_, sp := t.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
		sp.End()
	}
}

func (t serverTelemetry) recordShed(ctx context.Context, fullMethod, reason string, pushback time.Duration) {
	attrs := append(rpcAttrs(t.methods.name(fullMethod)), telemetry.KeyReason.String(reason))
	if t.shed != nil {
		t.shed.Add(ctx, 1, metric.WithAttributes(attrs...))
	}
	attrs = append(attrs, keyRPCStatusCode.Int(int(codes.ResourceExhausted)))
	if pushback > 0 {
		attrs = append(attrs, telemetry.KeyRetryAfter.Float64(pushback.Seconds()))
	}
	t.event(ctx, "selfheal.grpc.server.shed", attrs)
}

func (t serverTelemetry) recordPanic(ctx context.Context, fullMethod string) {
	attrs := rpcAttrs(t.methods.name(fullMethod))
	if t.panics != nil {
		t.panics.Add(ctx, 1, metric.WithAttributes(attrs...))
	}
	t.event(ctx, "selfheal.grpc.server.panic", append(attrs, keyRPCStatusCode.Int(int(codes.Internal))))
}
