package core

import (
	"context"
	"fmt"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/decide"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// planOrchestrated is plan for Orchestrator drivers: the orchestrator restarts
// exited instances, keeps the replica count and runs rolling updates with rollback;
// the agent replaces instances that are unhealthy by their health document, scales
// on latency and saturation, and reports. Callers hold a.mu.
func (a *Agent) planOrchestrated(s *svc, now time.Time, nstate map[string]driver.NodeState) {
	dry := a.fleet.Agent.DryRun
	total, broken := 0, 0
	for _, m := range s.members {
		if m.inst.State == driver.StateExited && !m.gone {
			m.gone = true
			a.emit(eventlog.Event{Kind: eventlog.Observed, What: "crash", Service: s.name, Instance: m.inst.ID, Node: m.inst.Node,
				Why: "exited: " + m.inst.ExitReason + "; the orchestrator's restart policy replaces it"})
			continue
		}
		if m.gone || m.stopping || m.inst.State != driver.StateRunning {
			continue
		}
		total++
		if h := m.tr.Health(); h == decide.Unhealthy || h == decide.Suspect {
			broken++
		}
	}
	for _, m := range s.members {
		if m.gone || m.stopping || m.tr.Health() != decide.Unhealthy {
			continue
		}
		if decide.Broken(broken, total, a.fleet.Agent.BrokenFraction) {
			a.holdOnce(s, "broken", now, eventlog.Event{Kind: eventlog.Held, What: "replace", Service: s.name,
				Why: fmt.Sprintf("%d of %d instances look broken at once; holding still", broken, total)})
			break
		}
		if !a.takeBudget(s, now, "replace "+m.inst.ID) {
			continue
		}
		a.emit(eventlog.Event{Kind: eventlog.Decided, What: "replace", Service: s.name, Instance: m.inst.ID, Node: m.inst.Node,
			Incident: m.incident, Why: "unhealthy by its health document; stopping it for the orchestrator to replace: " + m.tr.LastError()})
		a.counted(s.name, "replace")
		if !dry {
			a.stop(s, m, "unhealthy")
		}
	}
	if s.cfg.Scale.LatencyTarget > 0 || s.cfg.Scale.UtilizationTarget > 0 {
		before := s.desired
		a.autoscale(s, now)
		if s.desired != before && !dry {
			n := s.desired
			a.spawn(func(ctx context.Context) {
				if err := a.orch.Scale(ctx, s.name, n); err != nil {
					a.emit(eventlog.Event{Kind: eventlog.Failed, What: "scale", Service: s.name, Why: err.Error()})
				}
			})
		}
	}
	if s.rollout != nil && s.rollout.applied && !s.rollout.polling {
		r := s.rollout
		r.polling = true
		a.spawn(func(ctx context.Context) {
			st, err := a.orch.Rollout(ctx, s.name)
			a.mu.Lock()
			defer a.mu.Unlock()
			r.polling = false
			if err != nil || s.rollout != r || st.State == driver.RolloutNone || st.StartedAt.Equal(r.prevStart) {
				return // not started yet: still the previous update's state
			}
			if st.State != r.lastState {
				r.lastState = st.State
				a.emit(eventlog.Event{Kind: eventlog.Observed, What: "rollout-state", Service: s.name, Incident: r.incident,
					Why: fmt.Sprintf("%s: %s", st.State, st.Message)})
			}
			switch st.State {
			case driver.RolloutCompleted, driver.RolloutRollbackCompleted:
				s.rollout = nil
				if st.State == driver.RolloutRollbackCompleted {
					s.version = r.from
				}
				a.healed(eventlog.Event{What: string(st.State), Service: s.name, Incident: r.incident, Why: st.Message}, time.Now())
			case driver.RolloutPaused, driver.RolloutRollbackPaused:
				r.paused = true
			}
		})
	}
	// Ready instances heal the incidents of their replacements.
	for _, m := range s.members {
		if m.incident != "" && m.tr.Ready() && !m.reported {
			a.healed(eventlog.Event{What: "replaced", Service: s.name, Instance: m.inst.ID, Incident: m.incident}, now)
			m.incident = ""
		}
	}
}
