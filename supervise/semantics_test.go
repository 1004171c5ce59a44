package supervise_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/supervise"
)

// The OTP semantics: three children a, b, c started in that order; b's first
// run ends with the outcome, its later runs and a's and c's run until
// stopped. The trace is every Started and Stopped event, through the final
// shutdown, which stops the children in reverse start order.
func TestOTPSemantics(t *testing.T) {
	var (
		start = []string{"started:a", "started:b", "started:c"}
		// b is not restarted; the shutdown stops c and a.
		notRestarted = concat(start, []string{"stopped:b"}, []string{"stopped:c", "stopped:a"})
		shutdown     = []string{"stopped:c", "stopped:b", "stopped:a"}
		// one-for-one: b alone is restarted.
		oneForOne = concat(start, []string{"started:b"}, shutdown)
		// one-for-all: c then a are stopped, then all start again in order.
		oneForAll = concat(start, []string{"stopped:c", "stopped:a", "started:a", "started:b", "started:c"}, shutdown)
		// rest-for-one: c (started after b) is stopped, then b and c start.
		restForOne = concat(start, []string{"stopped:c", "started:b", "started:c"}, shutdown)
	)
	tests := []struct {
		strategy supervise.Strategy
		restart  supervise.RestartType
		outcome  string
		want     []string
	}{
		{supervise.OneForOne, supervise.Permanent, "nil", oneForOne},
		{supervise.OneForOne, supervise.Permanent, "error", oneForOne},
		{supervise.OneForOne, supervise.Permanent, "panic", oneForOne},
		{supervise.OneForOne, supervise.Transient, "nil", notRestarted},
		{supervise.OneForOne, supervise.Transient, "error", oneForOne},
		{supervise.OneForOne, supervise.Transient, "panic", oneForOne},
		{supervise.OneForOne, supervise.Temporary, "nil", notRestarted},
		{supervise.OneForOne, supervise.Temporary, "error", notRestarted},
		{supervise.OneForOne, supervise.Temporary, "panic", notRestarted},

		{supervise.OneForAll, supervise.Permanent, "nil", oneForAll},
		{supervise.OneForAll, supervise.Permanent, "error", oneForAll},
		{supervise.OneForAll, supervise.Permanent, "panic", oneForAll},
		{supervise.OneForAll, supervise.Transient, "nil", notRestarted},
		{supervise.OneForAll, supervise.Transient, "error", oneForAll},
		{supervise.OneForAll, supervise.Transient, "panic", oneForAll},
		{supervise.OneForAll, supervise.Temporary, "nil", notRestarted},
		{supervise.OneForAll, supervise.Temporary, "error", notRestarted},
		{supervise.OneForAll, supervise.Temporary, "panic", notRestarted},

		{supervise.RestForOne, supervise.Permanent, "nil", restForOne},
		{supervise.RestForOne, supervise.Permanent, "error", restForOne},
		{supervise.RestForOne, supervise.Permanent, "panic", restForOne},
		{supervise.RestForOne, supervise.Transient, "nil", notRestarted},
		{supervise.RestForOne, supervise.Transient, "error", restForOne},
		{supervise.RestForOne, supervise.Transient, "panic", restForOne},
		{supervise.RestForOne, supervise.Temporary, "nil", notRestarted},
		{supervise.RestForOne, supervise.Temporary, "error", notRestarted},
		{supervise.RestForOne, supervise.Temporary, "panic", notRestarted},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s", tt.strategy, tt.restart, tt.outcome), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				s, err := supervise.New(supervise.Config{Name: "root", Strategy: tt.strategy, Hook: rec.hook})
				require.NoError(t, err)
				runs := 0
				kick := make(chan struct{})
				b := func(ctx context.Context) error {
					runs++
					if runs > 1 {
						return blocker(ctx)
					}
					<-kick // once all three have started
					switch tt.outcome {
					case "error":
						return errors.New("b failed")
					case "panic":
						panic("b panicked")
					}
					return nil
				}
				_, err = s.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "a"})
				require.NoError(t, err)
				_, err = s.Add(supervise.Func(b), supervise.ChildConfig{Name: "b", Restart: tt.restart})
				require.NoError(t, err)
				_, err = s.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "c"})
				require.NoError(t, err)

				stop := serve(s)
				synctest.Wait()
				close(kick)
				synctest.Wait()
				restarted := len(tt.want) != len(notRestarted)
				st := s.Snapshot()
				if restarted {
					assert.Equal(t, 2, runs)
					assert.Equal(t, supervise.StateRunning, st.Children[1].State)
					assert.Equal(t, 1, st.Children[1].Restarts)
				} else {
					assert.Equal(t, 1, runs)
					wantState := supervise.StateStopped
					if tt.outcome != "nil" {
						wantState = supervise.StateFailed
					}
					assert.Equal(t, wantState, st.Children[1].State)
					assert.Zero(t, st.Children[1].Restarts)
				}
				require.NoError(t, stop())
				assert.Equal(t, tt.want, rec.trace(supervise.EventStarted, supervise.EventStopped))

				// Why each child was restarted.
				var causes []string
				for _, e := range rec.all() {
					if e.Kind == supervise.EventRestarting {
						causes = append(causes, e.Child+":"+e.Cause)
					}
				}
				wantCause := map[string]string{"nil": "exit", "error": "error", "panic": "panic"}[tt.outcome]
				switch {
				case !restarted:
					assert.Empty(t, causes)
				case tt.strategy == supervise.OneForOne:
					assert.Equal(t, []string{"b:" + wantCause}, causes)
				case tt.strategy == supervise.OneForAll:
					assert.ElementsMatch(t, []string{"b:" + wantCause, "c:sibling", "a:sibling"}, causes)
				case tt.strategy == supervise.RestForOne:
					assert.ElementsMatch(t, []string{"b:" + wantCause, "c:sibling"}, causes)
				}
			})
		})
	}
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// A Temporary child stopped by a sibling's group restart is not restarted,
// and a Transient child that finished stays finished.
func TestGroupRestartSkipsTemporaryAndFinished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		s, err := supervise.New(supervise.Config{Name: "root", Strategy: supervise.OneForAll, Hook: rec.hook})
		require.NoError(t, err)
		var mu sync.Mutex
		runs := map[string]int{}
		count := func(name string, fn supervise.Func) supervise.Service {
			return named(name, func(ctx context.Context) error {
				mu.Lock()
				runs[name]++
				mu.Unlock()
				return fn(ctx)
			})
		}
		kick := make(chan struct{})
		_, err = s.Add(count("done", func(context.Context) error { return nil }), supervise.ChildConfig{Restart: supervise.Transient})
		require.NoError(t, err)
		_, err = s.Add(count("temp", blocker), supervise.ChildConfig{Restart: supervise.Temporary})
		require.NoError(t, err)
		_, err = s.Add(count("perm", blocker), supervise.ChildConfig{})
		require.NoError(t, err)
		failed := false
		_, err = s.Add(count("flaky", func(ctx context.Context) error {
			select {
			case <-kick:
				if !failed {
					failed = true
					return errors.New("flaky failed")
				}
				return blocker(ctx)
			case <-ctx.Done():
				return nil
			}
		}), supervise.ChildConfig{})
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()
		close(kick)
		synctest.Wait()
		mu.Lock()
		assert.Equal(t, map[string]int{"done": 1, "temp": 1, "perm": 2, "flaky": 2}, runs)
		mu.Unlock()
		st := s.Snapshot()
		assert.Equal(t, supervise.StateStopped, st.Children[0].State)
		assert.Equal(t, supervise.StateStopped, st.Children[1].State)
		assert.Equal(t, supervise.StateRunning, st.Children[2].State)
		require.NoError(t, stop())
	})
}
