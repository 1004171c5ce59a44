package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

// Spread rolls every managed service that has replicas (as `docker service update
// --force`), one service after the other, so that Swarm places its tasks again over
// the nodes it has now: Swarm puts new tasks on a node that joined but never moves
// running ones. The roll follows each service's update configuration (parallelism
// capped at replicas-1, so some tasks always run). It returns the services rolled.
//
// It rolls nothing, and returns an error matching ErrUnsettled, while any managed
// service is not settled: fewer tasks running than its replicas (Swarm still
// rescheduling the tasks of a lost node), a task running for less than settle (not
// yet in the rotation of whatever routes to it), or an update or rollback in
// progress. A stop-first roll then would stop the only tasks that serve while their
// replacements start; call it again later.
func (d *Driver) Spread(ctx context.Context, reason string, settle time.Duration) ([]string, error) {
	ctx, cancel, err := d.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	svcs, err := d.managed(ctx)
	if err != nil {
		return nil, d.wrap("spread: list services", err)
	}
	if err := d.settled(ctx, svcs, settle); err != nil {
		return nil, err
	}
	var rolled []string
	for _, s := range svcs {
		if s.Spec.Mode.Replicated == nil || s.Spec.Mode.Replicated.Replicas == nil || *s.Spec.Mode.Replicated.Replicas == 0 {
			continue
		}
		err := d.update(ctx, "spread", s.ID, swarm.ServiceUpdateOptions{}, func(sp *swarm.ServiceSpec) error {
			sp.TaskTemplate.ForceUpdate++
			return nil
		})
		d.count(ctx, err)
		if err != nil {
			return rolled, d.wrap("spread "+s.Spec.Name, err)
		}
		rolled = append(rolled, s.Spec.Name)
	}
	d.log.InfoContext(ctx, "services spread over the nodes", "services", rolled, "reason", reason)
	return rolled, nil
}

// ErrUnsettled is returned by Spread while a service is not settled.
var ErrUnsettled = errors.New("docker: service not settled")

