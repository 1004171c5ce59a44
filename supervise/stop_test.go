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
		s, err := supervise.New(supervise.Config{Name: "root", ShutdownTimeout: 3 * time.Second, Hook: rec.hook})
		require.NoError(t, err)
		release := make(chan struct{})
		_, err = s.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "polite"})
		require.NoError(t, err)
		_, err = s.Add(supervise.Func(stubborn(release)), supervise.ChildConfig{Name: "stubborn", ShutdownTimeout: 2 * time.Second})
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
		assert.Equal(t, supervise.StateFailed, s.Snapshot().Children[1].State)

		close(release) // let the abandoned goroutine end
		synctest.Wait()
	})
}

// Remove stops one child, waits for it, and forgets it.
func TestRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := supervise.New(supervise.Config{Name: "root"})
		require.NoError(t, err)
		release := make(chan struct{})
		a, err := s.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "a"})
		require.NoError(t, err)
		stopped := false
		b, err := s.Add(supervise.Func(func(ctx context.Context) error {
			<-ctx.Done()
			stopped = true
			return nil
		}), supervise.ChildConfig{Name: "b"})
		require.NoError(t, err)
		c, err := s.Add(supervise.Func(stubborn(release)), supervise.ChildConfig{Name: "c", ShutdownTimeout: time.Second})
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()

		require.NoError(t, s.Remove(context.Background(), b))
		assert.True(t, stopped, "Remove returns after the child returned")
		assert.ErrorIs(t, s.Remove(context.Background(), b), supervise.ErrUnknownChild)
		assert.ErrorIs(t, s.Remove(context.Background(), supervise.ChildID{}), supervise.ErrUnknownChild)

		err = s.Remove(context.Background(), c)
		require.ErrorIs(t, err, supervise.ErrStopTimeout)

		names := []string{}
		for _, ch := range s.Snapshot().Children {
			names = append(names, ch.Name)
		}
		assert.Equal(t, []string{"a"}, names)

		// A name is free again once its child is removed.
		_, err = s.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "b"})
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
		s, err := supervise.New(supervise.Config{Name: "root"})
		require.NoError(t, err)
		release := make(chan struct{})
		id, err := s.Add(supervise.Func(stubborn(release)), supervise.ChildConfig{Name: "slow"})
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
		s, err := supervise.New(supervise.Config{Name: "root", Backoff: supervise.NoBackoff, MaxRestarts: 1000, Period: 10 * time.Millisecond})
		require.NoError(t, err)
		for i := range 4 {
			_, err := s.Add(supervise.Func(func(ctx context.Context) error {
				select {
				case <-time.After(time.Millisecond):
					return errBoom
				case <-ctx.Done():
					return nil
				}
			}), supervise.ChildConfig{Name: fmt.Sprintf("load-%d", i)})
			require.NoError(t, err)
		}
		stop := serve(s)

		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 25 {
					started := make(chan struct{})
					id, err := s.Add(supervise.Func(func(ctx context.Context) error {
						close(started)
						<-ctx.Done()
						return nil
					}), supervise.ChildConfig{Name: fmt.Sprintf("dyn-%d-%d", w, i)})
					if !assert.NoError(t, err) {
						return
					}
					<-started
					time.Sleep(time.Millisecond) // the load children restart meanwhile
					_ = s.Snapshot()
					assert.NoError(t, s.Remove(context.Background(), id))
				}
			})
		}
		wg.Wait()
		st := s.Snapshot()
		assert.Len(t, st.Children, 4)
		for _, c := range st.Children {
			assert.Positive(t, c.Restarts)
		}
		require.NoError(t, stop())
	})
}

func TestServeTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := supervise.New(supervise.Config{Name: "root"})
		require.NoError(t, err)
		runs := 0
		_, err = s.Add(supervise.Func(func(ctx context.Context) error { runs++; return blocker(ctx) }), supervise.ChildConfig{Name: "w"})
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
		s, err := supervise.New(supervise.Config{Name: "root", Hook: rec.hook})
		require.NoError(t, err)
		runs := 0
		_, err = s.Add(supervise.Func(func(ctx context.Context) error {
			runs++
			if runs == 1 {
				explode()
			}
			if runs == 2 {
				panic(fmt.Errorf("wrapped: %w", errBoom))
			}
			return blocker(ctx)
		}), supervise.ChildConfig{Name: "w"})
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
		assert.Equal(t, "panic: wrapped: boom", s.Snapshot().Children[0].LastError)
		require.NoError(t, stop())
	})
}

func TestGoexitIsAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := supervise.New(supervise.Config{Name: "root"})
		require.NoError(t, err)
		runs := 0
		_, err = s.Add(supervise.Func(func(ctx context.Context) error {
			runs++
			if runs == 1 {
				runtime.Goexit()
			}
			return blocker(ctx)
		}), supervise.ChildConfig{Name: "w"})
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()
		assert.Equal(t, 2, runs)
		c := s.Snapshot().Children[0]
		assert.Equal(t, supervise.ErrGoexit.Error(), c.LastError)
		assert.Equal(t, supervise.StateRunning, c.State)
		require.NoError(t, stop())
	})
}

