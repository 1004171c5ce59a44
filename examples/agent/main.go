package main

import (
	"context"
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
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
	"github.com/selfheal-go/selfheal/examples/internal/obs"
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
	// OpenTelemetry: the agent's metrics (selfheal.agent.*) on /metrics in the
	// Prometheus text format, and its decisions as spans over OTLP when
	// OTEL_EXPORTER_OTLP_ENDPOINT is set (telemetry.go).
	res, err := obs.Resource(ctx, attribute.String("service.name", "selfheal-agent"))
	if err != nil {
		fmt.Fprintf(stderr, "telemetry: %v\n", err)
	}
	metrics, err := obs.NewMetrics(res, sdkmetric.WithView(durationBuckets))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	mp := metrics.Provider
	defer func() { _ = mp.Shutdown(context.Background()) }()
	var tp trace.TracerProvider // nil: no spans
	flushTraces := func(context.Context) error { return nil }
	if obs.TracesEnabled() {
		if tp, flushTraces, err = obs.NewTraces(ctx, res); err != nil {
			fmt.Fprintf(stderr, "telemetry: %v\n", err)
			return 1
		}
	}
	events := eventlog.New(out, 0)
	tel, err := newTelemetry(tp, mp)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	stopTelemetry := tel.watch(events)
	defer func() {
		stopTelemetry()
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := flushTraces(fctx); err != nil {
			fmt.Fprintf(stderr, "telemetry: flush on exit: %v\n", err)
		}
	}()
	var token string
	if fleet.Agent.TokenFile != "" {
		if token, err = readToken(fleet.Agent.TokenFile); err != nil {
			fmt.Fprintf(stderr, "%s: agent.tokenFile: %v\n", *cfgPath, err)
			return 1
		}
	}
	a, err := core.New(core.Config{Fleet: fleet, Driver: drv, Events: events, Logger: log, StopOnExit: *stopOnExit,
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
		mux.Handle("/metrics", a.Protect(metrics.Handler))
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
