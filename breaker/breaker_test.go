package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/breaker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	errBoom     = errors.New("boom")
	errNotFound = errors.New("not found")
)

func fail(context.Context) error { return errBoom }
func ok(context.Context) error   { return nil }

const (
	closed   = breaker.StateClosed
	open     = breaker.StateOpen
	halfOpen = breaker.StateHalfOpen
)

// A step waits (on the synctest clock), makes one call and checks the result and the
// state after it.
type step struct {
	wait  time.Duration
	call  string // ok, fail, slow (1s, then ok), slowfail, cancel (caller's), deadline (caller's), calleecancel, notfound
	want  error  // nil: the call ran; ErrOpen or ErrTooManyRequests: rejected
	state breaker.State
}

// do makes the call named by s.call through b and reports whether fn ran.
func do(t *testing.T, b *breaker.Breaker, call string) (error, bool) {
	t.Helper()
	ctx := t.Context()
	var fn func(context.Context) error
	switch call {
	case "ok":
		fn = ok
	case "fail":
		fn = fail
	case "slow":
		fn = func(context.Context) error { time.Sleep(time.Second); return nil }
	case "slowfail":
		fn = func(context.Context) error { time.Sleep(time.Second); return errBoom }
	case "cancel":
		c, cancel := context.WithCancel(ctx)
		cancel()
		ctx, fn = c, func(ctx context.Context) error { return fmt.Errorf("dial: %w", ctx.Err()) }
	case "deadline":
		c, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		ctx, fn = c, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	case "calleecancel":
		fn = func(context.Context) error { return context.Canceled }
	case "notfound":
		fn = func(context.Context) error { return errNotFound }
	default:
		t.Fatalf("unknown call %q", call)
	}
	ran := false
	err := b.Do(ctx, func(ctx context.Context) error { ran = true; return fn(ctx) })
	return err, ran
}

