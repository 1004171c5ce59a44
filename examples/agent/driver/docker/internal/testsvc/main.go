package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	probe := flag.String("probe", "", "probe this URL ($VARS expanded) and exit 0 if it answers 2xx")
	flag.Parse()
	if *probe != "" {
		os.Exit(probeURL(os.ExpandEnv(*probe)))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if os.Getenv("PORT") == "" {
		fmt.Fprintln(os.Stderr, "testsvc: PORT is not set")
		os.Exit(1)
	}
	// LISTEN_HOST: the address to listen on; 127.0.0.1 unless set (the test-host lab's
	// instances listen on their host's lab address, which the agent probes).
	host := os.Getenv("LISTEN_HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	// DRAIN: on SIGTERM, how long readiness fails before the listener closes, so
	// that whatever routes here (the agent's front door, at its next probe) learns
	// before connections are refused; 0 unless set.
	var drain time.Duration
	if v := os.Getenv("DRAIN"); v != "" {
		var err error
		if drain, err = time.ParseDuration(v); err != nil {
			fmt.Fprintln(os.Stderr, "testsvc: DRAIN:", err)
			os.Exit(1)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, os.Getenv("PORT")))
	if err == nil {
		err = serve(ctx, ln, os.Getenv("VERSION"), drain, func() { os.Exit(3) })
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsvc:", err)
		os.Exit(1)
	}
}

func probeURL(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		fmt.Fprintln(os.Stderr, "probe:", resp.Status)
		return 1
	}
	return 0
}

// serve serves on ln until ctx is done, then fails readiness for drain and shuts
// down gracefully. crash is called by POST /fault/crash.
func serve(ctx context.Context, ln net.Listener, version string, drain time.Duration, crash func()) error {
	var unhealthy, degraded, baddoc, draining atomic.Bool
	unhealthy.Store(strings.Contains(version, "bad"))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		if unhealthy.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if unhealthy.Load() || draining.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if baddoc.Load() {
			w.Header().Set("Content-Type", "application/health+json")
			fmt.Fprint(w, `{"status": 42`)
			return
		}
		status := "pass"
		if unhealthy.Load() || degraded.Load() {
			status = "fail"
		}
		w.Header().Set("Content-Type", "application/health+json")
		json.NewEncoder(w).Encode(map[string]any{
			"status": status, "version": version, "serviceId": os.Getenv("INSTANCE_ID"),
		})
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s %s\n", os.Getenv("INSTANCE_ID"), version)
	})
	mux.HandleFunc("POST /fault/crash", func(w http.ResponseWriter, r *http.Request) {
		crash()
	})
	mux.HandleFunc("POST /fault/unhealthy", func(w http.ResponseWriter, r *http.Request) {
		unhealthy.Store(true)
	})
	mux.HandleFunc("POST /fault/degrade", func(w http.ResponseWriter, r *http.Request) {
		degraded.Store(true)
	})
	mux.HandleFunc("POST /fault/baddoc", func(w http.ResponseWriter, r *http.Request) {
		baddoc.Store(true)
	})

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	defer func() { <-done }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // before the wait above: defers run last-in first-out
	go func() {
		defer close(done)
		<-ctx.Done()
		if drain > 0 {
			draining.Store(true)
			time.Sleep(drain)
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
