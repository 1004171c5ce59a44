package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// startNodeGuard runs the docker driver's node guard beside the agent (unless
// nodePool.guard is off, or the driver is not docker): confirmed-lost workers removed,
// nodes provisioned below nodePool.min and services spread onto nodes that join, nodes
// under resource pressure drained. Every action is an incident of the agent's history.
// stop ends it and waits for it.
func startNodeGuard(ctx context.Context, f *config.Fleet, drv driver.Driver, rec func(eventlog.Event), out io.Writer, log *slog.Logger) (stop func(), err error) {
	d, ok := drv.(*docker.Driver)
	if !ok || f.NodePool.Guard == "off" || f.Agent.DryRun {
		return func() {}, nil
	}
	cfg := docker.NodeGuardConfig{
		Driver:           d,
		MinNodes:         f.NodePool.Min,
		ProvisionTimeout: time.Duration(f.NodePool.ProvisionTimeout),
		Spread:           true,
		DrainAt:          f.NodePool.DrainAt,
		Horizon:          time.Duration(f.NodePool.Horizon),
		OnIncident:       func(in docker.NodeIncident) { recordNodeIncident(rec, in) },
	}
	if cmd := f.NodePool.Provision; cmd != "" {
		cfg.Provision = func(ctx context.Context) error {
			c := exec.CommandContext(ctx, "sh", "-c", cmd)
			c.Stdout, c.Stderr = out, out
			c.WaitDelay = 5 * time.Second
			if err := c.Run(); err != nil {
				return fmt.Errorf("nodePool.provision %q: %w", cmd, err)
			}
			return nil
		}
	}
	g, err := docker.NewNodeGuard(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := g.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("node guard stopped", "err", err)
		}
	})
	return func() { cancel(); wg.Wait() }, nil
}

var nodeIncidents struct {
	sync.Mutex
	n int
}

// recordNodeIncident turns a guard's action into an incident: observed (why), then
// acted and healed, or failed.
func recordNodeIncident(rec func(eventlog.Event), in docker.NodeIncident) {
	nodeIncidents.Lock()
	nodeIncidents.n++
	id := fmt.Sprintf("node#%d", nodeIncidents.n)
	nodeIncidents.Unlock()
	what := map[string]string{docker.ActionRemove: "node-lost", docker.ActionProvision: "nodes-below-min",
		docker.ActionSpread: "node-joined", docker.ActionDrain: "node-pressure"}[in.Action]
	detail := map[string]any{"action": in.Action}
	if in.Addr != "" {
		detail["addr"] = in.Addr
	}
	if len(in.Instances) > 0 {
		detail["instances"] = strings.Join(in.Instances, ",")
	}
	obs := eventlog.Event{Time: in.Confirmed, Kind: eventlog.Decided, What: what, Node: in.Node, Incident: id, Why: in.Reason, Detail: detail}
	if !in.SilentFrom.IsZero() {
		obs.DetectMs = float64(in.Confirmed.Sub(in.SilentFrom).Microseconds()) / 1e3
	}
	rec(obs)
	if in.Err != nil {
		rec(eventlog.Event{Kind: eventlog.Failed, What: in.Action, Node: in.Node, Incident: id, Why: in.Err.Error()})
		return
	}
	rec(eventlog.Event{Time: in.Removed, Kind: eventlog.Acted, What: in.Action + "-node", Node: in.Node, Incident: id, Why: in.Reason})
	rec(eventlog.Event{Time: in.Removed, Kind: eventlog.Healed, What: what, Node: in.Node, Incident: id,
		HealMs: float64(in.Removed.Sub(in.Confirmed).Microseconds()) / 1e3})
}
