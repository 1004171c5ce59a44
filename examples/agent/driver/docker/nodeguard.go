package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

// ErrManagerNode: the driver refuses to remove a swarm manager (RemoveNode), so that
// the agent can never take the swarm's last manager, or its quorum, away.
var ErrManagerNode = errors.New("docker: node is a swarm manager")

// RemoveNode removes a worker node from the swarm by force, as `docker node rm --force`:
// Swarm at once reschedules the node's tasks on the other nodes instead of waiting for
// its own heartbeat timeout (11-14 s with the default 5 s heartbeat). It is for a node
// confirmed lost (see NodeGuard); a removed host that comes back must leave the swarm
// and join it again. node is the hostname or the node id. A manager is never removed:
// that returns a *driver.NodeError matching ErrManagerNode. An unknown node matches
// driver.ErrNotFound.
func (d *Driver) RemoveNode(ctx context.Context, node, reason string) error {
	ctx, cancel, err := d.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	n, err := d.findNode(ctx, node)
	if err != nil {
		return &driver.NodeError{Node: node, Op: "remove", Err: d.wrap("find node "+node, err)}
	}
	if n.ManagerStatus != nil || n.Spec.Role == swarm.NodeRoleManager {
		return &driver.NodeError{Node: node, Op: "remove", Err: ErrManagerNode}
	}
	err = d.cli.NodeRemove(ctx, n.ID, swarm.NodeRemoveOptions{Force: true})
	d.count(ctx, err)
	if err != nil {
		return &driver.NodeError{Node: node, Op: "remove", Err: d.wrap("remove node "+node, err)}
	}
	d.log.InfoContext(ctx, "node removed from the swarm", "node", node, "id", n.ID, "reason", reason)
	return nil
}

// NodeGuardConfig configures a NodeGuard. Only Driver is required.
type NodeGuardConfig struct {
	// Driver is the driver whose swarm the guard watches and acts on. Required.
	Driver *Driver
	// Interval is the time between two probe rounds; 0 means 250 ms.
	Interval time.Duration
	// ProbeTimeout bounds each probe (a TCP connection); 0 means 300 ms.
	ProbeTimeout time.Duration
	// Confirm is how many consecutive rounds a node must be silent (every probe of it
	// timed out or found no route) before the guard removes it while Swarm still
	// reports it ready; 0 means 3. A node Swarm itself reports down needs one silent
	// round. A value below 2 is raised to 2: a single missed round is never enough.
	Confirm int
	// NodePort is a port every live node answers on at its swarm address, probed
	// besides the node's instances so that a node without instances is judged too,
	// and a node whose instances all crashed is still seen alive; 0 means 7946
	// (Swarm's gossip port, open on every node of a swarm).
	NodePort int
	// Cooldown is how long after a removal the guard removes no other node (it acts
	// on at most one node at a time); 0 means 30 s.
	Cooldown time.Duration
	// Dial makes the probes' connections; nil means a net.Dialer. Tests set it to
	// probe from inside a network namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// OnIncident, if set, is called (on the guard's goroutine) after every action
	// the guard attempted (a removal, a provisioning, a spread, a drain), with what it
	// saw and did.
	OnIncident func(NodeIncident)

	// MinNodes: while fewer nodes are ready and active, the guard calls Provision,
	// one call at a time; 0 means never.
	MinNodes int
	// Provision adds a node to the swarm (the lab's add-host; a cloud's autoscaling
	// group). Required when MinNodes is set.
	Provision func(ctx context.Context) error
	// ProvisionTimeout bounds one Provision call; 0 means 2 min.
	ProvisionTimeout time.Duration
	// Spread: when a worker joins the swarm after the guard's first round (a
	// provisioned node, a lost one that came back), the guard rolls every managed
	// service (Driver.Spread) so that Swarm places replicas on it too: Swarm puts
	// new tasks on a new node but never moves running ones. It waits until every
	// managed service is settled (see Driver.Spread).
	Spread bool
	// SpreadSettle is how long every task of a service must have run before a spread
	// rolls it, so that whatever routes to the replicas (the agent's front door, which
	// probes each instance before it takes traffic) has them in rotation before the
	// roll stops some; 0 means 5 s.
	SpreadSettle time.Duration
	// DrainAt is the share of a resource in use, in percent, at or above which a
	// node is drained before it fails. A node reports its use in node labels
	// selfheal.pressure.<resource>=<percent> (LabelPressure); 0 means 90.
	DrainAt float64
	// Horizon: a node whose reported use rises fast enough to reach 100% within
	// Horizon is drained too, before it reaches DrainAt; 0 means 2 min.
	Horizon time.Duration
}

