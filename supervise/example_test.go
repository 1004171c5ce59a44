package supervise_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/selfheal-go/selfheal/supervise"
)

// A worker that fails twice is restarted, and Snapshot shows it.
func Example() {
	sup, err := supervise.New(supervise.Config{Name: "root", Backoff: supervise.NoBackoff})
	if err != nil {
		panic(err)
	}
	runs := 0
	ready := make(chan struct{})
	_, err = sup.Add(supervise.Func(func(ctx context.Context) error {
		runs++
		if runs < 3 {
			return fmt.Errorf("flaky run %d", runs)
		}
		close(ready)
		<-ctx.Done()
		return nil
	}), supervise.ChildConfig{Name: "worker"})
	if err != nil {
		panic(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sup.Serve(ctx) }()
	<-ready

	c := sup.Snapshot().Children[0]
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
	sup, _ := supervise.New(supervise.Config{Name: "root", MaxRestarts: 2, Backoff: supervise.NoBackoff})
	_, _ = sup.Add(supervise.Func(func(ctx context.Context) error {
		return errors.New("connection refused")
	}), supervise.ChildConfig{Name: "db"})
	err := sup.Serve(context.Background())

	fmt.Println(err)
	fmt.Println(errors.Is(err, supervise.ErrGaveUp), sup.Snapshot().State)
	// Output:
	// supervise: root gave up after more than 2 restarts within 30s; last, child "db" failed: connection refused
	// true failed
}

// Events reach Config.Hook on the goroutine where they happen; the events of
// one child arrive in order.
func ExampleConfig_hook() {
	stopped := make(chan struct{})
	sup, _ := supervise.New(supervise.Config{Name: "root",
		Backoff: supervise.NoBackoff,
		Hook: func(e supervise.Event) {
			fmt.Println(e)
			if e.Kind == supervise.EventStopped {
				close(stopped)
			}
		},
	})
	runs := 0
	_, _ = sup.Add(supervise.Func(func(ctx context.Context) error {
		runs++
		if runs == 1 {
			return errors.New("database not ready")
		}
		return nil // done: a Transient child is not restarted
	}), supervise.ChildConfig{Name: "migrate", Restart: supervise.Transient})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sup.Serve(ctx) }()
	<-stopped
	cancel()
	<-done
	// Output:
	// root/migrate: started
	// root/migrate: failed: database not ready
	// root/migrate: restarting in 0s (cause error, restart 1)
	// root/migrate: started
	// root/migrate: stopped
}

// Supervisors nest: here a one-for-all group of a connection pool and its
// cache under the root, next to an HTTP server. Snapshot walks the tree.
func ExampleSupervisor_Snapshot() {
	var started sync.WaitGroup
	leaf := supervise.Func(func(ctx context.Context) error {
		started.Done()
		<-ctx.Done()
		return nil
	})
	root, _ := supervise.New(supervise.Config{Name: "root"})
	db, _ := supervise.New(supervise.Config{Name: "db", Strategy: supervise.OneForAll})
	started.Add(3)
	_, _ = db.Add(leaf, supervise.ChildConfig{Name: "pool"})
	_, _ = db.Add(leaf, supervise.ChildConfig{Name: "cache"})
	_, _ = root.Add(db, supervise.ChildConfig{}) // named "db", after the supervisor
	_, _ = root.Add(leaf, supervise.ChildConfig{Name: "http"})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- root.Serve(ctx) }()
	started.Wait()

	for _, c := range root.Snapshot().All() {
		fmt.Println(c.Path, c.State, c.Restart)
	}
	cancel()
	fmt.Println(<-done)
	// Output:
	// root/db running permanent
	// root/db/pool running permanent
	// root/db/cache running permanent
	// root/http running permanent
	// <nil>
}

// Children can be added and removed while the supervisor runs; Remove waits
// for the child to return.
func ExampleSupervisor_Remove() {
	sup, _ := supervise.New(supervise.Config{Name: "root"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sup.Serve(ctx) }()

	started := make(chan struct{})
	id, _ := sup.Add(supervise.Func(func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		fmt.Println("job: cleaning up")
		return nil
	}), supervise.ChildConfig{Name: "job", Restart: supervise.Transient})
	<-started
	fmt.Println(len(sup.Snapshot().Children), "child")

	if err := sup.Remove(context.Background(), id); err != nil {
		fmt.Println(err)
	}
	fmt.Println(len(sup.Snapshot().Children), "children")
	cancel()
	fmt.Println(<-done)
	// Output:
	// 1 child
	// job: cleaning up
	// 0 children
	// <nil>
}

