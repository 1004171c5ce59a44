package heal_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/retry"
)

// A client that retries idempotent requests, honours Retry-After, and has a circuit
// breaker per host.
func ExampleTransport() {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "hello")
	}))
	defer srv.Close()

	tr, err := heal.NewTransport(heal.TransportConfig{
		Retry: retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Millisecond})},
	})
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	resp, err := client.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), calls.Load())
	for _, s := range tr.Snapshot() {
		fmt.Println(s.State)
	}
	// Output:
	// 200 hello 2
	// closed
}

// The README's quick start, client side: the transport is the only retry layer, and
// the caller checks the status of the response it gets after the retries, which is
// the last one when they are all spent (here a 503, after 3 attempts, not 9).
func ExampleTransport_quickStart() {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "0")
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	transport, err := heal.NewTransport(heal.TransportConfig{})
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	resp, err := client.Get(srv.URL + "/stock")
	switch {
	case errors.Is(err, breaker.ErrOpen):
		fmt.Println("inventory is down; serving from cache")
	case err != nil:
		fmt.Println(err)
	default:
		if resp.StatusCode != http.StatusOK {
			fmt.Printf("inventory answered %s after %d attempts\n", resp.Status, calls.Load())
		}
		resp.Body.Close()
	}
	// Output: inventory answered 503 Service Unavailable after 3 attempts
}
