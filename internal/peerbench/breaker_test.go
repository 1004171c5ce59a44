package peerbench

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/selfheal-go/selfheal/breaker"
)

// Breaker benchmarks: selfheal's breaker.Breaker against gobreaker v2 (its former engine) and
// failsafe-go's circuit breaker, on the success path through a closed breaker and on
// the rejection path of an open one. All three run with their default settings and
// the global (no-op) OpenTelemetry providers.
//
//	go test -run '^$' -bench 'Breaker|Group' -benchmem -count 5 ./internal/peerbench/

var errPeer = errors.New("peer: boom")

func okCtx(context.Context) error { return nil }

func newSelfheal(tb testing.TB, open bool) *breaker.Breaker {
	b, err := breaker.New(breaker.Config{Name: "bench", ConsecutiveFailures: 1, OpenDuration: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	if open {
		_ = b.Do(context.Background(), func(context.Context) error { return errPeer })
		if err := b.Do(context.Background(), okCtx); !errors.Is(err, breaker.ErrOpen) {
			tb.Fatalf("selfheal breaker not open: %v", err)
		}
	}
	return b
}

func newGobreaker(tb testing.TB, open bool) *gobreaker.CircuitBreaker[struct{}] {
	cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "bench",
		Timeout:     time.Hour,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 },
	})
	if open {
		_, _ = cb.Execute(func() (struct{}, error) { return struct{}{}, errPeer })
		if _, err := cb.Execute(func() (struct{}, error) { return struct{}{}, nil }); !errors.Is(err, gobreaker.ErrOpenState) {
			tb.Fatalf("gobreaker not open: %v", err)
		}
	}
	return cb
}

func newFailsafe(tb testing.TB, open bool) failsafe.Executor[any] {
	cb := circuitbreaker.NewBuilder[any]().WithDelay(time.Hour).Build()
	if open {
		cb.Open()
	}
	return failsafe.With[any](cb)
}

func gbOK() (struct{}, error) { return struct{}{}, nil }
func fsOK() error             { return nil }

func BenchmarkBreakerSuccess(b *testing.B) {
	ctx := context.Background()
	b.Run("selfheal", func(b *testing.B) {
		br := newSelfheal(b, false)
		b.ReportAllocs()
		for b.Loop() {
			if err := br.Do(ctx, okCtx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("selfheal-sdk", func(b *testing.B) {
		// With the OpenTelemetry SDK installed, as in a service that exports
		// metrics: the calls counter is read at collection, so a call costs what it
		// costs without an SDK (a synchronous SDK Add measured ~170 ns a call).
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		defer func() { _ = mp.Shutdown(ctx) }()
		br, err := breaker.New(breaker.Config{Name: "bench", ConsecutiveFailures: 1, OpenDuration: time.Hour, MeterProvider: mp})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := br.Do(ctx, okCtx); err != nil {
				b.Fatal(err)
			}
		}
	})
	// With the SDK's metrics and tracing installed and the caller's span sampled out
	// (the common case in production), and sampled in.
	for _, sampled := range []bool{false, true} {
		name := map[bool]string{false: "selfheal-sdk-sampled-out", true: "selfheal-sdk-sampled"}[sampled]
		b.Run(name, func(b *testing.B) {
			mp, tp, sctx := SDKProviders(b, sampled)
			br, err := breaker.New(breaker.Config{Name: "bench", ConsecutiveFailures: 1, OpenDuration: time.Hour, MeterProvider: mp, TracerProvider: tp})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := br.Do(sctx, okCtx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("gobreaker", func(b *testing.B) {
		cb := newGobreaker(b, false)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cb.Execute(gbOK); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("failsafe-go", func(b *testing.B) {
		ex := newFailsafe(b, false)
		b.ReportAllocs()
		for b.Loop() {
			if err := ex.Run(fsOK); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkBreakerSuccessParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("selfheal", func(b *testing.B) {
		br := newSelfheal(b, false)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = br.Do(ctx, okCtx)
			}
		})
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := newGobreaker(b, false)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = cb.Execute(gbOK)
			}
		})
	})
	b.Run("failsafe-go", func(b *testing.B) {
		ex := newFailsafe(b, false)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = ex.Run(fsOK)
			}
		})
	})
}

func BenchmarkBreakerRejection(b *testing.B) {
	ctx := context.Background()
	b.Run("selfheal", func(b *testing.B) {
		br := newSelfheal(b, true)
		b.ReportAllocs()
		for b.Loop() {
			if err := br.Do(ctx, okCtx); err == nil {
				b.Fatal("not rejected")
			}
		}
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := newGobreaker(b, true)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cb.Execute(gbOK); err == nil {
				b.Fatal("not rejected")
			}
		}
	})
	b.Run("failsafe-go", func(b *testing.B) {
		ex := newFailsafe(b, true)
		b.ReportAllocs()
		for b.Loop() {
			if err := ex.Run(fsOK); err == nil {
				b.Fatal("not rejected")
			}
		}
	})
}

func BenchmarkBreakerRejectionParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("selfheal", func(b *testing.B) {
		br := newSelfheal(b, true)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = br.Do(ctx, okCtx)
			}
		})
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := newGobreaker(b, true)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = cb.Execute(gbOK)
			}
		})
	})
	b.Run("failsafe-go", func(b *testing.B) {
		ex := newFailsafe(b, true)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = ex.Run(fsOK)
			}
		})
	})
}

// BenchmarkGroupGet looks up an existing key among 100 (no peer has keyed groups).
func BenchmarkGroupGet(b *testing.B) {
	g, err := breaker.NewGroup(breaker.GroupConfig{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		g.Get("host-" + strconv.Itoa(i) + ".example.com")
	}
	key := "host-42.example.com"
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if g.Get(key) == nil {
				b.Fatal("nil")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = g.Get(key)
			}
		})
	})
}
