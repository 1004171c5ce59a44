package retry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/retry"
)

func ExamplePolicy_Do() {
	p, err := retry.New(retry.Config{
		MaxAttempts: 4,
		Backoff:     retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Millisecond}),
		OnRetry: func(_ context.Context, attempt int, err error, _ time.Duration) {
			fmt.Printf("attempt %d failed: %v\n", attempt, err)
		},
	})
	if err != nil {
		panic(err)
	}
	calls := 0
	err = p.Do(context.Background(), func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("connection reset")
		}
		return nil
	})
	fmt.Println("err:", err, "after", calls, "attempts")
	// Output:
	// attempt 1 failed: connection reset
	// attempt 2 failed: connection reset
	// err: <nil> after 3 attempts
}

func ExampleCall() {
	p, err := retry.New(retry.Config{Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Millisecond})})
	if err != nil {
		panic(err)
	}
	calls := 0
	n, err := retry.Call(context.Background(), p, func(context.Context) (int, error) {
		calls++
		if calls == 1 {
			return 0, errors.New("timeout")
		}
		return 42, nil
	})
	fmt.Println(n, err)
	// Output: 42 <nil>
}

func ExampleExhaustedError() {
	p, err := retry.New(retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Millisecond})})
	if err != nil {
		panic(err)
	}
	errDown := errors.New("service down")
	err = p.Do(context.Background(), func(context.Context) error { return errDown })

	fmt.Println(err)
	fmt.Println(errors.Is(err, retry.ErrExhausted), errors.Is(err, errDown))
	var ee *retry.ExhaustedError
	if errors.As(err, &ee) {
		fmt.Println(ee.Attempts, ee.Reason)
	}
	// Output:
	// retry: gave up after 3 attempts (max attempts reached): service down
	// true true
	// 3 max attempts reached
}

func ExamplePermanent() {
	p, err := retry.New(retry.Config{Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Millisecond})})
	if err != nil {
		panic(err)
	}
	calls := 0
	err = p.Do(context.Background(), func(context.Context) error {
		calls++
		return retry.Permanent(errors.New("404 not found"))
	})
	fmt.Println(err, "after", calls, "attempt")
	// Output: 404 not found after 1 attempt
}

// A server answers 503 with a Retry-After header; the client hands the delay to the
// policy with After.
func ExampleAfter() {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()

	p, err := retry.New(retry.Config{
		Backoff: retry.Constant(time.Minute), // never used: the server's delay wins
		OnRetry: func(_ context.Context, attempt int, err error, delay time.Duration) {
			fmt.Printf("attempt %d: %v; waiting %v\n", attempt, err, delay)
		},
	})
	if err != nil {
		panic(err)
	}
	err = p.Do(context.Background(), func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return retry.Permanent(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			err := fmt.Errorf("status %d", resp.StatusCode)
			d, perr := retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
			if perr != nil {
				return err
			}
			return retry.After(err, max(d, time.Millisecond))
		}
		return nil
	})
	fmt.Println("err:", err)
	srv.CloseClientConnections()
	http.DefaultClient.CloseIdleConnections()
	// Output:
	// attempt 1: status 503; waiting 1ms
	// err: <nil>
}

func ExampleParseRetryAfter() {
	now := time.Date(2015, time.October, 21, 7, 28, 0, 0, time.UTC)
	for _, v := range []string{"120", "Wed, 21 Oct 2015 07:28:30 GMT", "-1"} {
		d, err := retry.ParseRetryAfter(v, now)
		fmt.Println(d, err)
	}
	// Output:
	// 2m0s <nil>
	// 30s <nil>
	// 0s retry: invalid Retry-After: "-1": delay-seconds must be a non-negative integer without sign
}

// One budget shared by every call to a downstream keeps retries to 20% of the calls, so
// a full outage does not multiply the downstream's load by MaxAttempts.
func ExampleNewBudget() {
	budget, err := retry.NewBudget(retry.BudgetConfig{Ratio: 0.2, MinPerSecond: retry.Off})
	if err != nil {
		panic(err)
	}
	p, err := retry.New(retry.Config{MaxAttempts: 5, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Microsecond}), Budget: budget})
	if err != nil {
		panic(err)
	}
	attempts, refused := 0, 0
	for range 100 {
		err := p.Do(context.Background(), func(context.Context) error {
			attempts++
			return errors.New("outage")
		})
		if errors.Is(err, retry.ErrBudgetExhausted) {
			refused++
		}
	}
	fmt.Printf("100 calls, %d attempts, %d refused retries\n", attempts, refused)
	// Output: 100 calls, 120 attempts, 100 refused retries
}

