package core

import (
	"fmt"
	"slices"
	"time"

	"github.com/selfheal-go/selfheal/health"

	"github.com/selfheal-go/selfheal/examples/agent/decide"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
	"github.com/selfheal-go/selfheal/examples/agent/frontdoor"
)

// The judge stage: the driver's list and the probe results update each instance's
// state (its tracker, its samples), and the service's state becomes a
// decide.Snapshot for the planner.

// observe merges the driver's list of instances into s.members and returns the
// instances to probe; callers hold a.mu.
func (a *Agent) observe(s *svc, insts []driver.Instance, now time.Time) []target {
	for id, t := range s.ended {
		if now.Sub(t) > time.Minute {
			delete(s.ended, id)
		}
	}
	seen := map[string]bool{}
	for _, in := range insts {
		if _, ok := s.ended[in.ID]; ok {
			continue
		}
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
	var targets []target
	for _, m := range s.members {
		if m.inst.State == driver.StateRunning && !m.stopping && m.inst.Addr != "" {
			targets = append(targets, target{m.inst.ID, m.inst.Addr})
		}
	}
	return targets
}

// judge feeds probe results to the instances' trackers and samples, and reports an
// instance that turned unhealthy; callers hold a.mu.
func (a *Agent) judge(s *svc, results []probeResult, now time.Time) {
	for _, r := range results {
		m := s.members[r.id]
		if m == nil || m.stopping || m.gone {
			continue
		}
		h, changed := m.tr.Observe(now, decide.Probe{Live: r.live, Ready: r.ready, Err: r.err})
		if r.doc != nil {
			m.sample(now, r.doc)
		}
		if m.tr.Ready() {
			if m.readySince.IsZero() {
				m.readySince = now
			}
		} else {
			m.readySince = time.Time{}
		}
		a.judgeReadiness(s, m, h, r, now)
		m.wasReady = m.wasReady || m.tr.Ready()
		if changed && h == decide.Unhealthy && !m.reported {
			m.reported = true
			if m.notReadyInc == "" || m.incident != m.notReadyInc {
				// (An instance that was not ready first stays in that incident.)
				m.incident = a.newIncident(s.name, "unhealthy", now)
			}
			m.notReadyInc = ""
			a.emit(eventlog.Event{Kind: eventlog.Observed, What: "unhealthy", Service: s.name, Instance: m.inst.ID, Node: m.inst.Node,
				Incident: m.incident, Why: fmt.Sprintf("failed %d probes in a row since %s: %s", s.cfg.Health.FailureThreshold,
					m.tr.FailingSince().Format("15:04:05.000"), m.tr.LastError()),
				DetectMs: ms(now.Sub(m.tr.FailingSince()))})
		}
		if changed && h == decide.Healthy && m.reported && m.replacedBy == "" {
			// It recovered before a replacement was under way (the agent held still
			// while most instances looked broken, or its budget was spent): its
			// incident heals here, as nothing else would heal it, and a new failure
			// opens a new one.
			if m.incident != "" {
				a.healed(eventlog.Event{What: "recovered", Service: s.name, Instance: m.inst.ID, Node: m.inst.Node, Incident: m.incident,
					Why: "live again by its probes before it was replaced"}, now)
			}
			m.reported, m.incident = false, ""
		}
	}
}

// judgeReadiness follows an instance whose readiness fails while its liveness
// passes: the front door stops routing to it at once (it is not routable), the
// turn is reported in an incident of its own, healed when it is ready again; the
// planner replaces it after NotReadyTimeout. Callers hold a.mu.
func (a *Agent) judgeReadiness(s *svc, m *member, h decide.Health, r probeResult, now time.Time) {
	switch {
	case m.tr.Ready():
		if m.notReadyInc != "" {
			a.healed(eventlog.Event{What: "ready", Service: s.name, Instance: m.inst.ID, Node: m.inst.Node, Incident: m.notReadyInc,
				Why: fmt.Sprintf("ready again after %s: back in the front door's rotation", now.Sub(m.notReadySince).Round(time.Millisecond))}, now)
			if m.incident == m.notReadyInc && m.replacedBy == "" {
				m.incident = ""
			}
			m.notReadyInc = ""
		}
		m.notReadySince, m.notReadyWhy = time.Time{}, ""
	case h == decide.Healthy && r.live:
		m.notReadyWhy = r.notReady
		if !m.notReadySince.IsZero() {
			return
		}
		m.notReadySince = now
		if !m.wasReady {
			return // never ready yet: starting; the planner's timeout still applies
		}
		inc := m.incident
		if inc == "" {
			inc = a.newIncident(s.name, "not-ready", now)
			m.incident, m.notReadyInc = inc, inc
		}
		a.emit(eventlog.Event{Kind: eventlog.Observed, What: "not-ready", Service: s.name, Instance: m.inst.ID, Node: m.inst.Node, Incident: inc,
			Why:    fmt.Sprintf("%s while live: out of the front door's rotation; replaced if still not ready in %s", r.notReady, s.cfg.Health.NotReadyTimeout.Or(30*time.Second)),
			Detail: map[string]any{"reason": r.notReady}})
	default:
		m.notReadySince = time.Time{} // not live: the tracker's thresholds apply
	}
}

// trafficSample is the front door's counters of one instance at a time.
type trafficSample struct {
	t   time.Time
	fst frontdoor.BackendStats
}

// judgeTraffic records the front door's counters of each instance (stats, by
// instance id) and keeps the samples of the outlier window; callers hold a.mu.
func (s *svc) judgeTraffic(stats map[string]frontdoor.BackendStats, now time.Time) {
	if stats == nil {
		return
	}
	w := s.cfg.Outliers.Window.Or(10 * time.Second)
	for id, m := range s.members {
		m.traffic = append(m.traffic, trafficSample{now, stats[id]})
		// Keep one sample at or before the window's start: the base of the window.
		i := 0
		for i+1 < len(m.traffic) && now.Sub(m.traffic[i+1].t) >= w {
			i++
		}
		m.traffic = m.traffic[i:]
	}
}

// window is the instance's traffic over the outlier window w, and over its last
// quarter.
func (m *member) window(w time.Duration) (all, recent decide.Traffic) {
	if len(m.traffic) < 2 {
		return decide.Traffic{}, decide.Traffic{}
	}
	last := m.traffic[len(m.traffic)-1]
	i := 0 // the newest sample at or before the last quarter's start
	for i+1 < len(m.traffic) && last.t.Sub(m.traffic[i+1].t) >= w/4 {
		i++
	}
	return traffic(m.traffic[0].fst, last.fst), traffic(m.traffic[i].fst, last.fst)
}

// traffic is what the front door saw between counters a and b.
func traffic(a, b frontdoor.BackendStats) decide.Traffic {
	t := decide.Traffic{Requests: b.Requests - a.Requests, Errors: b.Errors - a.Errors}
	if t.Requests > 0 {
		t.Latency = (b.Latency - a.Latency) / time.Duration(t.Requests)
	}
	return t
}

// sample records what the health document says about the instance's resources and
// load.
func (m *member) sample(now time.Time, doc *health.Document) {
	num := func(key, field string) (float64, bool) {
		if v, ok := doc.Find(key, field); ok {
			return v.Float()
		}
		return 0, false
	}
	if f, ok := num(health.KeyHeap, ""); ok {
		m.heap.Add(now, f)
	}
	if f, ok := num(health.KeyGoroutines, ""); ok {
		m.gor.Add(now, f)
	}
	m.p50, m.p99, m.util = -1, -1, -1
	if f, ok := num("http:responseTime", "p50"); ok {
		m.p50 = f
	}
	if f, ok := num("http:responseTime", "p99"); ok {
		m.p99 = f
	}
	if f, ok := num("http:utilization", ""); ok {
		m.util = f
	}
}

// snapshot is the planner's view of s at now; callers hold a.mu. It runs the
// autoscaler (whose windows are its own state) when the service autoscales and no
// rolling update is in progress.
func (a *Agent) snapshot(s *svc, now time.Time, nstate map[string]driver.NodeState) decide.Snapshot {
	c := s.cfg
	d0, l0 := s.backoff.Peek(now, 0)
	d1, l1 := s.backoff.Peek(now, 1)
	snap := decide.Snapshot{
		Now: now, Service: s.name, Desired: s.desired, Version: s.version, DryRun: a.fleet.Agent.DryRun,
		Starting: s.starting, Pending: make([]decide.Restart, 0, len(s.pending)), RestartAt: s.restartAt, GaveUp: s.gaveUp,
		Backoff: decide.BackoffView{Delay: d0, Loop: l0, Next: d1, NextLoop: l1, Restarts: s.backoff.Restarts(now),
			CrashLoopWindow: c.Restart.CrashLoopWindow.Or(time.Minute)},
		Budget: a.budget.Remaining(now), BudgetMax: a.fleet.Agent.Budget.Max, BudgetWindow: a.fleet.Agent.Budget.Window.Or(time.Minute),
		BrokenFraction: a.fleet.Agent.BrokenFraction,
		Rollout:        s.rollout != nil, StartTimeout: c.Update.StartTimeout.D(), Monitor: c.Update.Monitor.D(),
		NotReadyTimeout: c.Health.NotReadyTimeout.D(),
		Limits: decide.Limits{Heap: float64(c.Limits.Heap), Goroutines: c.Limits.Goroutines, Horizon: c.Limits.Horizon.D(),
			MinSpan: 4 * c.Health.Interval.D()},
		ScaleIncident: s.scaleInc,
		Outliers: decide.OutlierConfig{Off: c.Outliers.Off, MinRequests: c.Outliers.MinRequests, LatencyFactor: c.Outliers.LatencyFactor,
			MinLatencyGap: c.Outliers.MinLatencyGap.D(), ErrorRateGap: c.Outliers.ErrorRateGap, BaseEjection: c.Outliers.BaseEjection.D(),
			MaxEjected: c.Outliers.MaxEjected, ReplaceAfter: c.Outliers.ReplaceAfter},
	}
	for id := range s.replacing {
		snap.Replacing = append(snap.Replacing, id)
	}
	slices.Sort(snap.Replacing)
	for _, r := range s.pending {
		snap.Pending = append(snap.Pending, decide.Restart{Incident: r.incident, Node: r.node, Avoid: r.avoid, Counts: r.counts})
	}
	if inc := a.incs[s.scaleInc]; inc != nil {
		snap.ScaleIncidentWhat = inc.what
	}
	if r := s.rollout; r != nil && a.orch == nil {
		snap.Update = r.view()
	}
	for _, m := range s.members {
		snap.Instances = append(snap.Instances, m.view(s, nstate))
	}
	if s.rollout == nil && (c.Scale.LatencyTarget > 0 || c.Scale.UtilizationTarget > 0) {
		ratio, basis := s.loadRatio()
		snap.Scale = &decide.ScaleView{Decision: s.scaler.Recommend(now, s.desired, ratio), Basis: basis}
	}
	return snap
}

// view is the planner's view of m.
func (m *member) view(s *svc, nstate map[string]driver.NodeState) decide.Instance {
	all, recent := m.window(s.cfg.Outliers.Window.Or(10 * time.Second))
	return decide.Instance{
		ID: m.inst.ID, Node: m.inst.Node, Version: m.inst.Version, NodeState: decide.NodeState(nstate[m.inst.Node]),
		State: decide.InstanceState(m.inst.State), ExitReason: m.inst.ExitReason, StartedAt: m.inst.StartedAt, ExitedAt: m.inst.ExitedAt,
		Health: m.tr.Health(), Ready: m.tr.Ready(), ReadySince: m.readySince, LastError: m.tr.LastError(), NotReadySince: m.notReadySince, NotReadyWhy: m.notReadyWhy,
		Stopping: m.stopping, Gone: m.gone, ReplacedBy: m.replacedBy, Replaces: m.replaces, Incident: m.incident,
		Preventive: m.preventive, Reported: m.reported, VerifyUntil: m.verifyUntil, VerifyIncident: m.verifyInc,
		InBatch: s.rollout != nil && s.rollout.batch[m.inst.ID],
		Heap:    m.heap, Goroutines: m.gor,
		Traffic: all, Recent: recent, EjectedUntil: m.ejectedUntil, Ejections: m.ejections,
		EjectionsSince: m.ejectionsSince,
	}
}

// loadRatio is the load of s over its target (the mean p99 latency over its target
// or the mean utilization over its target, whichever is higher; -1 without data)
// and what it is made of; callers hold a.mu.
func (s *svc) loadRatio() (float64, string) {
	var p99s, utils []float64
	now := time.Now()
	for _, m := range s.members {
		if m.gone || m.stopping || !m.tr.Ready() || m.inst.State == driver.StateExited || now.Before(m.ejectedUntil) {
			continue // ejected outliers do not drive scaling
		}
		if m.p99 >= 0 {
			p99s = append(p99s, m.p99)
		}
		if m.util >= 0 {
			utils = append(utils, m.util)
		}
	}
	// The median instance, not the mean: one slow instance (a gray failure, for
	// outlier detection to eject) must not scale the fleet out.
	mean := func(xs []float64) float64 {
		slices.Sort(xs)
		n := len(xs)
		if n%2 == 1 {
			return xs[n/2]
		}
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	ratio, basis := -1.0, ""
	if t := s.cfg.Scale.LatencyTarget.D(); t > 0 && len(p99s) > 0 {
		ratio = mean(p99s) / float64(t.Milliseconds())
		basis = fmt.Sprintf("median p99 %.0fms / target %s", mean(p99s), t)
	}
	if t := s.cfg.Scale.UtilizationTarget; t > 0 && len(utils) > 0 {
		if r := mean(utils) / t; r > ratio {
			ratio = r
			basis = fmt.Sprintf("median utilization %.0f%% / target %.0f%%", mean(utils), t)
		}
	}
	return ratio, basis
}
