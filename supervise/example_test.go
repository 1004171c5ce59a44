package supervise_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/selfheal-go/selfheal/supervise"
)

// A worker that fails twice is restarted, and Status shows it.
func Example() {
	sup, err := supervise.New("root", supervise.Config{Backoff: supervise.NoBackoff})
	if err != nil {
		panic(err)
	}
	runs := 0
	ready := make(chan struct{})
	_, err = sup.Add(supervise.ServiceFunc("worker", func(ctx context.Context) error {
		runs++
		if runs < 3 {
			return fmt.Errorf("flaky run %d", runs)
		}
		close(ready)
		<-ctx.Done()
		return nil
	}))
	if err != nil {
		panic(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sup.Serve(ctx) }()
	<-ready

	c := sup.Status().Children[0]
	fmt.Println(c.Path, c.State, c.Restarts, c.LastError)
	cancel()
	fmt.Println("serve:", <-done)
	// Output:
	// root/worker running 2 flaky run 2
	// serve: <nil>
}

// A supervisor that exceeds its restart intensity gives up: it stops its
// children and returns an *EscalationError to its caller (or parent).
func ExampleEscalationError() {
	sup, _ := supervise.New("root", supervise.Config{MaxRestarts: 2, Backoff: supervise.NoBackoff})
	_, _ = sup.Add(supervise.ServiceFunc("db", func(ctx context.Context) error {
		return errors.New("connection refused")
	}))
	err := sup.Serve(context.Background())

	fmt.Println(err)
	fmt.Println(errors.Is(err, supervise.ErrGaveUp), sup.Status().State)
	// Output:
	// supervise: root gave up after more than 2 restarts within 30s; last, child "db" failed: connection refused
	// true failed
}
