package health_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/selfheal-go/selfheal/health"
)

// serve sends one GET to h and prints the status code and the body.
func serve(h http.Handler, target, token string) {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Printf("GET %s: %d\n%s\n", target, rec.Code, rec.Body)
}

// exampleRegistry has a liveness check of the process itself and two readiness
// checks of dependencies, one of them down.
func exampleRegistry() *health.Registry {
	reg := health.New(health.Config{Version: "1.4.2", ServiceID: "orders-7f9c"})
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(reg.Register(health.Check{
		Name:  "self",
		Kinds: health.Liveness | health.Readiness,
		Func:  func(context.Context) error { return nil },
	}))
	// Dependencies: Kinds left zero means Readiness only.
	must(reg.Register(health.Check{
		Name: "postgres:ping", ComponentType: "datastore",
		Func: func(context.Context) error { return errors.New("dial tcp 10.0.0.5:5432: connect: connection refused") },
	}))
	must(reg.Register(health.Check{
		Name: "redis:ping", ComponentType: "datastore",
		Func: func(context.Context) error { return nil },
	}))
	return reg
}

// /livez passes although a database is down: liveness never checks dependencies.
func ExampleRegistry_Handler_livez() {
	h := exampleRegistry().Handler(health.HandlerConfig{})
	serve(h, "/livez", "")
	// Output:
	// GET /livez: 200
	// ok
}

// /readyz fails while a dependency is down. Anonymous callers get no details, even
// with ?verbose.
func ExampleRegistry_Handler_readyz() {
	h := exampleRegistry().Handler(health.HandlerConfig{})
	serve(h, "/readyz", "")
	serve(h, "/readyz?verbose", "")
	// Output:
	// GET /readyz: 503
	// readyz check failed
	// GET /readyz?verbose: 503
	// readyz check failed
}

// Authorized callers get the Kubernetes-style listing with ?verbose, including the
// dependency's error text.
func ExampleRegistry_Handler_verbose() {
	h := exampleRegistry().Handler(health.HandlerConfig{Authorize: health.BearerToken("s3cret")})
	serve(h, "/readyz?verbose", "s3cret")
	// Output:
	// GET /readyz?verbose: 503
	// [-]postgres:ping failed: dial tcp 10.0.0.5:5432: connect: connection refused
	// [+]redis:ping ok
	// [+]self ok
	// readyz check failed
}

// ?exclude=name leaves checks out (it may repeat); a name that matches no check of
// the probe gets a warning, as kube-apiserver prints it. /readyz/<name> answers for
// one check.
func ExampleRegistry_Handler_exclude() {
	h := exampleRegistry().Handler(health.HandlerConfig{Authorize: health.BearerToken("s3cret")})
	serve(h, "/readyz?exclude=postgres:ping", "")
	serve(h, "/readyz?exclude=postgres:ping&exclude=postgress:ping&verbose", "s3cret")
	serve(h, "/readyz/redis:ping", "")
	serve(h, "/readyz/postgres:ping", "")
	// Output:
	// GET /readyz?exclude=postgres:ping: 200
	// ok
	// GET /readyz?exclude=postgres:ping&exclude=postgress:ping&verbose: 200
	// [+]postgres:ping excluded: ok
	// [+]redis:ping ok
	// [+]self ok
	// warn: some health checks cannot be excluded: no matches for "postgress:ping"
	// readyz check passed
	// GET /readyz/redis:ping: 200
	// ok
	// GET /readyz/postgres:ping: 503
	// readyz check failed
}

// /startupz holds off the other probes until the service has started: here, until
// a cache is warm.
func ExampleRegistry_Handler_startupz() {
	reg := health.New(health.Config{})
	var warm bool
	_ = reg.Register(health.Check{
		Name: "cache:warm", Kinds: health.Startup, CacheTTL: health.Off,
		Func: func(context.Context) error {
			if !warm {
				return errors.New("still loading")
			}
			return nil
		},
	})
	h := reg.Handler(health.HandlerConfig{})
	serve(h, "/startupz", "")
	warm = true
	serve(h, "/startupz", "")
	// Output:
	// GET /startupz: 503
	// startupz check failed
	// GET /startupz: 200
	// ok
}

