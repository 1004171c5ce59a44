package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/selfheal-go/selfheal/breaker"
)

// Allow serves calls that cannot be wrapped in a function, such as a stream whose
// outcome is known only when it ends: take a permit, make the call, report it with
// done. Calling done again is harmless.
func ExampleBreaker_Allow() {
	b, err := breaker.New(breaker.Config{Name: "feed", ConsecutiveFailures: 2})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	errReset := errors.New("stream reset")
	for i := range 3 {
		done, err := b.Allow(ctx)
		if err != nil {
			fmt.Println("stream", i, "rejected:", errors.Is(err, breaker.ErrOpen))
			continue
		}
		// ... open the stream, read it until it ends ...
		done(nil, errReset)
		done(nil, errReset) // counted once
		fmt.Println("stream", i, "failed; failures in a row:", b.Snapshot().Counts.ConsecutiveFailures)
	}
	// Output:
	// stream 0 failed; failures in a row: 1
	// stream 1 failed; failures in a row: 0
	// stream 2 rejected: true
}

// The open wait grows while the downstream keeps failing its probes: OpenDuration,
// then doubled each time, up to MaxOpenDuration. It starts over once a probe succeeds.
func ExampleConfig_openBackoff() {
	b, err := breaker.New(breaker.Config{
		Name:                "search",
		ConsecutiveFailures: 1,
		OpenDuration:        100 * time.Millisecond,
		MaxOpenDuration:     400 * time.Millisecond,
		OpenJitter:          breaker.Off, // the default, 0.2, would spread the waits
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	down := func(context.Context) error { return errors.New("503") }
	_ = b.Do(ctx, down)
	for range 4 {
		err := b.Do(ctx, down) // rejected: still open
		var oe *breaker.OpenError
		if errors.As(err, &oe) {
			fmt.Println("open for", oe.RetryAfter().Round(50*time.Millisecond))
			time.Sleep(oe.RetryAfter() + time.Millisecond)
		}
		_ = b.Do(ctx, down) // the probe fails: open again, for longer
	}
	// Output:
	// open for 100ms
	// open for 200ms
	// open for 400ms
	// open for 400ms
}