// LabelPressure prefixes the node labels through which a node reports how much of a
// resource it uses, in percent: selfheal.pressure.disk=87.5. Something on the host
// (a node exporter's hook, the lab's `lab.sh pressure`) writes them through a manager
// (`docker node update --label-add`); the guard only reads them.
const LabelPressure = "selfheal.pressure."

// Actions of a NodeIncident.
const (
	ActionRemove    = "remove"    // a confirmed-lost worker removed from the swarm
	ActionProvision = "provision" // a node asked for (Provision) below MinNodes
	ActionSpread    = "spread"    // the managed services rolled onto a node that joined
	ActionDrain     = "drain"     // a node drained before its resources run out
)

// NodeIncident records one action of the guard: a node it confirmed lost and removed
// from the swarm, a node it asked for, services it spread onto a new node, a node it
// drained under resource pressure.
type NodeIncident struct {
	Action     string    // ActionRemove, ActionProvision, ActionSpread or ActionDrain
	Node       string    // the node's hostname ("" for a provisioning)
	Addr       string    // its swarm address
	Reason     string    // why the guard judged it lost
	Instances  []string  // the addresses of the instances Swarm still placed on it
	SilentFrom time.Time // the first round in which it was silent
	Confirmed  time.Time // when the guard confirmed the loss, or decided to act
	Removed    time.Time // when Swarm accepted the removal or the action ended (zero if it failed)
	Err        error     // the action's error, if any
}

// NodeGuardSnapshot is a point-in-time view of a NodeGuard.
type NodeGuardSnapshot struct {
	Rounds    int            // probe rounds done
	Silent    map[string]int // node -> consecutive silent rounds, for nodes silent now
	Incidents []NodeIncident // every removal attempted, oldest first
}

// NodeGuard confirms that a worker host is lost and removes it from the swarm, so that
// its replicas run elsewhere at once instead of after Swarm's heartbeat timeout. Every
// Interval it reads the engine's node list and the managed services' running instances
// and probes, by a TCP connection, every instance on every node and the node's
// NodePort at its swarm address:
//
//   - a probe that connects, or is refused, shows the host alive (a refusal is the
//     host's own kernel answering: its process crashed, the host did not);
//   - a probe that times out or finds no route is silent.
//
// A node is silent in a round when every one of its probes is silent. The guard
// removes a node (Driver.RemoveNode) only when all of these hold:
//
//   - it is a worker: managers are never removed, so the last manager never is;
//   - it was silent for Confirm consecutive rounds while Swarm reports it ready, or
//     for one round once Swarm itself reports it down (the engine's own view);
//   - it is the only silent worker, and at least one other node (a manager counts)
//     answered in the same round: when several nodes fall silent together the fault is more likely the
//     guard's own network, and Swarm is left to judge;
//   - no other removal happened within Cooldown.
//
// A NodeGuard is safe for concurrent use; Run runs on the caller's goroutine.
type NodeGuard struct {
	cfg NodeGuardConfig

	mu        sync.Mutex
	silent    map[string]int       // node id -> consecutive silent rounds
	since     map[string]time.Time // node id -> first silent round
	rounds    int
	lastAct   time.Time
	incidents []NodeIncident

	known        map[string]bool                // node id -> seen ready before
	joined       []string                       // nodes that joined, not spread onto yet
	provisioning bool                           // a Provision call runs
	provisionEnd time.Time                      // when the last one ended
	pressure     map[string]map[string][]sample // node id -> resource -> changes of its use
	drained      string                         // node id the guard drained, while drained
	wg           sync.WaitGroup                 // Provision calls
}

