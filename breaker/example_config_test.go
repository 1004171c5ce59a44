package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/breaker"
)

// A failure-rate rule over the last 10 calls, once at least 4 have been made.
func ExampleConfig_failureRate() {
	b, err := breaker.New(breaker.Config{
		Name:         "ledger",
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
		fmt.Print(b.Snapshot().State, " ")
	}
	fmt.Println()
	// Output: closed closed closed open
}

// A slow-call rule: trip when at least half of the last 4 calls took 50ms or more,
// as resilience4j's slowCallRateThreshold does, whatever their outcome.
func ExampleConfig_slowCalls() {
	b, err := breaker.New(breaker.Config{
		Name:             "reports",
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
	s := b.Snapshot()
	fmt.Println(s.State)
	// Output: open
}

// Classify decides which calls say the downstream is unhealthy, on the error and on
// the result. Here "not found" is a healthy answer (a success), a validation error
// says nothing about the downstream (ignored), and a result marked degraded is a
// failure although no error came back.
func ExampleConfig_classify() {
	errNotFound := errors.New("not found")
	errInvalid := errors.New("invalid request")
	type answer struct{ degraded bool }
	b, err := breaker.New(breaker.Config{
		Name:                "users",
		ConsecutiveFailures: 2,
		Classify: func(result any, err error) selfheal.Outcome {
			switch {
			case errors.Is(err, errNotFound):
				return selfheal.Success
			case errors.Is(err, errInvalid):
				return selfheal.Ignored
			}
			if a, ok := result.(answer); ok && a.degraded {
				return selfheal.Failure
			}
			return breaker.DefaultClassify(result, err)
		},
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, e := range []error{errNotFound, errInvalid, errNotFound} {
		_, _ = breaker.Call(ctx, b, func(context.Context) (answer, error) { return answer{}, fmt.Errorf("user 42: %w", e) })
	}
	c := b.Snapshot().Counts
	fmt.Println(b.Snapshot().State, c.Successes, c.Excluded)
	for range 2 {
		_, _ = breaker.Call(ctx, b, func(context.Context) (answer, error) { return answer{degraded: true}, nil })
	}
	fmt.Println(b.Snapshot().State)
	// Output:
	// closed 2 1
	// open
}

// Settings that cannot be honoured are reported by New, naming the field.
func ExampleNew_invalidConfig() {
	_, err := breaker.New(breaker.Config{FailureRate: 1.5})
	fmt.Println(err)
	var ce *breaker.ConfigError
	fmt.Println(errors.Is(err, breaker.ErrInvalidConfig), errors.As(err, &ce) && ce.Field == "Config.FailureRate")
	// Output:
	// breaker: invalid configuration: Config.FailureRate: is 1.5, want 0 < FailureRate <= 1 (0 for no failure-rate rule)
	// true true
}
