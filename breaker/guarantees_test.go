package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/breaker"
)

// hookLog returns an OnStateChange hook that records "from>to", and the record.
func hookLog() (func(string, breaker.State, breaker.State), *[]string) {
	var mu sync.Mutex
	log := new([]string)
	return func(_ string, from, to breaker.State) {
		mu.Lock()
		defer mu.Unlock()
		*log = append(*log, from.String()+">"+to.String())
	}, log
}

// A time-based window is exactly WindowDuration long, for every rule: a call that
// ended at t=0 no longer counts at t=10.1s with a 10s window, even when 10s does not
// divide evenly into the buckets (10s in 3 buckets used to become 4 buckets, 13.3s,
// for the failure rules and stay 3 for the slow-call rule).
func TestTimeWindowIsExact(t *testing.T) {
	tests := []struct {
		name string
		give breaker.Config
		call func(context.Context) error
	}{
		{"failure rate", breaker.Config{FailureRate: 0.5, MinimumCalls: 2}, fail},
		{"consecutive failures", breaker.Config{ConsecutiveFailures: 2}, fail},
		{"slow-call rate", breaker.Config{ConsecutiveFailures: breaker.Off, SlowCallDuration: time.Second, SlowCallRate: 0.5, MinimumCalls: 2},
			func(context.Context) error { time.Sleep(time.Second); return nil }},
	}
	for _, tt := range tests {
		for _, buckets := range []int{3, 7, 10} {
			t.Run(fmt.Sprint(tt.name, "/", buckets, " buckets"), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					cfg := tt.give
					cfg.WindowDuration, cfg.WindowBuckets = 10*time.Second, buckets
					b, err := breaker.New(cfg)
					require.NoError(t, err)
					start := time.Now()
					_ = b.Do(t.Context(), tt.call) // ends at t=0 (or t=1s when slow)
					ended := time.Since(start)
					assert.Equal(t, closed, b.Snapshot().State)

					time.Sleep(10*time.Second + 100*time.Millisecond - ended) // t = end + 10.1s
					_ = b.Do(t.Context(), tt.call)
					assert.Equal(t, closed, b.Snapshot().State, "the first call has left the window")
					assert.EqualValues(t, 1, b.Snapshot().Counts.Requests)
				})
			})
		}
	}
}

// The window is not shorter than configured either: a call counts until the end of
// the window that began with its bucket.
func TestTimeWindowKeepsCallsOfTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := breaker.New(breaker.Config{ConsecutiveFailures: 2, WindowDuration: 10 * time.Second, WindowBuckets: 3})
		require.NoError(t, err)
		require.ErrorIs(t, b.Do(t.Context(), fail), errBoom)
		time.Sleep(9*time.Second + 900*time.Millisecond) // still in the bucket's window
		require.ErrorIs(t, b.Do(t.Context(), fail), errBoom)
		assert.Equal(t, open, b.Snapshot().State)
	})
}

// An attacker who varies the key floods a group with new, closed breakers; the open
// breaker of a failing host must survive it, or the flood would close it.
func TestGroupFloodDoesNotEvictOpenBreaker(t *testing.T) {
	g, err := breaker.NewGroup(breaker.GroupConfig{
		Name: "hosts", MaxKeys: 16,
		Breaker: breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Hour},
	})
	require.NoError(t, err)
	require.ErrorIs(t, g.Do(t.Context(), "failing.example", fail), errBoom)
	victim := g.Get("failing.example")
	for i := range 10_000 {
		_ = g.Do(t.Context(), fmt.Sprint("attacker-", i, ".example"), ok)
	}
	assert.LessOrEqual(t, g.Len(), 16)
	assert.Same(t, victim, g.Get("failing.example"), "the open breaker was evicted")
	require.ErrorIs(t, g.Do(t.Context(), "failing.example", ok), breaker.ErrOpen)

	// Closed breakers still go least recently used first, and when every live
	// breaker is open, open ones are evicted too (the group stays bounded).
	for i := range 16 {
		_ = g.Do(t.Context(), fmt.Sprint("down-", i), fail)
	}
	assert.LessOrEqual(t, g.Len(), 16)
}

// The open wait grows on each open period in a row, up to MaxOpenDuration, and starts
// over once the breaker has closed (or been reset).
func TestOpenWaitGrows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := breaker.New(breaker.Config{
			ConsecutiveFailures: 1, OpenDuration: time.Second, MaxOpenDuration: 8 * time.Second,
			OpenJitter: breaker.Off, MaxHalfOpenWait: breaker.Off,
		})
		require.NoError(t, err)
		wait := func() time.Duration {
			t.Helper()
			err := b.Do(t.Context(), ok)
			var oe *breaker.OpenError
			require.ErrorAs(t, err, &oe)
			d := oe.RetryAfter()
			time.Sleep(d + time.Nanosecond)
			return d
		}
		require.Error(t, b.Do(t.Context(), fail))
		var got []time.Duration
		for range 5 {
			got = append(got, wait())
			require.ErrorIs(t, b.Do(t.Context(), fail), errBoom, "the probe fails")
		}
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
		assert.Equal(t, want, got)

		// A successful probe closes the breaker: the next open wait is OpenDuration.
		wait()
		require.NoError(t, b.Do(t.Context(), ok))
		require.Error(t, b.Do(t.Context(), fail))
		assert.Equal(t, time.Second, wait())
		require.Error(t, b.Do(t.Context(), fail))
		assert.Equal(t, 2*time.Second, wait())
		b.Reset()
		require.Error(t, b.Do(t.Context(), fail))
		assert.Equal(t, time.Second, wait(), "Reset starts over")
	})
}

// The default open wait is constant, as it always was.
func TestOpenWaitConstantByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := breaker.New(breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Second})
		require.NoError(t, err)
		require.Error(t, b.Do(t.Context(), fail))
		for range 5 {
			assert.Equal(t, time.Second, time.Until(b.Snapshot().OpenUntil))
			time.Sleep(time.Second + time.Nanosecond)
			require.ErrorIs(t, b.Do(t.Context(), fail), errBoom)
		}
	})
}

// Jitter shortens each open wait by a random share of at most OpenJitter; by default
// a growing wait gets 20%.
func TestOpenWaitJitter(t *testing.T) {
	tests := []struct {
		give     breaker.Config
		min, max time.Duration
	}{
		{breaker.Config{OpenDuration: 8 * time.Second, OpenJitter: 0.5}, 4 * time.Second, 8 * time.Second},
		{breaker.Config{OpenDuration: 10 * time.Second, MaxOpenDuration: 10 * time.Second, OpenJitter: 1}, 0, 10 * time.Second},
		{breaker.Config{OpenDuration: 10 * time.Second, MaxOpenDuration: 20 * time.Second}, 8 * time.Second, 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.give), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := tt.give
				cfg.ConsecutiveFailures, cfg.MaxHalfOpenWait = 1, breaker.Off
				b, err := breaker.New(cfg)
				require.NoError(t, err)
				require.Error(t, b.Do(t.Context(), fail))
				seen := map[time.Duration]bool{}
				for range 20 {
					d := time.Until(b.Snapshot().OpenUntil)
					assert.GreaterOrEqual(t, d, tt.min)
					assert.LessOrEqual(t, d, tt.max)
					seen[d] = true
					time.Sleep(d + time.Nanosecond)
					require.ErrorIs(t, b.Do(t.Context(), fail), errBoom)
				}
				assert.Greater(t, len(seen), 5, "the waits are spread")
			})
		})
	}
}

// A probe that never returns cannot keep the breaker half-open forever: after
// MaxHalfOpenWait the next call reopens it, and the late probe's outcome is dropped.
func TestMaxHalfOpenWait(t *testing.T) {
	for _, tt := range []struct {
		give breaker.Config
		wait time.Duration
	}{
		{breaker.Config{MaxHalfOpenWait: 5 * time.Second}, 5 * time.Second},
		{breaker.Config{}, 60 * time.Second},
	} {
		t.Run(tt.wait.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hook, log := hookLog()
				cfg := tt.give
				cfg.ConsecutiveFailures, cfg.OpenDuration, cfg.OnStateChange = 1, time.Second, hook
				b, err := breaker.New(cfg)
				require.NoError(t, err)
				require.Error(t, b.Do(t.Context(), fail))
				time.Sleep(2 * time.Second)

				release := make(chan struct{})
				done := make(chan error)
				go func() { done <- b.Do(t.Context(), func(context.Context) error { <-release; return nil }) }()
				synctest.Wait()
				require.ErrorIs(t, b.Do(t.Context(), ok), breaker.ErrTooManyRequests)
				time.Sleep(tt.wait)
				require.ErrorIs(t, b.Do(t.Context(), ok), breaker.ErrTooManyRequests, "not before MaxHalfOpenWait")
				time.Sleep(time.Nanosecond)
				require.ErrorIs(t, b.Do(t.Context(), ok), breaker.ErrOpen, "the breaker reopens")
				assert.Equal(t, []string{"closed>open", "open>half-open", "half-open>open"}, *log)

				close(release)
				require.NoError(t, <-done)
				assert.Equal(t, open, b.Snapshot().State, "the late probe's success is dropped")
				time.Sleep(2 * time.Second)
				require.NoError(t, b.Do(t.Context(), ok))
				assert.Equal(t, closed, b.Snapshot().State)
			})
		})
	}
}