func repeat(n int, s step) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func steps(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestTransitions(t *testing.T) {
	notFoundIsSuccess := func(_ any, err error) selfheal.Outcome {
		if errors.Is(err, errNotFound) {
			return selfheal.Success
		}
		return breaker.DefaultClassify(nil, err)
	}
	notFoundIsIgnored := func(_ any, err error) selfheal.Outcome {
		if errors.Is(err, errNotFound) {
			return selfheal.Ignored
		}
		return breaker.DefaultClassify(nil, err)
	}
	tests := []struct {
		name  string
		give  breaker.Config
		steps []step
	}{
		{
			name: "default trips after 5 consecutive failures",
			steps: steps(
				repeat(4, step{call: "fail", state: closed}),
				[]step{{call: "fail", state: open}, {call: "ok", want: breaker.ErrOpen, state: open}},
			),
		},
		{
			name: "a success ends the run of failures",
			steps: steps(
				repeat(4, step{call: "fail", state: closed}),
				[]step{{call: "ok", state: closed}},
				repeat(4, step{call: "fail", state: closed}),
			),
		},
		{
			name: "open for OpenDuration, then one probe closes",
			give: breaker.Config{ConsecutiveFailures: 1, OpenDuration: 10 * time.Second},
			steps: []step{
				{call: "fail", state: open},
				{wait: 10 * time.Second, call: "ok", want: breaker.ErrOpen, state: open},
				{wait: time.Nanosecond, call: "ok", state: closed},
				{call: "ok", state: closed},
			},
		},
		{
			name: "default open duration is 60s",
			give: breaker.Config{ConsecutiveFailures: 1},
			steps: []step{
				{call: "fail", state: open},
				{wait: 59 * time.Second, call: "ok", want: breaker.ErrOpen, state: open},
				{wait: time.Second + 1, call: "ok", state: closed},
			},
		},
		{
			name: "a failed probe reopens for another OpenDuration",
			give: breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Second},
			steps: []step{
				{call: "fail", state: open},
				{wait: 2 * time.Second, call: "fail", state: open},
				{wait: 999 * time.Millisecond, call: "ok", want: breaker.ErrOpen, state: open},
				{wait: 2 * time.Millisecond, call: "ok", state: closed},
			},
		},
		{
			name: "HalfOpenProbes successes close",
			give: breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Second, HalfOpenProbes: 3},
			steps: []step{
				{call: "fail", state: open},
				{wait: 2 * time.Second, call: "ok", state: halfOpen},
				{call: "ok", state: halfOpen},
				{call: "ok", state: closed},
			},
		},
		{
			name: "any failed probe reopens",
			give: breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Second, HalfOpenProbes: 3},
			steps: []step{
				{call: "fail", state: open},
				{wait: 2 * time.Second, call: "ok", state: halfOpen},
				{call: "ok", state: halfOpen},
				{call: "fail", state: open},
			},
		},
		{
			name: "the caller's own cancellation frees the probe slot and counts neither way",
			give: breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Second},
			steps: []step{
				{call: "fail", state: open},
				{wait: 2 * time.Second, call: "cancel", state: halfOpen},
				{call: "cancel", state: halfOpen},
				{call: "ok", state: closed},
			},
		},
		{
			name: "the caller's own cancellation is no failure",
			give: breaker.Config{ConsecutiveFailures: 2},
			steps: steps(
				repeat(10, step{call: "cancel", state: closed}),
				[]step{{call: "fail", state: closed}, {call: "cancel", state: closed}, {call: "fail", state: open}},
			),
		},
		{
			name:  "context.Canceled from the callee, with the caller's context live, is a failure",
			give:  breaker.Config{ConsecutiveFailures: 1},
			steps: []step{{call: "calleecancel", state: open}},
		},
		{
			name:  "the caller's deadline is a failure: the downstream was too slow for it",
			give:  breaker.Config{ConsecutiveFailures: 1},
			steps: []step{{call: "deadline", state: open}},
		},
		{
			name: "Classify Success counts as a success",
			give: breaker.Config{ConsecutiveFailures: 2, Classify: notFoundIsSuccess},
			steps: steps(
				repeat(5, step{call: "notfound", state: closed}),
				[]step{{call: "fail", state: closed}, {call: "notfound", state: closed}, {call: "fail", state: closed}, {call: "fail", state: open}},
			),
		},
		{
			name: "Classify Success closes a half-open breaker",
			give: breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Second, Classify: notFoundIsSuccess},
			steps: []step{
				{call: "fail", state: open},
				{wait: 2 * time.Second, call: "notfound", state: closed},
			},
		},
		{
			name: "Classify Ignored counts neither way and does not end a run of failures",
			give: breaker.Config{ConsecutiveFailures: 2, Classify: notFoundIsIgnored},
			steps: steps(
				[]step{{call: "fail", state: closed}},
				repeat(5, step{call: "notfound", state: closed}),
				[]step{{call: "fail", state: open}},
			),
		},
		{
			name: "Classify Ignored frees the probe slot",
			give: breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Second, Classify: notFoundIsIgnored},
			steps: []step{
				{call: "fail", state: open},
				{wait: 2 * time.Second, call: "notfound", state: halfOpen},
				{call: "notfound", state: halfOpen},
				{call: "ok", state: closed},
			},
		},
		{
			name: "failure rate over a count-based window",
			give: breaker.Config{FailureRate: 0.5, WindowSize: 4, MinimumCalls: 4},
			steps: []step{
				{call: "fail", state: closed}, {call: "ok", state: closed}, {call: "ok", state: closed}, {call: "ok", state: closed},
				{call: "ok", state: closed}, // the failure leaves the window
				{call: "fail", state: closed},
				{call: "fail", state: open}, // 2 of the last 4
			},
		},
		{
			name: "failure rate waits for MinimumCalls",
			give: breaker.Config{FailureRate: 0.5, WindowSize: 10, MinimumCalls: 4},
			steps: steps(
				repeat(3, step{call: "fail", state: closed}),
				[]step{{call: "fail", state: open}},
			),
		},
		{
			name: "a failure-rate rule turns the default consecutive rule off",
			give: breaker.Config{FailureRate: 1, WindowSize: 10},
			steps: steps(
				repeat(9, step{call: "fail", state: closed}),
				[]step{{call: "fail", state: open}},
			),
		},
		{
			name: "both rules when both are set",
			give: breaker.Config{FailureRate: 1, WindowSize: 10, ConsecutiveFailures: 3},
			steps: steps(
				repeat(2, step{call: "fail", state: closed}),
				[]step{{call: "fail", state: open}},
			),
		},
		{
			name: "failure rate over a time-based window: old calls roll out",
			give: breaker.Config{FailureRate: 0.5, WindowDuration: 10 * time.Second, WindowBuckets: 10, MinimumCalls: 4},
			steps: []step{
				{call: "fail", state: closed}, {call: "fail", state: closed},
				{wait: 10 * time.Second, call: "ok", state: closed},
				{call: "ok", state: closed}, {call: "ok", state: closed},
				{call: "fail", state: closed}, // 1 of 4 in the window; 3 of 6 if the old calls had stayed
				{call: "fail", state: closed}, // 2 of 5
				{call: "fail", state: open},   // 3 of 6
			},
		},
		{
			name: "failure rate over a time-based window: calls within the window count",
			give: breaker.Config{FailureRate: 0.5, WindowDuration: 10 * time.Second, MinimumCalls: 4},
			steps: []step{
				{call: "fail", state: closed}, {call: "fail", state: closed},
				{wait: 8 * time.Second, call: "ok", state: closed},
				{call: "ok", state: closed}, // 2 of 4, but a fast success never trips the breaker
				{call: "fail", state: open}, // 3 of 5
			},
		},
		{
			name: "with a time-based window, a run of failures rolls out with it",
			give: breaker.Config{ConsecutiveFailures: 3, WindowDuration: 10 * time.Second},
			steps: []step{
				{call: "fail", state: closed}, {call: "fail", state: closed},
				{wait: 10 * time.Second, call: "fail", state: closed},
				{call: "fail", state: closed},
				{call: "fail", state: open},
			},
		},
		{
			name: "slow-call rate over a count-based window",
			give: breaker.Config{SlowCallDuration: time.Second, SlowCallRate: 0.5, WindowSize: 4, MinimumCalls: 4},
			steps: []step{
				{call: "slow", state: closed}, {call: "ok", state: closed}, {call: "ok", state: closed},
				{call: "slow", state: open},
			},
		},
		{
			name: "slow-call rate defaults to 1: every call in the window slow",
			give: breaker.Config{SlowCallDuration: time.Second, WindowSize: 3, MinimumCalls: 3},
			steps: []step{
				{call: "slow", state: closed}, {call: "slowfail", state: closed}, {call: "ok", state: closed},
				{call: "slow", state: closed}, {call: "slow", state: closed}, {call: "slow", state: open},
			},
		},
		{
			name: "slow calls that fail count for the failure rate too",
			give: breaker.Config{SlowCallDuration: time.Second, SlowCallRate: 1, FailureRate: 0.5, WindowSize: 2, MinimumCalls: 2},
			steps: []step{
				{call: "ok", state: closed}, {call: "slowfail", state: open},
			},
		},
		{
			name: "slow-call rate over a time-based window: old calls roll out",
			give: breaker.Config{SlowCallDuration: time.Second, SlowCallRate: 0.5, WindowDuration: 10 * time.Second, MinimumCalls: 3},
			steps: []step{
				{call: "slow", state: closed},
				{wait: 20 * time.Second, call: "ok", state: closed},
				{call: "ok", state: closed},
				{call: "slow", state: closed}, // 1 of 3; 2 of 4 if the old one had stayed
				{call: "slow", state: open},   // 2 of 4
			},
		},
		{
			name: "a slow probe reopens when slowness is watched",
			give: breaker.Config{ConsecutiveFailures: 1, SlowCallDuration: time.Second, OpenDuration: time.Minute},
			steps: []step{
				{call: "fail", state: open},
				{wait: 2 * time.Minute, call: "slow", state: open},
				{wait: 2 * time.Minute, call: "ok", state: closed},
			},
		},
		{
			name: "rate windows start empty after the breaker closes",
			give: breaker.Config{FailureRate: 0.75, WindowSize: 4, MinimumCalls: 2, OpenDuration: time.Second},
			steps: []step{
				{call: "fail", state: closed}, {call: "fail", state: open},
				{wait: 2 * time.Second, call: "ok", state: closed},
				{call: "ok", state: closed},
				{call: "fail", state: closed}, // 1 of 2: would be 3 of 4 had the window kept the old calls
				{call: "fail", state: closed}, // 2 of 3
				{call: "fail", state: open},   // 3 of 4
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tt.give.Name = "test"
				b, err := breaker.New(tt.give)
				require.NoError(t, err)
				for i, s := range tt.steps {
					time.Sleep(s.wait)
					err, ran := do(t, b, s.call)
					if s.want != nil {
						require.ErrorIs(t, err, s.want, "step %d", i)
						require.False(t, ran, "step %d: a rejected call must not run", i)
					} else {
						require.True(t, ran, "step %d: the call must run", i)
						require.NotErrorIs(t, err, breaker.ErrOpen, "step %d", i)
					}
					require.Equal(t, s.state, b.Snapshot().State, "step %d (%s)", i, s.call)
				}
			})
		})
	}
}

func TestHalfOpenTooManyRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := breaker.New(breaker.Config{Name: "probe", ConsecutiveFailures: 1, OpenDuration: time.Second, HalfOpenProbes: 2})
		require.NoError(t, err)
		require.Error(t, b.Do(t.Context(), fail))
		time.Sleep(2 * time.Second)

		release := make(chan struct{})
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				assert.NoError(t, b.Do(t.Context(), func(context.Context) error { <-release; return nil }))
			})
		}
		synctest.Wait() // both probes are in flight
		err = b.Do(t.Context(), ok)
		require.ErrorIs(t, err, breaker.ErrTooManyRequests)
		require.NotErrorIs(t, err, breaker.ErrOpen)
		var oe *breaker.OpenError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, breaker.OpenError{Name: "probe", State: halfOpen}, *oe)
		assert.Zero(t, oe.RetryAfter())
		assert.Equal(t, `breaker: too many requests: breaker "probe" is half-open and all probe slots are taken`, err.Error())
		assert.Equal(t, breaker.Counts{Requests: 2}, b.Snapshot().Counts)

		close(release)
		wg.Wait()
		assert.Equal(t, closed, b.Snapshot().State)
	})
}

func TestOpenError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := breaker.New(breaker.Config{Name: "payments", ConsecutiveFailures: 1, OpenDuration: 10 * time.Second})
		require.NoError(t, err)
		require.ErrorIs(t, b.Do(t.Context(), fail), errBoom)
		openedAt := time.Now()

		time.Sleep(3 * time.Second)
		err = b.Do(t.Context(), ok)
		require.ErrorIs(t, err, breaker.ErrOpen)
		var oe *breaker.OpenError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, "payments", oe.Name)
		assert.Equal(t, open, oe.State)
		assert.False(t, oe.Forced)
		assert.Equal(t, openedAt.Add(10*time.Second), oe.Until)
		assert.Equal(t, 7*time.Second, oe.RetryAfter())
		assert.Equal(t, `breaker: circuit open: breaker "payments" stays open for 7s`, err.Error())

		// The same error for the whole open period; the time left is computed when asked.
		time.Sleep(5 * time.Second)
		err2 := b.Do(t.Context(), ok)
		assert.Same(t, oe, err2)
		assert.Equal(t, 2*time.Second, oe.RetryAfter())
		snap := b.Snapshot()
		assert.Equal(t, oe.Until, snap.OpenUntil)

		time.Sleep(3 * time.Second)
		assert.Zero(t, oe.RetryAfter(), "never negative")
		require.NoError(t, b.Do(t.Context(), ok))
		assert.True(t, b.Snapshot().OpenUntil.IsZero())
	})
}

