package decide_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/decide"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// inst is a running, healthy, ready instance of version v1 on a ready node,
// started a minute before t0; opts change it.
func inst(id, node string, opts ...func(*decide.Instance)) decide.Instance {
	in := decide.Instance{ID: id, Node: node, Version: "v1", NodeState: decide.NodeReady, State: decide.InstanceRunning,
		StartedAt: t0.Add(-time.Minute), Health: decide.Healthy, Ready: true}
	for _, o := range opts {
		o(&in)
	}
	return in
}

func exited(reason string) func(*decide.Instance) {
	return func(in *decide.Instance) {
		in.State, in.ExitReason, in.ExitedAt, in.Ready = decide.InstanceExited, reason, t0.Add(-100*time.Millisecond), false
	}
}

func unhealthy(in *decide.Instance) {
	in.Health, in.Ready, in.LastError, in.Reported = decide.Unhealthy, false, "refused", true
}
func suspect(in *decide.Instance)  { in.Health, in.Ready = decide.Suspect, false }
func notReady(in *decide.Instance) { in.Ready = false }

// notReadyFor: live, not ready since d before t0.
func notReadyFor(d time.Duration) func(*decide.Instance) {
	return func(in *decide.Instance) {
		in.Ready, in.NotReadySince, in.NotReadyWhy = false, t0.Add(-d), "readiness answered 503"
	}
}

// traffic3 is three instances with traffic over the window: web-1 at latency ms
// with errs errors of reqs requests, its peers at 10 ms without errors.
func traffic3(latency, errs, reqs int, opts ...func(*decide.Instance)) []decide.Instance {
	ins := three()
	for i := range ins {
		ins[i].Traffic = decide.Traffic{Requests: int64(reqs), Latency: 10 * time.Millisecond}
	}
	ins[0].Traffic = decide.Traffic{Requests: int64(reqs), Errors: int64(errs), Latency: time.Duration(latency) * time.Millisecond}
	for _, o := range opts {
		o(&ins[0])
	}
	return ins
}

// leaking has a heap growing 10 MiB/s to 90 MiB over 4 s.
func leaking(in *decide.Instance) {
	for i := range 9 {
		in.Heap.Add(t0.Add(time.Duration(i-8)*500*time.Millisecond), float64(50+5*i)*(1<<20))
	}
}

