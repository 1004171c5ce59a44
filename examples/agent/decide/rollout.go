package decide

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rollout is a rolling update in progress on a driver that places instances, as
// [Plan] sees it: the new version replaces the old one Parallelism instances at a
// time (surge first), each new instance monitored for Monitor after it is ready,
// with Delay between batches. A new instance that exits, is unhealthy, or is not
// ready within StartTimeout fails; when the failed share exceeds
// MaxFailureRatio, FailureAction applies: "rollback" (the default: the update is
// reversed the same way), "pause" or "continue".
type Rollout struct {
	Incident        string
	From, To        string
	Rollback        bool // this update reverses a failed one
	Parallelism     int  // <= 0 means 1
	Delay           time.Duration
	Monitor         time.Duration
	StartTimeout    time.Duration
	FailureAction   string
	MaxFailureRatio float64

	Batch    []string  // the new instances of the current batch, not judged yet
	Starting int       // starts of the current batch in flight
	NextAt   time.Time // the next batch starts then at the earliest
	Updated  int       // new instances monitored to the end
	Failed   int       // new instances that failed
	Batches  int       // batches started
	Paused   bool
	Started  time.Time
}

// name is how the events name the update.
func (r *Rollout) name() string {
	if r.Rollback {
		return "rollback"
	}
	return "rollout"
}

// rollout steps the rolling update: the current batch's new instances are
// judged (failed, or monitored to the end), the FailureAction applies past the
// failure ratio, a finished batch waits Delay, and the next batch of old
// instances is replaced; when every instance runs the new version the update is
// done.
func (p *planner) rollout() {
	r := p.s.Update
	if r == nil || r.Paused || p.s.Orchestrated {
		return
	}
	now := p.s.Now
	name := r.name()
	if len(r.Batch) > 0 || r.Starting > 0 {
		done := r.Starting == 0
		failed, updated := r.Failed, r.Updated
		var left []string
		for _, id := range r.Batch {
			m := p.by[id]
			var fail string
			switch {
			case m == nil || m.Gone || m.State == InstanceExited:
				fail = "exited"
				if m != nil {
					fail = "exited: " + m.ExitReason
				}
			case m.Health == Unhealthy:
				fail = "unhealthy: " + m.LastError
			case !m.Ready && m.ReadySince.IsZero() && now.Sub(m.StartedAt) > r.StartTimeout && m.Replaces != "":
				fail = fmt.Sprintf("not ready within %s", r.StartTimeout)
			case !m.ReadySince.IsZero() && now.Sub(m.ReadySince) >= r.Monitor:
				updated++
				p.add(Action{Kind: ActBatchUpdated, Instance: id, Incident: r.Incident})
				continue
			default:
				done = false
				left = append(left, id)
				continue
			}
			failed++
			a := Action{Kind: ActBatchFailed, Instance: id, What: name + "-failure", Incident: r.Incident,
				Why: fmt.Sprintf("new instance (%s) failed: %s", r.To, fail)}
			if m != nil && !m.Gone && !m.Stopping {
				a.Old = m.Replaces
				m.Stopping = true
				if old := p.by[m.Replaces]; old != nil {
					old.ReplacedBy = ""
				}
			}
			p.add(a)
		}
		if failed > 0 && float64(failed)/float64(max(1, failed+updated)) > r.MaxFailureRatio {
			switch {
			case r.FailureAction == "continue":
			case (r.FailureAction == "rollback" || r.FailureAction == "") && !r.Rollback:
				p.add(Action{Kind: ActRollback, What: "rollback", Incident: r.Incident, Version: r.From, IDs: left,
					Why: fmt.Sprintf("%d of %d new instances of %s failed (max ratio %.2f): rolling back to %s", failed, failed+updated, r.To, r.MaxFailureRatio, r.From)})
				return
			default:
				p.add(Action{Kind: ActRolloutPause, What: name, Incident: r.Incident,
					Why: fmt.Sprintf("%d new instances failed: %s paused; update again to resume", failed, name)})
				return
			}
		}
		if done && len(left) == 0 {
			a := Action{Kind: ActBatchDone, What: name + "-batch-done", Incident: r.Incident, At: now.Add(r.Delay)}
			if r.Delay > 0 {
				a.Why = fmt.Sprintf("batch %d monitored for %s; next batch in %s", r.Batches, r.Monitor, r.Delay)
			}
			p.add(a)
		}
		return
	}
	if now.Before(r.NextAt) {
		return
	}
	var olds []*Instance
	pendingReplacement := false
	for i := range p.insts {
		m := &p.insts[i]
		if m.Gone || m.Stopping || m.State == InstanceExited {
			continue
		}
		if m.Replaces != "" || m.ReplacedBy != "" {
			pendingReplacement = true
			continue
		}
		if m.Version != r.To {
			olds = append(olds, m)
		}
	}
	if len(olds) == 0 {
		if pendingReplacement {
			return
		}
		why := fmt.Sprintf("every instance runs %s (%d updated, %d failed, %d batches, %s)", r.To, r.Updated, r.Failed, r.Batches, now.Sub(r.Started).Round(time.Millisecond))
		if r.Rollback {
			why = fmt.Sprintf("rolled back from %s: every instance runs %s again (%d reverted)", r.From, r.To, r.Updated)
		}
		p.add(Action{Kind: ActRolloutDone, What: name, Incident: r.Incident, Version: r.To, Why: why,
			Detail: map[string]any{"version": r.To, "rolledBack": r.Rollback}})
		return
	}
	// p.insts is sorted by id: the batch is the first Parallelism old instances.
	olds = olds[:min(len(olds), max(1, r.Parallelism))]
	var ids []string
	for _, m := range olds {
		ids = append(ids, m.ID)
		m.ReplacedBy = "pending"
	}
	p.add(Action{Kind: ActBatch, What: name + "-batch", Incident: r.Incident, Version: r.To, IDs: slices.Clone(ids),
		Why: fmt.Sprintf("batch %d: replacing %s with %s", r.Batches+1, strings.Join(ids, ", "), r.To)})
}
