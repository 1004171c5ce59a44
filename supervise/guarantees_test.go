package supervise_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/internal/oteltest"
	"github.com/selfheal-go/selfheal/supervise"
)

// copies is a service that ignores cancellation until release is closed, and
// counts its copies running at once.
type copies struct {
	release chan struct{}
	starts  atomic.Int32
	live    atomic.Int32
	max     atomic.Int32
}

func newCopies() *copies { return &copies{release: make(chan struct{})} }

func (c *copies) Serve(ctx context.Context) error {
	c.starts.Add(1)
	n := c.live.Add(1)
	defer c.live.Add(-1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			break
		}
	}
	<-c.release // deaf to ctx until released
	<-ctx.Done()
	return nil
}

// failOnce returns a service that, on its first run, fails once kick is
// closed, and is a blocker after.
func failOnce(kick <-chan struct{}) supervise.Func {
	var runs atomic.Int32
	return func(ctx context.Context) error {
		if runs.Add(1) == 1 {
			select {
			case <-kick:
				return errBoom
			case <-ctx.Done():
				return nil
			}
		}
		return blocker(ctx)
	}
}

func childNamed(t *testing.T, snap supervise.Snapshot, name string) supervise.ChildSnapshot {
	t.Helper()
	for _, c := range snap.All() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no child %q in %+v", name, snap)
	return supervise.ChildSnapshot{}
}

// Issue 12.1: in a one-for-all restart, a sibling that ignores cancellation
// used to be abandoned and started again while the old copy still ran. Now
// the supervisor gives up, naming the child, and does not start it again
// (not even when served again, as a parent does) until the abandoned copy has
// returned. The abandoned copy shows in the snapshot, in events and in the
// gauge.
func TestChildNeverRunsTwiceAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		m := oteltest.NewMeterProvider()
		s, err := supervise.New(supervise.Config{
			Name: "root", Strategy: supervise.OneForAll, ShutdownTimeout: time.Second,
			Backoff: supervise.NoBackoff, Hook: rec.hook, MeterProvider: m,
		})
		require.NoError(t, err)
		deaf := newCopies()
		_, err = s.Add(deaf, supervise.ChildConfig{Name: "deaf"})
		require.NoError(t, err)
		kick := make(chan struct{})
		_, err = s.Add(failOnce(kick), supervise.ChildConfig{Name: "flaky"})
		require.NoError(t, err)

		errc := make(chan error, 1)
		go func() { errc <- s.Serve(context.Background()) }()
		synctest.Wait()
		close(kick)
		err = <-errc
		require.ErrorIs(t, err, supervise.ErrGaveUp)
		require.ErrorIs(t, err, supervise.ErrStopTimeout)
		var esc *supervise.EscalationError
		require.ErrorAs(t, err, &esc)
		assert.Equal(t, "deaf", esc.Child)
		assert.Contains(t, err.Error(), `supervise: root gave up: child "deaf" could not be stopped`)
		assert.Equal(t, int32(1), deaf.starts.Load())

		snap := s.Snapshot()
		assert.Equal(t, 1, snap.Abandoned)
		assert.True(t, childNamed(t, snap, "deaf").Abandoned)
		assert.False(t, childNamed(t, snap, "flaky").Abandoned)
		assert.Equal(t, []string{"abandoned:deaf", "gave-up:"}, rec.trace(supervise.EventAbandoned, supervise.EventGaveUp))

		// Served again (as a parent restarts it): the others start, the deaf
		// child waits for its abandoned copy.
		ctx, cancel := context.WithCancel(context.Background())
		go func() { errc <- s.Serve(ctx) }()
		synctest.Wait()
		assert.Equal(t, int32(1), deaf.starts.Load(), "not started while its abandoned copy runs")
		c := childNamed(t, s.Snapshot(), "deaf")
		assert.Equal(t, supervise.StateBackingOff, c.State)
		assert.True(t, c.Abandoned)
		assert.Equal(t, supervise.StateRunning, childNamed(t, s.Snapshot(), "flaky").State)
		assert.Equal(t, map[string]int64{"root": 1}, m.Observe(t).Int64By("selfheal.supervise.children.abandoned", "selfheal.supervisor.name"))

		close(deaf.release)
		synctest.Wait()
		assert.Equal(t, int32(2), deaf.starts.Load(), "started once its abandoned copy returned")
		assert.Equal(t, int32(1), deaf.max.Load(), "never two copies at once")
		snap = s.Snapshot()
		assert.Equal(t, 0, snap.Abandoned)
		assert.False(t, childNamed(t, snap, "deaf").Abandoned)
		assert.Equal(t, supervise.StateRunning, childNamed(t, snap, "deaf").State)
		assert.Equal(t, map[string]int64{"root": 0}, m.Observe(t).Int64By("selfheal.supervise.children.abandoned", "selfheal.supervisor.name"))
		tr := rec.trace(supervise.EventReturned, supervise.EventStarted)
		assert.Equal(t, []string{"returned:deaf", "started:deaf"}, tr[len(tr)-2:])

		cancel()
		require.NoError(t, <-errc)
	})
}

