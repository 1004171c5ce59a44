package breaker_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/selfheal-go/selfheal/breaker"
)

// A Group keeps one breaker per downstream host: one failing host does not stop
// calls to the others.
func ExampleGroup() {
	g, err := breaker.NewGroup(breaker.GroupConfig{
		Name:    "upstreams",
		Breaker: breaker.Config{ConsecutiveFailures: 2},
		MaxKeys: 100,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	call := func(host string) error {
		return g.Do(ctx, host, func(ctx context.Context) error {
			if host == "b.internal" {
				return errors.New("connection reset")
			}
			return nil
		})
	}
	for range 3 {
		_ = call("a.internal")
		_ = call("b.internal")
	}
	for _, s := range g.Snapshot() {
		fmt.Println(s.Name, s.State)
	}
	fmt.Println(errors.Is(call("b.internal"), breaker.ErrOpen), call("a.internal"))
	// Output:
	// upstreams/a.internal closed
	// upstreams/b.internal open
	// true <nil>
}
