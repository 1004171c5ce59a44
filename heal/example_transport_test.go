package heal_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

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
	for _, s := range tr.States() {
		fmt.Println(s.State)
	}
	// Output:
	// 200 hello 2
	// closed
}
