package heal_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/selfheal-go/selfheal/heal"
)

// Guard a server: recover panics, shed load over 100 concurrent requests or 1000
// requests a second, bound each request to 5s, and measure latency and load.
func ExampleMiddleware() {
	m, err := heal.NewMiddleware(heal.MiddlewareConfig{
		MaxConcurrent: 100,
		Rate:          1000,
		Timeout:       5 * time.Second,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") })
	mux.HandleFunc("/bug", func(w http.ResponseWriter, r *http.Request) { panic("a bug") })

	srv := httptest.NewServer(m.Wrap(mux))
	defer srv.Close()

	for _, path := range []string{"/hello", "/bug", "/hello"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(path, resp.StatusCode)
	}
	s := m.Snapshot()
	fmt.Println("served", s.Served, "panics", s.Panics, "in flight", s.InFlight)
	// Output:
	// /hello 200
	// /bug 500
	// /hello 200
	// served 3 panics 1 in flight 0
}

// A handler that ignores its context does not hold the client past the Timeout: the
// client gets 503 at the deadline, and what the handler writes later goes nowhere.
func ExampleMiddlewareConfig_timeout() {
	m, _ := heal.NewMiddleware(heal.MiddlewareConfig{Timeout: 10 * time.Millisecond})
	release, late := make(chan struct{}), make(chan error)
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // stuck, deaf to r.Context()
		_, err := io.WriteString(w, "too late")
		late <- err
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	close(release)
	fmt.Print(rec.Code, " ", rec.Body.String())
	fmt.Println(<-late)
	// Output:
	// 503 request timed out
	// http: Handler timeout
}
