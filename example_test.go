package selfheal_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

// Policies compose in the order given, outermost first: here a retry around a
// circuit breaker. The flaky call fails twice, and the retry policy runs it a third
// time; the breaker counts each failure but stays closed (it trips after 5 in a row).
func Example() {
	r, err := retry.New(retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Millisecond})})
	if err != nil {
		panic(err)
	}
	b, err := breaker.New(breaker.Config{Name: "inventory"})
	if err != nil {
		panic(err)
	}
	p := heal.Chain(r, b)

	calls := 0
	stock, err := heal.Call(context.Background(), p, func(ctx context.Context) (int, error) {
		calls++
		if calls < 3 {
			return 0, errors.New("connection reset")
		}
		return 42, nil
	})
	fmt.Println(stock, err, calls, b.Snapshot().State)
	// Output: 42 <nil> 3 closed
}