func TestPanicIsAFailureAndIsRaisedAgain(t *testing.T) {
	var transitions []string
	b, err := breaker.New(breaker.Config{
		Name:                "p",
		ConsecutiveFailures: 1,
		OnStateChange: func(_ string, from, to breaker.State) {
			transitions = append(transitions, from.String()+">"+to.String())
		},
	})
	require.NoError(t, err)
	assert.PanicsWithValue(t, "kaboom", func() {
		_ = b.Do(t.Context(), func(context.Context) error { panic("kaboom") })
	})
	assert.Equal(t, open, b.Snapshot().State)
	assert.Equal(t, []string{"closed>open"}, transitions, "the hook ran before the panic went on")

	b.ForceClosed()
	assert.PanicsWithValue(t, "again", func() {
		_ = b.Do(t.Context(), func(context.Context) error { panic("again") })
	}, "a forced-closed breaker lets panics through too")
}

// Since Go 1.21, panic(nil) panics with *runtime.PanicNilError, which recover sees:
// it is a failure too.
func TestPanicNil(t *testing.T) {
	b, err := breaker.New(breaker.Config{Name: "p", ConsecutiveFailures: 1})
	require.NoError(t, err)
	assert.Panics(t, func() {
		_ = b.Do(t.Context(), func(context.Context) error { panic(nil) })
	})
	assert.Equal(t, open, b.Snapshot().State)
}

