// Command testsvc is the kubernetes driver's test service: a static binary for the
// cluster's test image (.ci/k8s/cluster.sh). It serves the health document the agent
// reads (GET /health, application/health+json, with the heap in runtime:heap), the
// probes Kubernetes uses (/livez, /readyz), the clients' endpoint (GET /api/hello) and
// a few faults (POST /fault/crash, /fault/fail, /fault/pass).
//
// With FAULTS=on it also serves the faults of the demonstration's crash, hang and
// leak steps, which nothing else may reach:
//
//	POST /fault/hang             every request from then on, probes and health
//	                             document included, gets no answer (the process
//	                             lives on): each waits until its client gives up,
//	                             at most 2 minutes, then its connection is closed
//	POST /fault/leak?mbps=16     the heap grows by that many MB a second (1 to 64),
//	                             up to 1 GiB, until the container's memory limit
//	                             kills the process
//
// Requests are treated as hostile: a bad query is refused (400), at most 256
// requests wait in a hang at once (others are closed at once), and nothing panics.
//
// Environment: PORT (default 8080), VERSION (a version containing "bad" is a bad
// release: its document reports fail and /api/hello answers 500, while its probes
// pass, so Kubernetes counts it ready), HEALTH ("fail" makes the document report fail
// from the start), DRAIN (on SIGTERM, /readyz fails and the service keeps serving
// this long before it exits, so that whoever routes to it learns first; default 0),
// FAULTS ("on" enables /fault/hang and /fault/leak), POD_NAME, NODE_NAME.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
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

	"github.com/selfheal-go/selfheal/health"
)

// Bounds of the faults.
const (
	maxHung     = 256 // requests waiting in a hang at once
	hangMax     = 2 * time.Minute
	maxLeakMBps = 64
	maxLeak     = 1 << 30
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	version := os.Getenv("VERSION")
	bad := strings.Contains(version, "bad")
	var fail, draining atomic.Bool
	fail.Store(os.Getenv("HEALTH") == "fail" || bad)
	drain, _ := time.ParseDuration(os.Getenv("DRAIN"))
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		status, code := health.StatusPass, http.StatusOK
		if fail.Load() {
			status, code = health.StatusFail, http.StatusServiceUnavailable
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.Header().Set("Content-Type", health.ContentType)
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(health.Document{
			Status:    status,
			Version:   version,
			ServiceID: os.Getenv("POD_NAME"),
			Notes:     []string{"node " + os.Getenv("NODE_NAME"), "up " + time.Since(started).Round(time.Second).String()},
			Checks: map[string][]health.CheckResult{
				health.KeyHeap: {{ComponentType: "system", ObservedValue: ms.HeapAlloc, ObservedUnit: "bytes", Status: health.StatusPass}},
			},
		})
	})
	ok := func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) }
	mux.HandleFunc("GET /livez", ok)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		ok(w, r)
	})
	mux.HandleFunc("GET /api/hello", func(w http.ResponseWriter, r *http.Request) {
		if bad {
			http.Error(w, "bad release "+version, http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello from %s (%s)\n", os.Getenv("POD_NAME"), version)
	})
	mux.HandleFunc("POST /fault/crash", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		go func() { time.Sleep(50 * time.Millisecond); os.Exit(2) }()
	})
	mux.HandleFunc("POST /fault/fail", func(w http.ResponseWriter, r *http.Request) { fail.Store(true) })
	mux.HandleFunc("POST /fault/pass", func(w http.ResponseWriter, r *http.Request) { fail.Store(false) })
	f := &faults{}
	if os.Getenv("FAULTS") == "on" {
		f.mount(mux)
	}
	srv := &http.Server{Addr: ":" + port, Handler: f.wrap(mux), ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 16 << 10}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-term
		draining.Store(true)
		time.Sleep(drain)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// faults holds the state of the hang and leak faults.
type faults struct {
	hung    atomic.Bool
	waiting chan struct{} // a slot per request waiting in the hang
	once    sync.Once
	leakMB  atomic.Int64 // MB a second; 0: no leak
	mu      sync.Mutex
	leaked  [][]byte
}

func (f *faults) mount(mux *http.ServeMux) {
	mux.HandleFunc("POST /fault/hang", func(w http.ResponseWriter, r *http.Request) {
		f.hung.Store(true)
		fmt.Fprintln(w, "hanging: no request gets an answer from now on")
	})
	mux.HandleFunc("POST /fault/leak", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("mbps"))
		if err != nil || n < 1 || n > maxLeakMBps {
			http.Error(w, fmt.Sprintf("mbps: a whole number from 1 to %d", maxLeakMBps), http.StatusBadRequest)
			return
		}
		if f.leakMB.Swap(int64(n)) == 0 {
			f.once.Do(func() { go f.leak() })
		}
		fmt.Fprintf(w, "leaking %d MB/s\n", n)
	})
}

// leak grows the heap by leakMB MB a second, in tenths, touching every page so
// that the memory counts against the container's limit, up to maxLeak.
func (f *faults) leak() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	total := 0
	for range t.C {
		n := int(f.leakMB.Load()) << 20 / 10
		if total+n > maxLeak {
			return
		}
		b := make([]byte, n)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		f.mu.Lock()
		f.leaked = append(f.leaked, b)
		f.mu.Unlock()
		total += n
	}
}

// wrap makes h hang once the hang fault is on: a request waits, without an answer,
// until its client gives up or hangMax passed, then its connection is closed. At
// most maxHung wait at once; the others are closed at once.
func (f *faults) wrap(h http.Handler) http.Handler {
	f.waiting = make(chan struct{}, maxHung)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.hung.Load() {
			h.ServeHTTP(w, r)
			return
		}
		select {
		case f.waiting <- struct{}{}:
			t := time.NewTimer(hangMax)
			select {
			case <-r.Context().Done():
			case <-t.C:
			}
			t.Stop()
			<-f.waiting
		default:
		}
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
			}
		}
	})
}
