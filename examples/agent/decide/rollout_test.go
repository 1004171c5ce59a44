package decide_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/decide"
)

// rolling is a rolling update v1 -> v2 in progress, one instance a batch, a 2 s
// delay, a 1 s monitor window, rollback on any failure; opts change it.
func rolling(opts ...func(*decide.Rollout)) func(*decide.Snapshot) {
	return func(s *decide.Snapshot) {
		r := &decide.Rollout{Incident: "web#1", From: "v1", To: "v2", Parallelism: 1, Delay: 2 * time.Second, Monitor: time.Second,
			StartTimeout: 10 * time.Second, FailureAction: "rollback", Started: t0.Add(-10 * time.Second)}
		for _, o := range opts {
			o(r)
		}
		s.Rollout, s.Update, s.Version = true, r, r.To
	}
}

func batch(ids ...string) func(*decide.Rollout) {
	return func(r *decide.Rollout) { r.Batch, r.Batches = ids, 1 }
}

func v2(in *decide.Instance) { in.Version = "v2" }

// newOne is web-4, a new instance of v2 on n1, in the batch, that replaced
// web-1 (retired: web-1 is gone), ready since d before t0.
func newOne(d time.Duration, opts ...func(*decide.Instance)) decide.Instance {
	return inst("web-4", "n1", append([]func(*decide.Instance){v2, func(in *decide.Instance) {
		in.InBatch, in.StartedAt, in.ReadySince = true, t0.Add(-d-time.Second), t0.Add(-d)
	}}, opts...)...)
}

// surging is web-4, a new instance of v2 replacing web-1 (still running), not
// ready yet, started d before t0; and web-1 with its replacement under way.
func surging(d time.Duration, opts ...func(*decide.Instance)) []decide.Instance {
	return []decide.Instance{
		inst("web-1", "n1", func(in *decide.Instance) { in.ReplacedBy = "web-4" }), inst("web-2", "n2"), inst("web-3", "n3"),
		inst("web-4", "n1", append([]func(*decide.Instance){v2, notReady, func(in *decide.Instance) {
			in.InBatch, in.Replaces, in.StartedAt = true, "web-1", t0.Add(-d)
		}}, opts...)...),
	}
}

