package core

import (
	"slices"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/decide"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// rollout is a rolling update in progress (Placer drivers); guarded by Agent.mu.
type rollout struct {
	incident string
	from, to string
	rollback bool
	pol      *config.Update
	batch    map[string]bool // new instances of the current batch
	starting int             // starts of the current batch in flight
	nextAt   time.Time
	updated  int
	failed   int
	batches  int
	paused   bool
	started  time.Time

	polling   bool // an Orchestrator's status is being read
	lastState driver.RolloutState
	// applied: the orchestrator accepted the new spec; prevStart is the start of
	// the update it reported before, whose (stale) state must not end this one.
	applied   bool
	prevStart time.Time
}

func newRollout(inc, from, to string, rollback bool, pol *config.Update) *rollout {
	return &rollout{incident: inc, from: from, to: to, rollback: rollback, pol: pol, batch: map[string]bool{}, started: time.Now()}
}

// view is the planner's view of r.
func (r *rollout) view() *decide.Rollout {
	return &decide.Rollout{Incident: r.incident, From: r.from, To: r.to, Rollback: r.rollback,
		Parallelism: r.pol.Parallelism, Delay: r.pol.Delay.D(), Monitor: r.pol.Monitor.D(), StartTimeout: r.pol.StartTimeout.D(),
		FailureAction: r.pol.FailureAction, MaxFailureRatio: r.pol.MaxFailureRatio,
		Batch: sortedKeys(r.batch), Starting: r.starting, NextAt: r.nextAt, Updated: r.updated, Failed: r.failed, Batches: r.batches,
		Paused: r.paused, Started: r.started}
}

// actRollout carries out a step of the rolling update of s that the plan
// decided (see decide.Rollout); callers hold a.mu.
func (a *Agent) actRollout(s *svc, now time.Time, nodes []driver.Node, x decide.Action) {
	r := s.rollout
	if r == nil {
		return
	}
	name := "rollout"
	if r.rollback {
		name = "rollback"
	}
	release := func(m *member, why string) {
		if old := s.members[m.replaces]; old != nil {
			old.replacedBy = ""
		}
		a.stop(s, m, why)
	}
	switch x.Kind {
	case decide.ActBatchFailed:
		r.failed++
		delete(r.batch, x.Instance)
		a.emit(eventlog.Event{Kind: eventlog.Observed, What: x.What, Service: s.name, Instance: x.Instance, Incident: r.incident, Why: x.Why})
		if m := s.members[x.Instance]; m != nil && !m.gone {
			release(m, name+" failure")
		}
	case decide.ActBatchUpdated:
		r.updated++
		delete(r.batch, x.Instance)
	case decide.ActRollback:
		a.emit(eventlog.Event{Kind: eventlog.Decided, What: "rollback", Service: s.name, Incident: r.incident, Why: x.Why})
		a.counted(s.name, "rollback")
		for _, id := range x.IDs {
			if m := s.members[id]; m != nil {
				release(m, "rollback")
			}
		}
		s.version, s.prev = r.from, r.to
		s.rollout = newRollout(r.incident, r.to, r.from, true, r.pol)
	case decide.ActRolloutPause:
		r.paused = true
		a.emit(eventlog.Event{Kind: eventlog.Failed, What: name, Service: s.name, Incident: r.incident, Why: x.Why})
	case decide.ActBatchDone:
		r.nextAt = x.At
		if x.Why != "" {
			a.emit(eventlog.Event{Kind: eventlog.Acted, What: x.What, Service: s.name, Incident: r.incident, Why: x.Why})
		}
	case decide.ActBatch:
		r.batches++
		for _, id := range x.IDs {
			m := s.members[id]
			if m == nil {
				continue
			}
			a.startInstance(s, startOpts{version: x.Version, replaces: m, incident: r.incident, nodes: nodes, batch: r, logOnly: true})
			if m.replacedBy == "pending" {
				// Placed: startInstance counts replacements, not batch starts, and
				// the start's end counts it down.
				r.starting++
			}
		}
		a.emit(eventlog.Event{Kind: eventlog.Acted, What: x.What, Service: s.name, Incident: r.incident, Why: x.Why})
	case decide.ActRolloutDone:
		s.rollout = nil
		a.healed(eventlog.Event{What: x.What, Service: s.name, Incident: r.incident, Why: x.Why, Detail: x.Detail}, now)
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
