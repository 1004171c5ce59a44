package retry_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/retry"
)

// Every test here runs in a synctest bubble: time is virtual and advances only when all
// goroutines of the bubble are blocked, so waits are exact and instant.

// waits runs p.Do with fn failing always and returns the delays OnRetry announced and the
// times at which the attempts started (relative to the call's start).
func waits(t *testing.T, cfg retry.Config, ctx context.Context, fn func(context.Context) error) (delays, starts []time.Duration, err error) {
	t.Helper()
	cfg.OnRetry = func(_ context.Context, _ int, _ error, d time.Duration) { delays = append(delays, d) }
	p := mustNew(t, cfg)
	begin := time.Now()
	if fn == nil {
		fn = func(context.Context) error { return errFlaky }
	}
	err = p.Do(ctx, func(ctx context.Context) error {
		starts = append(starts, time.Since(begin))
		return fn(ctx)
	})
	return delays, starts, err
}

func TestWaitsAreExactlyTheAnnouncedDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		delays, starts, err := waits(t, retry.Config{MaxAttempts: 6, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: 100 * time.Millisecond})}, context.Background(), nil)
		require.ErrorIs(t, err, retry.ErrExhausted)
		require.Len(t, delays, 5)
		var at time.Duration
		for i, d := range delays {
			at += d
			assert.Equal(t, at, starts[i+1], "attempt %d starts after exactly the announced waits", i+2)
		}
	})
}

func TestExponentialAndCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		delays, _, _ := waits(t, retry.Config{
			MaxAttempts: 8,
			Backoff:     retry.Exponential(retry.ExponentialConfig{InitialDelay: 100 * time.Millisecond, MaxDelay: time.Second, Jitter: retry.JitterNone}),
		}, context.Background(), nil)
		ms := time.Millisecond
		assert.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1000 * ms, 1000 * ms, 1000 * ms}, delays)

		delays, _, _ = waits(t, retry.Config{
			MaxAttempts: 4,
			Backoff:     retry.Exponential(retry.ExponentialConfig{InitialDelay: 50 * time.Millisecond, Multiplier: 1, Jitter: retry.JitterNone}),
		}, context.Background(), nil)
		assert.Equal(t, []time.Duration{50 * ms, 50 * ms, 50 * ms}, delays, "multiplier 1 is a constant delay")

		delays, _, _ = waits(t, retry.Config{MaxAttempts: 4, Backoff: retry.Constant(70 * ms)}, context.Background(), nil)
		assert.Equal(t, []time.Duration{70 * ms, 70 * ms, 70 * ms}, delays)

		delays, _, _ = waits(t, retry.Config{MaxAttempts: 40, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Second, MaxDelay: time.Hour, Multiplier: 10, Jitter: retry.JitterNone})},
			context.Background(), nil)
		assert.Equal(t, time.Hour, delays[len(delays)-1], "huge exponents saturate at the cap")
	})
}

func TestJitterBounds(t *testing.T) {
	const (
		base = 100 * time.Millisecond
		cap  = 2 * time.Second
	)
	exp := func(n int) time.Duration { return min(cap, base<<(n-1)) }
	tests := []struct {
		jitter retry.Jitter
		lo, hi func(n int, prev time.Duration) time.Duration
	}{
		{retry.JitterFull,
			func(int, time.Duration) time.Duration { return 0 },
			func(n int, _ time.Duration) time.Duration { return exp(n) }},
		{retry.JitterEqual,
			func(n int, _ time.Duration) time.Duration { return exp(n) - exp(n)/2 },
			func(n int, _ time.Duration) time.Duration { return exp(n) }},
		{retry.JitterDecorrelated,
			func(int, time.Duration) time.Duration { return base },
			func(_ int, prev time.Duration) time.Duration { return min(cap, 3*max(prev, base)) }},
		{retry.JitterNone,
			func(n int, _ time.Duration) time.Duration { return exp(n) },
			func(n int, _ time.Duration) time.Duration { return exp(n) }},
	}
	for _, tt := range tests {
		t.Run(tt.jitter.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := retry.Config{MaxAttempts: 10, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: base, MaxDelay: cap, Jitter: tt.jitter})}
				distinct := map[time.Duration]bool{}
				for range 200 {
					delays, starts, _ := waits(t, cfg, context.Background(), nil)
					require.Len(t, delays, 9)
					var prev, at time.Duration
					for i, d := range delays {
						n := i + 1
						assert.GreaterOrEqual(t, d, tt.lo(n, prev), "retry %d", n)
						assert.LessOrEqual(t, d, tt.hi(n, prev), "retry %d", n)
						at += d
						assert.Equal(t, at, starts[n], "the wait is the announced delay")
						prev = d
						distinct[d] = true
					}
				}
				if tt.jitter != retry.JitterNone {
					assert.Greater(t, len(distinct), 100, "delays are spread")
				}
			})
		})
	}
}

func TestDeadlineIsNeverOverslept(t *testing.T) {
	for _, j := range []retry.Jitter{retry.JitterFull, retry.JitterEqual, retry.JitterDecorrelated, retry.JitterNone} {
		t.Run(j.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				refused := 0
				for range 100 {
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					begin := time.Now()
					delays, starts, err := waits(t, retry.Config{
						MaxAttempts: 100,
						Backoff:     retry.Exponential(retry.ExponentialConfig{InitialDelay: 50 * time.Millisecond, MaxDelay: 400 * time.Millisecond, Jitter: j}),
					}, ctx, func(ctx context.Context) error {
						// The attempt takes time too, and honours ctx.
						tm := time.NewTimer(10 * time.Millisecond)
						defer tm.Stop()
						select {
						case <-ctx.Done():
							return ctx.Err()
						case <-tm.C:
							return errFlaky
						}
					})
					took := time.Since(begin)
					cancel()
					require.Error(t, err)
					assert.LessOrEqual(t, took, time.Second, "never past the deadline")
					assert.ErrorIs(t, err, context.DeadlineExceeded)
					for _, s := range starts {
						assert.Less(t, s, time.Second, "every wait ended before the deadline")
					}
					var ee *retry.ExhaustedError
					if errors.As(err, &ee) {
						// The policy refused a wait that would have reached the deadline.
						refused++
						assert.Less(t, took, time.Second)
						assert.Equal(t, retry.ReasonDeadline, ee.Reason)
						assert.ErrorIs(t, err, retry.ErrExhausted)
						assert.ErrorIs(t, err, errFlaky)
						assert.Equal(t, len(starts), ee.Attempts)
						assert.Len(t, delays, len(starts)-1)
					} else {
						// The last attempt ran into the deadline itself.
						assert.Equal(t, context.DeadlineExceeded, err)
					}
				}
				assert.Positive(t, refused)
			})
		})
	}
}

func TestDeadlineReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		begin := time.Now()
		_, starts, err := waits(t, retry.Config{
			MaxAttempts: 10,
			Backoff:     retry.Exponential(retry.ExponentialConfig{InitialDelay: 300 * time.Millisecond, Jitter: retry.JitterNone}),
		}, ctx, nil)
		// Waits 300ms and 600ms fit (900ms); the next, 1.2s, cannot end before 1s.
		assert.Equal(t, []time.Duration{0, 300 * time.Millisecond, 900 * time.Millisecond}, starts)
		assert.Equal(t, 900*time.Millisecond, time.Since(begin), "no sleeping into the deadline")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.NoError(t, ctx.Err(), "the deadline has not even passed")
	})
}

func TestMaxElapsedTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		begin := time.Now()
		_, starts, err := waits(t, retry.Config{
			MaxAttempts: 10,
			Backoff:     retry.Exponential(retry.ExponentialConfig{InitialDelay: 300 * time.Millisecond, Jitter: retry.JitterNone}), MaxElapsedTime: time.Second,
		}, context.Background(), func(context.Context) error {
			time.Sleep(20 * time.Millisecond)
			return errFlaky
		})
		// Attempts start at 0, 320ms, 940ms; a wait of 1.2s from 960ms would end past 1s.
		assert.Equal(t, []time.Duration{0, 320 * time.Millisecond, 940 * time.Millisecond}, starts)
		assert.Equal(t, 960*time.Millisecond, time.Since(begin))
		var ee *retry.ExhaustedError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, retry.ReasonMaxElapsed, ee.Reason)
		assert.Equal(t, 3, ee.Attempts)
		assert.ErrorIs(t, err, errFlaky)
		assert.NotErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestCancelDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(250 * time.Millisecond)
			cancel()
		}()
		begin := time.Now()
		_, starts, err := waits(t, retry.Config{MaxAttempts: 5, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Second, Jitter: retry.JitterNone})}, ctx, nil)
		assert.Equal(t, 250*time.Millisecond, time.Since(begin), "the wait ends when ctx is done")
		assert.Len(t, starts, 1)
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, errFlaky)
		assert.NotErrorIs(t, err, retry.ErrExhausted)
	})
}

