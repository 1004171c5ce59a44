package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/selfheal-go/selfheal/breaker"
)

// The rejection error tells which breaker rejected the call and for how long it stays
// open. RetryAfter is computed when asked, so it is accurate however long the error
// has been kept.
func ExampleOpenError() {
	b, err := breaker.New(breaker.Config{Name: "payments", ConsecutiveFailures: 1, OpenDuration: time.Minute})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	_ = b.Do(ctx, func(context.Context) error { return errors.New("connection refused") })

	err = b.Do(ctx, func(context.Context) error { return nil })
	var oe *breaker.OpenError
	if errors.As(err, &oe) {
		fmt.Println(oe.Name, oe.State, errors.Is(err, breaker.ErrOpen))
		fmt.Println("retry in about", oe.RetryAfter().Round(time.Minute))
	}
	// Output:
	// payments open true
	// retry in about 1m0s
}

// A forced-open breaker rejects every call until ForceClosed or Reset.
func ExampleBreaker_ForceOpen() {
	b, err := breaker.New(breaker.Config{Name: "mailer"})
	if err != nil {
		panic(err)
	}
	b.ForceOpen()
	err = b.Do(context.Background(), func(context.Context) error { return nil })
	fmt.Println(err)
	b.Reset()
	fmt.Println(b.Snapshot().State)
	// Output:
	// breaker: circuit open: breaker "mailer" is forced open
	// closed
}
