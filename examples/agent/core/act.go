package core

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/decide"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// The act stage: the planner's actions become driver calls (in the background),
// events, incidents and the state the next round verifies against.

// act carries out the actions of one decide.Plan for s, in order; callers hold a.mu.
func (a *Agent) act(s *svc, now time.Time, nodes []driver.Node, actions []decide.Action) {
	dry := a.fleet.Agent.DryRun
	opened := map[string]string{}
	inc := func(id string) string {
		if real, ok := opened[id]; ok {
			return real
		}
		return id
	}
	for _, x := range actions {
		if x.Opens != "" {
			opened[x.Incident] = a.newIncident(s.name, x.Opens, now)
		}
		id := inc(x.Incident)
		m := s.members[x.Instance]
		switch x.Kind {
		case decide.ActExit:
			if m == nil {
				continue
			}
			m.gone = true
			if x.Quiet {
				continue
			}
			a.emit(eventlog.Event{Kind: eventlog.Observed, What: x.What, Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id,
				Why: x.Why, DetectMs: x.DetectMs})
			if old := s.members[x.ReleaseOld]; x.ReleaseOld != "" && old != nil {
				old.replacedBy = ""
			}
			if r := x.Restart; r != nil {
				if x.Escalate != "" {
					a.emit(eventlog.Event{Kind: eventlog.Failed, What: "verify", Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id,
						Why: x.Escalate})
				}
				s.pending = append(s.pending, restartReq{incident: inc(r.Incident), node: r.Node, avoid: r.Avoid, counts: r.Counts})
			}
			if x.Forget {
				a.forget(s, m)
			}
		case decide.ActHold:
			a.holdOnce(s, x.Key, now, eventlog.Event{Kind: eventlog.Held, What: x.What, Service: s.name, Why: x.Why})
		case decide.ActReplace:
			if m == nil {
				continue
			}
			a.budget.Take(now)
			if x.Preventive {
				a.emit(eventlog.Event{Kind: eventlog.Observed, What: x.What, Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id,
					Why: x.Why, Detail: x.Detail})
				a.emit(eventlog.Event{Kind: eventlog.Decided, What: "replace", Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id,
					Why: "preventive: " + x.Why})
				a.counted(s.name, "preventive-replace")
				if !dry {
					m.preventive = true
					m.incident = id
					a.startInstance(s, startOpts{version: x.Version, replaces: m, incident: id, avoid: x.Avoid, nodes: nodes})
				}
				continue
			}
			m.incident = id
			if x.Escalate != "" {
				a.emit(eventlog.Event{Kind: eventlog.Failed, What: "verify", Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id,
					Why: x.Escalate})
			}
			a.emit(eventlog.Event{Kind: eventlog.Decided, What: "replace", Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id,
				Why: x.Why})
			a.counted(s.name, "replace")
			if !dry {
				a.startInstance(s, startOpts{version: x.Version, replaces: m, incident: id, avoid: x.Avoid, nodes: nodes})
			}
		case decide.ActEvict:
			if m == nil {
				continue
			}
			a.budget.Take(now)
			m.incident = id
			why, counter := x.Why, "replace"
			if x.Preventive {
				a.emit(eventlog.Event{Kind: eventlog.Observed, What: x.What, Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id,
					Why: x.Why, Detail: x.Detail})
				why, counter = "preventive: "+x.Why, "preventive-replace"
				if !dry {
					m.preventive = true
				}
			}
			a.emit(eventlog.Event{Kind: eventlog.Decided, What: "replace", Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id,
				Why: why})
			a.counted(s.name, counter)
			if !dry {
				if r := x.Restart; r != nil {
					s.pending = append(s.pending, restartReq{incident: id, node: r.Node})
				}
				a.stop(s, m, x.What)
			}
		case decide.ActRetire:
			if m == nil {
				continue
			}
			m.replaces = ""
			if old := s.members[x.Old]; x.Old != "" && old != nil && !old.stopping && !old.gone {
				a.emit(eventlog.Event{Kind: eventlog.Acted, What: "retire", Service: s.name, Instance: old.inst.ID, Node: old.inst.Node,
					Incident: id, Why: "replaced by " + x.Instance + " (ready)"})
				a.stop(s, old, "replaced by "+x.Instance)
			}
			if x.Heal {
				a.healed(eventlog.Event{What: "replaced", Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id,
					Why: "replacement ready"}, now)
				m.verifyUntil, m.verifyInc = *x.Verify, id
				m.incident = ""
			}
		case decide.ActEject:
			if m == nil {
				continue
			}
			m.incident = id
			m.ejectedUntil, m.ejections = x.At, m.ejections+1
			wakeAt(s, x.At)
			a.emit(eventlog.Event{Kind: eventlog.Observed, What: x.What, Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id,
				Why: x.Why, Detail: x.Detail})
			a.emit(eventlog.Event{Kind: eventlog.Acted, What: "eject", Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id,
				Why: fmt.Sprintf("out of the front door until %s (ejection %d)", x.At.Format("15:04:05.000"), m.ejections)})
			a.counted(s.name, "eject")
		case decide.ActReturn:
			if m == nil {
				continue
			}
			m.ejectedUntil, m.ejectionsSince = time.Time{}, now
			if n := len(m.traffic); n > 0 {
				m.traffic = m.traffic[n-1:] // judged afresh on the traffic it gets now
			}
			a.emit(eventlog.Event{Kind: eventlog.Acted, What: "return", Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id, Why: x.Why})
			if x.Heal {
				a.healed(eventlog.Event{What: "returned", Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id, Why: x.Why}, now)
				m.incident = ""
			}
		case decide.ActDecay:
			if m == nil {
				continue
			}
			m.ejections, m.ejectionsSince = x.Ejections, x.At
			a.emit(eventlog.Event{Kind: eventlog.Decided, What: "decay", Service: s.name, Instance: x.Instance, Node: x.Node, Why: x.Why,
				Detail: map[string]any{"ejections": x.Ejections}})
		case decide.ActGiveUp:
			if m == nil {
				continue
			}
			a.emit(eventlog.Event{Kind: eventlog.Failed, What: "replace", Service: s.name, Instance: x.Instance, Incident: id, Why: x.Why})
			if old := s.members[x.Old]; old != nil {
				old.replacedBy = ""
			}
			a.stop(s, m, "not ready in time")
		case decide.ActHealRestart:
			if m == nil {
				continue
			}
			a.healed(eventlog.Event{What: "restarted", Service: s.name, Instance: x.Instance, Node: x.Node, Incident: id,
				Why: "replacement ready"}, now)
			m.verifyUntil, m.verifyInc = *x.Verify, id
			m.incident = ""
		case decide.ActScale:
			a.emit(eventlog.Event{Kind: eventlog.Decided, What: x.What, Service: s.name, Incident: id, Why: x.Why, Detail: x.Detail})
			a.counted(s.name, x.What)
			if dry {
				continue
			}
			if s.scaleInc != "" && s.scaleInc != id {
				delete(a.incs, s.scaleInc)
			}
			s.desired = x.Replicas
			s.scaleInc = id
			if a.orch != nil {
				n := x.Replicas
				a.spawn(func(ctx context.Context) {
					if err := a.orch.Scale(ctx, s.name, n); err != nil {
						a.emit(eventlog.Event{Kind: eventlog.Failed, What: "scale", Service: s.name, Why: err.Error()})
					}
				})
			}
		case decide.ActCrashLoop:
			s.gaveUp = true
			a.emit(eventlog.Event{Kind: eventlog.Failed, What: "crash-loop", Service: s.name, Incident: id, Why: x.Why})
		case decide.ActBackoff:
			s.restartAt = x.At
			wakeAt(s, x.At)
			a.emit(eventlog.Event{Kind: eventlog.Decided, What: "backoff", Service: s.name, Incident: id, Why: x.Why,
				Detail: map[string]any{"due": x.At.UTC().Format(time.RFC3339Nano)}})
		case decide.ActStart:
			opts := startOpts{version: x.Version, nodes: nodes}
			if x.Restart != nil {
				if x.Counts {
					s.restartAt = time.Time{}
					s.gaveUp = false
					s.backoff.Record(now)
				}
				if len(s.pending) > 0 {
					s.pending = s.pending[1:]
				}
				opts.incident, opts.prefer, opts.avoid = id, x.Restart.Node, x.Restart.Avoid
				a.emit(eventlog.Event{Kind: eventlog.Decided, What: "restart", Service: s.name, Incident: id, Why: x.Why})
				a.counted(s.name, "restart")
			} else {
				opts.incident, opts.logOnly = id, true
			}
			a.startInstance(s, opts)
		case decide.ActClearPending:
			s.pending = nil
		case decide.ActHealCount:
			a.healed(eventlog.Event{What: x.What, Service: s.name, Incident: id, Why: x.Why}, now)
		case decide.ActScaleIn:
			if m == nil {
				continue
			}
			a.emit(eventlog.Event{Kind: eventlog.Acted, What: "scale-in", Service: s.name, Instance: x.Instance, Node: x.Node,
				Incident: id, Why: x.Why})
			a.stop(s, m, "scale in")
		case decide.ActBatchFailed, decide.ActBatchUpdated, decide.ActRollback, decide.ActRolloutPause, decide.ActBatchDone,
			decide.ActBatch, decide.ActRolloutDone:
			a.actRollout(s, now, nodes, x)
		case decide.ActHealScale:
			a.healed(eventlog.Event{What: "scaled", Service: s.name, Incident: id, Why: x.Why}, now)
			s.scaleInc = ""
		}
	}
}

// wakeAt makes the loop of s run a round at t (or soon after), rather than at its
// next tick: a restart backoff fires when it says.
func wakeAt(s *svc, t time.Time) {
	time.AfterFunc(time.Until(t), func() {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	})
}

// holdOnce emits e at most once every 5 s per key; callers hold a.mu.
func (a *Agent) holdOnce(s *svc, key string, now time.Time, e eventlog.Event) {
	if t, ok := s.held[key]; ok && now.Sub(t) < 5*time.Second {
		return
	}
	s.held[key] = now
	a.emit(e)
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
