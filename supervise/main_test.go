package supervise_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal/supervise"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder collects events; its hook is safe for concurrent use.
type recorder struct {
	mu     sync.Mutex
	events []supervise.Event
}

func (r *recorder) hook(e supervise.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// trace returns the events of the given kinds as "kind:child" strings.
func (r *recorder) trace(kinds ...supervise.EventKind) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		for _, k := range kinds {
			if e.Kind == k {
				out = append(out, fmt.Sprintf("%s:%s", e.Kind, e.Child))
			}
		}
	}
	return out
}

func (r *recorder) all() []supervise.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]supervise.Event(nil), r.events...)
}

// serve runs s.Serve in a goroutine; the returned function cancels it and
// returns its error.
func serve(s *supervise.Supervisor) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx) }()
	return func() error {
		cancel()
		return <-errc
	}
}

// blocker is a service that runs until its context is cancelled.
func blocker(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// failsOnce is a service that returns err on its first run and is a blocker after.
func failsOnce(err error) func(context.Context) error {
	runs := 0
	return func(ctx context.Context) error {
		runs++
		if runs == 1 {
			return err
		}
		return blocker(ctx)
	}
}

// namedService is a service named by its String method.
type namedService struct {
	name string
	fn   supervise.Func
}

func (n namedService) Serve(ctx context.Context) error { return n.fn(ctx) }
func (n namedService) String() string                  { return n.name }

// named returns a service that runs fn and is named name.
func named(name string, fn func(context.Context) error) supervise.Service {
	return namedService{name: name, fn: fn}
}