// settled returns an error matching ErrUnsettled naming the first replicated
// service of svcs with an update or rollback in progress, fewer running tasks than
// replicas, or a task running for less than settle.
func (d *Driver) settled(ctx context.Context, svcs []swarm.Service, settle time.Duration) error {
	args := filters.NewArgs(filters.Arg("desired-state", "running"))
	want := map[string]uint64{}
	names := map[string]string{}
	for _, s := range svcs {
		if s.Spec.Mode.Replicated == nil || s.Spec.Mode.Replicated.Replicas == nil || *s.Spec.Mode.Replicated.Replicas == 0 {
			continue
		}
		if u := s.UpdateStatus; u != nil && (u.State == swarm.UpdateStateUpdating || u.State == swarm.UpdateStateRollbackStarted) {
			return fmt.Errorf("%w: %s: %s in progress", ErrUnsettled, s.Spec.Name, u.State)
		}
		want[s.ID], names[s.ID] = *s.Spec.Mode.Replicated.Replicas, s.Spec.Name
		args.Add("service", s.ID)
	}
	if len(want) == 0 {
		return nil
	}
	tasks, err := d.cli.TaskList(ctx, swarm.TaskListOptions{Filters: args})
	if err != nil {
		return d.wrap("spread: list tasks", err)
	}
	running := map[string]uint64{}
	young := map[string]time.Duration{} // service id -> the shortest time a task has run
	now := time.Now()
	for _, t := range tasks {
		if t.Status.State != swarm.TaskStateRunning {
			continue
		}
		running[t.ServiceID]++
		if age := now.Sub(t.Status.Timestamp); age < settle {
			if y, ok := young[t.ServiceID]; !ok || age < y {
				young[t.ServiceID] = age
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if running[id] < want[id] {
			return fmt.Errorf("%w: %s: %d of %d tasks running", ErrUnsettled, names[id], running[id], want[id])
		}
		if y, ok := young[id]; ok {
			return fmt.Errorf("%w: %s: a task running for %v, less than %v", ErrUnsettled, names[id], max(y, 0).Round(time.Millisecond), settle)
		}
	}
	return nil
}

// schedulable reports a node that Swarm places tasks on: ready and active.
func schedulable(n swarm.Node) bool {
	return n.Status.State == swarm.NodeStateReady && n.Spec.Availability == swarm.NodeAvailabilityActive
}

// provision asks for a node (Provision, on a goroutine of its own) when fewer than
// MinNodes are schedulable, no call runs, and none ended within Cooldown (a new
// node needs a moment to show ready).
func (g *NodeGuard) provision(ctx context.Context, nodes []swarm.Node, now time.Time) {
	if g.cfg.MinNodes == 0 {
		return
	}
	ready := 0
	for _, n := range nodes {
		if schedulable(n) {
			ready++
		}
	}
	g.mu.Lock()
	if ready >= g.cfg.MinNodes || g.provisioning || (!g.provisionEnd.IsZero() && now.Sub(g.provisionEnd) < g.cfg.Cooldown) {
		g.mu.Unlock()
		return
	}
	g.provisioning = true
	g.wg.Add(1)
	g.mu.Unlock()
	inc := NodeIncident{Action: ActionProvision, Confirmed: now,
		Reason: fmt.Sprintf("%d nodes ready and active, fewer than the minimum of %d: a node asked for", ready, g.cfg.MinNodes)}
	log := g.cfg.Driver.log
	log.WarnContext(ctx, "node guard: provisioning a node", "reason", inc.Reason)
	go func() {
		defer g.wg.Done()
		pctx, cancel := context.WithTimeout(ctx, g.cfg.ProvisionTimeout)
		inc.Err = g.cfg.Provision(pctx)
		cancel()
		if inc.Err == nil {
			inc.Removed = time.Now()
		}
		log.WarnContext(ctx, "node guard: provisioning ended", "took", time.Since(now), "err", inc.Err)
		g.mu.Lock()
		g.provisioning = false
		g.provisionEnd = time.Now()
		g.incidents = append(g.incidents, inc)
		g.mu.Unlock()
		if g.cfg.OnIncident != nil {
			g.cfg.OnIncident(inc)
		}
	}()
}

// spread rolls the managed services onto workers that joined since the last round
// (with Spread set); the first round only learns the nodes.
func (g *NodeGuard) spread(ctx context.Context, nodes []swarm.Node, now time.Time) error {
	g.mu.Lock()
	first := len(g.known) == 0
	for _, n := range nodes {
		if !schedulable(n) || g.known[n.ID] {
			continue
		}
		g.known[n.ID] = true
		if !first && n.Spec.Role == swarm.NodeRoleWorker && g.cfg.Spread {
			g.joined = append(g.joined, nodeName(n))
		}
	}
	joined := slices.Clone(g.joined)
	g.mu.Unlock()
	if len(joined) == 0 {
		return nil
	}
	inc := NodeIncident{Action: ActionSpread, Node: strings.Join(joined, ","), Confirmed: now,
		Reason: "node " + strings.Join(joined, ",") + " joined the swarm: services rolled so that it takes replicas (Swarm does not move running tasks)"}
	rolled, err := g.cfg.Driver.Spread(ctx, inc.Reason, g.cfg.SpreadSettle)
	if errors.Is(err, ErrUnsettled) {
		// the joined nodes stay pending: the next round tries again
		g.cfg.Driver.log.DebugContext(ctx, "node guard: spread waits", "nodes", joined, "err", err)
		return nil
	}
	g.mu.Lock()
	g.joined = g.joined[len(joined):]
	g.mu.Unlock()
	inc.Instances, inc.Err = rolled, err
	if err == nil {
		inc.Removed = time.Now()
	}
	g.record(ctx, inc)
	return err
}

// drain reads the nodes' pressure labels, and drains the first schedulable node
// whose use of a resource is at DrainAt or projected to reach 100% within Horizon,
// unless the guard already keeps a node drained, it would leave no other
// schedulable node, or another action happened within Cooldown.
func (g *NodeGuard) drain(ctx context.Context, nodes []swarm.Node, now time.Time) error {
	g.mu.Lock()
	others := 0
	var target swarm.Node
	var reason string
	stillDrained := false
	seen := map[string]bool{}
	for _, n := range nodes {
		seen[n.ID] = true
		if n.ID == g.drained && n.Spec.Availability != swarm.NodeAvailabilityActive {
			stillDrained = true
		}
		g.sample(n, now)
		if !schedulable(n) {
			continue
		}
		others++
		if reason == "" {
			for _, res := range slices.Sorted(maps.Keys(g.pressure[n.ID])) {
				if why := pressureVerdict(res, g.pressure[n.ID][res], now, g.cfg.DrainAt, g.cfg.Horizon); why != "" {
					target, reason = n, why
					break
				}
			}
		}
	}
	for id := range g.pressure {
		if !seen[id] {
			delete(g.pressure, id)
		}
	}
	if !stillDrained {
		g.drained = ""
	}
	if reason == "" || g.drained != "" || others < 2 || (!g.lastAct.IsZero() && now.Sub(g.lastAct) < g.cfg.Cooldown) {
		g.mu.Unlock()
		return nil
	}
	g.lastAct, g.drained = now, target.ID
	g.mu.Unlock()
	inc := NodeIncident{Action: ActionDrain, Node: nodeName(target), Addr: target.Status.Addr, Confirmed: now,
		Reason: "drained before it fails: " + reason}
	inc.Err = g.cfg.Driver.SetNodeState(ctx, target.ID, driver.NodeDrained, inc.Reason)
	if inc.Err == nil {
		inc.Removed = time.Now()
	}
	g.record(ctx, inc)
	return inc.Err
}

// record keeps an incident, logs it and reports it.
func (g *NodeGuard) record(ctx context.Context, inc NodeIncident) {
	g.cfg.Driver.log.WarnContext(ctx, "node guard: "+inc.Action, "node", inc.Node, "reason", inc.Reason, "err", inc.Err)
	g.mu.Lock()
	g.incidents = append(g.incidents, inc)
	g.mu.Unlock()
	if g.cfg.OnIncident != nil {
		g.cfg.OnIncident(inc)
	}
}

// pressureWindow is how far back the changes of a node's reported use are kept.
const pressureWindow = 10 * time.Minute

// sample records node n's pressure labels: a change of a value as a new sample. The
// caller holds g.mu.
func (g *NodeGuard) sample(n swarm.Node, now time.Time) {
	byRes := g.pressure[n.ID]
	if byRes == nil {
		byRes = map[string][]sample{}
		g.pressure[n.ID] = byRes
	}
	for res := range byRes {
		if _, ok := n.Spec.Labels[LabelPressure+res]; !ok {
			delete(byRes, res)
		}
	}
	for k, val := range n.Spec.Labels {
		res, ok := strings.CutPrefix(k, LabelPressure)
		if !ok || res == "" {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(val), "%"), 64)
		if err != nil || v < 0 || v > 100 {
			continue // not a percentage: ignored
		}
		ss := byRes[res]
		if len(ss) > 0 && ss[len(ss)-1].v == v {
			continue
		}
		ss = append(ss, sample{now, v})
		for len(ss) > 1 && now.Sub(ss[0].t) > pressureWindow {
			ss = ss[1:]
		}
		byRes[res] = ss
	}
}

// pressureVerdict says why a node whose use of res changed as ss must be drained, or
// "": its use is at drainAt or more, or it rose since the first sample at a rate
// that reaches 100% within horizon (the rate is taken up to now, so that a use that
// stopped rising slows its projection down).
func pressureVerdict(res string, ss []sample, now time.Time, drainAt float64, horizon time.Duration) string {
	if len(ss) == 0 {
		return ""
	}
	last := ss[len(ss)-1]
	if last.v >= drainAt {
		return fmt.Sprintf("%s %.4g%% used, at or above %.4g%%", res, last.v, drainAt)
	}
	first := ss[0]
	dt := now.Sub(first.t)
	if len(ss) < 2 || last.v <= first.v || dt <= 0 {
		return ""
	}
	rate := (last.v - first.v) / dt.Seconds() // percent per second
	eta := time.Duration((100 - last.v) / rate * float64(time.Second))
	if eta > horizon {
		return ""
	}
	return fmt.Sprintf("%s %.4g%% used and rising %.3g%%/s (from %.4g%% %v ago): full in about %v, within the horizon of %v",
		res, last.v, rate, first.v, dt.Round(time.Second), eta.Round(time.Second), horizon)
}
