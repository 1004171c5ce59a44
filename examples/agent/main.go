package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// drivers builds the driver a fleet file names.
var drivers = map[string]func(f *config.Fleet, log *slog.Logger) (driver.Driver, error){
	"local": func(f *config.Fleet, log *slog.Logger) (driver.Driver, error) {
		return local.New(local.Config{Nodes: f.Nodes, StateFile: f.Agent.StateFile, LogDir: f.Agent.LogDir, Logger: log})
	},
	// The engine is named by DOCKER_HOST (default unix:///var/run/docker.sock).
	"docker": func(f *config.Fleet, log *slog.Logger) (driver.Driver, error) {
		return docker.New(docker.Config{Logger: log})
	},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "fleet.yaml", "the fleet file")
	dry := fs.Bool("dry-run", false, "decide and log, act on nothing")
	addr := fs.String("addr", "127.0.0.1:7070", "the agent's status address, for the control commands")
	stopOnExit := fs.Bool("stop-on-exit", false, "stop every instance when the agent exits (default: leave them for the next run to adopt)")
	tokenFile := fs.String("token-file", "", "the file holding the control API's token (agent.tokenFile), for the control commands")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		return control(ctx, *addr, *tokenFile, fs.Args(), stdout, stderr)
	}
	fleet, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *dry {
		fleet.Agent.DryRun = true
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mk, ok := drivers[fleet.Agent.Driver]
	if !ok {
		fmt.Fprintf(stderr, "%s: agent.driver: %q is not built into this agent\n", *cfgPath, fleet.Agent.Driver)
		return 2
	}
	drv, err := mk(fleet, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer drv.Close()
	out := io.Writer(stderr)
	if fleet.Agent.EventLog != "" {
		if err := os.MkdirAll(filepath.Dir(fleet.Agent.EventLog), 0o700); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		f, err := os.OpenFile(fleet.Agent.EventLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer f.Close()
		out = io.MultiWriter(stderr, f)
	}
	// OpenTelemetry metrics: the agent's own (selfheal.agent.*) through an SDK
	// provider whose manual reader the status server exposes at /metrics.
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	var token string
	if fleet.Agent.TokenFile != "" {
		if token, err = readToken(fleet.Agent.TokenFile); err != nil {
			fmt.Fprintf(stderr, "%s: agent.tokenFile: %v\n", *cfgPath, err)
			return 1
		}
	}
	a, err := core.New(core.Config{Fleet: fleet, Driver: drv, Events: eventlog.New(out, 0), Logger: log, StopOnExit: *stopOnExit,
		MeterProvider: mp, ControlToken: token})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	stopGuard, err := startNodeGuard(ctx, fleet, drv, a.Record, stderr, log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: nodePool: %v\n", *cfgPath, err)
		return 1
	}
	defer stopGuard()
	var srv *http.Server
	if fleet.Agent.Listen != "off" {
		l, err := net.Listen("tcp", fleet.Agent.Listen)
		if err != nil {
			fmt.Fprintf(stderr, "%s: agent.listen: %v\n", *cfgPath, err)
			return 1
		}
		mux := http.NewServeMux()
		mux.Handle("/", a.Handler())
		mux.Handle("GET /metrics", a.Protect(metricsHandler(reader)))
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
		go func() { _ = srv.Serve(l) }()
	}
	err = a.Run(ctx)
	if srv != nil {
		// Live status pages (GET /live) stream until told to stop: end them
		// first, or Shutdown waits out its whole timeout for them.
		a.CloseLive()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

const usage = `usage: agent [-addr host:port] [-token-file file] command
commands:
  status                       print the agent's view (JSON)
  scale <service> <replicas>   set the replica count (within minReplicas..maxReplicas)
  update <service> <version>   start a rolling update
  node <name> <state>          set a node's state: ready (or up), down, degraded, drained (or drain)`

// control sends a command to a running agent and prints what it answered: the
// status, or one line saying what the command did.
func control(ctx context.Context, addr, tokenFile string, args []string, stdout, stderr io.Writer) int {
	base := "http://" + addr
	c := &http.Client{Timeout: 5 * time.Second}
	var req *http.Request
	var err error
	switch {
	case args[0] == "status" && len(args) == 1:
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+"/status", nil)
	case args[0] == "scale" && len(args) == 3:
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/scale?"+url.Values{"service": {args[1]}, "replicas": {args[2]}}.Encode(), nil)
	case args[0] == "update" && len(args) == 3:
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/update?"+url.Values{"service": {args[1]}, "version": {args[2]}}.Encode(), nil)
	case args[0] == "node" && len(args) == 3:
		st, perr := driver.ParseNodeState(args[2])
		if perr != nil {
			fmt.Fprintf(stderr, "agent: node %s: %q is not a node state\n%s\n", args[1], args[2], usage)
			return 2
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/node?"+url.Values{"name": {args[1]}, "state": {string(st)}, "reason": {"agent node command"}}.Encode(), nil)
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if tokenFile != "" {
		tok, err := readToken(tokenFile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		fmt.Fprintf(stderr, "agent: %s: %s\n", resp.Status, strings.TrimSpace(string(b)))
		return 1
	}
	_, _ = io.Copy(stdout, resp.Body)
	return 0
}

// readToken reads the control API's token from file: its first line, without
// surrounding space. A file that group or others may read or write is refused: its
// token would be no secret.
func readToken(file string) (string, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s: other users may read or write it (mode %04o): make it 0600", file, fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", fmt.Errorf("%s: empty token", file)
	}
	return tok, nil
}

// metricsHandler serves the collected OpenTelemetry metrics as JSON.
func metricsHandler(r *sdkmetric.ManualReader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var rm metricdata.ResourceMetrics
		if err := r.Collect(req.Context(), &rm); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		type point struct {
			Attrs map[string]string `json:"attributes,omitempty"`
			Value any               `json:"value"`
		}
		out := map[string][]point{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				attrs := func(s attribute.Set) map[string]string {
					o := map[string]string{}
					for _, kv := range s.ToSlice() {
						o[string(kv.Key)] = kv.Value.String()
					}
					return o
				}
				switch d := m.Data.(type) {
				case metricdata.Sum[int64]:
					for _, p := range d.DataPoints {
						out[m.Name] = append(out[m.Name], point{attrs(p.Attributes), p.Value})
					}
				case metricdata.Histogram[float64]:
					for _, p := range d.DataPoints {
						out[m.Name] = append(out[m.Name], point{attrs(p.Attributes), map[string]any{"count": p.Count, "sum": p.Sum}})
					}
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	})
}
