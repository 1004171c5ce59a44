package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/health"
	"github.com/selfheal-go/selfheal/retry"
	"github.com/selfheal-go/selfheal/supervise"

	"github.com/selfheal-go/selfheal/examples/internal/obs"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

type options struct {
	addr, name, version, id, downstream, token, probe string
	maxConcurrent                                     int
	grpc                                              bool
	timeout, drain, window                            time.Duration
	heapLimit                                         uint64
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:"+env("PORT", "8080"), "listen address (env PORT sets the port)")
	fs.StringVar(&o.name, "name", env("SERVICE", "selfheal-demo"), "service name, for telemetry (env SERVICE, which the agent's drivers set); OTEL_SERVICE_NAME overrides it on traces and metrics")
	fs.StringVar(&o.version, "version", env("VERSION", "v1"), "version string (env VERSION)")
	fs.StringVar(&o.id, "id", env("INSTANCE_ID", ""), "instance id (env INSTANCE_ID); default the hostname and port")
	fs.StringVar(&o.downstream, "downstream", env("DOWNSTREAM", ""), "downstream base URL (env DOWNSTREAM); default this service's own /quote")
	fs.StringVar(&o.token, "fault-token", env("FAULT_TOKEN", ""), "enables the /fault endpoints for requests carrying X-Fault-Token (env FAULT_TOKEN)")
	fs.StringVar(&o.probe, "probe", "", "probe mode: GET this URL ($VARS expanded from the environment), exit 0 on 200 within 2s, else 1")
	fs.BoolVar(&o.grpc, "grpc", env("GRPC", "") != "", "serve gRPC (grpc.health.v1) beside HTTP on the same port (env GRPC non-empty)")
	fs.IntVar(&o.maxConcurrent, "max-concurrent", 64, "requests served at once before shedding")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Second, "request timeout")
	drain, err := time.ParseDuration(env("DRAIN", "300ms"))
	if err != nil {
		fmt.Fprintf(stderr, "service: env DRAIN: %v\n", err)
		return o, err
	}
	fs.DurationVar(&o.drain, "drain", drain, "on SIGTERM, how long readiness fails before the listener closes (env DRAIN); make it longer than the probe interval of whatever routes traffic here")
	fs.DurationVar(&o.window, "window", 3*time.Second, "latency recorder window")
	lim, _ := strconv.ParseUint(env("HEAP_LIMIT", "0"), 10, 64)
	fs.Uint64Var(&o.heapLimit, "heap-limit", lim, "exit like an OOM kill when the heap passes this many bytes (env HEAP_LIMIT); 0 means no limit")
	err = fs.Parse(args)
	if o.id == "" {
		h, _ := os.Hostname()
		o.id = h + o.addr[strings.LastIndexByte(o.addr, ':'):]
	}
	return o, err
}