// StopChild stops a child and keeps it listed; RestartChild starts it again
// (OTP's terminate_child and restart_child).
func ExampleSupervisor_StopChild() {
	sup, _ := supervise.New(supervise.Config{Name: "root"})
	started := make(chan struct{}, 2)
	id, _ := sup.Add(supervise.Func(func(ctx context.Context) error {
		started <- struct{}{}
		<-ctx.Done()
		return nil
	}), supervise.ChildConfig{Name: "consumer"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sup.Serve(ctx) }()
	<-started

	_ = sup.StopChild(context.Background(), id)
	fmt.Println(sup.Snapshot().Children[0].State)
	_ = sup.RestartChild(id)
	<-started
	fmt.Println(sup.Snapshot().Children[0].State)

	other, _ := supervise.New(supervise.Config{Name: "other"})
	fmt.Println(errors.Is(other.Remove(context.Background(), id), supervise.ErrUnknownChild))
	cancel()
	fmt.Println(<-done)
	// Output:
	// stopped
	// running
	// true
	// <nil>
}

// A supervisor whose job is done when a significant child finishes shuts
// down on its own (OTP 24's auto_shutdown): its Serve returns nil.
func ExampleConfig_autoShutdown() {
	sup, _ := supervise.New(supervise.Config{
		Name:         "batch",
		AutoShutdown: supervise.AnySignificant,
		Hook: func(e supervise.Event) {
			if e.Kind == supervise.EventAutoShutdown {
				fmt.Println(e)
			}
		},
	})
	reporting := make(chan struct{})
	_, _ = sup.Add(supervise.Func(func(ctx context.Context) error {
		close(reporting)
		<-ctx.Done() // a helper, stopped when the job is done
		fmt.Println("progress reporter: stopped")
		return nil
	}), supervise.ChildConfig{Name: "progress"})
	_, _ = sup.Add(supervise.Func(func(ctx context.Context) error {
		<-reporting
		fmt.Println("import: done")
		return nil
	}), supervise.ChildConfig{Name: "import", Restart: supervise.Transient, Significant: true})

	fmt.Println("serve:", sup.Serve(context.Background()))
	// Output:
	// import: done
	// batch/import: auto-shutdown
	// progress reporter: stopped
	// serve: <nil>
}

// MaxRestarts: NoRestarts is OTP's intensity 0: the supervisor gives up at the
// first end of a child that would be restarted.
func ExampleNoRestarts() {
	sup, _ := supervise.New(supervise.Config{Name: "root", MaxRestarts: supervise.NoRestarts})
	_, _ = sup.Add(supervise.Func(func(ctx context.Context) error {
		return errors.New("config invalid")
	}), supervise.ChildConfig{Name: "loader"})
	fmt.Println(sup.Serve(context.Background()))
	// Output:
	// supervise: root gave up after more than 0 restarts within 30s; last, child "loader" failed: config invalid
}

// A child never runs twice at once. Here a one-for-all group must restart a
// child that ignores cancellation: rather than start a second copy of it
// next to the abandoned one, the supervisor gives up, naming the child.
func ExampleStopTimeoutError() {
	sup, _ := supervise.New(supervise.Config{
		Name:            "root",
		Strategy:        supervise.OneForAll,
		ShutdownTimeout: 10 * time.Millisecond,
	})
	started, release, returned := make(chan struct{}), make(chan struct{}), make(chan struct{})
	_, _ = sup.Add(supervise.Func(func(ctx context.Context) error {
		defer close(returned)
		close(started)
		<-release // ignores ctx
		return nil
	}), supervise.ChildConfig{Name: "deaf"})
	_, _ = sup.Add(supervise.Func(func(ctx context.Context) error {
		<-started
		return errors.New("lost connection")
	}), supervise.ChildConfig{Name: "client"})

	err := sup.Serve(context.Background())
	fmt.Println(err)
	fmt.Println(errors.Is(err, supervise.ErrStopTimeout), sup.Snapshot().Abandoned)
	close(release)
	<-returned
	// Output:
	// supervise: root gave up: child "deaf" could not be stopped: supervise: root: child "deaf" did not stop within 10ms and was abandoned
	// true 1
}
