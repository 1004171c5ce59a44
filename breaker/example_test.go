package breaker_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/selfheal-go/selfheal/breaker"
)

// A breaker trips after consecutive failures and then rejects calls without running
// them.
func Example() {
	b, err := breaker.New(breaker.Config{Name: "inventory", ConsecutiveFailures: 3})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	unavailable := errors.New("inventory: 503 service unavailable")

	for i := range 4 {
		err := b.Do(ctx, func(ctx context.Context) error {
			fmt.Println("calling inventory", i)
			return unavailable
		})
		fmt.Printf("call %d: open=%v err=%v\n", i, errors.Is(err, breaker.ErrOpen), errors.Is(err, unavailable))
	}
	fmt.Println(b.Snapshot().State)
	// Output:
	// calling inventory 0
	// call 0: open=false err=true
	// calling inventory 1
	// call 1: open=false err=true
	// calling inventory 2
	// call 2: open=false err=true
	// call 3: open=true err=false
	// open
}

// Call carries a value through the breaker.
func ExampleCall() {
	b, err := breaker.New(breaker.Config{Name: "prices"})
	if err != nil {
		panic(err)
	}
	price, err := breaker.Call(context.Background(), b, func(ctx context.Context) (float64, error) {
		return 9.99, nil
	})
	fmt.Println(price, err)
	// Output: 9.99 <nil>
}

// Snapshot reports the state and the counts of the current state.
func ExampleBreaker_Snapshot() {
	b, err := breaker.New(breaker.Config{Name: "search"})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	_ = b.Do(ctx, func(context.Context) error { return nil })
	_ = b.Do(ctx, func(context.Context) error { return errors.New("timeout") })
	_ = b.Do(ctx, func(context.Context) error { return errors.New("timeout") })

	s := b.Snapshot()
	fmt.Printf("%s is %s: %d calls, %d failed, %d in a row\n",
		s.Name, s.State, s.Counts.Requests, s.Counts.Failures, s.Counts.ConsecutiveFailures)
	// Output: search is closed: 3 calls, 2 failed, 2 in a row
}