// Plan steps a rolling update: batches of Parallelism, the monitor window, the
// delay between batches, and rollback (or pause, or continue) when new
// instances fail.
func TestPlanRollout(t *testing.T) {
	tests := []struct {
		name string
		give decide.Snapshot
		want []string
		why  []string
	}{
		{"the first batch: the first old instance, surge first", snap(three(), rolling()),
			[]string{"clear-pending", "batch what=rollout-batch inc=web#1 ids=web-1 version=v2"}, []string{"batch 1: replacing web-1 with v2"}},
		{"a batch of two", snap(three(), rolling(func(r *decide.Rollout) { r.Parallelism = 2 })),
			[]string{"clear-pending", "batch what=rollout-batch inc=web#1 ids=web-1,web-2 version=v2"}, nil},
		{"the batch's starts in flight: wait", snap(three(), rolling(func(r *decide.Rollout) { r.Starting, r.Batches = 1, 1 })),
			[]string{"clear-pending"}, nil},
		{"a new instance starting: wait", snap(surging(time.Second), rolling(batch("web-4"))), []string{"clear-pending"}, nil},
		{"a new instance ready: it retires its old one, then is monitored", snap(surging(time.Second, func(in *decide.Instance) {
			in.Ready, in.ReadySince = true, t0
		}), rolling(batch("web-4"))), []string{"retire web-4 old=web-1", "clear-pending"}, nil},
		{"monitored for less than the window: wait", snap(append(three()[1:], newOne(900*time.Millisecond)), rolling(batch("web-4"))),
			[]string{"clear-pending"}, nil},
		{"monitored for the window: updated, the batch done, the next after the delay",
			snap(append(three()[1:], newOne(time.Second)), rolling(batch("web-4"))),
			[]string{"clear-pending", "batch-updated web-4 inc=web#1", "batch-done what=rollout-batch-done inc=web#1 at=2s"},
			[]string{"batch 1 monitored for 1s; next batch in 2s"}},
		{"no delay: the batch done without a reason to report", snap(append(three()[1:], newOne(time.Second)),
			rolling(batch("web-4"), func(r *decide.Rollout) { r.Delay = 0 })),
			[]string{"clear-pending", "batch-updated web-4 inc=web#1", "batch-done what=rollout-batch-done inc=web#1 at=0s"}, nil},
		{"the delay not over: wait", snap(append(three()[1:], newOne(time.Minute, func(in *decide.Instance) { in.InBatch = false })),
			rolling(func(r *decide.Rollout) { r.NextAt, r.Batches, r.Updated = t0.Add(time.Millisecond), 1, 1 })),
			[]string{"clear-pending"}, nil},
		{"the delay over: the next batch", snap(append(three()[1:], newOne(time.Minute, func(in *decide.Instance) { in.InBatch = false })),
			rolling(func(r *decide.Rollout) { r.NextAt, r.Batches, r.Updated = t0, 1, 1 })),
			[]string{"clear-pending", "batch what=rollout-batch inc=web#1 ids=web-2 version=v2"}, []string{"batch 2: replacing web-2 with v2"}},
		{"every old instance being replaced (not by the update): wait for it", snap([]decide.Instance{
			inst("web-1", "n1", unhealthy, func(in *decide.Instance) { in.ReplacedBy = "web-5" }), inst("web-2", "n2", v2), inst("web-3", "n3", v2),
			inst("web-5", "n1", notReady, func(in *decide.Instance) { in.Replaces, in.StartedAt = "web-1", t0 })},
			rolling(func(r *decide.Rollout) { r.Batches = 2 })),
			[]string{"clear-pending"}, nil},
		{"every instance runs the new version: done", snap([]decide.Instance{inst("web-1", "n1", v2), inst("web-2", "n2", v2), inst("web-3", "n3", v2)},
			rolling(func(r *decide.Rollout) { r.Batches, r.Updated = 3, 3 })),
			[]string{"clear-pending", "rollout-done what=rollout inc=web#1 version=v2"},
			[]string{"every instance runs v2 (3 updated, 0 failed, 3 batches, 10s)"}},
		{"a rollback done", snap(three(), rolling(func(r *decide.Rollout) {
			r.From, r.To, r.Rollback, r.Updated = "v2", "v1", true, 1
		})), []string{"clear-pending", "rollout-done what=rollback inc=web#1 version=v1"},
			[]string{"rolled back from v2: every instance runs v1 again (1 reverted)"}},

		// Failures.
		{"a new instance exited: failed, rolled back", snap(surging(time.Second, exited("exit status 3")), rolling(batch("web-4"))),
			[]string{"exit web-4 what=crash inc=new:1 opens=crash release=web-1", "clear-pending",
				"batch-failed web-4 what=rollout-failure inc=web#1", "rollback what=rollback inc=web#1 version=v1"},
			[]string{"exited: exit status 3", "new instance (v2) failed: exited: exit status 3", "1 of 1 new instances of v2 failed (max ratio 0.00): rolling back to v1"}},
		{"a new instance gone from the list: failed", snap(three(), rolling(batch("web-4"))),
			[]string{"clear-pending", "batch-failed web-4 what=rollout-failure inc=web#1", "rollback what=rollback inc=web#1 version=v1"},
			[]string{"new instance (v2) failed: exited"}},
		{"a new instance unhealthy: stopped, its old one stays", snap(surging(time.Second, unhealthy), rolling(batch("web-4"))),
			[]string{"clear-pending", "batch-failed web-4 what=rollout-failure inc=web#1 old=web-1", "rollback what=rollback inc=web#1 version=v1"},
			[]string{"failed: unhealthy: refused"}},
		{"a new instance not ready within the start timeout: failed", snap(surging(11*time.Second), rolling(batch("web-4"))),
			[]string{"clear-pending", "batch-failed web-4 what=rollout-failure inc=web#1 old=web-1", "rollback what=rollback inc=web#1 version=v1"},
			[]string{"failed: not ready within 10s"}},
		{"rollback stops the batch's other new instances", snap(append(surging(time.Second, unhealthy),
			inst("web-5", "n2", v2, notReady, func(in *decide.Instance) { in.InBatch, in.Replaces, in.StartedAt = true, "web-2", t0 })),
			rolling(batch("web-4", "web-5"), func(r *decide.Rollout) { r.Parallelism = 2 })),
			[]string{"clear-pending", "batch-failed web-4 what=rollout-failure inc=web#1 old=web-1", "rollback what=rollback inc=web#1 ids=web-5 version=v1"}, nil},
		{"failures within the ratio: on", snap(surging(time.Second, unhealthy), rolling(batch("web-4"), func(r *decide.Rollout) {
			r.MaxFailureRatio, r.Updated = 0.5, 3
		})), []string{"clear-pending", "batch-failed web-4 what=rollout-failure inc=web#1 old=web-1", "batch-done what=rollout-batch-done inc=web#1 at=2s"}, nil},
		{"failure action pause", snap(surging(time.Second, unhealthy), rolling(batch("web-4"), func(r *decide.Rollout) { r.FailureAction = "pause" })),
			[]string{"clear-pending", "batch-failed web-4 what=rollout-failure inc=web#1 old=web-1", "rollout-pause what=rollout inc=web#1"},
			[]string{"failed: unhealthy", "1 new instances failed: rollout paused; update again to resume"}},
		{"failure action continue", snap(surging(time.Second, unhealthy), rolling(batch("web-4"), func(r *decide.Rollout) { r.FailureAction = "continue" })),
			[]string{"clear-pending", "batch-failed web-4 what=rollout-failure inc=web#1 old=web-1", "batch-done what=rollout-batch-done inc=web#1 at=2s"}, nil},
		{"a rollback that fails pauses", snap(surging(time.Second, unhealthy), rolling(batch("web-4"), func(r *decide.Rollout) {
			r.Rollback = true
		})), []string{"clear-pending", "batch-failed web-4 what=rollback-failure inc=web#1 old=web-1", "rollout-pause what=rollback inc=web#1"}, nil},
		{"paused: nothing", snap(surging(time.Second, unhealthy), rolling(batch("web-4"), func(r *decide.Rollout) { r.Paused = true })),
			[]string{"clear-pending"}, nil},
		{"orchestrated: the orchestrator's update", snap(three(), rolling(), orchestrated), []string{"clear-pending"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide.Plan(tt.give)
			require.Equal(t, tt.want, briefs(got))
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