// Exponential backoff without jitter shows its schedule: 10ms doubling, capped at 50ms.
func ExampleExponential() {
	p, err := retry.New(retry.Config{
		MaxAttempts: 5,
		Backoff: retry.Exponential(retry.ExponentialConfig{
			InitialDelay: 10 * time.Millisecond,
			MaxDelay:     50 * time.Millisecond,
			Jitter:       retry.JitterNone,
		}),
		OnRetry: func(_ context.Context, attempt int, _ error, delay time.Duration) {
			fmt.Printf("retry %d after %v\n", attempt, delay)
		},
	})
	if err != nil {
		panic(err)
	}
	_ = p.Do(context.Background(), func(context.Context) error { return errors.New("busy") })
	// Output:
	// retry 1 after 10ms
	// retry 2 after 20ms
	// retry 3 after 40ms
	// retry 4 after 50ms
}

// A BackoffFunc is any strategy; returning Stop ends the retries.
func ExampleBackoffFunc() {
	p, err := retry.New(retry.Config{
		MaxAttempts: 10,
		Backoff: retry.BackoffFunc(func(n int, _ time.Duration) time.Duration {
			if n > 2 {
				return retry.Stop
			}
			return time.Duration(n) * time.Millisecond
		}),
	})
	if err != nil {
		panic(err)
	}
	err = p.Do(context.Background(), func(context.Context) error { return errors.New("busy") })
	fmt.Println(err)
	// Output: retry: gave up after 3 attempts (backoff stopped): busy
}

// Classify sees the result of each attempt through Call, so that a result can be
// retried: here a job that is still pending.
func ExampleCall_classifyResults() {
	p, err := retry.New(retry.Config{
		MaxAttempts: 5,
		Backoff:     retry.Constant(time.Millisecond),
		Classify: func(result any, err error) selfheal.Outcome {
			if status, _ := result.(string); status == "pending" {
				return selfheal.Failure // try again
			}
			return retry.DefaultClassify(result, err)
		},
	})
	if err != nil {
		panic(err)
	}
	polls := 0
	status, err := retry.Call(context.Background(), p, func(context.Context) (string, error) {
		polls++
		if polls < 3 {
			return "pending", nil
		}
		return "done", nil
	})
	fmt.Println(status, err, "after", polls, "polls")

	status, err = retry.Call(context.Background(), p, func(context.Context) (string, error) { return "pending", nil })
	fmt.Println(status, errors.Is(err, retry.ErrFailedResult))
	// Output:
	// done <nil> after 3 polls
	// pending true
}

// An attempt that runs into a deadline of its own is retried by default; the caller's
// own deadline is never retried.
func ExampleDefaultClassify() {
	p, err := retry.New(retry.Config{Backoff: retry.Constant(0)})
	if err != nil {
		panic(err)
	}
	attempts := 0
	err = p.Do(context.Background(), func(ctx context.Context) error {
		attempts++
		ctx, cancel := context.WithTimeout(ctx, time.Millisecond) // per-attempt timeout
		defer cancel()
		if attempts == 1 {
			<-ctx.Done() // the first attempt hangs
			return ctx.Err()
		}
		return nil
	})
	fmt.Println(err, "after", attempts, "attempts")
	// Output: <nil> after 2 attempts
}

// busyError is shaped like a circuit breaker's open error: a DelayHint that asks for
// the rest of the open time.
type busyError struct{ wait time.Duration }

func (e busyError) Error() string             { return "circuit open" }
func (e busyError) RetryAfter() time.Duration { return e.wait }

// A delay asked for beyond MaxServerDelay (30s by default) ends the retries at once
// rather than retrying early or blocking the caller for a minute.
func ExampleReason_serverDelay() {
	p, err := retry.New(retry.Config{})
	if err != nil {
		panic(err)
	}
	begin := time.Now()
	err = p.Do(context.Background(), func(context.Context) error { return busyError{wait: time.Minute} })
	var ee *retry.ExhaustedError
	if errors.As(err, &ee) {
		fmt.Println(ee.Reason)
	}
	fmt.Println(err)
	fmt.Println(time.Since(begin) < time.Second)
	// Output:
	// server-requested delay exceeds MaxServerDelay
	// retry: gave up after 1 attempt (server-requested delay exceeds MaxServerDelay): circuit open
	// true
}