// /health serves the health document. Anonymous callers get the status alone;
// authorized ones the whole document, which the agent parses with ParseDocument.
func ExampleRegistry_Handler_health() {
	reg := exampleRegistry()
	_ = reg.Register(health.Check{
		Name: "http:responseTime",
		Observe: func(context.Context) ([]health.Observation, error) {
			return []health.Observation{
				{ComponentID: "p50", ObservedValue: 12.5, ObservedUnit: "ms"},
				{ComponentID: "p99", ObservedValue: 240, ObservedUnit: "ms", Status: health.StatusWarn},
			}, nil
		},
	})
	h := reg.Handler(health.HandlerConfig{Authorize: health.BearerToken("s3cret")})
	serve(h, "/health", "")

	req := httptest.NewRequest(http.MethodGet, "/health", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	doc, err := health.ParseDocument(rec.Body.Bytes())
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"), doc.Status, doc.Version, doc.ServiceID)
	for _, id := range []string{"p50", "p99"} {
		c, _ := doc.Find("http:responseTime", id)
		v, _ := c.Float()
		fmt.Println(id, v, c.ObservedUnit, c.Status)
	}
	pg, _ := doc.Find("postgres:ping", "")
	fmt.Println(pg.Status, pg.Output)
	// Output:
	// GET /health: 503
	// {"status":"fail"}
	// 503 application/health+json fail 1.4.2 orders-7f9c
	// p50 12.5 ms pass
	// p99 240 ms warn
	// fail dial tcp 10.0.0.5:5432: connect: connection refused
}

// The probe handlers mount on a ServeMux one by one; the {name} path value selects
// one check.
func ExampleRegistry_ProbeHandler() {
	reg := exampleRegistry()
	mux := http.NewServeMux()
	mux.Handle("GET /healthz/live", reg.ProbeHandler(health.Liveness, health.HandlerConfig{}))
	mux.Handle("GET /healthz/ready", reg.ProbeHandler(health.Readiness, health.HandlerConfig{}))
	mux.Handle("GET /healthz/ready/{name}", reg.ProbeHandler(health.Readiness, health.HandlerConfig{}))
	mux.Handle("GET /status", reg.DocumentHandler(health.HandlerConfig{}))
	serve(mux, "/healthz/live", "")
	serve(mux, "/healthz/ready/self", "")
	serve(mux, "/status", "")
	// Output:
	// GET /healthz/live: 200
	// ok
	// GET /healthz/ready/self: 200
	// ok
	// GET /status: 503
	// {"status":"fail"}
}

// Periodic checks run in the background inside Run; probes read the cached results.
func ExampleRegistry_Run() {
	reg := health.New(health.Config{})
	ran := make(chan struct{}, 1)
	_ = reg.Register(health.Check{
		Name:     "queue:ping",
		Interval: 10 * time.Second,
		Func: func(context.Context) error {
			select {
			case ran <- struct{}{}:
			default:
			}
			return nil
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- reg.Run(ctx) }()
	<-ran // the first run starts at once (no InitialDelay)
	for reg.Evaluate(ctx, health.Readiness) != health.StatusPass {
		time.Sleep(time.Millisecond) // the result is being recorded
	}
	fmt.Println(reg.Evaluate(ctx, health.Readiness))
	cancel()
	fmt.Println(<-done)
	// Output:
	// pass
	// context canceled
}

// A heartbeat check fails when a background job stops ticking.
func ExampleHeartbeat() {
	hb := health.NewHeartbeat(time.Minute)
	reg := health.New(health.Config{})
	_ = reg.Register(health.Check{Name: "reaper:heartbeat", Kinds: health.Liveness, Func: hb.Check})

	// In the job's loop:
	hb.Beat()

	fmt.Println(reg.Evaluate(context.Background(), health.Liveness))
	// Output:
	// pass
}

// ParseDocument reads a health document, tolerating fields it does not know and
// refusing wrong types with an error that says where. It reads the status aliases
// of the draft in any case, so a Spring Boot actuator document parses too.
func ExampleParseDocument() {
	doc, err := health.ParseDocument([]byte(`{
		"status": "warn",
		"serviceId": "orders-7f9c",
		"checks": {
			"runtime:goroutines": [{"observedValue": 512, "observedUnit": "goroutines", "status": "pass"}],
			"breaker:state": [{"componentId": "payments", "observedValue": "open", "status": "warn"}]
		},
		"links": {"about": "https://example.com"}
	}`))
	if err != nil {
		panic(err)
	}
	g, _ := doc.Find("runtime:goroutines", "")
	n, _ := g.Float()
	b, _ := doc.Find("breaker:state", "payments")
	fmt.Println(doc.Status, n, b.ObservedValue)

	spring, err := health.ParseDocument([]byte(`{"status":"DOWN","components":{"db":{"status":"DOWN","details":{"error":"connection refused"}}}}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(spring.Status)

	_, err = health.ParseDocument([]byte(`{"status":"mostly fine"}`))
	fmt.Println(err)
	_, err = health.ParseDocument([]byte(`{"status":"pass","checks":{"db":[{"status":"pass","time":"noon"}]}}`))
	fmt.Println(err)
	// Output:
	// warn 512 open
	// fail
	// health: malformed health document: status: "mostly fine" is not pass, warn or fail
	// health: malformed health document: checks["db"][0].time: "noon" is not an RFC 3339 time
}

// Fetch GETs and parses a health document; a failing service answers 503 with a
// valid document, which is not an error.
func ExampleFetch() {
	reg := exampleRegistry()
	mux := http.NewServeMux()
	reg.Mount(mux, health.HandlerConfig{Authorize: health.LoopbackOnly})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	doc, code, err := health.Fetch(context.Background(), srv.Client(), srv.URL+"/health")
	if err != nil {
		panic(err)
	}
	fmt.Println(code, doc.Status, len(doc.Checks))
	// Output:
	// 503 fail 3
}

// Drain on SIGTERM: readiness fails at once, liveness keeps passing, and after the
// delay the server shuts down gracefully.
func ExampleRegistry_DrainOnSignal() {
	reg := exampleRegistry()
	mux := http.NewServeMux()
	reg.Mount(mux, health.HandlerConfig{})
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: mux}
	go func() {
		if err := reg.DrainOnSignal(context.Background(), srv, health.DrainConfig{Delay: 5 * time.Second}); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	// srv.ListenAndServe() returns http.ErrServerClosed once drained.
	_ = srv
}

// Drain when the application decides to stop (here with a short delay and no
// server).
func ExampleRegistry_Drain() {
	reg := exampleRegistry()
	h := reg.Handler(health.HandlerConfig{})
	_ = reg.Drain(context.Background(), nil, health.DrainConfig{Delay: time.Millisecond})
	serve(h, "/readyz", "")
	serve(h, "/livez", "")
	// Output:
	// GET /readyz: 503
	// readyz check failed
	// GET /livez: 200
	// ok
}

// The built-in checks plug into Check.Func or Check.Observe.
func ExampleHTTPGet() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer upstream.Close()

	get, err := health.HTTPGet(health.HTTPConfig{URL: upstream.URL + "/ping", Client: upstream.Client()})
	if err != nil {
		panic(err)
	}
	reg := health.New(health.Config{})
	_ = reg.Register(health.Check{Name: "upstream:ping", Func: get, Timeout: 2 * time.Second})
	_ = reg.Register(health.Check{Name: health.KeyGoroutines, Kinds: health.Liveness, NonCritical: true, Observe: health.Goroutines(10000)})
	_ = reg.Register(health.Check{Name: health.KeyHeap, Kinds: health.Liveness, NonCritical: true, Observe: health.Heap(0)})
	fmt.Println(reg.Evaluate(context.Background(), 0))
	fmt.Println(reg.Names())
	// Output:
	// pass
	// [runtime:goroutines runtime:heap upstream:ping]
}

// Mount registers every probe path and the health document on a ServeMux in one
// call, next to the service's own routes.
func ExampleRegistry_Mount() {
	reg := exampleRegistry()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "[]") })
	reg.Mount(mux, health.HandlerConfig{Authorize: health.BearerToken("s3cret")})
	for _, path := range []string{"/livez", "/readyz", "/readyz/redis:ping", "/startupz", "/health", "/orders"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, rec.Code)
	}
	// Output:
	// /livez 200
	// /readyz 503
	// /readyz/redis:ping 200
	// /startupz 200
	// /health 503
	// /orders 200
}

// Snapshot reads the last results without running anything; Evaluate runs the
// stale checks first, as a probe does.
func ExampleRegistry_Snapshot() {
	reg := health.New(health.Config{})
	_ = reg.Register(health.Check{Name: "db:ping", Func: func(context.Context) error { return nil }})

	s := reg.Snapshot()
	fmt.Println(s.Status, s.Checks[0].Name, s.Checks[0].Pending) // nothing has run yet
	fmt.Println(reg.Evaluate(context.Background(), health.Readiness))
	s = reg.Snapshot()
	fmt.Println(s.Status, s.Checks[0].Pending, s.StatusFor(health.Readiness))
	// Output:
	// fail db:ping true
	// pass
	// pass false pass
}