// A late probe outcome after MaxHalfOpenWait reopens the breaker by itself too.
func TestMaxHalfOpenWaitLateOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := breaker.New(breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Second, MaxHalfOpenWait: 5 * time.Second})
		require.NoError(t, err)
		require.Error(t, b.Do(t.Context(), fail))
		time.Sleep(2 * time.Second)
		require.NoError(t, b.Do(t.Context(), func(context.Context) error { time.Sleep(6 * time.Second); return nil }))
		assert.Equal(t, open, b.Snapshot().State)
	})
}

// Snapshot, Group.States and metric collection have no side effects: an open breaker
// past its wait stays open, and no hook runs, until a call moves it.
func TestSnapshotHasNoSideEffects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hook, log := hookLog()
		g, err := breaker.NewGroup(breaker.GroupConfig{Breaker: breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Second, OnStateChange: hook}})
		require.NoError(t, err)
		require.Error(t, g.Do(t.Context(), "k", fail))
		b := g.Get("k")
		time.Sleep(time.Hour)
		for range 3 {
			s := b.Snapshot()
			assert.Equal(t, open, s.State)
			assert.True(t, s.OpenUntil.Before(time.Now()))
			assert.Equal(t, open, g.Snapshot()[0].State)
		}
		assert.Equal(t, []string{"closed>open"}, *log, "reading fired no hook")

		require.NoError(t, b.Do(t.Context(), ok))
		assert.Equal(t, []string{"closed>open", "open>half-open", "half-open>closed"}, *log)
	})
}

// The two-step permit: Allow, make the call, report it with done.
func TestAllow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var seen []any
		b, err := breaker.New(breaker.Config{
			ConsecutiveFailures: 2, OpenDuration: time.Second, SlowCallDuration: time.Second, SlowCallRate: 1,
			MinimumCalls: 3, WindowSize: 3,
			Classify: func(result any, err error) selfheal.Outcome {
				seen = append(seen, result)
				if result == "bad" {
					return selfheal.Failure
				}
				return breaker.DefaultClassify(result, err)
			},
		})
		require.NoError(t, err)

		done, err := b.Allow(t.Context())
		require.NoError(t, err)
		done("fine", nil)
		done("bad", errBoom) // only the first report counts
		done("bad", errBoom)
		assert.Equal(t, []any{"fine"}, seen)
		assert.Equal(t, breaker.Counts{Requests: 1, Successes: 1, ConsecutiveSuccesses: 1, WindowCalls: 1}, b.Snapshot().Counts)

		// The caller's own cancellation counts neither way, before Classify is asked.
		ctx, cancel := context.WithCancel(t.Context())
		done, err = b.Allow(ctx)
		require.NoError(t, err)
		cancel()
		done(nil, ctx.Err())
		assert.EqualValues(t, 1, b.Snapshot().Counts.Excluded)
		assert.Len(t, seen, 1)

		// The slow-call rule measures from Allow to done.
		done, err = b.Allow(t.Context())
		require.NoError(t, err)
		time.Sleep(time.Second)
		done(nil, nil)
		assert.EqualValues(t, 1, b.Snapshot().Counts.WindowSlow)

		// A result judged a failure counts as one.
		for range 2 {
			done, err = b.Allow(t.Context())
			require.NoError(t, err)
			done("bad", nil)
		}
		assert.Equal(t, open, b.Snapshot().State)

		// A rejection returns no done function.
		done, err = b.Allow(t.Context())
		require.ErrorIs(t, err, breaker.ErrOpen)
		assert.Nil(t, done)
	})
}

