package supervise_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/supervise"
)

func constantBackoff(d time.Duration) supervise.Backoff {
	return supervise.ConstantBackoff(d)
}

var errBoom = errors.New("boom")

// A child that fails at once every time: the first restart is immediate, the
// others wait the backoff, and the intensity is exceeded on the fourth failure.
func TestIntensityGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		s, err := supervise.New(supervise.Config{Name: "root",
			MaxRestarts: 3, Period: 10 * time.Second, Backoff: constantBackoff(time.Second), Hook: rec.hook,
		})
		require.NoError(t, err)
		runs := 0
		_, err = s.Add(supervise.Func(func(context.Context) error { runs++; return errBoom }), supervise.ChildConfig{Name: "crasher"})
		require.NoError(t, err)
		_, err = s.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "bystander"})
		require.NoError(t, err)

		begin := time.Now()
		err = s.Serve(context.Background())
		assert.Equal(t, 2*time.Second, time.Since(begin)) // restarts at 0, 0, 1s; gave up at 2s
		assert.Equal(t, 4, runs)

		require.ErrorIs(t, err, supervise.ErrGaveUp)
		require.ErrorIs(t, err, errBoom)
		var esc *supervise.EscalationError
		require.ErrorAs(t, err, &esc)
		assert.Equal(t, &supervise.EscalationError{Supervisor: "root", Child: "crasher", Restarts: 3, Period: 10 * time.Second, Err: errBoom}, esc)

		st := s.Snapshot()
		assert.Equal(t, supervise.StateFailed, st.State)
		assert.Equal(t, supervise.StateFailed, st.Children[0].State)
		assert.Equal(t, 3, st.Children[0].Restarts)
		assert.Equal(t, supervise.StateStopped, st.Children[1].State)
		trace := rec.trace(supervise.EventGaveUp, supervise.EventStopped)
		assert.Equal(t, []string{"gave-up:", "stopped:bystander"}, trace)
	})
}

// The intensity counts only the restarts within the last Period.
func TestIntensityWindow(t *testing.T) {
	tests := []struct {
		name     string
		period   time.Duration
		wantGive bool
	}{
		{"restarts spread wider than the period", 10 * time.Second, false},
		{"restarts within the period", 15 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Fails every 6s: restarts at 6s, 12s, 18s, ...; 2 allowed.
				s, err := supervise.New(supervise.Config{Name: "root", MaxRestarts: 2, Period: tt.period, Backoff: supervise.NoBackoff})
				require.NoError(t, err)
				_, err = s.Add(supervise.Func(func(ctx context.Context) error {
					select {
					case <-time.After(6 * time.Second):
						return errBoom
					case <-ctx.Done():
						return nil
					}
				}), supervise.ChildConfig{Name: "periodic"})
				require.NoError(t, err)
				ctx, cancel := context.WithTimeout(context.Background(), 57*time.Second)
				defer cancel()
				begin := time.Now()
				err = s.Serve(ctx)
				if tt.wantGive {
					require.ErrorIs(t, err, supervise.ErrGaveUp)
					assert.Equal(t, 18*time.Second, time.Since(begin))
				} else {
					require.NoError(t, err)
					assert.Equal(t, 9, s.Snapshot().Children[0].Restarts)
				}
			})
		})
	}
}

// Escalation through a tree: the inner supervisor gives up, the outer one
// restarts it, and gives up in turn when that happens too often.
func TestEscalationThroughNestedTrees(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		root, err := supervise.New(supervise.Config{Name: "root", MaxRestarts: 1, Backoff: supervise.NoBackoff, Hook: rec.hook})
		require.NoError(t, err)
		sub, err := supervise.New(supervise.Config{Name: "sub", MaxRestarts: 1, Backoff: supervise.NoBackoff})
		require.NoError(t, err)
		runs := 0
		_, err = sub.Add(supervise.Func(func(context.Context) error { runs++; return errBoom }), supervise.ChildConfig{Name: "crasher"})
		require.NoError(t, err)
		_, err = root.Add(sub, supervise.ChildConfig{})
		require.NoError(t, err)
		_, err = root.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "sibling"})
		require.NoError(t, err)

		err = root.Serve(context.Background())
		assert.Equal(t, 4, runs) // sub: 2 runs, gives up; restarted: 2 runs, gives up; root gives up
		var outer *supervise.EscalationError
		require.ErrorAs(t, err, &outer)
		assert.Equal(t, "root", outer.Supervisor)
		assert.Equal(t, "sub", outer.Child)
		var inner *supervise.EscalationError
		require.ErrorAs(t, outer.Err, &inner)
		assert.Equal(t, "root/sub", inner.Supervisor)
		assert.Equal(t, "crasher", inner.Child)
		assert.ErrorIs(t, err, errBoom)

		// The nested supervisor used the root's hook, with its own path.
		var gaveUp []string
		for _, e := range rec.all() {
			if e.Kind == supervise.EventGaveUp {
				gaveUp = append(gaveUp, e.Supervisor)
			}
		}
		assert.Equal(t, []string{"root/sub", "root/sub", "root"}, gaveUp)
		assert.Equal(t, supervise.StateFailed, root.Snapshot().State)
	})
}

