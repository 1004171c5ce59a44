// Command testsvc is the kubernetes driver's test service: a static binary for the
// cluster's test image (.ci/k8s/cluster.sh). It serves the health document the agent
// reads (GET /health, application/health+json), the probes Kubernetes uses (/livez,
// /readyz) and a few faults (POST /fault/crash, /fault/fail, /fault/pass).
//
// Environment: PORT (default 8080), VERSION, HEALTH ("fail" makes the document report
// fail from the start: a bad release), POD_NAME, NODE_NAME.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	var fail atomic.Bool
	fail.Store(os.Getenv("HEALTH") == "fail")
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
			"version":   os.Getenv("VERSION"),
			"serviceId": os.Getenv("POD_NAME"),
			"notes":     []string{"node " + os.Getenv("NODE_NAME"), "up " + time.Since(started).Round(time.Second).String()},
		})
	})
	ok := func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) }
	mux.HandleFunc("GET /livez", ok)
	mux.HandleFunc("GET /readyz", ok)
	mux.HandleFunc("POST /fault/crash", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		go func() { time.Sleep(50 * time.Millisecond); os.Exit(2) }()
	})
	mux.HandleFunc("POST /fault/fail", func(w http.ResponseWriter, r *http.Request) { fail.Store(true) })
	mux.HandleFunc("POST /fault/pass", func(w http.ResponseWriter, r *http.Request) { fail.Store(false) })
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
