package peerbench

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// SDKProviders returns the OpenTelemetry SDK's meter and tracer providers (a manual
// reader; spans recorded in memory and dropped as the benchmark goes) and a context
// whose span, the caller's, is sampled (recording) or sampled out.
func SDKProviders(b *testing.B, sampled bool) (*sdkmetric.MeterProvider, *sdktrace.TracerProvider, context.Context) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	sampler := sdktrace.NeverSample()
	if sampled {
		sampler = sdktrace.AlwaysSample()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(discard{}))
	ctx, span := tp.Tracer("caller").Start(context.Background(), "caller")
	b.Cleanup(func() {
		span.End()
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return mp, tp, ctx
}

// discard is a span processor that drops every span.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }
