package retry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/retry"
)

// The behaviours that make a zero-config policy compose with the policies it wraps.

// An attempt bounded by a deadline of its own (heal's Timeout, a context.WithTimeout
// inside fn) that runs out is retried while the caller's context is alive; once the
// caller's own deadline has passed, nothing is retried.
func TestPerAttemptTimeoutIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, retry.Config{}) // zero config: DefaultClassify
		calls := 0
		attempt := func(ctx context.Context) error {
			calls++
			actx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			if calls == 3 {
				return nil
			}
			<-actx.Done() // a stuck downstream: the attempt's own deadline ends it
			return fmt.Errorf("query: %w", actx.Err())
		}
		require.NoError(t, p.Do(context.Background(), attempt))
		assert.Equal(t, 3, calls, "both timed-out attempts were retried")

		// The caller's deadline ends first: not retried, and its error says so.
		calls = 0
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		begin := time.Now()
		err := p.Do(ctx, attempt)
		assert.Equal(t, 1, calls)
		assert.Equal(t, 50*time.Millisecond, time.Since(begin))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.NotErrorIs(t, err, retry.ErrExhausted)

		// The caller's context is canceled while the attempt times out on its own.
		calls = 0
		ctx, cancel = context.WithCancel(context.Background())
		err = p.Do(ctx, func(ctx context.Context) error {
			err := attempt(ctx)
			cancel()
			return err
		})
		assert.Equal(t, 1, calls, "never retried once the caller's context is done")
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

// openError is shaped like breaker's *OpenError: it stays open until a time, and says
// how long that is through RetryAfter, which makes it a retry.DelayHint.
type openError struct{ until time.Time }

func (e *openError) Error() string { return "breaker: circuit open" }
func (e *openError) RetryAfter() time.Duration {
	return max(time.Until(e.until), 0)
}

// fakeBreaker rejects every call with an *openError until it has been open for wait,
// then lets calls through.
type fakeBreaker struct {
	until time.Time
	calls int
}

func (b *fakeBreaker) Do(ctx context.Context, fn func(context.Context) error) error {
	b.calls++
	if time.Now().Before(b.until) {
		return &openError{until: b.until}
	}
	return fn(ctx)
}

// A retry policy around an open breaker, with zero configs on both sides (a breaker
// stays open 60s by default; the policy accepts server delays up to 30s), fails fast:
// it neither blocks for the open wait nor retries earlier than the breaker allows.
func TestRetryAroundOpenBreakerFailsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, retry.Config{})
		b := &fakeBreaker{until: time.Now().Add(60 * time.Second)}
		begin := time.Now()
		err := p.Do(context.Background(), func(ctx context.Context) error {
			return b.Do(ctx, func(context.Context) error { return nil })
		})
		assert.Zero(t, time.Since(begin), "no wait at all")
		assert.Equal(t, 1, b.calls)
		var ee *retry.ExhaustedError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, retry.ReasonServerDelay, ee.Reason)
		assert.Equal(t, 1, ee.Attempts)
		var oe *openError
		assert.ErrorAs(t, err, &oe, "the breaker's error is still there")
		var hint retry.DelayHint
		require.ErrorAs(t, err, &hint)
		assert.Equal(t, 60*time.Second, hint.RetryAfter(), "the caller can read how long to wait")
		assert.Equal(t, "retry: gave up after 1 attempt (server-requested delay exceeds MaxServerDelay): breaker: circuit open", err.Error())
	})
}

// An open wait within MaxServerDelay is waited for, exactly, when the caller's deadline
// allows it; when the deadline does not, the policy returns at once instead of
// sleeping to fail.
func TestRetryAroundOpenBreakerWaitsOnlyWithinTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew(t, retry.Config{})

		b := &fakeBreaker{until: time.Now().Add(20 * time.Second)}
		begin := time.Now()
		err := p.Do(context.Background(), func(ctx context.Context) error {
			return b.Do(ctx, func(context.Context) error { return nil })
		})
		require.NoError(t, err)
		assert.Equal(t, 20*time.Second, time.Since(begin), "retried as soon as the breaker let calls through")
		assert.Equal(t, 2, b.calls)

		b = &fakeBreaker{until: time.Now().Add(20 * time.Second)}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		begin = time.Now()
		err = p.Do(ctx, func(ctx context.Context) error {
			return b.Do(ctx, func(context.Context) error { return nil })
		})
		assert.Zero(t, time.Since(begin), "no sleeping into the deadline")
		assert.Equal(t, 1, b.calls)
		var ee *retry.ExhaustedError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, retry.ReasonDeadline, ee.Reason)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

// The HTTP-date form of Retry-After, from a real server, through ParseRetryAfter and
// After, sets the policy's wait (or, beyond MaxServerDelay, ends the retries).
func TestRetryAfterHTTPDateEndToEnd(t *testing.T) {
	var ahead atomic.Int64 // how far ahead the server's date is, in seconds
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(time.Duration(ahead.Load())*time.Second).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()

	get := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return retry.Permanent(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		err = errors.New(resp.Status)
		d, perr := retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if perr != nil {
			return perr
		}
		return retry.After(err, d)
	}

	// 3s ahead: the date has a resolution of one second, so the wait is in (2s, 3s],
	// less the time the response took (a loaded machine is given a second of it).
	// The hook cancels the call before the wait starts, so the test does not sleep.
	ahead.Store(3)
	var announced time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := mustNew(t, retry.Config{OnRetry: func(_ context.Context, _ int, _ error, d time.Duration) {
		announced = d
		cancel()
	}})
	err := p.Do(ctx, get)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Greater(t, announced, time.Second)
	assert.LessOrEqual(t, announced, 3*time.Second)

	// An hour ahead: more than MaxServerDelay, the retries end at once.
	ahead.Store(3600)
	err = mustNew(t, retry.Config{}).Do(context.Background(), get)
	var ee *retry.ExhaustedError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, retry.ReasonServerDelay, ee.Reason)
	assert.Equal(t, 1, ee.Attempts)
	assert.EqualError(t, ee.Err, "503 Service Unavailable")
}