func TestInvalidConfiguration(t *testing.T) {
	zeroCfg, err := supervise.New(supervise.Config{})
	require.NoError(t, err, "the zero Config is valid")
	assert.Equal(t, supervise.DefaultName, zeroCfg.Name())

	for _, tt := range []struct {
		give  supervise.Config
		field string
	}{
		{supervise.Config{Name: "a/b"}, "Config.Name"},
		{supervise.Config{Strategy: 7}, "Config.Strategy"},
		{supervise.Config{MaxRestarts: -3}, "Config.MaxRestarts"},
		{supervise.Config{Period: -time.Second}, "Config.Period"},
		{supervise.Config{BackoffReset: -time.Second}, "Config.BackoffReset"},
		{supervise.Config{ShutdownTimeout: -time.Second}, "Config.ShutdownTimeout"},
		{supervise.Config{StopTimeout: -2}, "Config.StopTimeout"},
		{supervise.Config{AutoShutdown: 9}, "Config.AutoShutdown"},
	} {
		t.Run(tt.field, func(t *testing.T) {
			_, err := supervise.New(tt.give)
			require.ErrorIs(t, err, supervise.ErrInvalidConfig)
			var ce *supervise.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.field, ce.Field)
			assert.Contains(t, err.Error(), "supervise: invalid configuration: "+tt.field+": ")
		})
	}
	for _, ok := range []supervise.Config{{MaxRestarts: supervise.Off}, {MaxRestarts: supervise.NoRestarts}, {StopTimeout: supervise.Off}} {
		_, err := supervise.New(ok)
		assert.NoError(t, err)
	}

	s, err := supervise.New(supervise.Config{Name: "root"})
	require.NoError(t, err)
	tests := []struct {
		name string
		svc  supervise.Service
		cfg  supervise.ChildConfig
		want string
	}{
		{"nil service", nil, supervise.ChildConfig{}, "service is nil"},
		{"restart type", supervise.Func(blocker), supervise.ChildConfig{Restart: 9}, "ChildConfig.Restart"},
		{"name with slash", supervise.Func(blocker), supervise.ChildConfig{Name: "a/b"}, "ChildConfig.Name"},
		{"negative timeout", supervise.Func(blocker), supervise.ChildConfig{ShutdownTimeout: -1}, "ChildConfig.ShutdownTimeout"},
		{"significant without auto shutdown", supervise.Func(blocker), supervise.ChildConfig{Restart: supervise.Transient, Significant: true}, "AutoShutdown is Never"},
		{"itself", s, supervise.ChildConfig{}, "own descendant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Add(tt.svc, tt.cfg)
			assert.ErrorContains(t, err, tt.want)
		})
	}

	_, err = s.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "dup"})
	require.NoError(t, err)
	_, err = s.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "dup"})
	assert.ErrorIs(t, err, supervise.ErrDuplicateName)

	sub, err := supervise.New(supervise.Config{Name: "sub"})
	require.NoError(t, err)
	_, err = s.Add(sub, supervise.ChildConfig{})
	require.NoError(t, err)
	other, err := supervise.New(supervise.Config{Name: "other"})
	require.NoError(t, err)
	_, err = other.Add(sub, supervise.ChildConfig{})
	assert.ErrorIs(t, err, supervise.ErrAlreadyServing)
	_, err = sub.Add(s, supervise.ChildConfig{})
	assert.ErrorContains(t, err, "own descendant")

	var zero supervise.Supervisor
	assert.ErrorIs(t, zero.Serve(context.Background()), supervise.ErrNotCreated)
	_, err = zero.Add(supervise.Func(blocker), supervise.ChildConfig{})
	assert.ErrorIs(t, err, supervise.ErrNotCreated)
	assert.ErrorIs(t, zero.Remove(context.Background(), supervise.ChildID{}), supervise.ErrNotCreated)
	assert.Equal(t, supervise.Snapshot{}, zero.Snapshot())
	assert.True(t, errors.Is(err, supervise.ErrNotCreated))
}

// Unnamed children get a name from their String method, or "child-N".
func TestChildNames(t *testing.T) {
	s, err := supervise.New(supervise.Config{Name: "root"})
	require.NoError(t, err)
	sub, err := supervise.New(supervise.Config{Name: "sub"})
	require.NoError(t, err)
	for _, svc := range []supervise.Service{supervise.Func(blocker), sub, named("named", blocker)} {
		_, err := s.Add(svc, supervise.ChildConfig{})
		require.NoError(t, err)
	}
	var names []string
	for _, c := range s.Snapshot().Children {
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
		root, err := supervise.New(supervise.Config{Name: "root", Hook: rec.hook})
		require.NoError(t, err)
		sub, err := supervise.New(supervise.Config{Name: "sub"})
		require.NoError(t, err)
		for _, n := range []string{"x", "y"} {
			_, err := sub.Add(supervise.Func(blocker), supervise.ChildConfig{Name: n})
			require.NoError(t, err)
		}
		_, err = root.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "before"})
		require.NoError(t, err)
		id, err := root.Add(sub, supervise.ChildConfig{})
		require.NoError(t, err)
		_, err = root.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "after"})
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
		other, err := supervise.New(supervise.Config{Name: "other"})
		require.NoError(t, err)
		_, err = other.Add(sub, supervise.ChildConfig{})
		require.NoError(t, err)
		assert.Equal(t, "other/sub", sub.Path())
	})
}