// The same under a parent: the parent restarts the subtree that gave up, and
// the goroutines do not pile up however often that happens.
func TestAbandonedCopiesDoNotPileUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, err := supervise.New(supervise.Config{Name: "root", MaxRestarts: supervise.Off, Backoff: supervise.NoBackoff})
		require.NoError(t, err)
		sub, err := supervise.New(supervise.Config{Name: "sub", Strategy: supervise.OneForAll, ShutdownTimeout: time.Second, Backoff: supervise.NoBackoff})
		require.NoError(t, err)
		deaf := newCopies()
		_, err = sub.Add(deaf, supervise.ChildConfig{Name: "deaf"})
		require.NoError(t, err)
		var runs atomic.Int32
		_, err = sub.Add(supervise.Func(func(ctx context.Context) error {
			if runs.Add(1) <= 50 {
				return errBoom // crash-loops: every run a group restart
			}
			return blocker(ctx)
		}), supervise.ChildConfig{Name: "flaky"})
		require.NoError(t, err)
		_, err = root.Add(sub, supervise.ChildConfig{})
		require.NoError(t, err)

		before := runtime.NumGoroutine()
		stop := serve(root)
		synctest.Wait()
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Equal(t, int32(1), deaf.starts.Load())
		assert.Equal(t, int32(1), deaf.live.Load())
		assert.LessOrEqual(t, runtime.NumGoroutine(), before+5, "goroutines do not grow with restarts")

		close(deaf.release)
		synctest.Wait()
		assert.Equal(t, int32(1), deaf.max.Load())
		require.NoError(t, stop())
	})
}

// Issue 12.6: a removed child that was the last in the list stayed reachable
// (with everything its closure holds) until the next Add.
func TestRemovedChildIsUnreachable(t *testing.T) {
	for _, serving := range []bool{false, true} {
		s, err := supervise.New(supervise.Config{})
		require.NoError(t, err)
		_, err = s.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "first"})
		require.NoError(t, err)
		svc, wp := heavyService()
		id, err := s.Add(svc, supervise.ChildConfig{Name: "last"})
		require.NoError(t, err)
		svc = nil
		stop := func() error { return nil }
		if serving {
			stop = serve(s)
		}
		require.NoError(t, s.Remove(context.Background(), id))
		runtime.GC()
		runtime.GC()
		assert.True(t, wp.Value() == nil, "the removed child's closure is collectable (serving %v)", serving)
		require.NoError(t, stop())
		runtime.KeepAlive(s)
		runtime.KeepAlive(svc)
	}
}

func heavyService() (supervise.Service, weak.Pointer[[1 << 16]byte]) {
	big := new([1 << 16]byte)
	return supervise.Func(func(ctx context.Context) error {
		big[0]++
		return blocker(ctx)
	}), weak.Make(big)
}

