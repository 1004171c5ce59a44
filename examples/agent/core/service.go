package core

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/selfheal-go/selfheal/health"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/decide"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// svc is the agent's state of one service; guarded by Agent.mu.
type svc struct {
	cfg       *config.Service
	name      string
	desired   int
	version   string
	prev      string
	members   map[string]*member
	seq       int
	starting  int // plain starts in flight (not replacements)
	pending   []restartReq
	restartAt time.Time
	gaveUp    bool
	backoff   *decide.Backoff
	scaler    *decide.Scaler
	scaleInc  string
	rollout   *rollout
	held      map[string]time.Time
	tcfg      decide.TrackerConfig
	placing   map[string]int // starts in flight per node
	wake      chan struct{}  // a probe round soon: a new instance may be ready
}

type restartReq struct {
	incident string
	node     string
	avoid    string // escalation: the node where the last replacement failed again
	counts   bool   // toward the crash-loop backoff (false for a node failure)
}

type member struct {
	inst       driver.Instance
	tr         *decide.Tracker
	heap, gor  decide.Series
	p50, p99   float64 // -1: unknown
	util       float64 // -1: unknown
	readySince time.Time
	stopping   bool
	gone       bool
	replacedBy string // "pending" while its replacement starts
	replaces   string
	incident   string // the incident this instance heals
	preventive bool   // a preventive replacement is under way for it
	reported   bool   // its unhealthiness was reported
	added      time.Time
	// verifyUntil: it healed an incident and is watched until then; failing
	// within the window escalates (the next replacement goes to another node).
	verifyUntil time.Time
	verifyInc   string
}

func (m *member) routable() bool {
	return !m.stopping && !m.gone && m.inst.State == driver.StateRunning && m.tr.Ready()
}

func newSvc(c *config.Service) *svc {
	return &svc{
		cfg: c, name: c.Name, desired: c.Replicas, version: c.Version, members: map[string]*member{},
		backoff: decide.NewBackoff(decide.BackoffConfig{Initial: c.Restart.Initial.D(), Max: c.Restart.Max.D(),
			Jitter: c.Restart.Jitter, CrashLoopRestarts: c.Restart.CrashLoopRestarts, Window: c.Restart.CrashLoopWindow.D()}),
		scaler: decide.NewScaler(decide.ScalerConfig{Min: c.MinReplicas, Max: c.MaxReplicas, Tolerance: c.Scale.Tolerance,
			UpWindow: c.Scale.UpWindow.D(), DownWindow: c.Scale.DownWindow.D(), MaxStep: c.Scale.MaxStep}),
		held: map[string]time.Time{}, placing: map[string]int{}, wake: make(chan struct{}, 1),
		tcfg: decide.TrackerConfig{StartupGrace: c.Health.StartupGrace.D(), FailureThreshold: c.Health.FailureThreshold,
			SuccessThreshold: c.Health.SuccessThreshold, MinUnhealthy: c.Health.MinUnhealthy.D()},
	}
}

func (s *svc) newMember(in driver.Instance, now time.Time) *member {
	born := in.StartedAt
	if born.IsZero() {
		born = now
	}
	m := &member{inst: in, tr: decide.NewTracker(s.tcfg, born), p50: -1, p99: -1, util: -1, added: now,
		heap: decide.Series{Cap: 24}, gor: decide.Series{Cap: 24}}
	if i := strings.LastIndexByte(in.ID, '-'); i >= 0 {
		if n, err := strconv.Atoi(in.ID[i+1:]); err == nil && n > s.seq {
			s.seq = n
		}
	}
	return m
}

func (s *svc) nextID() string {
	s.seq++
	return s.name + "-" + strconv.Itoa(s.seq)
}

type probeResult struct {
	id          string
	live, ready bool
	err         string
	doc         *health.Document
}

