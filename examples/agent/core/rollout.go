package core

import (
	"fmt"
	"slices"
	"strings"
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

// stepRollout advances the rolling update of s; callers hold a.mu.
func (a *Agent) stepRollout(s *svc, now time.Time, nodes []driver.Node) {
	r := s.rollout
	if r.paused {
		return
	}
	name := "rollout"
	if r.rollback {
		name = "rollback"
	}
	if len(r.batch) > 0 || r.starting > 0 {
		done := r.starting == 0
		for _, id := range sortedKeys(r.batch) {
			m := s.members[id]
			var fail string
			switch {
			case m == nil || m.gone:
				fail = "exited"
				if m != nil {
					fail = "exited: " + m.inst.ExitReason
				}
			case m.tr.Health() == decide.Unhealthy:
				fail = "unhealthy: " + m.tr.LastError()
			case !m.tr.Ready() && m.readySince.IsZero() && now.Sub(m.inst.StartedAt) > r.pol.StartTimeout.D() && m.replaces != "":
				fail = fmt.Sprintf("not ready within %s", r.pol.StartTimeout.D())
			case !m.readySince.IsZero() && now.Sub(m.readySince) >= r.pol.Monitor.D():
				r.updated++
				delete(r.batch, id)
				continue
			default:
				done = false
				continue
			}
			r.failed++
			delete(r.batch, id)
			a.emit(eventlog.Event{Kind: eventlog.Observed, What: name + "-failure", Service: s.name, Instance: id, Incident: r.incident,
				Why: fmt.Sprintf("new instance (%s) failed: %s", r.to, fail)})
			if m != nil && !m.gone {
				if old := s.members[m.replaces]; old != nil {
					old.replacedBy = ""
				}
				a.stop(s, m, name+" failure")
			}
		}
		if r.failed > 0 && float64(r.failed)/float64(max(1, r.failed+r.updated)) > r.pol.MaxFailureRatio {
			switch {
			case r.pol.FailureAction == "rollback" && !r.rollback:
				a.emit(eventlog.Event{Kind: eventlog.Decided, What: "rollback", Service: s.name, Incident: r.incident,
					Why: fmt.Sprintf("%d of %d new instances of %s failed (max ratio %.2f): rolling back to %s", r.failed, r.failed+r.updated, r.to, r.pol.MaxFailureRatio, r.from)})
				a.counted(s.name, "rollback")
				for id := range r.batch {
					if m := s.members[id]; m != nil {
						if old := s.members[m.replaces]; old != nil {
							old.replacedBy = ""
						}
						a.stop(s, m, "rollback")
					}
				}
				s.version, s.prev = r.from, r.to
				nr := newRollout(r.incident, r.to, r.from, true, r.pol)
				s.rollout = nr
				return
			case r.pol.FailureAction == "continue":
			default:
				r.paused = true
				a.emit(eventlog.Event{Kind: eventlog.Failed, What: name, Service: s.name, Incident: r.incident,
					Why: fmt.Sprintf("%d new instances failed: %s paused; update again to resume", r.failed, name)})
				return
			}
		}
		if done && len(r.batch) == 0 {
			r.nextAt = now.Add(r.pol.Delay.D())
			if r.pol.Delay.D() > 0 {
				a.emit(eventlog.Event{Kind: eventlog.Acted, What: name + "-batch-done", Service: s.name, Incident: r.incident,
					Why: fmt.Sprintf("batch %d monitored for %s; next batch in %s", r.batches, r.pol.Monitor.D(), r.pol.Delay.D())})
			}
		}
		return
	}
	if now.Before(r.nextAt) {
		return
	}
	var olds []*member
	pendingReplacement := false
	for _, m := range s.members {
		if m.gone || m.stopping {
			continue
		}
		if m.replaces != "" || m.replacedBy != "" {
			pendingReplacement = true
			continue
		}
		if m.inst.Version != r.to {
			olds = append(olds, m)
		}
	}
	if len(olds) == 0 {
		if pendingReplacement {
			return
		}
		why := fmt.Sprintf("every instance runs %s (%d updated, %d failed, %d batches, %s)", r.to, r.updated, r.failed, r.batches, now.Sub(r.started).Round(time.Millisecond))
		if r.rollback {
			why = fmt.Sprintf("rolled back from %s: every instance runs %s again (%d reverted)", r.from, r.to, r.updated)
		}
		ev := eventlog.Event{What: name, Service: s.name, Incident: r.incident, Why: why,
			Detail: map[string]any{"version": r.to, "rolledBack": r.rollback}}
		s.rollout = nil
		a.healed(ev, now)
		return
	}
	slices.SortFunc(olds, func(x, y *member) int { return strings.Compare(x.inst.ID, y.inst.ID) })
	olds = olds[:min(len(olds), max(1, r.pol.Parallelism))]
	r.batches++
	var ids []string
	for _, m := range olds {
		ids = append(ids, m.inst.ID)
		a.startInstance(s, startOpts{version: r.to, replaces: m, incident: r.incident, nodes: nodes, batch: r, logOnly: true})
	}
	// startInstance counted replacements, not batch starts: count them here.
	r.starting += len(olds)
	a.emit(eventlog.Event{Kind: eventlog.Acted, What: name + "-batch", Service: s.name, Incident: r.incident,
		Why: fmt.Sprintf("batch %d: replacing %s with %s", r.batches, strings.Join(ids, ", "), r.to)})
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
