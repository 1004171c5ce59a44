package retry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

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