// Issue 13: IDs belong to their supervisor; another's ID is an error, not
// one of its own children.
func TestChildIDsBelongToTheirSupervisor(t *testing.T) {
	a, err := supervise.New(supervise.Config{Name: "a"})
	require.NoError(t, err)
	b, err := supervise.New(supervise.Config{Name: "b"})
	require.NoError(t, err)
	idA, err := a.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "x"})
	require.NoError(t, err)
	idB, err := b.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "x"})
	require.NoError(t, err)
	assert.NotEqual(t, idA, idB)

	err = b.Remove(context.Background(), idA)
	require.ErrorIs(t, err, supervise.ErrUnknownChild)
	assert.ErrorContains(t, err, `not of a child of "b"`)
	require.ErrorIs(t, b.StopChild(context.Background(), idA), supervise.ErrUnknownChild)
	require.ErrorIs(t, b.RestartChild(idA), supervise.ErrUnknownChild)
	require.Len(t, b.Snapshot().Children, 1, "b's own child is still there")
	assert.Equal(t, idB, b.Snapshot().Children[0].ID)
	require.NoError(t, b.Remove(context.Background(), idB))
	require.NoError(t, a.Remove(context.Background(), idA))
}

// StopChild stops a child without removing it; RestartChild starts it again
// (OTP's terminate_child and restart_child). A stopped child is not restarted
// by a group restart, and a child with an abandoned copy cannot be restarted.
func TestStopChildAndRestartChild(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		s, err := supervise.New(supervise.Config{Name: "root", Strategy: supervise.RestForOne, ShutdownTimeout: time.Second, Hook: rec.hook})
		require.NoError(t, err)
		deaf := newCopies()
		d, err := s.Add(deaf, supervise.ChildConfig{Name: "deaf"})
		require.NoError(t, err)
		kick := make(chan struct{})
		b, err := s.Add(failOnce(kick), supervise.ChildConfig{Name: "b"})
		require.NoError(t, err)
		var runs atomic.Int32
		a, err := s.Add(supervise.Func(func(ctx context.Context) error {
			runs.Add(1)
			return blocker(ctx)
		}), supervise.ChildConfig{Name: "a"})
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()

		require.NoError(t, s.StopChild(context.Background(), a))
		c := childNamed(t, s.Snapshot(), "a")
		assert.Equal(t, supervise.StateStopped, c.State, "stopped, still listed")
		require.NoError(t, s.StopChild(context.Background(), a), "stopping a stopped child is fine")

		// A group restart (b's, which includes a) does not restart a stopped
		// child.
		close(kick)
		synctest.Wait()
		assert.Equal(t, int32(1), runs.Load())
		assert.Equal(t, supervise.StateStopped, childNamed(t, s.Snapshot(), "a").State)
		assert.Equal(t, supervise.StateRunning, childNamed(t, s.Snapshot(), "b").State)

		require.ErrorIs(t, s.RestartChild(b), supervise.ErrRunning)
		require.NoError(t, s.RestartChild(a))
		synctest.Wait()
		assert.Equal(t, int32(2), runs.Load())
		c = childNamed(t, s.Snapshot(), "a")
		assert.Equal(t, supervise.StateRunning, c.State)
		assert.Zero(t, c.Restarts, "RestartChild is not a restart")

		// deaf ignores cancellation: stopping it abandons it, and it cannot be
		// restarted before its copy returns.
		err = s.StopChild(context.Background(), d)
		require.ErrorIs(t, err, supervise.ErrStopTimeout)
		assert.True(t, childNamed(t, s.Snapshot(), "deaf").Abandoned)
		require.ErrorIs(t, s.RestartChild(d), supervise.ErrRunning)
		close(deaf.release)
		synctest.Wait()
		assert.False(t, childNamed(t, s.Snapshot(), "deaf").Abandoned)
		assert.Equal(t, int32(1), deaf.starts.Load(), "a stopped child is not restarted when its copy returns")
		require.NoError(t, s.RestartChild(d))
		synctest.Wait()
		assert.Equal(t, int32(2), deaf.starts.Load())
		assert.Equal(t, int32(1), deaf.max.Load())
		assert.Equal(t, []string{"abandoned:deaf", "returned:deaf"}, rec.trace(supervise.EventAbandoned, supervise.EventReturned))
		require.NoError(t, stop())
	})
}

