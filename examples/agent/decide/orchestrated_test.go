package decide_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/decide"
)

func orchestrated(s *decide.Snapshot) { s.Orchestrated = true }

// Plan for an orchestrator's driver (Swarm, Kubernetes): the orchestrator
// restarts, keeps the count and places instances; the plan never duplicates
// that. It reports exits and heals them once the count is met by ready
// instances, evicts what it would replace, ejects outliers and scales.
func TestPlanOrchestrated(t *testing.T) {
	tests := []struct {
		name string
		give decide.Snapshot
		want []string
		why  []string
	}{
		{"steady", snap(three(), orchestrated), []string{"clear-pending"}, nil},
		{"missing replicas: the orchestrator's to start", snap(three()[:1], orchestrated), []string{}, nil},
		{"too many: the orchestrator's to stop", snap(append(three(), inst("web-4", "n1", notReady)), orchestrated), []string{"clear-pending"}, nil},

		{"crash: reported, owed to the orchestrator, nothing started", snap(three(exited("signal: killed")), orchestrated),
			[]string{"exit web-1 what=crash inc=new:1 opens=crash restart=n1//false"},
			[]string{"exited: signal: killed; the orchestrator's restart policy replaces it"}},
		{"crash in a crash loop: nothing started or reported besides", snap(three(exited("x")), orchestrated, func(s *decide.Snapshot) {
			s.Backoff.Loop = true
		}), []string{"exit web-1 what=crash inc=new:1 opens=crash restart=n1//false"}, nil},
		{"node down: reported as such", snap(three(exited("node down")), orchestrated),
			[]string{"exit web-1 what=node-down inc=new:1 opens=node-down restart=n1//false"}, nil},
		{"reported unhealthy, then exited: its incident", snap(three(exited("x"), unhealthy, func(in *decide.Instance) { in.Incident = "web#7" }), orchestrated),
			[]string{"exit web-1 what=crash inc=web#7 restart=n1//false"}, nil},
		{"relapse within the monitor window: no escalation (the orchestrator places)",
			snap(three(exited("x"), func(in *decide.Instance) { in.VerifyUntil, in.VerifyIncident = t0.Add(time.Second), "web#3" }), orchestrated),
			[]string{"exit web-1 what=crash inc=new:1 opens=crash restart=n1//false"}, nil},
		{"the orchestrator's replacement ready: the exit heals", snap(three(), orchestrated, func(s *decide.Snapshot) {
			s.Pending = []decide.Restart{{Incident: "web#1", Node: "n1"}}
		}), []string{"heal-count what=replaced inc=web#1", "clear-pending"}, []string{"the orchestrator replaced it: 3 ready instances, 3 wanted"}},
		{"the orchestrator's replacement not ready yet: still owed", snap(three(notReady), orchestrated, func(s *decide.Snapshot) {
			s.Pending = []decide.Restart{{Incident: "web#1", Node: "n1"}}
		}), []string{}, nil},

		{"unhealthy: evicted for the orchestrator to replace", snap(three(unhealthy, func(in *decide.Instance) { in.Incident = "web#2" }), orchestrated),
			[]string{"evict web-1 what=unhealthy inc=web#2 restart=n1//false"}, []string{"unhealthy: refused; stopping it for the orchestrator to replace"}},
		{"unhealthy within the monitor window: evicted, no node to avoid",
			snap(three(unhealthy, func(in *decide.Instance) { in.VerifyUntil, in.Incident = t0.Add(time.Second), "web#2" }), orchestrated),
			[]string{"evict web-1 what=unhealthy inc=web#2 restart=n1//false"}, nil},
		{"unhealthy, most look broken: hold still", snap([]decide.Instance{inst("web-1", "n1", unhealthy), inst("web-2", "n2", suspect), inst("web-3", "n3")}, orchestrated),
			[]string{"hold what=replace key=broken"}, nil},
		{"unhealthy, budget spent: hold", snap(three(unhealthy), orchestrated, func(s *decide.Snapshot) { s.Budget = 0 }),
			[]string{"hold what=replace web-1 key=budget"}, nil},
		{"unhealthy in a dry run: decided, nothing owed", snap(three(unhealthy), orchestrated, func(s *decide.Snapshot) { s.DryRun = true }),
			[]string{"evict web-1 what=unhealthy inc=new:1 opens=unhealthy"}, nil},
		{"not ready past the timeout: evicted", snap(three(notReadyFor(time.Minute)), orchestrated),
			[]string{"evict web-1 what=not-ready inc=new:1 opens=not-ready restart=n1//false"}, nil},
		{"not ready for a while: out of rotation, waiting", snap(three(notReadyFor(time.Second)), orchestrated), []string{}, nil},
		{"an outlier: ejected", snap(traffic3(400, 0, 50), orchestrated),
			[]string{"eject web-1 what=outlier-slow inc=new:1 opens=outlier at=30s", "clear-pending"}, nil},
		{"an outlier again: ejected longer and evicted", snap(traffic3(400, 0, 50, func(in *decide.Instance) { in.Ejections, in.Incident = 1, "web#4" }), orchestrated),
			[]string{"eject web-1 what=outlier-slow inc=web#4 at=1m0s", "evict web-1 what=outlier inc=web#4 restart=n1//false"}, nil},
		{"heap trend: evicted before it fails (it cannot surge first)", snap(three(leaking), orchestrated),
			[]string{"evict web-1 what=heap-trend inc=new:1 opens=heap-trend restart=n1//false"},
			[]string{"heap 90 MiB growing 10.0 MiB/s reaches its 160 MiB limit in 7s; stopping it for the orchestrator to replace"}},
		{"heap trend while the orchestrator owes a replacement: one at a time", snap(three(leaking), orchestrated, func(s *decide.Snapshot) {
			s.Desired, s.Pending = 4, []decide.Restart{{Incident: "web#1", Node: "n1"}}
		}), []string{}, nil},
		{"heap trend, budget spent: hold", snap(three(leaking), orchestrated, func(s *decide.Snapshot) { s.Budget = 0 }),
			[]string{"hold what=preventive key=budget", "clear-pending"}, nil},
		{"degraded node: left to the orchestrator", snap(three(func(in *decide.Instance) { in.NodeState = decide.NodeDegraded }), orchestrated),
			[]string{"clear-pending"}, nil},

		{"autoscaler out: the count is set, nothing started", snap(three(), orchestrated, func(s *decide.Snapshot) {
			s.Scale = &decide.ScaleView{Decision: decide.Decision{Replicas: 5}}
		}), []string{"scale what=scale-out inc=new:1 opens=scale-out replicas=5"}, nil},
		{"autoscaler in: the count is set, nothing stopped", snap(three(), orchestrated, func(s *decide.Snapshot) {
			s.Scale = &decide.ScaleView{Decision: decide.Decision{Replicas: 2}}
		}), []string{"scale what=scale-in inc=new:1 opens=scale-in replicas=2", "clear-pending"}, nil},
		{"scaled out, met by ready instances: healed", snap(append(three(), inst("web-4", "n1"), inst("web-5", "n2")), orchestrated, func(s *decide.Snapshot) {
			s.Desired, s.ScaleIncident = 5, "web#6"
		}), []string{"clear-pending", "heal-scale what=scaled inc=web#6"}, nil},
		{"autoscaler: not during a rollout", snap(three(), orchestrated, func(s *decide.Snapshot) {
			s.Rollout, s.Scale = true, &decide.ScaleView{Decision: decide.Decision{Replicas: 5}}
		}), []string{"clear-pending"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide.Plan(tt.give)
			require.Equal(t, tt.want, briefs(got))
			for _, a := range got {
				assert.NotContains(t, []decide.ActionKind{decide.ActStart, decide.ActReplace, decide.ActScaleIn, decide.ActRetire}, a.Kind,
					"the orchestrator's work")
				assert.False(t, a.Forget, "the orchestrator's tasks are not the agent's to remove")
			}
			var whys []string
			for _, a := range got {
				if a.Why != "" {
					whys = append(whys, a.Why)
				}
			}
			for i, w := range tt.why {
				require.Less(t, i, len(whys), "reasons: %q", whys)
				assert.Contains(t, whys[i], w)
			}
		})
	}
}
