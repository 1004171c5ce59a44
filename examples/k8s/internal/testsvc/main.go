// Command testsvc is the kubernetes driver's test service: a static binary for the
// cluster's test image (.ci/k8s/cluster.sh). It serves the health document the agent
// reads (GET /health, application/health+json), the probes Kubernetes uses (/livez,
// /readyz), the clients' endpoint (GET /api/hello) and a few faults (POST
// /fault/crash, /fault/fail, /fault/pass).
//
// Environment: PORT (default 8080), VERSION (a version containing "bad" is a bad
// release: its document reports fail and /api/hello answers 500, while its probes
// pass, so Kubernetes counts it ready), HEALTH ("fail" makes the document report fail
// from the start), DRAIN (on SIGTERM, /readyz fails and the service keeps serving
// this long before it exits, so that whoever routes to it learns first; default 0),
// POD_NAME, NODE_NAME.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
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
		status, code := "pass", http.StatusOK
		if fail.Load() {
			status, code = "fail", http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/health+json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"status":    status,
			"version":   version,
			"serviceId": os.Getenv("POD_NAME"),
			"notes":     []string{"node " + os.Getenv("NODE_NAME"), "up " + time.Since(started).Round(time.Second).String()},
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
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
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