func TestForceAndReset(t *testing.T) {
	var transitions []string
	b, err := breaker.New(breaker.Config{
		Name:                "f",
		ConsecutiveFailures: 1,
		OnStateChange: func(_ string, from, to breaker.State) {
			transitions = append(transitions, from.String()+">"+to.String())
		},
	})
	require.NoError(t, err)

	b.ForceOpen()
	snap := b.Snapshot()
	assert.Equal(t, breaker.Snapshot{Name: "f", State: open, Forced: true}, snap)
	err, ran := do(t, b, "ok")
	assert.False(t, ran)
	require.ErrorIs(t, err, breaker.ErrOpen)
	var oe *breaker.OpenError
	require.ErrorAs(t, err, &oe)
	assert.True(t, oe.Forced)
	assert.Zero(t, oe.RetryAfter())
	assert.True(t, oe.Until.IsZero())
	assert.Equal(t, `breaker: circuit open: breaker "f" is forced open`, err.Error())

	b.ForceClosed()
	assert.Equal(t, breaker.Snapshot{Name: "f", State: closed, Forced: true}, b.Snapshot())
	for range 10 {
		err, ran := do(t, b, "fail")
		assert.True(t, ran)
		assert.ErrorIs(t, err, errBoom)
	}
	assert.Equal(t, closed, b.Snapshot().State, "rules are suspended")

	b.Reset()
	assert.Equal(t, breaker.Snapshot{Name: "f", State: closed}, b.Snapshot())
	_, _ = do(t, b, "fail")
	assert.Equal(t, open, b.Snapshot().State)
	b.Reset()
	assert.Equal(t, breaker.Snapshot{Name: "f", State: closed}, b.Snapshot(), "Reset empties the counts")
	b.Reset() // no change, no transition

	assert.Equal(t, []string{"closed>open", "open>closed", "closed>open", "open>closed"}, transitions)
}

func TestStateCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := breaker.New(breaker.Config{
			Name:        "c",
			FailureRate: 0.9, ConsecutiveFailures: 10, WindowSize: 5, MinimumCalls: 5,
			SlowCallDuration: time.Second, SlowCallRate: 0.9,
		})
		require.NoError(t, err)
		for _, c := range []string{"ok", "fail", "cancel", "slow", "fail", "fail", "ok", "fail"} {
			_, _ = do(t, b, c)
		}
		assert.Equal(t, breaker.Snapshot{Name: "c", State: closed, Counts: breaker.Counts{
			Requests: 8, Successes: 3, Failures: 4, Excluded: 1, ConsecutiveFailures: 1,
			WindowCalls: 5, WindowFailures: 3, WindowSlow: 1,
		}}, b.Snapshot())
	})
}

func TestTimeWindowCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := breaker.New(breaker.Config{Name: "c", SlowCallDuration: time.Second, WindowDuration: 10 * time.Second})
		require.NoError(t, err)
		_, _ = do(t, b, "slow")
		_, _ = do(t, b, "fail")
		assert.Equal(t, breaker.Counts{Requests: 2, Successes: 1, Failures: 1, ConsecutiveFailures: 1, WindowCalls: 2, WindowFailures: 1, WindowSlow: 1}, b.Snapshot().Counts)
		time.Sleep(11 * time.Second)
		assert.Equal(t, breaker.Counts{}, b.Snapshot().Counts, "both windows roll")
	})
}

func TestCall(t *testing.T) {
	b, err := breaker.New(breaker.Config{Name: "call", ConsecutiveFailures: 1})
	require.NoError(t, err)
	v, err := breaker.Call(t.Context(), b, func(context.Context) (int, error) { return 42, nil })
	require.NoError(t, err)
	assert.Equal(t, 42, v)
	v, err = breaker.Call(t.Context(), b, func(context.Context) (int, error) { return 7, errBoom })
	require.ErrorIs(t, err, errBoom)
	assert.Equal(t, 7, v, "the value comes back with the error, as fn returned it")
	v, err = breaker.Call(t.Context(), b, func(context.Context) (int, error) { return 1, nil })
	require.ErrorIs(t, err, breaker.ErrOpen)
	assert.Zero(t, v)
}

