// Command agent runs the selfheal agent's core (examples/agent/core) on Kubernetes,
// with the kubernetes driver of package k8s: the agent of examples/agent, for a fleet
// file whose agent.driver is kubernetes. It lives in this module because the
// examples module must not import client-go.
//
//	go run ./examples/k8s/agent -fleet fleet.yaml [-kubeconfig file] [-namespace ns]
//
// It reads every pod's health document from the pod's IP, as an agent that runs in
// the cluster does: run it where pod IPs are routed. On the test cluster of
// .ci/k8s/cluster.sh that is the cluster's bridge namespace:
//
//	eval "$(bash .ci/k8s/cluster.sh start)"
//	go build -o /tmp/k8s-agent ./examples/k8s/agent
//	ip netns exec shk8sbr /tmp/k8s-agent -fleet examples/k8s/agent/fleet.yaml -kubeconfig "$SELFHEAL_K8S_KUBECONFIG"
//
// The driver's node guard runs inside it (a node whose kubelet stops answering is
// cordoned and its pods deleted); its incidents are written to the agent's event log
// and history like the agent's own. The status page and control API listen on
// agent.listen (default 127.0.0.1:7070).
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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
	"github.com/selfheal-go/selfheal/examples/k8s"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fleetPath := fs.String("fleet", "fleet.yaml", "the fleet file (agent.driver: kubernetes)")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "the kubeconfig file")
	namespace := fs.String("namespace", "default", "the namespace of the fleet's Deployments")
	dry := fs.Bool("dry-run", false, "decide and log, act on nothing")
	verbose := fs.Bool("v", false, "log the driver's decisions (info level)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agent: unexpected arguments %q (the control commands are examples/agent's: go run ./examples/agent -addr ... status)\n", fs.Args())
		return 2
	}
	fleet, err := config.Load(*fleetPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if fleet.Agent.Driver != "kubernetes" {
		fmt.Fprintf(stderr, "%s: agent.driver: this agent runs the kubernetes driver, not %q\n", *fleetPath, fleet.Agent.Driver)
		return 2
	}
	if *kubeconfig == "" {
		fmt.Fprintln(stderr, "agent: -kubeconfig (or KUBECONFIG) is required")
		return 2
	}
	if *dry {
		fleet.Agent.DryRun = true
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := k8s.Config{Kubeconfig: *kubeconfig, Namespace: *namespace, Logger: log}
	if fleet.Agent.DryRun {
		cfg.NodeProbeInterval = k8s.Off // the node guard acts: not in a dry run
	}
	drv, err := k8s.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer drv.Close()
	out := stderr
	if fleet.Agent.EventLog != "" {
		f, err := os.OpenFile(fleet.Agent.EventLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer f.Close()
		out = io.MultiWriter(stderr, f)
	}
	a, err := core.New(core.Config{Fleet: fleet, Driver: drv, Events: eventlog.New(out, 0), Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	incidents := make(chan struct{})
	go func() {
		defer close(incidents)
		k8s.RecordIncidents(ctx, drv, a.Record)
	}()
	defer func() { cancel(); <-incidents }()
	var srv *http.Server
	if fleet.Agent.Listen != "off" {
		l, err := net.Listen("tcp", fleet.Agent.Listen)
		if err != nil {
			fmt.Fprintf(stderr, "%s: agent.listen: %v\n", *fleetPath, err)
			return 1
		}
		srv = &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
		go func() { _ = srv.Serve(l) }()
	}
	err = a.Run(ctx)
	if srv != nil {
		a.CloseLive()
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		scancel()
	}
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
