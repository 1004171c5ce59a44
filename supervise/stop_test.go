package supervise_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/supervise"
)

// stubborn ignores its context until release is closed.
func stubborn(release <-chan struct{}) supervise.Func {
	return func(context.Context) error {
		<-release
		return nil
	}
}

// A child that ignores cancellation is abandoned after its shutdown timeout,
// reported with its stack, and never blocks the tree.
func TestChildThatNeverStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		s, err := supervise.New("root", supervise.Config{ShutdownTimeout: 3 * time.Second, Hook: rec.hook})
		require.NoError(t, err)
		release := make(chan struct{})
		_, err = s.Add(supervise.ServiceFunc("polite", blocker))
		require.NoError(t, err)
		_, err = s.Add(supervise.ServiceFunc("stubborn", stubborn(release)), supervise.WithShutdownTimeout(2*time.Second))
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()

		begin := time.Now()
		err = stop()
		assert.Equal(t, 2*time.Second, time.Since(begin))
		require.ErrorIs(t, err, supervise.ErrStopTimeout)
		var ste *supervise.StopTimeoutError
		require.ErrorAs(t, err, &ste)
		assert.Equal(t, "stubborn", ste.Child)
		assert.Equal(t, 2*time.Second, ste.Timeout)
		assert.Contains(t, string(ste.Stack), "TestChildThatNeverStops", "the stack shows where the child is stuck")
		assert.Equal(t, []string{"abandoned:stubborn", "stopped:polite"}, rec.trace(supervise.EventAbandoned, supervise.EventStopped))
		assert.Equal(t, supervise.StateFailed, s.Status().Children[1].State)

		close(release) // let the abandoned goroutine end
		synctest.Wait()
	})
}

// Remove stops one child, waits for it, and forgets it.
func TestRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := supervise.New("root", supervise.Config{})
		require.NoError(t, err)
		release := make(chan struct{})
		a, err := s.Add(supervise.ServiceFunc("a", blocker))
		require.NoError(t, err)
		stopped := false
		b, err := s.Add(supervise.ServiceFunc("b", func(ctx context.Context) error {
			<-ctx.Done()
			stopped = true
			return nil
		}))
		require.NoError(t, err)
		c, err := s.Add(supervise.ServiceFunc("c", stubborn(release)), supervise.WithShutdownTimeout(time.Second))
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()

		require.NoError(t, s.Remove(context.Background(), b))
		assert.True(t, stopped, "Remove returns after the child returned")
		assert.ErrorIs(t, s.Remove(context.Background(), b), supervise.ErrNotFound)
		assert.ErrorIs(t, s.Remove(context.Background(), 999), supervise.ErrNotFound)

		err = s.Remove(context.Background(), c)
		require.ErrorIs(t, err, supervise.ErrStopTimeout)

		names := []string{}
		for _, ch := range s.Status().Children {
			names = append(names, ch.Name)
		}
		assert.Equal(t, []string{"a"}, names)

		// A name is free again once its child is removed.
		_, err = s.Add(supervise.ServiceFunc("b", blocker))
		require.NoError(t, err)
		require.NoError(t, s.Remove(context.Background(), a))
		require.NoError(t, stop())
		close(release)
		synctest.Wait()
	})
}

// Remove gives up waiting when its context is done.
func TestRemoveContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := supervise.New("root", supervise.Config{})
		require.NoError(t, err)
		release := make(chan struct{})
		id, err := s.Add(supervise.ServiceFunc("slow", stubborn(release)))
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		assert.ErrorIs(t, s.Remove(ctx, id), context.DeadlineExceeded)
		close(release)
		require.NoError(t, stop())
	})
}