func TestConcurrentUse(t *testing.T) {
	b, err := breaker.New(breaker.Config{Name: "race", FailureRate: 0.5, WindowSize: 20, SlowCallDuration: time.Hour, OpenDuration: time.Millisecond})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				switch {
				case g == 0 && i%100 == 0:
					b.ForceOpen()
				case g == 0 && i%100 == 50:
					b.Reset()
				case g == 1 && i%10 == 0:
					_ = b.Snapshot()
				case g == 2 && i%5 == 0:
					if done, err := b.Allow(context.Background()); err == nil {
						done(nil, nil)
						done(nil, errBoom)
					}
				case (g+i)%3 == 0:
					_ = b.Do(context.Background(), fail)
				default:
					_ = b.Do(context.Background(), ok)
				}
			}
		})
	}
	wg.Wait()
	b.Reset()
	assert.Equal(t, closed, b.Snapshot().State)
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		give breaker.Config
		want string
	}{
		{breaker.Config{ConsecutiveFailures: -2}, "Config.ConsecutiveFailures: is -2"},
		{breaker.Config{ConsecutiveFailures: breaker.Off}, "Config.ConsecutiveFailures: is Off and no other rule"},
		{breaker.Config{FailureRate: 1.5}, "Config.FailureRate: is 1.5"},
		{breaker.Config{FailureRate: -0.1}, "Config.FailureRate: is -0.1"},
		{breaker.Config{SlowCallDuration: -time.Second}, "Config.SlowCallDuration: is -1s"},
		{breaker.Config{SlowCallDuration: time.Second, SlowCallRate: 2}, "Config.SlowCallRate: is 2"},
		{breaker.Config{SlowCallRate: 0.5}, "Config.SlowCallRate: is set but SlowCallDuration is zero"},
		{breaker.Config{WindowSize: -1}, "Config.WindowSize: is -1"},
		{breaker.Config{WindowDuration: -time.Second}, "Config.WindowDuration: is -1s"},
		{breaker.Config{WindowSize: 10, WindowDuration: time.Second}, "Config.WindowSize: is set together with WindowDuration"},
		{breaker.Config{WindowBuckets: -1}, "Config.WindowBuckets: is -1"},
		{breaker.Config{WindowBuckets: 5}, "Config.WindowBuckets: is set but WindowDuration is zero"},
		{breaker.Config{WindowDuration: 5, WindowBuckets: 10}, "Config.WindowBuckets: WindowDuration 5ns cannot be split in 10 buckets"},
		{breaker.Config{MinimumCalls: -1}, "Config.MinimumCalls: is -1"},
		{breaker.Config{FailureRate: 0.5, WindowSize: 10, MinimumCalls: 11}, "Config.MinimumCalls: is 11, above WindowSize 10"},
		{breaker.Config{OpenDuration: -time.Second}, "Config.OpenDuration: is -1s"},
		{breaker.Config{MaxOpenDuration: -time.Second}, "Config.MaxOpenDuration: is -1s"},
		{breaker.Config{OpenDuration: time.Minute, MaxOpenDuration: time.Second}, "Config.MaxOpenDuration: is 1s, below OpenDuration 1m0s"},
		{breaker.Config{OpenBackoff: 0.5}, "Config.OpenBackoff: is 0.5"},
		{breaker.Config{OpenBackoff: -1}, "Config.OpenBackoff: is -1"},
		{breaker.Config{OpenJitter: 1.5}, "Config.OpenJitter: is 1.5"},
		{breaker.Config{OpenJitter: -0.5}, "Config.OpenJitter: is -0.5"},
		{breaker.Config{HalfOpenProbes: -1}, "Config.HalfOpenProbes: is -1"},
		{breaker.Config{HalfOpenProbes: 1 << 40}, "Config.HalfOpenProbes: is 1099511627776"},
		{breaker.Config{MaxHalfOpenWait: -time.Second}, "Config.MaxHalfOpenWait: is -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := breaker.New(tt.give)
			require.ErrorIs(t, err, breaker.ErrInvalidConfig)
			var ce *breaker.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.want[:strings.Index(tt.want, ":")], ce.Field)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "breaker: invalid configuration: "), err.Error())
		})
	}
}

// Off turns off what can be turned off; zero is the documented default.
func TestNewAcceptsOffAndZero(t *testing.T) {
	for _, cfg := range []breaker.Config{
		{},
		{ConsecutiveFailures: breaker.Off, FailureRate: 0.5},
		{ConsecutiveFailures: breaker.Off, SlowCallDuration: time.Second},
		{MaxHalfOpenWait: breaker.Off, OpenJitter: breaker.Off},
		{MaxOpenDuration: time.Hour, OpenBackoff: 1.5, OpenJitter: 1},
	} {
		b, err := breaker.New(cfg)
		require.NoError(t, err, "%+v", cfg)
		assert.Equal(t, breaker.DefaultName, b.Name())
	}
}

func TestStateString(t *testing.T) {
	assert.Equal(t, "closed", closed.String())
	assert.Equal(t, "half-open", halfOpen.String())
	assert.Equal(t, "open", open.String())
	assert.Equal(t, "State(7)", breaker.State(7).String())
}

func TestHalfOpenHookRunsBeforeTheProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log []string
		b, err := breaker.New(breaker.Config{
			Name:                "h",
			ConsecutiveFailures: 1, OpenDuration: time.Second,
			OnStateChange: func(_ string, from, to breaker.State) { log = append(log, from.String()+">"+to.String()) },
		})
		require.NoError(t, err)
		require.Error(t, b.Do(t.Context(), fail))
		time.Sleep(2 * time.Second)
		require.NoError(t, b.Do(t.Context(), func(context.Context) error {
			log = append(log, "probe")
			return nil
		}))
		assert.Equal(t, []string{"closed>open", "open>half-open", "probe", "half-open>closed"}, log)
	})
}
