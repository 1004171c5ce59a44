package heal_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/selfheal-go/selfheal/heal"
)

// A policy's Logger gets a Debug record for what it does to a call, with the keys
// of its metrics; its hooks hear of the same events as they happen.
func ExampleTimeoutConfig_logsAndHooks() {
	// A text handler at Debug, without the time, so that the output is stable.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
	timeout, _ := heal.NewTimeout(heal.TimeoutConfig{Name: "slow-api", Timeout: 10 * time.Millisecond, Logger: logger,
		OnTimeout: func(_ context.Context, err *heal.TimeoutError) { fmt.Println("OnTimeout:", err) }})

	_ = timeout.Do(context.Background(), func(ctx context.Context) error {
		<-ctx.Done() // a call that takes too long
		return ctx.Err()
	})
	// Output:
	// level=DEBUG msg="heal: timeout expired" selfheal.policy.name=slow-api
	// OnTimeout: heal: timeout after 10ms ("slow-api"): context deadline exceeded
}
