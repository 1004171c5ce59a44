package peerbench_test

// heal benchmarks: the selfheal pipeline against failsafe-go's equivalent and a
// hand-written floor, the server middleware against the bare handler, and an outage
// scenario, all in the same run.
//
//	go test -run '^$' -bench 'Heal' -benchmem -count 5 ./internal/peerbench/
//
// BenchmarkHealPipeline: retry + breaker + bulkhead + timeout around a call that
// succeeds. "floor" is what a careful hand-written version costs: gobreaker,
// rate.Limiter.Allow and context.WithTimeout.
//
// BenchmarkHealMiddleware: a trivial handler, bare and behind heal.Middleware with
// concurrency and rate shedding, called directly (no network).
//
// BenchmarkHealOutage: see heal_outage_test.go.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

func healOK(context.Context) error { return nil }

func healPipeline(b *testing.B) *heal.Pipeline {
	b.Helper()
	p, err := heal.New(heal.Config{Retry: &retry.Config{}, Breaker: &breaker.Config{},
		Timeout: &heal.TimeoutConfig{Timeout: time.Second}, Bulkhead: &heal.BulkheadConfig{MaxConcurrent: 1 << 16}})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func healFailsafe() failsafe.Executor[any] {
	rp := retrypolicy.NewBuilder[any]().WithMaxAttempts(3).WithBackoff(100*time.Millisecond, 10*time.Second).Build()
	cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(5).WithDelay(time.Minute).Build()
	bh := bulkhead.New[any](1 << 16)
	to := timeout.New[any](time.Second)
	return failsafe.With[any](rp, cb, bh, to)
}

// healFloor is the hand-written floor: a breaker, a limiter and a deadline.
type healFloor struct {
	cb  *gobreaker.CircuitBreaker[struct{}]
	lim *rate.Limiter
}

func newHealFloor() *healFloor {
	return &healFloor{
		cb:  gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "floor"}),
		lim: rate.NewLimiter(rate.Inf, 1),
	}
}

func (f *healFloor) do(ctx context.Context, fn func(context.Context) error) error {
	_, err := f.cb.Execute(func() (struct{}, error) {
		if !f.lim.Allow() {
			return struct{}{}, heal.ErrRateLimited
		}
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return struct{}{}, fn(ctx)
	})
	return err
}

func BenchmarkHealPipeline(b *testing.B) {
	ctx := context.Background()
	b.Run("selfheal", func(b *testing.B) {
		p := healPipeline(b)
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Do(ctx, healOK); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("failsafe-go", func(b *testing.B) {
		ex := healFailsafe()
		b.ReportAllocs()
		for b.Loop() {
			if err := ex.RunWithExecution(func(e failsafe.Execution[any]) error { return healOK(e.Context()) }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("floor", func(b *testing.B) {
		f := newHealFloor()
		b.ReportAllocs()
		for b.Loop() {
			if err := f.do(ctx, healOK); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHealPipelineParallel(b *testing.B) {
	b.Run("selfheal", func(b *testing.B) {
		p := healPipeline(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if err := p.Do(ctx, healOK); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("failsafe-go", func(b *testing.B) {
		ex := healFailsafe()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := ex.RunWithExecution(func(e failsafe.Execution[any]) error { return healOK(e.Context()) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("floor", func(b *testing.B) {
		f := newHealFloor()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if err := f.do(ctx, healOK); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func BenchmarkHealMiddleware(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	m, err := heal.NewMiddleware(heal.MiddlewareConfig{MaxConcurrent: 1 << 16, Rate: 1e12})
	if err != nil {
		b.Fatal(err)
	}
	mOnly, err := heal.NewMiddleware(heal.MiddlewareConfig{})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", h},
		{"selfheal-recover+record", mOnly.Wrap(h)},
		{"selfheal-shedding", m.Wrap(h)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := httptest.NewRecorder()
				for pb.Next() {
					bc.h.ServeHTTP(w, req)
				}
			})
		})
	}
}
