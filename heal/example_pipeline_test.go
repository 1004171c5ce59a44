package heal_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

// The ready-made pipeline: fallback(retry(breaker(rate limit(timeout(bulkhead(fn)))))).
func ExampleNew() {
	p, err := heal.New(heal.Config{
		Name:     "inventory",
		Retry:    &retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Millisecond})},
		Breaker:  &breaker.Config{ConsecutiveFailures: 5},
		Timeout:  &heal.TimeoutConfig{Timeout: time.Second},
		Bulkhead: &heal.BulkheadConfig{MaxConcurrent: 50},
	})
	if err != nil {
		panic(err)
	}
	attempts := 0
	stock, err := heal.Call(context.Background(), p, func(ctx context.Context) (int, error) {
		attempts++
		if attempts < 3 {
			return 0, errors.New("connection reset")
		}
		return 7, nil
	})
	fmt.Println(stock, err, attempts)
	// Output: 7 <nil> 3
}

// With a fallback, the pipeline degrades instead of failing: here while the breaker
// is open.
func ExampleConfig_fallback() {
	p, _ := heal.New(heal.Config{
		Breaker: &breaker.Config{},
		Fallback: &heal.FallbackConfig{Func: func(ctx context.Context, err error) error {
			if errors.Is(err, breaker.ErrOpen) {
				fmt.Println("serving from cache")
				return nil
			}
			return err
		}},
	})
	p.Breaker().ForceOpen()
	err := p.Do(context.Background(), func(context.Context) error { return nil })
	fmt.Println(err)
	// Output:
	// serving from cache
	// <nil>
}

// Only the stages a Config names are in the pipeline: here a timeout and nothing
// else, so that 30 concurrent calls all run (no hidden bulkhead, no hidden breaker).
func ExampleConfig_stages() {
	p, _ := heal.New(heal.Config{Timeout: &heal.TimeoutConfig{Timeout: time.Second}})
	fmt.Println(p.Breaker() == nil, p.Bulkhead() == nil, p.Retry() == nil, p.Timeout().Duration())
	// Output: true true true 1s
}

// heal.Call returns, with the error, the value the last run of fn returned.
func ExampleCall_lastValue() {
	p, _ := heal.New(heal.Config{Retry: &retry.Config{MaxAttempts: 2, Backoff: retry.Constant(time.Millisecond)}})
	runs := 0
	page, err := heal.Call(context.Background(), p, func(context.Context) ([]string, error) {
		runs++
		return []string{fmt.Sprint("partial result of run ", runs)}, errors.New("timeout reading the rest")
	})
	fmt.Println(page, errors.Is(err, retry.ErrExhausted))
	// Output: [partial result of run 2] true
}
