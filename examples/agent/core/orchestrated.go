package core

import (
	"context"
	"fmt"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/decide"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// planOrchestrated is the round of Orchestrator drivers after the judge: the
// orchestrator restarts exited instances, keeps the replica count and runs
// rolling updates with rollback; the same planner as for the other drivers
// (decide.Plan, with Snapshot.Orchestrated) reports exits and heals them when the
// orchestrator's replacements are ready, evicts instances to replace (unhealthy,
// not ready for too long, outliers again) for the orchestrator to replace, ejects
// outliers and scales; the rolling update's state is polled here. Callers hold
// a.mu.
func (a *Agent) planOrchestrated(s *svc, now time.Time, nodes []driver.Node, nstate map[string]driver.NodeState) {
	snap := a.snapshot(s, now, nstate)
	snap.Orchestrated = true
	a.act(s, now, nodes, decide.Plan(snap))
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
}