// sample is a node's reported use of a resource, in percent, since t.
type sample struct {
	t time.Time
	v float64
}

// NewNodeGuard returns a guard for cfg.Driver's swarm. It starts nothing: call Run.
func NewNodeGuard(cfg NodeGuardConfig) (*NodeGuard, error) {
	if cfg.Driver == nil {
		return nil, errors.New("docker: NodeGuardConfig.Driver: required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 250 * time.Millisecond
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 300 * time.Millisecond
	}
	if cfg.Confirm <= 0 {
		cfg.Confirm = 3
	}
	cfg.Confirm = max(cfg.Confirm, 2)
	if cfg.NodePort <= 0 {
		cfg.NodePort = 7946
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = 30 * time.Second
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	if cfg.MinNodes < 0 {
		return nil, errors.New("docker: NodeGuardConfig.MinNodes: must not be negative")
	}
	if cfg.MinNodes > 0 && cfg.Provision == nil {
		return nil, errors.New("docker: NodeGuardConfig.Provision: required with MinNodes")
	}
	if cfg.SpreadSettle <= 0 {
		cfg.SpreadSettle = 5 * time.Second
	}
	if cfg.ProvisionTimeout <= 0 {
		cfg.ProvisionTimeout = 2 * time.Minute
	}
	if cfg.DrainAt < 0 || cfg.DrainAt > 100 {
		return nil, fmt.Errorf("docker: NodeGuardConfig.DrainAt: want a percentage, not %v", cfg.DrainAt)
	}
	if cfg.DrainAt == 0 {
		cfg.DrainAt = 90
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = 2 * time.Minute
	}
	return &NodeGuard{cfg: cfg, silent: map[string]int{}, since: map[string]time.Time{},
		known: map[string]bool{}, pressure: map[string]map[string][]sample{}}, nil
}

// Run probes every Interval until ctx is done, and returns ctx's error. Errors of a
// round (the engine unavailable) skip that round: the guard never acts on what it
// could not read.
func (g *NodeGuard) Run(ctx context.Context) error {
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	defer g.wg.Wait() // a Provision call in flight ends with ctx
	for {
		if err := g.Round(ctx); err != nil && ctx.Err() == nil {
			g.cfg.Driver.log.WarnContext(ctx, "node guard: round skipped", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Snapshot returns the guard's counters and incidents.
func (g *NodeGuard) Snapshot() NodeGuardSnapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := NodeGuardSnapshot{Rounds: g.rounds, Silent: map[string]int{}, Incidents: slices.Clone(g.incidents)}
	for id, n := range g.silent {
		s.Silent[id] = n
	}
	return s
}

// guardNode is one worker as a round sees it.
type guardNode struct {
	id, name, addr string
	down           bool     // Swarm reports it not ready
	manager        bool     // probed, never removed
	probes         []string // addresses to probe: its instances and addr:NodePort
	instances      []string
}

// Round does one probe round and acts on its outcome; Run calls it every Interval.
func (g *NodeGuard) Round(ctx context.Context) error {
	d := g.cfg.Driver
	cctx, cancel, err := d.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	nodes, err := d.cli.NodeList(cctx, swarm.NodeListOptions{})
	if err != nil {
		return d.wrap("node guard: list nodes", err)
	}
	insts, err := d.Instances(cctx, "")
	if err != nil {
		return err
	}
	var workers []*guardNode
	byName := map[string]*guardNode{}
	for _, n := range nodes {
		if n.Status.Addr == "" {
			continue
		}
		w := &guardNode{id: n.ID, name: nodeName(n), addr: n.Status.Addr, down: n.Status.State != swarm.NodeStateReady,
			manager: n.ManagerStatus != nil || n.Spec.Role == swarm.NodeRoleManager}
		w.probes = append(w.probes, net.JoinHostPort(n.Status.Addr, strconv.Itoa(g.cfg.NodePort)))
		workers = append(workers, w)
		byName[w.name] = w
	}
	for _, in := range insts {
		if w := byName[in.Node]; w != nil && in.State == driver.StateRunning && in.Addr != "" {
			w.probes = append(w.probes, in.Addr)
			w.instances = append(w.instances, in.Addr)
		}
	}
	// Probe every node's addresses concurrently (managers too: one that answers shows
	// the guard's own network works); a node is silent if all its probes are.
	silent := make([]bool, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			silent[i] = g.nodeSilent(ctx, w.probes)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	now := time.Now()
	target, _ := g.judge(workers, silent, now)
	if target != nil {
		return g.remove(ctx, target, now)
	}
	g.provision(ctx, nodes, now)
	if err := g.spread(ctx, nodes, now); err != nil {
		return err
	}
	return g.drain(ctx, nodes, now)
}

// judge updates the silent-round counters and returns the one node to remove, if
// any, and how many nodes answered this round.
func (g *NodeGuard) judge(workers []*guardNode, silent []bool, now time.Time) (*guardNode, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rounds++
	seen := map[string]bool{}
	answered := 0
	var confirmed []*guardNode
	for i, w := range workers {
		seen[w.id] = true
		if w.manager {
			if !silent[i] {
				answered++
			}
			continue
		}
		if !silent[i] {
			answered++
			delete(g.silent, w.id)
			delete(g.since, w.id)
			continue
		}
		if g.silent[w.id] == 0 {
			g.since[w.id] = now
		}
		g.silent[w.id]++
		need := g.cfg.Confirm
		if w.down {
			need = 1
		}
		if g.silent[w.id] >= need {
			confirmed = append(confirmed, w)
		}
	}
	for id := range g.silent { // nodes that left the swarm
		if !seen[id] {
			delete(g.silent, id)
			delete(g.since, id)
		}
	}
	silentNow := len(g.silent)
	if len(confirmed) != 1 || silentNow != 1 || answered == 0 {
		return nil, answered
	}
	if !g.lastAct.IsZero() && now.Sub(g.lastAct) < g.cfg.Cooldown {
		return nil, answered
	}
	return confirmed[0], answered
}

func (g *NodeGuard) remove(ctx context.Context, w *guardNode, now time.Time) error {
	g.mu.Lock()
	rounds := g.silent[w.id]
	inc := NodeIncident{
		Action: ActionRemove, Node: w.name, Addr: w.addr, Instances: w.instances, SilentFrom: g.since[w.id], Confirmed: now,
		Reason: fmt.Sprintf("silent for %d probe rounds (%d instances and port %d, none answered); swarm reports it %s",
			rounds, len(w.instances), g.cfg.NodePort, map[bool]string{true: "down", false: "ready"}[w.down]),
	}
	g.lastAct = now
	g.mu.Unlock()
	inc.Err = g.cfg.Driver.RemoveNode(ctx, w.id, inc.Reason)
	if inc.Err == nil {
		inc.Removed = time.Now()
	}
	g.cfg.Driver.log.WarnContext(ctx, "node guard: node lost", "node", w.name, "reason", inc.Reason, "err", inc.Err)
	g.mu.Lock()
	g.incidents = append(g.incidents, inc)
	delete(g.silent, w.id)
	delete(g.since, w.id)
	g.mu.Unlock()
	if g.cfg.OnIncident != nil {
		g.cfg.OnIncident(inc)
	}
	return inc.Err
}

// nodeSilent probes addrs concurrently and reports whether none answered: each
// connection timed out or found no route. A refused or reset connection is an answer.
func (g *NodeGuard) nodeSilent(ctx context.Context, addrs []string) bool {
	answered := make(chan bool, len(addrs))
	for _, a := range addrs {
		go func() {
			pctx, cancel := context.WithTimeout(ctx, g.cfg.ProbeTimeout)
			defer cancel()
			c, err := g.cfg.Dial(pctx, "tcp", a)
			if err == nil {
				c.Close()
				answered <- true
				return
			}
			answered <- errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
		}()
	}
	heard := false
	for range addrs {
		if <-answered {
			heard = true
		}
	}
	return !heard
}
