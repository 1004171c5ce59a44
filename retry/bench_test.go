package retry_test

import (
	"context"
	"testing"

	"github.com/selfheal-go/selfheal/retry"
)

func BenchmarkDoSuccess(b *testing.B) {
	p, err := retry.New(retry.Config{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	b.ReportAllocs()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = p.Do(ctx, fn)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = p.Do(ctx, fn)
			}
		})
	})
	bud, _ := retry.NewBudget(retry.BudgetConfig{})
	pb, _ := retry.New(retry.Config{Budget: bud})
	b.Run("budget", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = pb.Do(ctx, fn)
		}
	})
	b.Run("call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = retry.Call(ctx, p, func(context.Context) (int, error) { return 1, nil })
		}
	})
}