// snap is a service "web" of 3 wanted replicas, version v1, a budget of 3, with
// instances; opts change it.
func snap(insts []decide.Instance, opts ...func(*decide.Snapshot)) decide.Snapshot {
	s := decide.Snapshot{Now: t0, Service: "web", Desired: 3, Version: "v1", Budget: 3, BudgetMax: 3, BudgetWindow: time.Minute,
		StartTimeout: 10 * time.Second, Monitor: 5 * time.Second, Instances: insts,
		Limits:  decide.Limits{Heap: 160 << 20, Horizon: 20 * time.Second, MinSpan: time.Second},
		Backoff: decide.BackoffView{Delay: 0, Next: 200 * time.Millisecond, CrashLoopWindow: time.Minute}}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func three(opts ...func(*decide.Instance)) []decide.Instance {
	return []decide.Instance{inst("web-1", "n1", opts...), inst("web-2", "n2"), inst("web-3", "n3")}
}

// brief is an action in one line: its kind, instance and the fields that are set.
func brief(a decide.Action) string {
	var b strings.Builder
	b.WriteString(string(a.Kind))
	add := func(k string, v any) { fmt.Fprintf(&b, " %s=%v", k, v) }
	if a.Instance != "" {
		b.WriteString(" " + a.Instance)
	}
	if a.What != "" {
		add("what", a.What)
	}
	if a.Incident != "" {
		add("inc", a.Incident)
	}
	if a.Opens != "" {
		add("opens", a.Opens)
	}
	if a.Key != "" {
		add("key", a.Key)
	}
	if a.Quiet {
		add("quiet", true)
	}
	if r := a.Restart; r != nil {
		add("restart", fmt.Sprintf("%s/%s/%v", r.Node, r.Avoid, r.Counts))
	}
	if a.ReleaseOld != "" {
		add("release", a.ReleaseOld)
	}
	if a.Escalate != "" {
		add("escalate", true)
	}
	if a.Old != "" {
		add("old", a.Old)
	}
	if a.Heal {
		add("heal", true)
	}
	if a.Avoid != "" {
		add("avoid", a.Avoid)
	}
	if a.Replicas != 0 {
		add("replicas", a.Replicas)
	}
	if !a.At.IsZero() {
		add("at", a.At.Sub(t0))
	}
	if a.Counts {
		add("counts", true)
	}
	if len(a.IDs) > 0 {
		add("ids", strings.Join(a.IDs, ","))
	}
	if a.Version != "" && a.Kind != decide.ActStart && a.Kind != decide.ActReplace && a.Kind != decide.ActEvict {
		add("version", a.Version)
	}
	if a.Kind == decide.ActDecay {
		add("ejections", a.Ejections)
	}
	return b.String()
}

func briefs(as []decide.Action) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, brief(a))
	}
	return out
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name string
		give decide.Snapshot
		want []string
		why  []string // substrings of the actions' reasons, in order
	}{
		{"steady: nothing to do", snap(three()), []string{"clear-pending"}, nil},
		{"missing replicas start", snap(three()[:1]), []string{"start", "start"}, nil},
		{"starts in flight count", snap(three()[:1], func(s *decide.Snapshot) { s.Starting = 2 }), []string{"clear-pending"}, nil},

		// Exits.
		{"crash: a restart, at once the first time", snap(three(exited("signal: killed"))),
			[]string{"exit web-1 what=crash inc=new:1 opens=crash restart=n1//true", "start what=restart inc=new:1 restart=n1//true counts=true"},
			[]string{"exited: signal: killed", "replacing an exited instance"}},
		{"crash after a recent restart waits for the backoff",
			snap(three(exited("exit status 2")), func(s *decide.Snapshot) { s.Backoff.Delay, s.Backoff.Restarts = 400*time.Millisecond, 1 }),
			[]string{"exit web-1 what=crash inc=new:1 opens=crash restart=n1//true", "backoff what=backoff inc=new:1 at=400ms"},
			[]string{"exited", "restart in 400ms (1 restarts in the window)"}},
		{"backoff due: the restart starts", snap(three(exited("x"), func(in *decide.Instance) { in.Gone = true }), func(s *decide.Snapshot) {
			s.Pending = []decide.Restart{{Incident: "web#1", Node: "n1", Counts: true}}
			s.RestartAt = t0.Add(-time.Millisecond)
		}), []string{"start what=restart inc=web#1 restart=n1//true counts=true"}, nil},
		{"backoff not due: nothing", snap(three(exited("x"), func(in *decide.Instance) { in.Gone = true }), func(s *decide.Snapshot) {
			s.Pending = []decide.Restart{{Incident: "web#1", Node: "n1", Counts: true}}
			s.RestartAt = t0.Add(time.Millisecond)
		}), []string{}, nil},
		{"crash loop: reported once, nothing started", snap(three(exited("x")), func(s *decide.Snapshot) {
			s.Backoff.Loop, s.Backoff.Restarts = true, 5
		}), []string{"exit web-1 what=crash inc=new:1 opens=crash restart=n1//true", "crash-loop what=crash-loop inc=new:1"},
			[]string{"exited", "5 restarts within 1m0s"}},
		{"crash loop already reported: silent", snap(three(exited("x")), func(s *decide.Snapshot) {
			s.Backoff.Loop, s.GaveUp = true, true
		}), []string{"exit web-1 what=crash inc=new:1 opens=crash restart=n1//true"}, nil},
		{"two crashes: one restart now, the next after a backoff", snap([]decide.Instance{inst("web-1", "n1", exited("x")), inst("web-2", "n2", exited("y")), inst("web-3", "n3")}),
			[]string{"exit web-1 what=crash inc=new:1 opens=crash restart=n1//true", "exit web-2 what=crash inc=new:2 opens=crash restart=n2//true",
				"start what=restart inc=new:1 restart=n1//true counts=true", "backoff what=backoff inc=new:2 at=200ms"}, nil},
		{"node down: the restart counts toward no backoff", snap(three(exited("node down"))),
			[]string{"exit web-1 what=node-down inc=new:1 opens=node-down restart=n1//false", "start what=restart inc=new:1 restart=n1//false"}, nil},
		{"node down by the node's state", snap(three(exited("signal: killed"), func(in *decide.Instance) { in.NodeState = decide.NodeDown }),
			func(s *decide.Snapshot) { s.Backoff.Loop = true }),
			[]string{"exit web-1 what=node-down inc=new:1 opens=node-down restart=n1//false", "start what=restart inc=new:1 restart=n1//false"}, nil},
		{"exit while being stopped: quiet", snap(append(three(), inst("web-4", "n1", exited("exit status 0"), func(in *decide.Instance) { in.Stopping = true }))),
			[]string{"exit web-4 quiet=true", "clear-pending"}, nil},
		{"exit already handled: nothing", snap(append(three(), inst("web-4", "n1", exited("x"), func(in *decide.Instance) { in.Gone = true }))),
			[]string{"clear-pending"}, nil},
		{"reported unhealthy, then exited, replacement under way: part of its incident",
			snap(append(three(exited("x"), unhealthy, func(in *decide.Instance) { in.Incident, in.ReplacedBy = "web#7", "web-4" }),
				inst("web-4", "n2", notReady, func(in *decide.Instance) { in.Replaces, in.Incident, in.StartedAt = "web-1", "web#7", t0 }))),
			[]string{"exit web-1 what=crash inc=web#7", "clear-pending"}, []string{"already being replaced"}},
		// The replacement counts in the place of the instance it replaces once that
		// one left, exactly once: a plain start besides was one instance too many
		// (TestARelapseEscalatesToAnotherNode failed on two instances where one was
		// wanted).
		{"replacement starting (not listed yet), its old instance exited: no extra start",
			snap(three(exited("x"), unhealthy, func(in *decide.Instance) { in.Incident, in.ReplacedBy = "web#7", "pending" }),
				func(s *decide.Snapshot) { s.Replacing = []string{"web-1"} }),
			[]string{"exit web-1 what=crash inc=web#7", "clear-pending"}, []string{"already being replaced"}},
		{"replacement starting, its old instance forgotten already: counted",
			snap(three()[1:], func(s *decide.Snapshot) { s.Replacing = []string{"web-1"} }),
			[]string{"clear-pending"}, nil},
		{"replacement starting, its old instance running: surge, not counted",
			snap(append(three()[1:], inst("web-1", "n1", unhealthy, func(in *decide.Instance) { in.ReplacedBy = "pending" })),
				func(s *decide.Snapshot) { s.Replacing = []string{"web-1"}; s.Desired = 3 }),
			[]string{"clear-pending"}, nil},
		{"replacement starting in place of a gone instance: no scale-in until it is listed",
			snap(append(three()[1:], inst("web-4", "n1")), func(s *decide.Snapshot) { s.Replacing = []string{"web-1"} }),
			[]string{"clear-pending"}, nil},
		{"replacement listed, starting, its old instance exited: counted once",
			snap(append(three()[1:], inst("web-4", "n1", notReady, func(in *decide.Instance) {
				in.State, in.Replaces, in.Incident, in.StartedAt = decide.InstanceStarting, "web-1", "web#7", t0
			})), func(s *decide.Snapshot) { s.ScaleIncident = "web#5" }),
			[]string{"clear-pending"}, nil},
		{"replacement and its old instance both running: the old one counts, no scale-in",
			snap(append(three(unhealthy, func(in *decide.Instance) { in.ReplacedBy = "web-4" }),
				inst("web-4", "n1", notReady, func(in *decide.Instance) { in.Replaces, in.StartedAt = "web-1", t0 }))),
			[]string{"clear-pending"}, nil},
		{"handover: the replacement ready retires the old one, still three",
			snap(append(three(unhealthy, func(in *decide.Instance) { in.ReplacedBy = "web-4" }),
				inst("web-4", "n1", func(in *decide.Instance) { in.Replaces = "web-1" }))),
			[]string{"retire web-4 old=web-1", "clear-pending"}, nil},
		{"handover: the old one stopping, its replacement not ready: counted once, no start",
			snap(append(three(func(in *decide.Instance) { in.Stopping = true }),
				inst("web-4", "n1", notReady, func(in *decide.Instance) { in.Replaces, in.StartedAt = "web-1", t0 }))),
			[]string{"clear-pending"}, nil},
		{"reported unhealthy, then exited: its incident, a restart", snap(three(exited("x"), unhealthy, func(in *decide.Instance) { in.Incident = "web#7" })),
			[]string{"exit web-1 what=crash inc=web#7 restart=n1//true", "start what=restart inc=web#7 restart=n1//true counts=true"}, nil},
		{"a replacement died: the old instance is released, no restart",
			snap(append(three(unhealthy, func(in *decide.Instance) { in.ReplacedBy = "web-4" }),
				inst("web-4", "n2", exited("x"), func(in *decide.Instance) { in.Replaces = "web-1" })), func(s *decide.Snapshot) { s.Budget = 0 }),
			[]string{"exit web-4 what=crash inc=new:1 opens=crash release=web-1", "hold what=replace web-1 key=budget", "clear-pending"}, nil},
		{"unhealthy again within the monitor window (seen before its exit): the replacement escalates to another node",
			snap(three(unhealthy, func(in *decide.Instance) {
				in.VerifyUntil, in.VerifyIncident, in.Incident = t0.Add(time.Second), "web#3", "web#4"
			})),
			[]string{"replace web-1 what=unhealthy inc=web#4 escalate=true avoid=n1", "clear-pending"}, nil},
		{"failed again within the monitor window: escalates to another node",
			snap(three(exited("x"), func(in *decide.Instance) { in.VerifyUntil, in.VerifyIncident = t0.Add(time.Second), "web#3" })),
			[]string{"exit web-1 what=crash inc=new:1 opens=crash restart=/n1/true escalate=true", "start what=restart inc=new:1 restart=/n1/true counts=true"},
			nil},
		{"dry run: reported, nothing forgotten or started", snap(three(exited("x")), func(s *decide.Snapshot) { s.DryRun = true }),
			[]string{"exit web-1 what=crash inc=new:1 opens=crash restart=n1//true", "hold what=count key=dry-count"},
			[]string{"exited", "dry run: 2 instances, 3 wanted; would start or stop 1"}},

		// Unhealthy instances.
		{"unhealthy: replaced, surge first, in its incident", snap(three(unhealthy, func(in *decide.Instance) { in.Incident = "web#2" })),
			[]string{"replace web-1 what=unhealthy inc=web#2", "clear-pending"}, []string{"unhealthy: refused"}},
		{"unhealthy without an incident opens one", snap(three(unhealthy)),
			[]string{"replace web-1 what=unhealthy inc=new:1 opens=unhealthy", "clear-pending"}, nil},
		{"unhealthy, replacement under way: nothing", snap(three(unhealthy, func(in *decide.Instance) { in.ReplacedBy = "pending" })),
			[]string{"clear-pending"}, nil},
		{"suspect: nothing yet", snap(three(suspect)), []string{"clear-pending"}, nil},
		{"most look broken: hold still", snap([]decide.Instance{inst("web-1", "n1", unhealthy), inst("web-2", "n2", suspect), inst("web-3", "n3")}),
			[]string{"hold what=replace key=broken", "clear-pending"}, []string{"2 of 3 instances look broken at once"}},
		{"budget spent: hold", snap(three(unhealthy), func(s *decide.Snapshot) { s.Budget = 0 }),
			[]string{"hold what=replace web-1 key=budget", "clear-pending"}, []string{"disruption budget spent (3 per 1m0s)"}},
		{"budget of one: one replacement", snap([]decide.Instance{inst("web-1", "n1", unhealthy), inst("web-2", "n2", unhealthy), inst("web-3", "n3"), inst("web-4", "n3"), inst("web-5", "n3")},
			func(s *decide.Snapshot) { s.Budget, s.Desired, s.BrokenFraction = 1, 5, 0.5 }),
			[]string{"replace web-1 what=unhealthy inc=new:1 opens=unhealthy", "hold what=replace web-2 key=budget", "clear-pending"}, nil},

		// Live but not ready.
		{"not ready for a while: wait", snap(three(notReadyFor(29 * time.Second))), []string{"clear-pending"}, nil},
		{"not ready past the timeout: replaced, surge first, in its incident", snap(three(notReadyFor(30*time.Second), func(in *decide.Instance) { in.Incident = "web#3" })),
			[]string{"replace web-1 what=not-ready inc=web#3", "clear-pending"}, []string{"not ready for 30s (over 30s) while live: readiness answered 503"}},
		{"not ready past a configured timeout, no incident yet: opens one", snap(three(notReadyFor(2*time.Second)), func(s *decide.Snapshot) { s.NotReadyTimeout = time.Second }),
			[]string{"replace web-1 what=not-ready inc=new:1 opens=not-ready", "clear-pending"}, nil},
		{"not ready, replacement under way: nothing", snap(three(notReadyFor(time.Minute), func(in *decide.Instance) { in.ReplacedBy = "web-4" })),
			[]string{"clear-pending"}, nil},
		{"not ready, a rollout's new instance: the rollout judges it", snap(three(notReadyFor(time.Minute), func(in *decide.Instance) { in.InBatch = true }),
			func(s *decide.Snapshot) { s.Rollout = true }), []string{"clear-pending"}, nil},
		{"not ready, a replacement itself: its start timeout judges it", snap(append(three(func(in *decide.Instance) { in.ReplacedBy = "web-4" }), inst("web-4", "n1", notReadyFor(time.Minute), func(in *decide.Instance) { in.Replaces, in.StartedAt = "web-1", t0.Add(-time.Second) }))),
			[]string{"clear-pending"}, nil},
		{"not live: the tracker judges it, not the readiness timeout", snap(three(notReadyFor(time.Minute), suspect)), []string{"clear-pending"}, nil},
		{"most not ready at once: a shared cause, hold still", snap([]decide.Instance{inst("web-1", "n1", notReadyFor(time.Minute)), inst("web-2", "n2", notReadyFor(time.Minute)), inst("web-3", "n3")}),
			[]string{"hold what=replace key=not-ready", "clear-pending"}, []string{"2 of 3 instances are live but not ready at once"}},
		{"not ready, budget spent: hold", snap(three(notReadyFor(time.Minute)), func(s *decide.Snapshot) { s.Budget = 0 }),
			[]string{"hold what=replace web-1 key=budget", "clear-pending"}, nil},
		{"not ready in a dry run: decided, nothing marked", snap(three(notReadyFor(time.Minute)), func(s *decide.Snapshot) { s.DryRun = true }),
			[]string{"replace web-1 what=not-ready inc=new:1 opens=not-ready", "clear-pending"}, nil},

		// Outliers.
		{"one slow instance: ejected, not scaled for", snap(traffic3(400, 0, 50)),
			[]string{"eject web-1 what=outlier-slow inc=new:1 opens=outlier at=30s", "clear-pending"},
			[]string{"mean latency 400ms over 50 requests, 40.0x its peers' median 10ms: out of the front door for 30s (ejection 1)"}},
		{"one failing instance: ejected", snap(traffic3(10, 20, 50)),
			[]string{"eject web-1 what=outlier-failing inc=new:1 opens=outlier at=30s", "clear-pending"}, []string{"error rate 40% over 50 requests, its peers' median 0%"}},
		{"slow but within the factor: nothing", snap(traffic3(25, 0, 50)), []string{"clear-pending"}, nil},
		{"slow by a factor but not by the gap: nothing", snap(traffic3(40, 0, 50), func(s *decide.Snapshot) { s.Outliers.MinLatencyGap = 100 * time.Millisecond }),
			[]string{"clear-pending"}, nil},
		{"too few requests: nothing", snap(traffic3(400, 0, 19)), []string{"clear-pending"}, nil},
		{"slow over the window, in line recently: nothing", snap(traffic3(400, 0, 50, func(in *decide.Instance) {
			in.Recent = decide.Traffic{Requests: 12, Latency: 11 * time.Millisecond}
		})), []string{"clear-pending"}, nil},
		{"failing over the window, not recently: nothing", snap(traffic3(10, 20, 50, func(in *decide.Instance) {
			in.Recent = decide.Traffic{Requests: 12, Latency: 10 * time.Millisecond}
		})), []string{"clear-pending"}, nil},
		{"slow recently too", snap(traffic3(400, 0, 50, func(in *decide.Instance) {
			in.Recent = decide.Traffic{Requests: 12, Latency: 390 * time.Millisecond}
		})), []string{"eject web-1 what=outlier-slow inc=new:1 opens=outlier at=30s", "clear-pending"}, nil},
		{"too few recent requests to clear it", snap(traffic3(400, 0, 50, func(in *decide.Instance) {
			in.Recent = decide.Traffic{Requests: 4, Latency: 10 * time.Millisecond}
		})), []string{"eject web-1 what=outlier-slow inc=new:1 opens=outlier at=30s", "clear-pending"}, nil},
		{"outlier detection off", snap(traffic3(400, 0, 50), func(s *decide.Snapshot) { s.Outliers.Off = true }), []string{"clear-pending"}, nil},
		{"two instances: no peers to stand apart from", snap(traffic3(400, 0, 50)[:2], func(s *decide.Snapshot) { s.Desired = 2 }), []string{"clear-pending"}, nil},
		{"the share ejected at once is capped", snap(append(traffic3(400, 0, 50), inst("web-4", "n1", func(in *decide.Instance) {
			in.EjectedUntil, in.Ejections = t0.Add(10*time.Second), 1
		})), func(s *decide.Snapshot) { s.Desired = 4 }),
			[]string{"hold web-1 what=eject key=outlier-cap", "clear-pending"}, []string{"1 of 4 instances are ejected already"}},
		{"6 instances: two ejected at once, worst first, a third held", snap(append(traffic3(400, 0, 50), append(traffic3(10, 0, 50)[1:], func() []decide.Instance {
			out := traffic3(600, 0, 50)[:1]
			out[0].ID = "web-9"
			x := traffic3(300, 0, 50)[:1]
			x[0].ID = "web-8"
			return append(out, x...)
		}()...)...), func(s *decide.Snapshot) { s.Desired = 7 }),
			[]string{"eject web-9 what=outlier-slow inc=new:1 opens=outlier at=30s", "eject web-1 what=outlier-slow inc=new:2 opens=outlier at=30s",
				"hold web-8 what=eject key=outlier-cap", "clear-pending"}, nil},
		{"an outlier again: ejected longer and replaced", snap(traffic3(400, 0, 50, func(in *decide.Instance) { in.Ejections, in.Incident = 1, "web#4" })),
			[]string{"eject web-1 what=outlier-slow inc=web#4 at=1m0s", "replace web-1 what=outlier inc=web#4", "clear-pending"}, []string{"ejection 2", "an outlier again at its ejection 2"}},
		{"ejection over: back, incident healed", snap(three(func(in *decide.Instance) { in.EjectedUntil, in.Ejections, in.Incident = t0, 1, "web#4" })),
			[]string{"return web-1 inc=web#4 heal=true", "clear-pending"}, []string{"ejection 1 ended: back in the front door"}},
		// The ejection count decays while the instance stays in the front door.
		{"in line with its peers a BaseEjection since its ejection ended: the count decays", snap(traffic3(10, 0, 50, func(in *decide.Instance) {
			in.Ejections, in.EjectionsSince = 2, t0.Add(-30*time.Second)
		})), []string{"decay web-1 at=0s ejections=1", "clear-pending"},
			[]string{"in the front door for 30s since its last ejection or decay: its ejection count decays to 1 (the next ejection lasts 1m0s)"}},
		{"not yet a BaseEjection: no decay", snap(traffic3(10, 0, 50, func(in *decide.Instance) {
			in.Ejections, in.EjectionsSince = 2, t0.Add(-29*time.Second)
		})), []string{"clear-pending"}, nil},
		{"a configured BaseEjection", snap(traffic3(10, 0, 50, func(in *decide.Instance) {
			in.Ejections, in.EjectionsSince = 1, t0.Add(-5*time.Second)
		}), func(s *decide.Snapshot) { s.Outliers.BaseEjection = 5 * time.Second }), []string{"decay web-1 at=0s ejections=0", "clear-pending"}, nil},
		{"too few requests since its return to judge it: no decay (no evidence)", snap(traffic3(10, 0, 19, func(in *decide.Instance) {
			in.Ejections, in.EjectionsSince = 1, t0.Add(-time.Hour)
		})), []string{"clear-pending"}, nil},
		{"not ready: no decay", snap(traffic3(10, 0, 50, notReady, func(in *decide.Instance) {
			in.Ejections, in.EjectionsSince = 1, t0.Add(-time.Hour)
		})), []string{"clear-pending"}, nil},
		{"an outlier held by the cap: no decay", snap(append(traffic3(400, 0, 50, func(in *decide.Instance) {
			in.Ejections, in.EjectionsSince = 1, t0.Add(-time.Hour)
		}), inst("web-4", "n1", func(in *decide.Instance) { in.EjectedUntil, in.Ejections = t0.Add(10*time.Second), 1 })),
			func(s *decide.Snapshot) { s.Desired = 4 }),
			[]string{"hold web-1 what=eject key=outlier-cap", "clear-pending"}, nil},
		{"still ejected: no decay", snap(traffic3(10, 0, 50, func(in *decide.Instance) {
			in.Ejections, in.EjectionsSince, in.EjectedUntil = 2, t0.Add(-time.Hour), t0.Add(time.Second)
		})), []string{"clear-pending"}, nil},
		{"its ejection ends now: back, the decay counted from now", snap(traffic3(10, 0, 50, func(in *decide.Instance) {
			in.Ejections, in.EjectionsSince, in.EjectedUntil = 2, t0.Add(-time.Hour), t0
		})), []string{"return web-1", "clear-pending"}, nil},
		{"an outlier again before the decay: ejected for its whole count", snap(traffic3(400, 0, 50, func(in *decide.Instance) {
			in.Ejections, in.EjectionsSince, in.Incident = 1, t0.Add(-time.Hour), "web#4"
		})), []string{"eject web-1 what=outlier-slow inc=web#4 at=1m0s", "replace web-1 what=outlier inc=web#4", "clear-pending"}, nil},
		{"an outlier after the decay to zero: its first ejection again, not replaced", snap(traffic3(400, 0, 50, func(in *decide.Instance) {
			in.Ejections = 0
		})), []string{"eject web-1 what=outlier-slow inc=new:1 opens=outlier at=30s", "clear-pending"}, nil},
		{"ejected: out of the count's victims first", snap(append(three(func(in *decide.Instance) { in.EjectedUntil, in.Ejections = t0.Add(time.Second), 1 }),
			inst("web-4", "n1", notReady))),
			[]string{"clear-pending", "scale-in web-1 what=scale-in"}, nil},

		// Preventive.
		{"heap trend: replaced before it dies", snap(three(leaking)),
			[]string{"replace web-1 what=heap-trend inc=new:1 opens=heap-trend", "clear-pending"}, []string{"heap 90 MiB growing 10.0 MiB/s reaches its 160 MiB limit in 7s"}},
		{"heap trend: one at a time", snap([]decide.Instance{inst("web-1", "n1", leaking), inst("web-2", "n2", leaking), inst("web-3", "n3")}),
			[]string{"replace web-1 what=heap-trend inc=new:1 opens=heap-trend", "clear-pending"}, nil},
		{"heap trend: one in flight already", snap([]decide.Instance{inst("web-1", "n1", leaking, func(in *decide.Instance) { in.Preventive, in.ReplacedBy = true, "web-4" }), inst("web-2", "n2", leaking), inst("web-3", "n3")}),
			[]string{"clear-pending"}, nil},
		{"heap trend: not during a rollout", snap(three(leaking), func(s *decide.Snapshot) { s.Rollout = true }), []string{"clear-pending"}, nil},
		{"degraded node: drained", snap(three(func(in *decide.Instance) { in.NodeState = decide.NodeDegraded })),
			[]string{"replace web-1 what=node-degraded inc=new:1 opens=node-degraded avoid=n1", "clear-pending"}, nil},

		// Replacements.
		{"replacement ready: the old one retires, the incident heals",
			snap(append(three(unhealthy, func(in *decide.Instance) { in.ReplacedBy, in.Incident = "web-4", "web#2" }),
				inst("web-4", "n1", func(in *decide.Instance) { in.Replaces, in.Incident = "web-1", "web#2" }))),
			[]string{"retire web-4 inc=web#2 old=web-1 heal=true", "clear-pending"}, nil},
		{"rollout batch member ready: retires, heals nothing",
			snap(append(three(func(in *decide.Instance) { in.ReplacedBy = "web-4" }),
				inst("web-4", "n1", func(in *decide.Instance) { in.Replaces, in.InBatch, in.Version = "web-1", true, "v2" })),
				func(s *decide.Snapshot) { s.Rollout = true }),
			[]string{"retire web-4 old=web-1", "clear-pending"}, nil},
		{"replacement not ready in time: given up",
			snap(append(three(unhealthy, func(in *decide.Instance) { in.ReplacedBy = "web-4" }),
				inst("web-4", "n1", notReady, func(in *decide.Instance) { in.Replaces, in.StartedAt = "web-1", t0.Add(-11*time.Second) })),
				func(s *decide.Snapshot) { s.Budget = 0 }),
			[]string{"give-up web-4 old=web-1", "clear-pending"}, []string{"replacement not ready within 10s"}},
		{"replacement still starting: wait", snap(append(three(unhealthy, func(in *decide.Instance) { in.ReplacedBy = "web-4" }),
			inst("web-4", "n1", notReady, func(in *decide.Instance) { in.Replaces, in.StartedAt = "web-1", t0.Add(-time.Second) }))),
			[]string{"clear-pending"}, nil},
		{"restart ready: heals", snap(three(func(in *decide.Instance) { in.Incident = "web#4" })),
			[]string{"heal-restart web-1 inc=web#4", "clear-pending"}, nil},
		{"restart not ready: no heal yet", snap(three(notReady, func(in *decide.Instance) { in.Incident = "web#4" })),
			[]string{"clear-pending"}, nil},

		// Count and scale.
		{"too many: scale-in, not ready first", snap(append(three(), inst("web-4", "n1", notReady))),
			[]string{"clear-pending", "scale-in web-4 what=scale-in"}, []string{"4 instances, 3 wanted"}},
		{"too many: scale-in, old version and the fullest node first", snap([]decide.Instance{inst("web-1", "n1"), inst("web-2", "n1"),
			inst("web-3", "n2", func(in *decide.Instance) { in.Version = "v0" }), inst("web-4", "n3"), inst("web-5", "n3")}),
			[]string{"clear-pending", "scale-in web-3 what=scale-in", "scale-in web-5 what=scale-in"}, nil},
		{"too many with starts in flight: wait", snap(append(three(), inst("web-4", "n1")), func(s *decide.Snapshot) { s.Starting = 1 }),
			[]string{"clear-pending"}, nil},
		{"autoscaler: out, in a new incident, then starts",
			snap(three(), func(s *decide.Snapshot) {
				s.Scale = &decide.ScaleView{Decision: decide.Decision{Replicas: 5, Ratio: 1.6, Reason: "load ratio 1.60 above 1+0.10"}, Basis: "mean p99 160ms / target 100ms"}
			}),
			[]string{"scale what=scale-out inc=new:1 opens=scale-out replicas=5", "start inc=new:1", "start inc=new:1"},
			[]string{"mean p99 160ms / target 100ms: load ratio 1.60 above 1+0.10 -> 5 replicas"}},
		{"autoscaler: the same kind keeps its incident",
			snap(three(), func(s *decide.Snapshot) {
				s.Scale = &decide.ScaleView{Decision: decide.Decision{Replicas: 4}}
				s.ScaleIncident, s.ScaleIncidentWhat = "web#9", "scale-out"
			}),
			[]string{"scale what=scale-out inc=web#9 replicas=4", "start inc=web#9"}, nil},
		{"autoscaler: in", snap(three(), func(s *decide.Snapshot) { s.Scale = &decide.ScaleView{Decision: decide.Decision{Replicas: 2}} }),
			[]string{"scale what=scale-in inc=new:1 opens=scale-in replicas=2", "clear-pending", "scale-in web-3 what=scale-in inc=new:1",
				"heal-scale what=scaled inc=new:1"}, nil},
		{"autoscaler: not during a rollout", snap(three(), func(s *decide.Snapshot) {
			s.Rollout, s.Scale = true, &decide.ScaleView{Decision: decide.Decision{Replicas: 5}}
		}), []string{"clear-pending"}, nil},
		{"autoscaler in a dry run: decided, count kept", snap(three(), func(s *decide.Snapshot) {
			s.DryRun, s.Scale = true, &decide.ScaleView{Decision: decide.Decision{Replicas: 5}}
		}), []string{"scale what=scale-out inc=new:1 opens=scale-out replicas=5", "clear-pending"}, nil},
		{"scale met by ready instances: healed", snap(three(), func(s *decide.Snapshot) { s.ScaleIncident = "web#5" }),
			[]string{"clear-pending", "heal-scale what=scaled inc=web#5"}, []string{"3 ready instances"}},
		{"scale met, one not ready: not healed", snap(three(notReady), func(s *decide.Snapshot) { s.ScaleIncident = "web#5" }),
			[]string{"clear-pending"}, nil},
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

// TestPlanIsPure: Plan changes nothing in its snapshot, and the same snapshot
// gives the same plan.
func TestPlanIsPure(t *testing.T) {
	give := snap([]decide.Instance{inst("web-1", "n1", exited("x")), inst("web-2", "n2", unhealthy), inst("web-3", "n3", leaking),
		inst("web-4", "n1", func(in *decide.Instance) { in.Replaces = "web-9" })},
		func(s *decide.Snapshot) { s.Pending = []decide.Restart{{Incident: "web#1", Counts: true}} })
	keep := snap([]decide.Instance{inst("web-1", "n1", exited("x")), inst("web-2", "n2", unhealthy), inst("web-3", "n3", leaking),
		inst("web-4", "n1", func(in *decide.Instance) { in.Replaces = "web-9" })},
		func(s *decide.Snapshot) { s.Pending = []decide.Restart{{Incident: "web#1", Counts: true}} })
	first := decide.Plan(give)
	require.True(t, reflect.DeepEqual(keep, give), "Plan changed its snapshot")
	assert.Equal(t, first, decide.Plan(give))
}

func ExamplePlan() {
	s := decide.Snapshot{Now: t0, Service: "web", Desired: 2, Version: "v1", Budget: 3,
		Instances: []decide.Instance{
			{ID: "web-1", Node: "n1", Version: "v1", NodeState: decide.NodeReady, State: decide.InstanceExited, ExitReason: "signal: killed"},
			{ID: "web-2", Node: "n2", Version: "v1", NodeState: decide.NodeReady, State: decide.InstanceRunning, Health: decide.Healthy, Ready: true},
		}}
	for _, a := range decide.Plan(s) {
		fmt.Println(a.Kind, a.Instance, a.What, a.Why)
	}
	// Output:
	// exit web-1 crash exited: signal: killed
	// start  restart replacing an exited instance
}
