package peerbench_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/internal/peerbench"
	"github.com/selfheal-go/selfheal/retry"
)

// BenchmarkTracingAlternating measures what tracing costs the success paths of a
// breaker, a retry policy and heal.Transport (over a canned round tripper), each in
// four setups: no provider (the global no-ops), the SDK's metrics only (no span in
// the context), and the SDK's metrics and tracing with the caller's span sampled out,
// and sampled. On a shared machine, sub-benchmarks a second apart see different
// loads; here every iteration runs a chunk of calls of each setup in turn (the
// order rotating), each chunk timed on its own, so that all four see the same load,
// and reports each setup's median chunk per call and the ratios of the medians to the
// metrics-only setup's: the cost of tracing alone.
func BenchmarkTracingAlternating(b *testing.B) {
	type setup struct {
		mp  metric.MeterProvider
		tp  trace.TracerProvider
		ctx context.Context
	}
	setups := func(b *testing.B) []setup {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		outMP, outTP, outCtx := peerbench.SDKProviders(b, false)
		inMP, inTP, inCtx := peerbench.SDKProviders(b, true)
		return []setup{{nil, nil, context.Background()}, {mp, nil, context.Background()}, {outMP, outTP, outCtx}, {inMP, inTP, inCtx}}
	}
	names := []string{"none", "metrics", "sampled-out", "sampled"}
	for _, bc := range []struct {
		name string
		call func(b *testing.B, s setup) func()
	}{{
		name: "breaker",
		call: func(b *testing.B, s setup) func() {
			br, err := breaker.New(breaker.Config{Name: "bench", MeterProvider: s.mp, TracerProvider: s.tp})
			if err != nil {
				b.Fatal(err)
			}
			return func() {
				if err := br.Do(s.ctx, retryOK); err != nil {
					b.Fatal(err)
				}
			}
		},
	}, {
		name: "retry",
		call: func(b *testing.B, s setup) func() {
			p := retryPolicy(b, retry.Config{MeterProvider: s.mp, TracerProvider: s.tp})
			return func() {
				if err := p.Do(s.ctx, retryOK); err != nil {
					b.Fatal(err)
				}
			}
		},
	}, {
		name: "transport",
		call: func(b *testing.B, s setup) func() {
			ht, err := heal.NewTransport(heal.TransportConfig{Base: cannedRT{}, MeterProvider: s.mp, TracerProvider: s.tp})
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "http://svc.local/", nil).WithContext(s.ctx)
			return func() {
				resp, err := ht.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		},
	}} {
		b.Run(bc.name, func(b *testing.B) {
			var calls []func()
			for _, s := range setups(b) {
				calls = append(calls, bc.call(b, s))
			}
			const chunk = 256
			times := make([][]time.Duration, len(calls))
			for i := 0; b.Loop(); i++ {
				for j := range calls {
					k := (i + j) % len(calls)
					start := time.Now()
					for range chunk {
						calls[k]()
					}
					times[k] = append(times[k], time.Since(start))
				}
			}
			// The median chunk of each setup: a chunk the scheduler interrupted is an
			// outlier of any setup, and the median ignores it.
			med := make([]float64, len(calls))
			for k, name := range names {
				slices.Sort(times[k])
				med[k] = float64(times[k][len(times[k])/2]) / chunk
				b.ReportMetric(med[k], name+"-ns/op")
			}
			b.ReportMetric(med[2]/med[1], "sampled-out/metrics")
			b.ReportMetric(med[3]/med[1], "sampled/metrics")
			b.ReportMetric(0, "ns/op")
		})
	}
}