// Issue 12: ten children that ignore cancellation took fifty seconds to stop;
// Config.StopTimeout bounds the stop of the whole supervisor.
func TestStopTimeoutBoundsTheWholeStop(t *testing.T) {
	for _, tt := range []struct {
		give supervise.Config
		want time.Duration
	}{
		{supervise.Config{ShutdownTimeout: 5 * time.Second, StopTimeout: 12 * time.Second}, 12 * time.Second},
		{supervise.Config{ShutdownTimeout: 5 * time.Second}, supervise.DefaultStopTimeout},
		{supervise.Config{ShutdownTimeout: 5 * time.Second, StopTimeout: supervise.Off}, 50 * time.Second},
	} {
		t.Run(tt.want.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, err := supervise.New(tt.give)
				require.NoError(t, err)
				release := make(chan struct{})
				for range 10 {
					_, err := s.Add(supervise.Func(stubborn(release)), supervise.ChildConfig{})
					require.NoError(t, err)
				}
				stop := serve(s)
				synctest.Wait()
				start := time.Now()
				err = stop()
				assert.Equal(t, tt.want, time.Since(start))
				require.ErrorIs(t, err, supervise.ErrStopTimeout)
				joined, ok := err.(interface{ Unwrap() []error })
				require.True(t, ok)
				assert.Len(t, joined.Unwrap(), 10, "every child that did not stop is reported")
				assert.Equal(t, 10, s.Snapshot().Abandoned)
				close(release)
				synctest.Wait()
				assert.Equal(t, 0, s.Snapshot().Abandoned)
			})
		})
	}
}

// Significant children and AutoShutdown (OTP 24): the supervisor's work is
// done when one (AnySignificant) or all (AllSignificant) of its significant
// children ended on their own.
func TestAutoShutdown(t *testing.T) {
	for _, tt := range []struct {
		auto supervise.AutoShutdown
		// ends is how many significant jobs must finish for Serve to return.
		ends int
	}{
		{supervise.AnySignificant, 1},
		{supervise.AllSignificant, 2},
	} {
		t.Run(tt.auto.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				s, err := supervise.New(supervise.Config{Name: "root", AutoShutdown: tt.auto, Backoff: supervise.NoBackoff, Hook: rec.hook})
				require.NoError(t, err)
				_, err = s.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "worker"})
				require.NoError(t, err)
				var finish [2]chan struct{}
				for i, name := range []string{"job1", "job2"} {
					finish[i] = make(chan struct{})
					failed := false
					_, err = s.Add(supervise.Func(func(ctx context.Context) error {
						if !failed { // a failure is restarted, not an end
							failed = true
							return errBoom
						}
						select {
						case <-finish[i]:
							return nil
						case <-ctx.Done():
							return nil
						}
					}), supervise.ChildConfig{Name: name, Restart: supervise.Transient, Significant: true})
					require.NoError(t, err)
				}
				errc := make(chan error, 1)
				go func() { errc <- s.Serve(context.Background()) }()
				synctest.Wait()
				for i := range tt.ends {
					select {
					case err := <-errc:
						t.Fatalf("Serve returned %v before job %d finished", err, i+1)
					default:
					}
					close(finish[i])
					synctest.Wait()
				}
				select {
				case err := <-errc:
					require.NoError(t, err)
				default:
					t.Fatal("Serve did not return")
				}
				assert.Equal(t, supervise.StateStopped, childNamed(t, s.Snapshot(), "worker").State)
				assert.Contains(t, rec.trace(supervise.EventAutoShutdown), "auto-shutdown:"+[]string{"job1", "job2"}[tt.ends-1])
				if tt.ends == 1 {
					close(finish[1])
				}
			})
		})
	}
}

