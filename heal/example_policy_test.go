package heal_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/selfheal-go/selfheal/heal"
)

// Compose policies in the order you choose, the outermost first, and carry a result
// through them with Call.
func ExampleChain() {
	bulkhead, _ := heal.NewBulkhead(heal.BulkheadConfig{Name: "db", MaxConcurrent: 10})
	timeout, _ := heal.NewTimeout(heal.TimeoutConfig{Timeout: time.Second})
	p := heal.Chain(timeout, bulkhead)

	n, err := heal.Call(context.Background(), p, func(ctx context.Context) (int, error) {
		return 42, nil // a query, honouring ctx
	})
	fmt.Println(n, err)
	// Output: 42 <nil>
}

// A Timeout's error matches both heal.ErrTimeout and context.DeadlineExceeded.
func ExampleTimeout() {
	timeout, _ := heal.NewTimeout(heal.TimeoutConfig{Timeout: 10 * time.Millisecond})
	err := timeout.Do(context.Background(), func(ctx context.Context) error {
		<-ctx.Done() // a slow call that honours its context
		return ctx.Err()
	})
	fmt.Println(errors.Is(err, heal.ErrTimeout), errors.Is(err, context.DeadlineExceeded))
	// Output: true true
}

// A full bulkhead rejects without running the call.
func ExampleBulkhead() {
	b, _ := heal.NewBulkhead(heal.BulkheadConfig{Name: "reports", MaxConcurrent: 1})
	err := b.Do(context.Background(), func(ctx context.Context) error {
		// While this call holds the only slot, another is turned away.
		return b.Do(ctx, func(context.Context) error { return nil })
	})
	fmt.Println(errors.Is(err, heal.ErrBulkheadFull), heal.IsRejected(err))
	fmt.Println(err)
	// Output:
	// true true
	// heal: bulkhead full (bulkhead "reports")
}

// A rate limit in reject mode tells the caller when to come back.
func ExampleRateLimit() {
	// One call an hour, say a partner's quota.
	l, _ := heal.NewRateLimit(heal.RateLimitConfig{Name: "partner-api", Rate: 1.0 / 3600, Burst: 1})
	for i := range 2 {
		err := l.Do(context.Background(), func(context.Context) error { return nil })
		d, _ := heal.RetryAfter(err)
		fmt.Println(i, errors.Is(err, heal.ErrRateLimited), d.Round(time.Minute))
	}
	// Output:
	// 0 false 0s
	// 1 true 1h0m0s
}

// Substitute a value when the call fails.
func ExampleCallWithFallback() {
	price, err := heal.CallWithFallback(context.Background(), nil,
		func(context.Context) (float64, error) { return 0, errors.New("pricing service down") },
		nil, heal.Value(9.99))
	fmt.Println(price, err)
	// Output: 9.99 <nil>
}

// Hedge a slow call: after the delay a second attempt starts and the first success
// wins.
func ExampleHedge() {
	h, _ := heal.NewHedge(heal.HedgeConfig{Delay: 10 * time.Millisecond})
	var attempts atomic.Int32
	replica, _ := heal.Call(context.Background(), h, func(ctx context.Context) (string, error) {
		if attempts.Add(1) == 1 {
			<-ctx.Done() // the first replica hangs until the hedge wins
			return "", ctx.Err()
		}
		return "replica-2", nil
	})
	fmt.Println(replica)
	// Output: replica-2
}

// An adaptive limit finds the concurrency a dependency can take.
func ExampleAdaptiveLimit() {
	alg, _ := heal.NewAIMD(heal.AIMDConfig{InitialLimit: 10, MinLimit: 1, MaxLimit: 100})
	l := heal.NewAdaptiveLimit(heal.AdaptiveLimitConfig{Name: "search", Algorithm: alg})
	for range 3 {
		_ = l.Do(context.Background(), func(context.Context) error { return context.DeadlineExceeded })
	}
	fmt.Println(l.Limit()) // 10 -> 9 -> 8 -> 7
	// Output: 7
}
