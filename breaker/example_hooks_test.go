package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/selfheal-go/selfheal/breaker"
)

// OnStateChange sees every state change, in order, outside the breaker's locks.
// Logger logs them.
func ExampleConfig_onStateChange() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // keep the output stable
			}
			return a
		},
	}))
	b, err := breaker.New(breaker.Config{
		Name:                "queue",
		ConsecutiveFailures: 1,
		Logger:              logger,
		OnStateChange: func(name string, from, to breaker.State) {
			fmt.Printf("hook: %s %s -> %s\n", name, from, to)
		},
	})
	if err != nil {
		panic(err)
	}
	_ = b.Do(context.Background(), func(context.Context) error { return errors.New("full") })
	b.ForceClosed()
	// Output:
	// level=INFO msg="breaker state changed" selfheal.policy.name=queue selfheal.state.previous=closed selfheal.state=open selfheal.forced=false
	// hook: queue closed -> open
	// level=INFO msg="breaker state changed" selfheal.policy.name=queue selfheal.state.previous=open selfheal.state=closed selfheal.forced=true
	// hook: queue open -> closed
}