// A nested supervisor that shuts down on its own returns nil, so a parent
// that added it as Transient treats it as done and keeps running.
func TestAutoShutdownNested(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, err := supervise.New(supervise.Config{Name: "root"})
		require.NoError(t, err)
		batch, err := supervise.New(supervise.Config{Name: "batch", AutoShutdown: supervise.AnySignificant})
		require.NoError(t, err)
		_, err = batch.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "helper"})
		require.NoError(t, err)
		done := make(chan struct{})
		_, err = batch.Add(supervise.Func(func(context.Context) error { <-done; return nil }),
			supervise.ChildConfig{Name: "job", Restart: supervise.Temporary, Significant: true})
		require.NoError(t, err)
		_, err = root.Add(batch, supervise.ChildConfig{Restart: supervise.Transient})
		require.NoError(t, err)
		_, err = root.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "server"})
		require.NoError(t, err)
		stop := serve(root)
		synctest.Wait()
		close(done)
		synctest.Wait()
		snap := root.Snapshot()
		assert.Equal(t, supervise.StateStopped, childNamed(t, snap, "batch").State)
		assert.Equal(t, 0, childNamed(t, snap, "batch").Restarts)
		assert.Equal(t, supervise.StateRunning, childNamed(t, snap, "server").State)
		assert.Equal(t, supervise.StateRunning, snap.State)
		require.NoError(t, stop())
	})
}

// Issue 13: MaxRestarts 0 meant 5, so OTP's intensity 0 could not be said;
// NoRestarts says it, and Off removes the limit.
func TestMaxRestartsNoRestartsAndOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := supervise.New(supervise.Config{Name: "root", MaxRestarts: supervise.NoRestarts})
		require.NoError(t, err)
		var runs atomic.Int32
		_, err = s.Add(supervise.Func(func(context.Context) error { runs.Add(1); return errBoom }), supervise.ChildConfig{Name: "w"})
		require.NoError(t, err)
		err = s.Serve(context.Background())
		require.ErrorIs(t, err, supervise.ErrGaveUp)
		assert.Equal(t, int32(1), runs.Load(), "gave up at the first failure")
		assert.EqualError(t, err, `supervise: root gave up after more than 0 restarts within 30s; last, child "w" failed: boom`)
	})
	synctest.Test(t, func(t *testing.T) {
		s, err := supervise.New(supervise.Config{Name: "root", MaxRestarts: supervise.Off, Backoff: supervise.NoBackoff})
		require.NoError(t, err)
		var runs atomic.Int32
		_, err = s.Add(supervise.Func(func(ctx context.Context) error {
			if runs.Add(1) <= 1000 {
				return errBoom
			}
			return blocker(ctx)
		}), supervise.ChildConfig{Name: "w"})
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()
		c := childNamed(t, s.Snapshot(), "w")
		assert.Equal(t, 1000, c.Restarts)
		assert.Equal(t, supervise.StateRunning, c.State)
		require.NoError(t, stop())
	})
}

func TestBackoffPolicies(t *testing.T) {
	assert.Zero(t, supervise.NoBackoff(7))
	assert.Equal(t, 3*time.Second, supervise.ConstantBackoff(3*time.Second)(9))
	exp := supervise.ExponentialBackoff(100*time.Millisecond, 10*time.Second)
	for _, tt := range []struct {
		n    int
		base time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond}, {8, 10 * time.Second}, {1000, 10 * time.Second}} {
		seen := map[time.Duration]bool{}
		for range 50 {
			for _, d := range []time.Duration{exp(tt.n), supervise.DefaultBackoff(tt.n)} {
				assert.GreaterOrEqual(t, d, tt.base/2, "n=%d", tt.n)
				assert.Less(t, d, tt.base*3/2, "n=%d", tt.n)
				seen[d] = true
			}
		}
		assert.Greater(t, len(seen), 1, "jittered")
	}
}