func run(args []string, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err != nil {
		return 2
	}
	if o.probe != "" {
		return probe(os.ExpandEnv(o.probe))
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("instance", o.id, "version", o.version)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := serve(ctx, o, log, nil); err != nil {
		log.Error("service", "err", err)
		return 1
	}
	return 0
}

// probe is the HEALTHCHECK mode.
func probe(url string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// faults is the injected state.
type faults struct {
	world     sync.RWMutex // /fault/hang takes it for writing, forever
	latency   atomic.Int64 // ns
	unready   atomic.Bool
	panicNext atomic.Bool
	leakMBps  atomic.Int64
	garble    atomic.Bool
	leaked    [][]byte
	leakMu    sync.Mutex
}

// serve runs the service until ctx ends, then drains. ready, when not nil,
// receives the listener's address.
func serve(ctx context.Context, o options, log *slog.Logger, ready chan<- string) error {
	f := &faults{}
	broken := strings.HasSuffix(o.version, "-broken")

	// Telemetry: metrics on /metrics (Prometheus text format), traces over OTLP
	// when OTEL_EXPORTER_OTLP_ENDPOINT is set; every selfheal policy below gets
	// these providers (none of them is made the global one).
	res, err := obs.Resource(ctx, attribute.String("service.name", o.name), attribute.String("service.instance.id", o.id),
		attribute.String("service.version", o.version))
	if err != nil {
		log.Warn("telemetry: resource from the environment", "err", err)
	}
	metrics, err := obs.NewMetrics(res)
	if err != nil {
		return err
	}
	defer func() { _ = metrics.Provider.Shutdown(context.Background()) }()
	mp := metrics.Provider
	tp, flushTraces, err := obs.NewTraces(ctx, res)
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := flushTraces(fctx); err != nil {
			log.Warn("traces: flush on exit", "err", err)
		}
	}()

	reg := health.New(health.Config{Version: o.version, ServiceID: o.id, Description: "selfheal demo service", Logger: log,
		MeterProvider: mp, TracerProvider: tp})
	mw, err := heal.NewMiddleware(heal.MiddlewareConfig{
		MaxConcurrent: o.maxConcurrent, Timeout: o.timeout, Window: o.window, Logger: log,
		Exempt:        func(r *http.Request) bool { return !strings.HasPrefix(r.URL.Path, "/api/") },
		MeterProvider: mp, TracerProvider: tp,
	})
	if err != nil {
		return err
	}
	tr, err := heal.NewTransport(heal.TransportConfig{
		Name:          "downstream",
		Base:          &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 10 * time.Second},
		Breaker:       breaker.GroupConfig{},
		Retry:         retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond})},
		MeterProvider: mp, TracerProvider: tp, // the breakers' and the retries' too
	})
	if err != nil {
		return err
	}
	// Each attempt of a downstream request is a client span of the transport's
	// (selfheal.heal.transport.attempt, under the request's server span), whose
	// context the transport injects through the global propagator: the service, an
	// application, installs W3C Trace Context there (the library never does).
	otel.SetTextMapPropagator(obs.Propagator)
	client := &http.Client{Timeout: o.timeout, Transport: tr}

	heartbeat := health.NewHeartbeat(3 * time.Second)
	root, err := supervise.New(supervise.Config{Name: "root", Logger: log, MeterProvider: mp, TracerProvider: tp})
	if err != nil {
		return err
	}
	workers, err := supervise.New(supervise.Config{Name: "workers", Logger: log, MeterProvider: mp, TracerProvider: tp})
	if err != nil {
		return err
	}
	if _, err := workers.Add(supervise.Func(func(ctx context.Context) error {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			heartbeat.Beat()
			if f.panicNext.CompareAndSwap(true, false) {
				panic("injected worker panic")
			}
		}
	}), supervise.ChildConfig{Name: "ticker"}); err != nil {
		return err
	}
	if _, err := workers.Add(supervise.Func(func(ctx context.Context) error {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			if mb := f.leakMBps.Load(); mb > 0 {
				chunk := make([]byte, int(mb)<<20/10)
				for i := range chunk {
					chunk[i] = byte(i)
				}
				f.leakMu.Lock()
				f.leaked = append(f.leaked, chunk)
				f.leakMu.Unlock()
			}
			if o.heapLimit > 0 {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > o.heapLimit {
					log.Error("heap limit exceeded: exiting as the OOM killer would", "heap", ms.HeapAlloc, "limit", o.heapLimit)
					os.Exit(137)
				}
			}
		}
	}), supervise.ChildConfig{Name: "leaker"}); err != nil {
		return err
	}
	if _, err := root.Add(workers, supervise.ChildConfig{}); err != nil {
		return err
	}
	if _, err := root.Add(supervise.Func(func(ctx context.Context) error {
		err := reg.Run(ctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}), supervise.ChildConfig{Name: "health"}); err != nil {
		return err
	}

	checks := []health.Check{
		{Name: "worker:heartbeat", Kinds: health.Liveness, Func: heartbeat.Check},
		{Name: "release:ready", Kinds: health.Readiness | health.Startup, CacheTTL: health.Off, Func: func(context.Context) error {
			if broken {
				return errors.New("this release is broken: it never becomes ready")
			}
			if f.unready.Load() {
				return errors.New("readiness failed by fault injection")
			}
			return nil
		}},
		{Name: health.KeyHeap, Kinds: health.Readiness, NonCritical: true, CacheTTL: health.Off, Observe: health.Heap(o.heapLimit)},
		{Name: health.KeyGoroutines, Kinds: health.Readiness, NonCritical: true, CacheTTL: health.Off, Observe: health.Goroutines(0)},
	}
	for _, c := range checks {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	if err := heal.RegisterHealth(reg, heal.HealthSources{Server: mw, Breakers: []heal.BreakerStates{tr}, Supervisors: []*supervise.Supervisor{root}}); err != nil {
		return err
	}

	l, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	downstream := o.downstream
	if downstream == "" {
		downstream = "http://" + l.Addr().String()
	}

	mux := http.NewServeMux()
	reg.Mount(mux, health.HandlerConfig{Authorize: health.LoopbackOnly})
	mux.Handle("/metrics", metrics.Handler)
	mux.HandleFunc("GET /quote", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "the best way to heal is to never break")
	})
	api := http.NewServeMux()
	api.HandleFunc("/api/hello", func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(f.latency.Load()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, downstream+"/quote", nil)
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, "downstream: "+err.Error(), http.StatusBadGateway)
			return
		}
		quote, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		fmt.Fprintf(w, "hello from %s (%s): %s", o.id, o.version, quote)
	})
	mux.Handle("/api/", mw.Wrap(api))
	if o.token != "" {
		fault := func(fn func(r *http.Request) string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Fault-Token")), []byte(o.token)) != 1 {
					http.Error(w, "fault injection needs the right X-Fault-Token", http.StatusForbidden)
					return
				}
				msg := fn(r)
				log.Warn("fault injected", "fault", r.URL.Path, "what", msg)
				fmt.Fprintln(w, msg)
			}
		}
		mux.HandleFunc("POST /fault/crash", fault(func(*http.Request) string {
			go func() { time.Sleep(10 * time.Millisecond); os.Exit(2) }()
			return "crashing"
		}))
		mux.HandleFunc("POST /fault/hang", fault(func(*http.Request) string {
			go f.world.Lock() // never unlocked: every request now blocks
			return "hanging"
		}))
		mux.HandleFunc("POST /fault/latency", fault(func(r *http.Request) string {
			n, _ := strconv.Atoi(r.FormValue("ms"))
			f.latency.Store(int64(time.Duration(n) * time.Millisecond))
			return fmt.Sprintf("latency +%dms", n)
		}))
		mux.HandleFunc("POST /fault/garble", fault(func(*http.Request) string { f.garble.Store(true); return "the health document is garbled" }))
		mux.HandleFunc("POST /fault/unready", fault(func(*http.Request) string { f.unready.Store(true); return "unready" }))
		mux.HandleFunc("POST /fault/panic", fault(func(*http.Request) string { f.panicNext.Store(true); return "a worker will panic" }))
		mux.HandleFunc("POST /fault/leak", fault(func(r *http.Request) string {
			n, _ := strconv.Atoi(r.FormValue("mbps"))
			f.leakMBps.Store(int64(n))
			return fmt.Sprintf("leaking %d MB/s", n)
		}))
		mux.HandleFunc("POST /fault/reset", fault(func(*http.Request) string {
			f.latency.Store(0)
			f.unready.Store(false)
			f.garble.Store(false)
			f.leakMBps.Store(0)
			f.leakMu.Lock()
			f.leaked = nil
			f.leakMu.Unlock()
			return "reset"
		}))
	}
	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.world.RLock()
		defer f.world.RUnlock()
		if r.URL.Path == "/health" && f.garble.Load() {
			w.Header().Set("Content-Type", health.ContentType)
			fmt.Fprint(w, `{"status": "mostly fine", "checks": 42`)
			return
		}
		mux.ServeHTTP(w, r)
	})
	handler = traced(handler, tp, mp)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	stopGRPC := func() {}
	if o.grpc {
		if srv.Handler, srv.Protocols, stopGRPC, err = grpcBeside(reg, handler); err != nil {
			return err
		}
	}

	sctx, cancelTree := context.WithCancel(context.WithoutCancel(ctx))
	treeDone := make(chan error, 1)
	go func() { treeDone <- root.Serve(sctx) }()
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(l) }()
	log.Info("serving", "addr", l.Addr().String(), "broken", broken)
	if ready != nil {
		ready <- l.Addr().String()
	}

	var serr error
	select {
	case <-ctx.Done():
	case serr = <-srvDone:
	}
	// Drain: readiness fails at once, so that the agent and the front door stop
	// sending; then the listener closes and in-flight requests finish.
	reg.SetDraining(true)
	log.Info("draining")
	time.Sleep(o.drain)
	stopGRPC()
	shctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shctx); err != nil {
		srv.Close()
	}
	if serr == nil {
		serr = <-srvDone
	}
	cancelTree()
	<-treeDone
	tr.Breakers() // keep the transport reachable until here
	client.CloseIdleConnections()
	if errors.Is(serr, http.ErrServerClosed) {
		serr = nil
	}
	log.Info("stopped")
	return serr
}

// traced gives every request but the probes and the scrapes a server span (a
// recording one when traces are exported, so that the heal middleware's events land
// on it and a caller's traceparent is its parent) and the http.server.* metrics.
// Probes (/livez, /readyz, /startupz, /health) and /metrics, which the agent and a
// scraper call every few hundred milliseconds, are left out: their checks' runs
// are spans of their own (selfheal.health.check).
func traced(h http.Handler, tp trace.TracerProvider, mp metric.MeterProvider) http.Handler {
	return otelhttp.NewHandler(h, "",
		otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(mp), otelhttp.WithPropagators(obs.Propagator),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/livez", "/readyz", "/startupz", "/health", "/metrics":
				return false
			}
			return true
		}),
		// The span name is the route, from a fixed set, never the raw path (which
		// a client chooses).
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			switch p := r.URL.Path; {
			case p == "/api/hello", p == "/quote":
				return r.Method + " " + p
			case strings.HasPrefix(p, "/fault/"):
				return r.Method + " /fault/"
			}
			return r.Method
		}))
}