// Children added before Serve start with it; children added while it serves
// start at once; Add and Remove run concurrently with restarts.
func TestDynamicChildrenUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := supervise.New("root", supervise.Config{Backoff: supervise.NoBackoff, MaxRestarts: 1000, Period: 10 * time.Millisecond})
		require.NoError(t, err)
		for i := range 4 {
			_, err := s.Add(supervise.ServiceFunc(fmt.Sprintf("load-%d", i), func(ctx context.Context) error {
				select {
				case <-time.After(time.Millisecond):
					return errBoom
				case <-ctx.Done():
					return nil
				}
			}))
			require.NoError(t, err)
		}
		stop := serve(s)

		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 25 {
					started := make(chan struct{})
					id, err := s.Add(supervise.ServiceFunc(fmt.Sprintf("dyn-%d-%d", w, i), func(ctx context.Context) error {
						close(started)
						<-ctx.Done()
						return nil
					}))
					if !assert.NoError(t, err) {
						return
					}
					<-started
					time.Sleep(time.Millisecond) // the load children restart meanwhile
					_ = s.Status()
					assert.NoError(t, s.Remove(context.Background(), id))
				}
			})
		}
		wg.Wait()
		st := s.Status()
		assert.Len(t, st.Children, 4)
		for _, c := range st.Children {
			assert.Positive(t, c.Restarts)
		}
		require.NoError(t, stop())
	})
}

func TestServeTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := supervise.New("root", supervise.Config{})
		require.NoError(t, err)
		runs := 0
		_, err = s.Add(supervise.ServiceFunc("w", func(ctx context.Context) error { runs++; return blocker(ctx) }))
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()
		assert.ErrorIs(t, s.Serve(context.Background()), supervise.ErrAlreadyServing)
		require.NoError(t, stop())
		// Served again: the children start afresh.
		stop = serve(s)
		synctest.Wait()
		assert.Equal(t, 2, runs)
		require.NoError(t, stop())
	})
}

func explode() { panic("kaboom") }

func TestPanicIsRecoveredWithStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		s, err := supervise.New("root", supervise.Config{Hook: rec.hook})
		require.NoError(t, err)
		runs := 0
		_, err = s.Add(supervise.ServiceFunc("w", func(ctx context.Context) error {
			runs++
			if runs == 1 {
				explode()
			}
			if runs == 2 {
				panic(fmt.Errorf("wrapped: %w", errBoom))
			}
			return blocker(ctx)
		}))
		require.NoError(t, err)
		stop := serve(s)
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, 3, runs)
		var failed []supervise.Event
		for _, e := range rec.all() {
			if e.Kind == supervise.EventFailed {
				failed = append(failed, e)
			}
		}
		require.Len(t, failed, 2)
		var pe *supervise.PanicError
		require.ErrorAs(t, failed[0].Err, &pe)
		assert.Equal(t, "kaboom", pe.Value)
		assert.Equal(t, "panic: kaboom", pe.Error())
		assert.Contains(t, string(failed[0].Stack), "supervise_test.explode")
		assert.Equal(t, failed[0].Stack, pe.Stack())
		assert.True(t, bytes.HasPrefix(pe.Stack(), []byte("runtime.gopanic")), "%s", pe.Stack())
		assert.ErrorIs(t, failed[1].Err, errBoom, "a panic with an error unwraps to it")
		assert.Equal(t, "panic: wrapped: boom", s.Status().Children[0].LastError)
		require.NoError(t, stop())
	})
}

func TestGoexitIsAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := supervise.New("root", supervise.Config{})
		require.NoError(t, err)
		runs := 0
		_, err = s.Add(supervise.ServiceFunc("w", func(ctx context.Context) error {
			runs++
			if runs == 1 {
				runtime.Goexit()
			}
			return blocker(ctx)
		}))
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()
		assert.Equal(t, 2, runs)
		c := s.Status().Children[0]
		assert.Equal(t, supervise.ErrGoexit.Error(), c.LastError)
		assert.Equal(t, supervise.StateRunning, c.State)
		require.NoError(t, stop())
	})
}