// A child waiting out its backoff never delays the restart of a sibling.
func TestBackoffDoesNotDelaySiblings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := supervise.New(supervise.Config{Name: "root", Backoff: constantBackoff(time.Hour), MaxRestarts: 100})
		require.NoError(t, err)
		_, err = s.Add(supervise.Func(func(context.Context) error { return errBoom }), supervise.ChildConfig{Name: "crashloop"})
		require.NoError(t, err)
		kick := make(chan struct{})
		var starts []time.Time
		_, err = s.Add(supervise.Func(func(ctx context.Context) error {
			starts = append(starts, time.Now())
			if len(starts) == 1 {
				select {
				case <-kick:
					return errBoom
				case <-ctx.Done():
					return nil
				}
			}
			return blocker(ctx)
		}), supervise.ChildConfig{Name: "healthy"})
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()
		st := s.Snapshot()
		require.Equal(t, supervise.StateBackingOff, st.Children[0].State)

		kicked := time.Now()
		close(kick)
		synctest.Wait()
		require.Len(t, starts, 2)
		assert.Equal(t, kicked, starts[1], "the healthy child was restarted at once")
		assert.Equal(t, supervise.StateRunning, s.Snapshot().Children[1].State)
		require.NoError(t, stop())
	})
}

// Backoff grows while a child keeps failing, and starts over after a stable
// run.
func TestBackoffResetsAfterStableRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		s, err := supervise.New(supervise.Config{Name: "root",
			Backoff: constantBackoff(time.Second), BackoffReset: 10 * time.Second, MaxRestarts: 100, Hook: rec.hook,
		})
		require.NoError(t, err)
		runs := 0
		_, err = s.Add(supervise.Func(func(ctx context.Context) error {
			runs++
			switch {
			case runs == 4: // a stable run
				time.Sleep(20 * time.Second)
			case runs > 5:
				return blocker(ctx)
			}
			return errBoom
		}), supervise.ChildConfig{Name: "w"})
		require.NoError(t, err)
		stop := serve(s)
		time.Sleep(time.Minute)
		synctest.Wait()
		require.NoError(t, stop())
		var delays []time.Duration
		for _, e := range rec.all() {
			if e.Kind == supervise.EventRestarting {
				delays = append(delays, e.Delay)
			}
		}
		assert.Equal(t, []time.Duration{0, time.Second, time.Second, 0, time.Second}, delays)
	})
}

// A backoff policy that says stop makes the supervisor give up.
func TestBackoffStopGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := supervise.New(supervise.Config{Name: "root",
			Backoff: func(int) time.Duration { return -1 },
		})
		require.NoError(t, err)
		_, err = s.Add(supervise.Func(func(context.Context) error { return errBoom }), supervise.ChildConfig{Name: "w"})
		require.NoError(t, err)
		err = s.Serve(context.Background())
		require.ErrorIs(t, err, supervise.ErrGaveUp)
		assert.EqualError(t, err, `supervise: root gave up when the backoff of child "w" said stop; it failed: boom`)
	})
}

// A hook may read the status: events are delivered without the lock held.
func TestHookMayCallSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s *supervise.Supervisor
		var states []supervise.ChildState
		s, err := supervise.New(supervise.Config{Name: "root",
			Backoff: supervise.NoBackoff,
			Hook: func(e supervise.Event) {
				if e.Child == "w" {
					states = append(states, s.Snapshot().Children[0].State)
				}
			},
		})
		require.NoError(t, err)
		_, err = s.Add(supervise.Func(failsOnce(errBoom)), supervise.ChildConfig{Name: "w"})
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()
		require.NoError(t, stop())
		assert.Len(t, states, 5) // started, failed, restarting, started, stopped
	})
}