// hinted is an error type of another package (an HTTP transport, say) carrying a delay.
type hinted struct{ d time.Duration }

func (h hinted) Error() string             { return "503 Service Unavailable" }
func (h hinted) RetryAfter() time.Duration { return h.d }

func TestServerRequestedDelay(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		cfg    retry.Config
		give   error
		want   time.Duration
		reason retry.Reason // when the call gives up instead
	}{
		{"After is honoured", retry.Config{}, retry.After(errFlaky, 5*time.Second), 5 * time.Second, ""},
		{"After beyond the backoff cap", retry.Config{Backoff: retry.Exponential(retry.ExponentialConfig{MaxDelay: time.Second})}, retry.After(errFlaky, 20*time.Second), 20 * time.Second, ""},
		{"After at the cap", retry.Config{MaxServerDelay: 10 * time.Second}, retry.After(errFlaky, 10*time.Second), 10 * time.Second, ""},
		{"After beyond the cap gives up", retry.Config{MaxServerDelay: 10 * time.Second}, retry.After(errFlaky, 11*time.Second), 0, retry.ReasonServerDelay},
		{"default cap 30s gives up", retry.Config{}, retry.After(errFlaky, 31*time.Second), 0, retry.ReasonServerDelay},
		{"interface of another package", retry.Config{}, hinted{1500 * ms}, 1500 * ms, ""},
		{"wrapped interface", retry.Config{}, errors.Join(errFlaky, hinted{700 * ms}), 700 * ms, ""},
		{"ignored when MaxServerDelay is Off", retry.Config{Backoff: retry.Exponential(retry.ExponentialConfig{Jitter: retry.JitterNone}), MaxServerDelay: retry.Off}, retry.After(errFlaky, time.Hour), 100 * ms, ""},
		{"zero delay means backoff", retry.Config{Backoff: retry.Exponential(retry.ExponentialConfig{Jitter: retry.JitterNone})}, retry.After(errFlaky, 0), 100 * ms, ""},
		{"negative delay means backoff", retry.Config{Backoff: retry.Exponential(retry.ExponentialConfig{Jitter: retry.JitterNone})}, hinted{-time.Second}, 100 * ms, ""},
		{"deadline still wins", retry.Config{MaxServerDelay: time.Hour}, retry.After(errFlaky, 2*time.Minute), 0, retry.ReasonDeadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tt.cfg.MaxAttempts = 2
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				delays, starts, err := waits(t, tt.cfg, ctx, func(context.Context) error { return tt.give })
				var ee *retry.ExhaustedError
				require.ErrorAs(t, err, &ee)
				assert.ErrorIs(t, err, tt.give)
				if tt.reason != "" {
					assert.Equal(t, tt.reason, ee.Reason)
					assert.Empty(t, delays)
					return
				}
				require.Equal(t, []time.Duration{tt.want}, delays)
				assert.Equal(t, tt.want, starts[1])
			})
		})
	}
}

func TestAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: 10 * time.Millisecond, Jitter: retry.JitterNone}),
			AttemptTimeout: 100 * time.Millisecond})
		begin := time.Now()
		calls := 0
		err := p.Do(context.Background(), func(ctx context.Context) error {
			calls++
			if calls == 3 {
				return nil
			}
			<-ctx.Done() // hangs until its own timeout
			return ctx.Err()
		})
		require.NoError(t, err)
		assert.Equal(t, 3, calls)
		assert.Equal(t, 100*time.Millisecond+10*time.Millisecond+100*time.Millisecond+20*time.Millisecond, time.Since(begin))

		err = p.Do(context.Background(), func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		var te *retry.AttemptTimeoutError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, 3, te.Attempt)
		assert.ErrorIs(t, err, retry.ErrExhausted)
		assert.Equal(t, "retry: gave up after 3 attempts (max attempts reached): retry: attempt 3 timed out after 100ms: context deadline exceeded", err.Error())

		// The caller's own deadline is not an attempt timeout: not retried.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		calls = 0
		err = p.Do(ctx, func(ctx context.Context) error {
			calls++
			<-ctx.Done()
			return ctx.Err()
		})
		assert.Equal(t, 1, calls)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.False(t, errors.As(err, &te))
	})
}