// A permit of the closed state reported after the breaker opened and moved on is
// dropped: it is not a probe.
func TestAllowStalePermitIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := breaker.New(breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Second})
		require.NoError(t, err)
		stale, err := b.Allow(t.Context())
		require.NoError(t, err)
		require.Error(t, b.Do(t.Context(), fail))
		time.Sleep(2 * time.Second)
		probe, err := b.Allow(t.Context())
		require.NoError(t, err)
		stale(nil, nil) // would close the half-open breaker if it counted
		assert.Equal(t, halfOpen, b.Snapshot().State)
		_, err = b.Allow(t.Context())
		require.ErrorIs(t, err, breaker.ErrTooManyRequests, "the probe slot is still taken")
		probe(nil, nil)
		assert.Equal(t, closed, b.Snapshot().State)
	})
}

// A probe permit that is never reported holds its slot only until MaxHalfOpenWait.
func TestAllowUnreportedProbeDoesNotWedge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := breaker.New(breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Second, MaxHalfOpenWait: 10 * time.Second})
		require.NoError(t, err)
		require.Error(t, b.Do(t.Context(), fail))
		time.Sleep(2 * time.Second)
		_, err = b.Allow(t.Context()) // the probe; its done is lost
		require.NoError(t, err)
		_, err = b.Allow(t.Context())
		require.ErrorIs(t, err, breaker.ErrTooManyRequests)
		time.Sleep(11 * time.Second)
		_, err = b.Allow(t.Context())
		require.ErrorIs(t, err, breaker.ErrOpen, "reopened")
		time.Sleep(2 * time.Second)
		done, err := b.Allow(t.Context())
		require.NoError(t, err, "a new probe")
		done(nil, nil)
		assert.Equal(t, closed, b.Snapshot().State)
	})
}

// Calling done concurrently counts once.
func TestAllowDoneConcurrently(t *testing.T) {
	b, err := breaker.New(breaker.Config{})
	require.NoError(t, err)
	done, err := b.Allow(t.Context())
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { done(nil, errBoom) })
	}
	wg.Wait()
	assert.EqualValues(t, 1, b.Snapshot().Counts.Failures)
}

// Classify sees Call's value; a panic is a failure whatever Classify says.
func TestClassifyResultAndPanic(t *testing.T) {
	type reply struct{ status int }
	b, err := breaker.New(breaker.Config{
		ConsecutiveFailures: 1,
		Classify: func(result any, err error) selfheal.Outcome {
			if r, ok := result.(reply); ok && r.status >= 500 {
				return selfheal.Failure
			}
			return selfheal.Success // even errors
		},
	})
	require.NoError(t, err)
	v, err := breaker.Call(t.Context(), b, func(context.Context) (reply, error) { return reply{404}, errNotFound })
	assert.Equal(t, reply{404}, v)
	require.ErrorIs(t, err, errNotFound)
	assert.Equal(t, closed, b.Snapshot().State)
	assert.Panics(t, func() { _ = b.Do(t.Context(), func(context.Context) error { panic("x") }) })
	assert.Equal(t, open, b.Snapshot().State, "a panic is a failure")
	b.Reset()
	v, err = breaker.Call(t.Context(), b, func(context.Context) (reply, error) { return reply{503}, nil })
	assert.Equal(t, reply{503}, v)
	require.NoError(t, err)
	assert.Equal(t, open, b.Snapshot().State, "judged on the result")
	_, err = breaker.Call(t.Context(), b, func(context.Context) (reply, error) { return reply{200}, nil })
	require.ErrorIs(t, err, breaker.ErrOpen)
}

// Without a Classify, Call boxes nothing: it allocates nothing.
func TestCallAllocatesNothing(t *testing.T) {
	b, err := breaker.New(breaker.Config{})
	require.NoError(t, err)
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 42, nil }
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _, _ = breaker.Call(ctx, b, fn) }))
}

// A ConfigError names the field and matches ErrInvalidConfig.
func TestConfigError(t *testing.T) {
	_, err := breaker.New(breaker.Config{MaxHalfOpenWait: -2})
	var ce *breaker.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Config.MaxHalfOpenWait", ce.Field)
	assert.True(t, errors.Is(err, breaker.ErrInvalidConfig))
	assert.Equal(t, breaker.ErrInvalidConfig, errors.Unwrap(err))
}