func TestInvalidConfiguration(t *testing.T) {
	_, err := supervise.New("", supervise.Config{})
	assert.ErrorContains(t, err, "name is empty")
	_, err = supervise.New("a/b", supervise.Config{})
	assert.ErrorContains(t, err, `"a/b" contains "/"`)
	_, err = supervise.New("x", supervise.Config{Strategy: 7})
	assert.ErrorContains(t, err, "Config.Strategy")

	s, err := supervise.New("root", supervise.Config{})
	require.NoError(t, err)
	tests := []struct {
		name string
		svc  supervise.Service
		opts []supervise.ChildOption
		want string
	}{
		{"nil service", nil, nil, "service is nil"},
		{"restart type", supervise.Func(blocker), []supervise.ChildOption{supervise.WithRestart(9)}, "WithRestart"},
		{"name with slash", supervise.Func(blocker), []supervise.ChildOption{supervise.WithName("a/b")}, "WithName"},
		{"itself", s, nil, "own descendant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Add(tt.svc, tt.opts...)
			assert.ErrorContains(t, err, tt.want)
		})
	}

	_, err = s.Add(supervise.Func(blocker), supervise.WithName("dup"))
	require.NoError(t, err)
	_, err = s.Add(supervise.ServiceFunc("dup", blocker))
	assert.ErrorIs(t, err, supervise.ErrDuplicateName)

	sub, err := supervise.New("sub", supervise.Config{})
	require.NoError(t, err)
	_, err = s.Add(sub)
	require.NoError(t, err)
	other, err := supervise.New("other", supervise.Config{})
	require.NoError(t, err)
	_, err = other.Add(sub)
	assert.ErrorIs(t, err, supervise.ErrAlreadyServing)
	_, err = sub.Add(s)
	assert.ErrorContains(t, err, "own descendant")

	var zero supervise.Supervisor
	assert.ErrorIs(t, zero.Serve(context.Background()), supervise.ErrNotCreated)
	_, err = zero.Add(supervise.Func(blocker))
	assert.ErrorIs(t, err, supervise.ErrNotCreated)
	assert.ErrorIs(t, zero.Remove(context.Background(), 1), supervise.ErrNotCreated)
	assert.Equal(t, supervise.TreeStatus{}, zero.Status())
	assert.True(t, errors.Is(err, supervise.ErrNotCreated))
}

// Unnamed children get a name from their String method, or "child-N".
func TestChildNames(t *testing.T) {
	s, err := supervise.New("root", supervise.Config{})
	require.NoError(t, err)
	sub, err := supervise.New("sub", supervise.Config{})
	require.NoError(t, err)
	for _, svc := range []supervise.Service{supervise.Func(blocker), sub, supervise.ServiceFunc("named", blocker)} {
		_, err := s.Add(svc)
		require.NoError(t, err)
	}
	var names []string
	for _, c := range s.Status().Children {
		names = append(names, c.Path)
	}
	assert.Equal(t, []string{"root/child-1", "root/sub", "root/named"}, names)
	assert.Equal(t, "root/sub", sub.Path())
}

// A nested supervisor stops its own children in order when its parent stops
// it; removed from one parent, it may join another.
func TestNestedStopAndMove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		root, err := supervise.New("root", supervise.Config{Hook: rec.hook})
		require.NoError(t, err)
		sub, err := supervise.New("sub", supervise.Config{})
		require.NoError(t, err)
		for _, n := range []string{"x", "y"} {
			_, err := sub.Add(supervise.ServiceFunc(n, blocker))
			require.NoError(t, err)
		}
		_, err = root.Add(supervise.ServiceFunc("before", blocker))
		require.NoError(t, err)
		id, err := root.Add(sub)
		require.NoError(t, err)
		_, err = root.Add(supervise.ServiceFunc("after", blocker))
		require.NoError(t, err)
		stop := serve(root)
		synctest.Wait()
		require.NoError(t, stop())
		assert.Equal(t, []string{
			"root: started:before", "root: started:sub", "root/sub: started:x", "root/sub: started:y", "root: started:after",
			"root: stopped:after", "root/sub: stopped:y", "root/sub: stopped:x", "root: stopped:sub", "root: stopped:before",
		}, func() []string {
			var out []string
			for _, e := range rec.all() {
				out = append(out, fmt.Sprintf("%s: %s:%s", e.Supervisor, e.Kind, e.Child))
			}
			return out
		}())

		require.NoError(t, root.Remove(context.Background(), id))
		other, err := supervise.New("other", supervise.Config{})
		require.NoError(t, err)
		_, err = other.Add(sub)
		require.NoError(t, err)
		assert.Equal(t, "other/sub", sub.Path())
	})
}
