package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/selfheal-go/selfheal/breaker"
)

// A failure-rate rule over the last 10 calls, once at least 4 have been made.
func ExampleConfig_failureRate() {
	b, err := breaker.New("ledger", breaker.Config{
		FailureRate:  0.5,
		WindowSize:   10,
		MinimumCalls: 4,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	outcomes := []error{nil, errors.New("e1"), nil, errors.New("e2")} // 2 of 4 failed
	for _, e := range outcomes {
		_ = b.Do(ctx, func(context.Context) error { return e })
		fmt.Print(b.State().State, " ")
	}
	fmt.Println()
	// Output: closed closed closed open
}

// A slow-call rule: trip when at least half of the last 4 calls took 50ms or more,
// as resilience4j's slowCallRateThreshold does, whatever their outcome.
func ExampleConfig_slowCalls() {
	b, err := breaker.New("reports", breaker.Config{
		SlowCallDuration: 50 * time.Millisecond,
		SlowCallRate:     0.5,
		WindowSize:       4,
		MinimumCalls:     4,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, d := range []time.Duration{0, 60 * time.Millisecond, 0, 60 * time.Millisecond} {
		_ = b.Do(ctx, func(context.Context) error { time.Sleep(d); return nil })
	}
	s := b.State()
	fmt.Println(s.State)
	// Output: open
}

// IsFailure decides which errors say the downstream is unhealthy. Here "not found" is
// a healthy answer: it counts as a success.
func ExampleConfig_isFailure() {
	errNotFound := errors.New("not found")
	b, err := breaker.New("users", breaker.Config{
		ConsecutiveFailures: 2,
		IsFailure:           func(err error) bool { return !errors.Is(err, errNotFound) },
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for range 5 {
		_ = b.Do(ctx, func(context.Context) error { return fmt.Errorf("user 42: %w", errNotFound) })
	}
	fmt.Println(b.State().State, b.State().Counts.Successes)
	// Output: closed 5
}

// Settings that cannot be honoured are reported by New, naming the field.
func ExampleNew_invalidConfig() {
	_, err := breaker.New("x", breaker.Config{FailureRate: 1.5})
	fmt.Println(err)
	fmt.Println(errors.Is(err, breaker.ErrInvalidConfig))
	// Output:
	// breaker: invalid config: FailureRate is 1.5, want 0 < FailureRate <= 1 (0 for no failure-rate rule)
	// true
}
