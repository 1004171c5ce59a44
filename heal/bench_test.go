package heal_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

func BenchmarkPipelineSuccess(b *testing.B) {
	p, err := heal.New(heal.Config{Retry: &retry.Config{}, Breaker: &breaker.Config{},
		Timeout: &heal.TimeoutConfig{Timeout: time.Second}, Bulkhead: &heal.BulkheadConfig{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Do(ctx, ok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPipelineSuccessParallel(b *testing.B) {
	p, err := heal.New(heal.Config{Retry: &retry.Config{}, Breaker: &breaker.Config{},
		Timeout: &heal.TimeoutConfig{Timeout: time.Second}, Bulkhead: &heal.BulkheadConfig{MaxConcurrent: 1 << 20}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := p.Do(ctx, ok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPolicies(b *testing.B) {
	bh, _ := heal.NewBulkhead(heal.BulkheadConfig{})
	rl, _ := heal.NewRateLimit(heal.RateLimitConfig{Rate: 1e12})
	to, _ := heal.NewTimeout(heal.TimeoutConfig{Timeout: time.Second})
	al := heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{})
	fb, _ := heal.NewFallback(heal.FallbackConfig{Func: func(context.Context, error) error { return nil }})
	for _, bc := range []struct {
		name string
		p    heal.Policy
	}{
		{"Bulkhead", bh}, {"RateLimit", rl}, {"Timeout", to}, {"AdaptiveLimit", al}, {"Fallback", fb},
		{"Chain3", heal.Chain(fb, bh, rl)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_ = bc.p.Do(ctx, ok)
			}
		})
	}
}

func BenchmarkCall(b *testing.B) {
	bh, _ := heal.NewBulkhead(heal.BulkheadConfig{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = heal.Call(ctx, bh, func(context.Context) (int, error) { return 1, nil })
	}
}

func BenchmarkMiddleware(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	m, _ := heal.NewMiddleware(heal.MiddlewareConfig{MaxConcurrent: 1000, Rate: 1e12})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"Bare", h}, {"Middleware", m.Wrap(h)}} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}

func BenchmarkRecorderObserve(b *testing.B) {
	r, _ := heal.NewRecorder(heal.RecorderConfig{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Observe(time.Millisecond)
		}
	})
}