// tick runs one round of the loop for s.
func (a *Agent) tick(ctx context.Context, s *svc) {
	insts, err := a.drv.Instances(ctx, s.name)
	if err != nil {
		if ctx.Err() == nil {
			a.mu.Lock()
			a.holdOnce(s, "driver", time.Now(), eventlog.Event{Kind: eventlog.Failed, What: "list", Service: s.name, Why: err.Error()})
			a.mu.Unlock()
		}
		return
	}
	nodes, _ := a.drv.Nodes(ctx)
	now := time.Now()
	a.mu.Lock()
	seen := map[string]bool{}
	for _, in := range insts {
		seen[in.ID] = true
		m := s.members[in.ID]
		if m == nil {
			m = s.newMember(in, now)
			s.members[in.ID] = m
		}
		m.inst = in
	}
	for id, m := range s.members {
		if !seen[id] && now.Sub(m.added) > 5*time.Second && !m.stopping {
			delete(s.members, id)
		}
	}
	type target struct{ id, addr string }
	var targets []target
	for _, m := range s.members {
		if m.inst.State == driver.StateRunning && !m.stopping && m.inst.Addr != "" {
			targets = append(targets, target{m.inst.ID, m.inst.Addr})
		}
	}
	a.mu.Unlock()

	results := make([]probeResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = a.probe(ctx, s.cfg, t.id, t.addr)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	now = time.Now()
	for _, r := range results {
		m := s.members[r.id]
		if m == nil || m.stopping || m.gone {
			continue
		}
		h, changed := m.tr.Observe(now, decide.Probe{Live: r.live, Ready: r.ready, Err: r.err})
		if r.doc != nil {
			if v, ok := r.doc.Find(health.KeyHeap, ""); ok {
				if f, ok := v.Float(); ok {
					m.heap.Add(now, f)
				}
			}
			if v, ok := r.doc.Find(health.KeyGoroutines, ""); ok {
				if f, ok := v.Float(); ok {
					m.gor.Add(now, f)
				}
			}
			m.p50, m.p99, m.util = -1, -1, -1
			if v, ok := r.doc.Find("http:responseTime", "p50"); ok {
				if f, ok := v.Float(); ok {
					m.p50 = f
				}
			}
			if v, ok := r.doc.Find("http:responseTime", "p99"); ok {
				if f, ok := v.Float(); ok {
					m.p99 = f
				}
			}
			if v, ok := r.doc.Find("http:utilization", ""); ok {
				if f, ok := v.Float(); ok {
					m.util = f
				}
			}
		}
		if m.tr.Ready() {
			if m.readySince.IsZero() {
				m.readySince = now
			}
		} else {
			m.readySince = time.Time{}
		}
		if changed && h == decide.Unhealthy && !m.reported {
			m.reported = true
			m.incident = a.newIncident(s.name, "unhealthy", now)
			a.emit(eventlog.Event{Kind: eventlog.Observed, What: "unhealthy", Service: s.name, Instance: m.inst.ID, Node: m.inst.Node,
				Incident: m.incident, Why: fmt.Sprintf("failed %d probes in a row since %s: %s", s.cfg.Health.FailureThreshold,
					m.tr.FailingSince().Format("15:04:05.000"), m.tr.LastError()),
				DetectMs: ms(now.Sub(m.tr.FailingSince()))})
		}
	}
	nstate := map[string]driver.NodeState{}
	for _, n := range nodes {
		nstate[n.Name] = n.State
	}
	if a.orch != nil {
		a.planOrchestrated(s, now, nstate)
		return
	}
	a.plan(s, now, nodes, nstate)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// probe checks liveness, readiness and the health document of one instance.
func (a *Agent) probe(ctx context.Context, c *config.Service, id, addr string) probeResult {
	r := probeResult{id: id}
	ctx, cancel := context.WithTimeout(ctx, c.Health.Timeout.D())
	defer cancel()
	base := "http://" + addr
	get := func(path string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return 0, err
		}
		resp, err := a.client.Do(req)
		if err != nil {
			return 0, err
		}
		// Read the (short) body before closing it, so that the connection goes back
		// to the pool for the next probe instead of being closed; bounded, so that an
		// instance cannot make the agent read forever.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	code, err := get(c.Health.Liveness)
	switch {
	case err != nil:
		r.err = err.Error()
		if ctx.Err() != nil {
			r.err = "liveness probe timed out after " + c.Health.Timeout.D().String()
		}
		return r
	case code != http.StatusOK:
		r.err = "liveness answered " + strconv.Itoa(code)
		return r
	}
	r.live = true
	code, err = get(c.Health.Readiness)
	r.ready = err == nil && code == http.StatusOK
	// A malformed or unreachable health document counts against the instance,
	// like a failed liveness probe (a 503 with a valid document does not).
	doc, _, err := health.Fetch(ctx, a.client, base+c.Health.Document)
	if err != nil {
		r.live, r.ready = false, false
		r.err = "health document: " + err.Error()
		return r
	}
	r.doc = doc
	r.live, r.ready, r.err = judgeDocument(doc, r.ready)
	return r
}

// judgeDocument is the verdict of a health document that parsed, for an instance
// whose liveness probe passed and whose readiness probe gave ready. A document
// that says "fail" counts against the instance like a failed probe, unless:
//   - the instance is draining (the health package adds the note "draining" and
//     fails readiness): it is shutting down on purpose, and is only not ready;
//   - its readiness probe failed too: the failure is the service saying "do not
//     route to me" (a dependency down, a release that never becomes ready), which
//     keeps it out of the front door but is no reason to restart it.
func judgeDocument(doc *health.Document, ready bool) (live, rdy bool, err string) {
	if doc == nil || doc.Status != health.StatusFail {
		return true, ready, ""
	}
	why := "health document says fail"
	if doc.Output != "" {
		why += ": " + doc.Output
	}
	if slices.Contains(doc.Notes, "draining") {
		return true, false, why
	}
	if !ready {
		return true, false, why
	}
	return false, false, why
}

// holdOnce emits e at most once every 5 s per key; callers hold a.mu.
func (a *Agent) holdOnce(s *svc, key string, now time.Time, e eventlog.Event) {
	if t, ok := s.held[key]; ok && now.Sub(t) < 5*time.Second {
		return
	}
	s.held[key] = now
	a.emit(e)
}

// plan decides and starts the actions of one round (Placer drivers); callers hold
// a.mu.
func (a *Agent) plan(s *svc, now time.Time, nodes []driver.Node, nstate map[string]driver.NodeState) {
	dry := a.fleet.Agent.DryRun
	ids := make([]string, 0, len(s.members))
	for id := range s.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)

	// 1. Exits.
	for _, id := range ids {
		m := s.members[id]
		if m.inst.State != driver.StateExited || m.gone {
			continue
		}
		m.gone = true
		if m.stopping {
			continue
		}
		nodeDown := nstate[m.inst.Node] == driver.NodeDown || m.inst.ExitReason == "node down"
		what := "crash"
		if nodeDown {
			what = "node-down"
		}
		// An instance whose probes failed before its exit was reported (as when its
		// node dies) has an incident open already: the exit is part of it. A second
		// incident would be one that nothing heals.
		inc := m.incident
		if !m.reported || inc == "" {
			inc = a.newIncident(s.name, what, now)
		} else if m.replacedBy != "" {
			// The replacement under way heals the open incident; no restart besides.
			a.emit(eventlog.Event{Kind: eventlog.Observed, What: what, Service: s.name, Instance: id, Node: m.inst.Node, Incident: inc,
				Why: "exited: " + m.inst.ExitReason + "; already being replaced"})
			if !dry {
				a.forget(s, m)
			}
			continue
		}
		detect := time.Duration(0)
		if !m.inst.ExitedAt.IsZero() {
			detect = now.Sub(m.inst.ExitedAt)
		}
		a.emit(eventlog.Event{Kind: eventlog.Observed, What: what, Service: s.name, Instance: id, Node: m.inst.Node, Incident: inc,
			Why: "exited: " + m.inst.ExitReason, DetectMs: ms(detect)})
		if old := s.members[m.replaces]; m.replaces != "" && old != nil {
			old.replacedBy = "" // the replacement died; the old instance stays until another try
		} else {
			req := restartReq{incident: inc, node: m.inst.Node, counts: !nodeDown}
			if now.Before(m.verifyUntil) && !nodeDown {
				req.avoid, req.node = m.inst.Node, ""
				a.emit(eventlog.Event{Kind: eventlog.Failed, What: "verify", Service: s.name, Instance: id, Node: m.inst.Node, Incident: inc,
					Why: fmt.Sprintf("it healed %s and failed again within the monitor window: escalating, the next replacement goes to another node", m.verifyInc)})
			}
			s.pending = append(s.pending, req)
		}
		if !dry {
			a.forget(s, m)
		}
	}

	running := func(m *member) bool { return !m.gone && !m.stopping && m.inst.State == driver.StateRunning }
	total, broken := 0, 0
	for _, m := range s.members {
		if running(m) {
			total++
			if h := m.tr.Health(); h == decide.Unhealthy || h == decide.Suspect {
				broken++
			}
		}
	}
	fraction := a.fleet.Agent.BrokenFraction

	// 2. Unhealthy instances are replaced.
	for _, id := range ids {
		m := s.members[id]
		if !running(m) || m.tr.Health() != decide.Unhealthy || m.replacedBy != "" || m.replaces != "" {
			continue
		}
		if decide.Broken(broken, total, fraction) {
			a.holdOnce(s, "broken", now, eventlog.Event{Kind: eventlog.Held, What: "replace", Service: s.name,
				Why: fmt.Sprintf("%d of %d instances look broken at once: the fault is likely shared or in the agent's view; holding still", broken, total)})
			break
		}
		if !a.takeBudget(s, now, "replace "+id) {
			continue
		}
		inc := m.incident
		if inc == "" {
			inc = a.newIncident(s.name, "unhealthy", now)
			m.incident = inc
		}
		a.emit(eventlog.Event{Kind: eventlog.Decided, What: "replace", Service: s.name, Instance: id, Node: m.inst.Node, Incident: inc,
			Why: "unhealthy: " + m.tr.LastError()})
		a.counted(s.name, "replace")
		if !dry {
			a.startInstance(s, startOpts{version: m.inst.Version, replaces: m, incident: inc, nodes: nodes})
		}
	}

	// 3. Preventive: trends toward a limit, degraded nodes. One at a time.
	inFlight := false
	for _, m := range s.members {
		if m.preventive && !m.gone {
			inFlight = true
		}
	}
	lim := s.cfg.Limits
	horizon := lim.Horizon.D()
	minSpan := 4 * s.cfg.Health.Interval.D()
	for _, id := range ids {
		m := s.members[id]
		if inFlight || !running(m) || m.tr.Health() != decide.Healthy || m.replacedBy != "" || m.replaces != "" || s.rollout != nil {
			continue
		}
		var why, what string
		var detail map[string]any
		if lim.Heap > 0 {
			if tr, left, ok := m.heap.Forecast(float64(lim.Heap), horizon, minSpan, 0.8); ok {
				what = "heap-trend"
				why = fmt.Sprintf("heap %.0f MiB growing %.1f MiB/s reaches its %.0f MiB limit in %s", tr.Value/(1<<20), tr.Slope/(1<<20),
					float64(lim.Heap)/(1<<20), left.Round(100*time.Millisecond))
				detail = map[string]any{"value": tr.Value, "slopePerSec": tr.Slope, "limit": float64(lim.Heap), "etaMs": ms(left), "r2": tr.R2, "samples": tr.N}
			}
		}
		if what == "" && lim.Goroutines > 0 {
			if tr, left, ok := m.gor.Forecast(float64(lim.Goroutines), horizon, minSpan, 0.8); ok {
				what = "goroutine-trend"
				why = fmt.Sprintf("goroutines %.0f growing %.1f/s reach their limit %d in %s", tr.Value, tr.Slope, lim.Goroutines, left.Round(100*time.Millisecond))
				detail = map[string]any{"value": tr.Value, "slopePerSec": tr.Slope, "limit": lim.Goroutines, "etaMs": ms(left), "r2": tr.R2, "samples": tr.N}
			}
		}
		if what == "" && nstate[m.inst.Node] == driver.NodeDegraded {
			what = "node-degraded"
			why = fmt.Sprintf("node %s reports itself degraded: draining it before it fails", m.inst.Node)
		}
		if what == "" {
			continue
		}
		if !a.takeBudget(s, now, "preventive") {
			continue
		}
		inc := a.newIncident(s.name, what, now)
		a.emit(eventlog.Event{Kind: eventlog.Observed, What: what, Service: s.name, Instance: id, Node: m.inst.Node, Incident: inc, Why: why, Detail: detail})
		a.emit(eventlog.Event{Kind: eventlog.Decided, What: "replace", Service: s.name, Instance: id, Node: m.inst.Node, Incident: inc,
			Why: "preventive: " + why})
		a.counted(s.name, "preventive-replace")
		if !dry {
			m.preventive = true
			m.incident = inc
			avoid := ""
			if what == "node-degraded" {
				avoid = m.inst.Node
			}
			a.startInstance(s, startOpts{version: m.inst.Version, replaces: m, incident: inc, avoid: avoid, nodes: nodes})
		}
		inFlight = true
	}

	// 4. Replacements that became ready retire the instance they replace; those that
	// do not become ready in time are given up.
	startTimeout := s.cfg.Update.StartTimeout.D()
	for _, id := range ids {
		m := s.members[id]
		if m.replaces == "" || m.gone || m.stopping {
			continue
		}
		old := s.members[m.replaces]
		switch {
		case m.tr.Ready():
			m.replaces = ""
			if old != nil && !old.stopping && !old.gone {
				a.emit(eventlog.Event{Kind: eventlog.Acted, What: "retire", Service: s.name, Instance: old.inst.ID, Node: old.inst.Node,
					Incident: m.incident, Why: "replaced by " + id + " (ready)"})
				a.stop(s, old, "replaced by "+id)
			}
			if m.incident != "" && (s.rollout == nil || !s.rollout.batch[id]) {
				a.healed(eventlog.Event{What: "replaced", Service: s.name, Instance: id, Node: m.inst.Node, Incident: m.incident,
					Why: "replacement ready"}, now)
				m.verifyUntil, m.verifyInc = now.Add(s.cfg.Update.Monitor.D()), m.incident
			}
		case now.Sub(m.inst.StartedAt) > startTimeout && (s.rollout == nil || !s.rollout.batch[id]):
			a.emit(eventlog.Event{Kind: eventlog.Failed, What: "replace", Service: s.name, Instance: id, Incident: m.incident,
				Why: fmt.Sprintf("replacement not ready within %s; stopping it and trying again", startTimeout)})
			if old != nil {
				old.replacedBy = ""
			}
			a.stop(s, m, "not ready in time")
		}
	}

	// 5. Plain restarts that became ready heal their incident.
	for _, id := range ids {
		m := s.members[id]
		if m.replaces == "" && m.incident != "" && !m.gone && m.tr.Ready() && !m.preventive && m.replacedBy == "" && m.tr.Health() == decide.Healthy && !m.reported {
			a.healed(eventlog.Event{What: "restarted", Service: s.name, Instance: id, Node: m.inst.Node, Incident: m.incident,
				Why: "replacement ready"}, now)
			m.verifyUntil, m.verifyInc = now.Add(s.cfg.Update.Monitor.D()), m.incident
			m.incident = ""
		}
	}

	// 6. The rolling update.
	if s.rollout != nil {
		a.stepRollout(s, now, nodes)
	}

	// 7. Autoscaling (not during an update).
	if s.rollout == nil && (s.cfg.Scale.LatencyTarget > 0 || s.cfg.Scale.UtilizationTarget > 0) {
		a.autoscale(s, now)
	}

	// 8. The replica count.
	count := s.starting
	var active []*member
	for _, m := range s.members {
		if running(m) && m.replaces == "" || (!m.gone && !m.stopping && m.inst.State == driver.StateStarting && m.replaces == "") {
			count++
			active = append(active, m)
		}
	}
	if count != s.desired && dry {
		a.holdOnce(s, "dry-count", now, eventlog.Event{Kind: eventlog.Held, What: "count", Service: s.name,
			Why: fmt.Sprintf("dry run: %d instances, %d wanted; would start or stop %d", count, s.desired, s.desired-count)})
	}
	if count < s.desired && !dry {
		for range s.desired - count {
			opts := startOpts{version: s.version, nodes: nodes}
			if len(s.pending) > 0 {
				req := s.pending[0]
				if req.counts {
					if s.restartAt.IsZero() {
						d, loop := s.backoff.Delay(now)
						if loop {
							if !s.gaveUp {
								s.gaveUp = true
								a.emit(eventlog.Event{Kind: eventlog.Failed, What: "crash-loop", Service: s.name, Incident: req.incident,
									Why: fmt.Sprintf("%d restarts within %s: giving up until the window passes", s.backoff.Restarts(now), s.cfg.Restart.CrashLoopWindow.Or(time.Minute))})
							}
							break
						}
						s.restartAt = now.Add(d)
						if d > 0 {
							a.emit(eventlog.Event{Kind: eventlog.Decided, What: "backoff", Service: s.name, Incident: req.incident,
								Why: fmt.Sprintf("restart in %s (%d restarts in the window)", d.Round(time.Millisecond), s.backoff.Restarts(now))})
						}
					}
					if now.Before(s.restartAt) {
						break
					}
					s.restartAt = time.Time{}
					s.gaveUp = false
					s.backoff.Record(now)
				}
				s.pending = s.pending[1:]
				opts.incident = req.incident
				opts.prefer = req.node
				opts.avoid = req.avoid
				a.emit(eventlog.Event{Kind: eventlog.Decided, What: "restart", Service: s.name, Incident: req.incident,
					Why: "replacing an exited instance"})
				a.counted(s.name, "restart")
			} else {
				opts.incident, opts.logOnly = s.scaleInc, true
			}
			a.startInstance(s, opts)
		}
	}
	if count >= s.desired {
		s.pending = nil // nothing left to restart: the count is met
	}
	if count > s.desired && !dry && s.starting == 0 {
		victims := a.victims(s, active, nstate)
		for _, m := range victims[:min(len(victims), count-s.desired)] {
			a.emit(eventlog.Event{Kind: eventlog.Acted, What: "scale-in", Service: s.name, Instance: m.inst.ID, Node: m.inst.Node,
				Incident: s.scaleInc, Why: fmt.Sprintf("%d instances, %d wanted", count, s.desired)})
			a.stop(s, m, "scale in")
		}
	}

	// 9. A scale (or a restart wave) is healed when the count is met by ready instances.
	if s.scaleInc != "" {
		ready := 0
		n := 0
		for _, m := range s.members {
			if running(m) && m.replaces == "" {
				n++
				if m.tr.Ready() {
					ready++
				}
			}
		}
		if n == s.desired && ready == s.desired && s.starting == 0 {
			a.healed(eventlog.Event{What: "scaled", Service: s.name, Incident: s.scaleInc,
				Why: fmt.Sprintf("%d ready instances", ready)}, now)
			s.scaleInc = ""
		}
	}
}

func (a *Agent) takeBudget(s *svc, now time.Time, what string) bool {
	if a.budget.Take(now) {
		return true
	}
	a.holdOnce(s, "budget", now, eventlog.Event{Kind: eventlog.Held, What: what, Service: s.name,
		Why: fmt.Sprintf("disruption budget spent (%d per %s)", max(a.fleet.Agent.Budget.Max, 0), a.fleet.Agent.Budget.Window.Or(time.Minute))})
	return false
}

// victims orders the instances to stop first on a scale-in.
func (a *Agent) victims(s *svc, active []*member, nstate map[string]driver.NodeState) []*member {
	score := func(m *member) int {
		sc := 0
		if !m.tr.Ready() {
			sc += 8
		}
		if nstate[m.inst.Node] != driver.NodeReady {
			sc += 4
		}
		if m.inst.Version != s.version {
			sc += 2
		}
		return sc
	}
	// Spread: prefer the node with the most instances.
	perNode := map[string]int{}
	for _, m := range active {
		perNode[m.inst.Node]++
	}
	out := slices.Clone(active)
	slices.SortFunc(out, func(x, y *member) int {
		if d := score(y) - score(x); d != 0 {
			return d
		}
		if d := perNode[y.inst.Node] - perNode[x.inst.Node]; d != 0 {
			return d
		}
		return y.inst.StartedAt.Compare(x.inst.StartedAt)
	})
	return out
}

type startOpts struct {
	version  string
	replaces *member
	incident string
	prefer   string // node
	avoid    string // node
	nodes    []driver.Node
	batch    *rollout
	// logOnly: the incident is only logged with the start; the new instance does
	// not heal it by becoming ready (scale-outs, rollout batches).
	logOnly bool
}

// place picks the ready node with the fewest instances of the service (instances
// being replaced not counted), prefer winning a tie and avoid only when nothing
// else is ready.
func (a *Agent) place(s *svc, o startOpts) string {
	count := map[string]int{}
	for _, m := range s.members {
		if !m.gone && !m.stopping && m.replacedBy == "" {
			count[m.inst.Node]++
		}
	}
	for n, c := range s.placing {
		count[n] += c
	}
	best, bestN := "", math.MaxInt
	for _, n := range o.nodes {
		if n.State != driver.NodeReady {
			continue
		}
		c := count[n.Name]
		if n.Name == o.avoid {
			c += 1000
		}
		if c < bestN || c == bestN && n.Name == o.prefer {
			best, bestN = n.Name, c
		}
	}
	return best
}

// startInstance starts an instance in the background; callers hold a.mu.
func (a *Agent) startInstance(s *svc, o startOpts) {
	if o.replaces != nil {
		o.replaces.replacedBy = "pending" // not counted by place: it is on its way out
	}
	node := a.place(s, o)
	if node == "" {
		a.holdOnce(s, "no-node", time.Now(), eventlog.Event{Kind: eventlog.Failed, What: "start", Service: s.name,
			Why: "no ready node accepts instances"})
		if o.replaces != nil {
			o.replaces.replacedBy = ""
		}
		if o.incident != "" && o.replaces == nil && o.batch == nil {
			s.pending = append([]restartReq{{incident: o.incident}}, s.pending...)
		}
		return
	}
	id := s.nextID()
	s.placing[node]++
	spec := driver.InstanceSpec{Service: s.name, ID: id, Version: o.version, Node: node, Command: s.cfg.Command, Env: s.cfg.Env}
	var old string
	switch {
	case o.replaces != nil:
		old = o.replaces.inst.ID
		o.replaces.replacedBy = "pending"
	case o.batch != nil:
		o.batch.starting++
	default:
		s.starting++
	}
	ok := a.spawn(func(ctx context.Context) {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		in, err := a.placer.Start(sctx, spec)
		cancel()
		a.mu.Lock()
		defer a.mu.Unlock()
		s.placing[node]--
		switch {
		case o.batch != nil:
			o.batch.starting--
		case o.replaces == nil:
			s.starting--
		}
		if err != nil {
			if o.replaces != nil && o.replaces.replacedBy == "pending" {
				o.replaces.replacedBy = ""
			}
			if o.batch != nil {
				o.batch.failed++
			}
			if o.incident != "" && o.replaces == nil && o.batch == nil {
				s.pending = append([]restartReq{{incident: o.incident}}, s.pending...)
			}
			a.emit(eventlog.Event{Kind: eventlog.Failed, What: "start", Service: s.name, Instance: id, Node: node, Incident: o.incident, Why: err.Error()})
			return
		}
		m := s.newMember(in, time.Now())
		m.replaces = old
		if !o.logOnly {
			m.incident = o.incident
		}
		s.members[id] = m
		if o.replaces != nil {
			o.replaces.replacedBy = id
		}
		if o.batch != nil && s.rollout == o.batch {
			o.batch.batch[id] = true
		}
		a.counted(s.name, "start")
		why := "start"
		if old != "" {
			why = "replacing " + old
		}
		a.emit(eventlog.Event{Kind: eventlog.Acted, What: "start", Service: s.name, Instance: id, Node: node, Incident: o.incident,
			Why: why, Detail: map[string]any{"version": in.Version, "addr": in.Addr, "pid": in.PID}})
		// Probe the new instance soon rather than at the next round: healing ends
		// when it is ready.
		for _, d := range []time.Duration{30 * time.Millisecond, 100 * time.Millisecond} {
			time.AfterFunc(d, func() {
				select {
				case s.wake <- struct{}{}:
				default:
				}
			})
		}
	})
	if !ok {
		s.placing[node]--
		switch {
		case o.batch != nil:
			o.batch.starting--
		case o.replaces == nil:
			s.starting--
		default:
			o.replaces.replacedBy = ""
		}
	}
}

// stop drains m from the front door and stops it in the background; callers hold
// a.mu.
func (a *Agent) stop(s *svc, m *member, why string) {
	if m.stopping {
		return
	}
	m.stopping = true
	id := m.inst.ID
	grace := s.cfg.StopGrace.D()
	a.counted(s.name, "stop")
	a.spawn(func(ctx context.Context) {
		err := a.drv.Stop(ctx, id, grace)
		a.mu.Lock()
		defer a.mu.Unlock()
		if cur := s.members[id]; cur == m {
			delete(s.members, id)
		}
		if err != nil {
			a.emit(eventlog.Event{Kind: eventlog.Failed, What: "stop", Service: s.name, Instance: id, Why: err.Error()})
			return
		}
		a.emit(eventlog.Event{Kind: eventlog.Acted, What: "stop", Service: s.name, Instance: id, Node: m.inst.Node, Why: why})
	})
}

// forget removes an exited instance from the driver; callers hold a.mu.
func (a *Agent) forget(s *svc, m *member) {
	id := m.inst.ID
	a.spawn(func(ctx context.Context) {
		_ = a.drv.Stop(ctx, id, time.Millisecond)
		a.mu.Lock()
		defer a.mu.Unlock()
		if cur := s.members[id]; cur == m {
			delete(s.members, id)
		}
	})
}

// autoscale feeds the load ratio to the scaler; callers hold a.mu.
func (a *Agent) autoscale(s *svc, now time.Time) {
	var p99s, utils []float64
	for _, m := range s.members {
		if m.gone || m.stopping || !m.tr.Ready() {
			continue
		}
		if m.p99 >= 0 {
			p99s = append(p99s, m.p99)
		}
		if m.util >= 0 {
			utils = append(utils, m.util)
		}
	}
	mean := func(xs []float64) float64 {
		t := 0.0
		for _, x := range xs {
			t += x
		}
		return t / float64(len(xs))
	}
	ratio, basis := -1.0, ""
	if t := s.cfg.Scale.LatencyTarget.D(); t > 0 && len(p99s) > 0 {
		ratio = mean(p99s) / float64(t.Milliseconds())
		basis = fmt.Sprintf("mean p99 %.0fms / target %s", mean(p99s), t)
	}
	if t := s.cfg.Scale.UtilizationTarget; t > 0 && len(utils) > 0 {
		if r := mean(utils) / t; r > ratio {
			ratio = r
			basis = fmt.Sprintf("mean utilization %.0f%% / target %.0f%%", mean(utils), t)
		}
	}
	cur := s.desired
	d := s.scaler.Recommend(now, cur, ratio)
	if d.Replicas == cur {
		return
	}
	what := "scale-out"
	if d.Replicas < cur {
		what = "scale-in"
	}
	if d.Early {
		what = "scale-out-early"
	}
	inc := s.scaleInc
	if inc == "" || a.incs[inc] == nil || a.incs[inc].what != what {
		inc = a.newIncident(s.name, what, now)
	}
	detail := map[string]any{"from": cur, "to": d.Replicas, "ratio": d.Ratio}
	if d.Early {
		detail["trendSlopePerSec"] = d.Trend.Slope
		detail["trendR2"] = d.Trend.R2
	}
	a.emit(eventlog.Event{Kind: eventlog.Decided, What: what, Service: s.name, Incident: inc,
		Why: fmt.Sprintf("%s: %s -> %d replicas", basis, d.Reason, d.Replicas), Detail: detail})
	a.counted(s.name, what)
	if a.fleet.Agent.DryRun {
		return
	}
	if s.scaleInc != "" && s.scaleInc != inc {
		delete(a.incs, s.scaleInc)
	}
	s.desired = d.Replicas
	s.scaleInc = inc
}
