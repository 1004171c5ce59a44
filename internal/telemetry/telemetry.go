package telemetry

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopePrefix is the instrumentation scope of every selfheal package:
// ScopePrefix + "breaker" and so on. Instrument names use the same prefix:
// "selfheal.breaker.calls".
const ScopePrefix = "github.com/selfheal-go/selfheal/"

// Version is the library version reported as the instrumentation scope version.
const Version = "0.1.0"

// Meter returns the meter of package pkg from mp, or from the global provider when mp
// is nil.
func Meter(mp metric.MeterProvider, pkg string) metric.Meter {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter(ScopePrefix+pkg, metric.WithInstrumentationVersion(Version))
}

// Tracer returns the tracer of package pkg from tp, or from the global provider when
// tp is nil.
func Tracer(tp trace.TracerProvider, pkg string) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(ScopePrefix+pkg, trace.WithInstrumentationVersion(Version))
}
