package play

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// Result is the outcome of one step.
type Result struct {
	Step     string
	Detect   time.Duration // from the fault to the agent's first observation of it
	Heal     time.Duration // from the fault to healed
	Deadline time.Duration // Heal must not exceed it
	Goal     string        // the goal the step is measured against, if any
	GoalMet  bool
	Requests int // client requests sent through the front door during the step
	OK       int // of which succeeded
	Pass     bool
	Note     string
}

// SuccessRate is OK / Requests (1 without requests).
func (r Result) SuccessRate() float64 {
	if r.Requests == 0 {
		return 1
	}
	return float64(r.OK) / float64(r.Requests)
}

func (r Result) String() string {
	s := fmt.Sprintf("%-26s detect %7.3fs  heal %7.3fs (deadline %4.0fs)  clients %5d/%-5d = %7.3f%%",
		r.Step, r.Detect.Seconds(), r.Heal.Seconds(), r.Deadline.Seconds(), r.OK, r.Requests, 100*r.SuccessRate())
	if r.Goal != "" {
		met := "met"
		if !r.GoalMet {
			met = "MISSED"
		}
		s += fmt.Sprintf("  goal %s: %s", r.Goal, met)
	}
	if !r.Pass {
		s += "  FAIL: " + r.Note
	}
	return s
}

// Step is one step of the demo.
type Step struct {
	Name string
	Run  func(ctx context.Context, f *Fleet) Result
}

// Steps are the demo's steps, in the order the demo plays them.
var Steps = []Step{
	{"crash -> restart", Crash},
	{"hang -> replace", Hang},
	{"node failure -> reschedule", NodeFailure},
	{"latency -> scale out", LatencyScaleOut},
	{"relieved -> scale in", LatencyRelieved},
	{"creeping latency -> early", CreepingLatency},
	{"scale to 12", ScaleTo12},
	{"rolling update v2", RollingUpdate},
	{"bad version -> rollback", BadVersion},
	{"memory leak -> replace", MemoryLeak},
}

func (f *Fleet) finish(r *Result, t0 time.Time, obs, healed eventlog.Event, okObs, okHealed bool) {
	end := time.Now()
	if okObs {
		r.Detect = obs.Time.Sub(t0)
	}
	if okHealed {
		r.Heal = healed.Time.Sub(t0)
		end = healed.Time.Add(500 * time.Millisecond)
		for time.Now().Before(end) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	r.Requests, r.OK = f.Load.Between(t0, end)
	for why, n := range f.Load.Failures(t0, end) {
		f.Printf("!! %d client requests failed: %s", n, why)
	}
	r.Pass = okObs && okHealed && r.Heal <= r.Deadline
	switch {
	case !okObs:
		r.Note = "the fault was not observed"
	case !okHealed:
		r.Note = "not healed"
	case r.Heal > r.Deadline:
		r.Note = "healed after the deadline"
	}
	f.Printf("== %s", r)
}

func (f *Fleet) pick(ctx context.Context) (string, string, bool) {
	for _, in := range f.Instances(ctx) {
		if in.Ready {
			return in.ID, in.Addr, true
		}
	}
	return "", "", false
}

// inject picks a ready instance, announces what is done to it (announce has one %s
// verb for the instance) and injects the fault. It returns the instance and the time
// of the fault; when no instance is ready or the fault fails it sets r.Note and
// returns false.
func (f *Fleet) inject(ctx context.Context, r *Result, fault, announce string, args ...any) (string, time.Time, bool) {
	id, addr, ok := f.pick(ctx)
	if !ok {
		r.Note = "no ready instance"
		return "", time.Time{}, false
	}
	f.Printf(announce, append([]any{id}, args...)...)
	t0 := time.Now()
	if err := f.Fault(ctx, addr, fault); err != nil {
		r.Note = err.Error()
		return "", time.Time{}, false
	}
	return id, t0, true
}

// healedIncident waits until the agent reports the incident of obs healed.
func (f *Fleet) healedIncident(ctx context.Context, t0 time.Time, deadline time.Duration, obs eventlog.Event, okObs bool) (eventlog.Event, bool) {
	return f.Await(ctx, t0, deadline, func(e eventlog.Event) bool {
		return okObs && e.Kind == eventlog.Healed && e.Incident == obs.Incident
	})
}

// Crash crashes one replica; the agent restarts it. Goal: replaced within 2 probe
// intervals plus its start time.
func Crash(ctx context.Context, f *Fleet) Result {
	r := Result{Step: "crash -> restart", Deadline: 5 * time.Second}
	id, t0, ok := f.inject(ctx, &r, "crash", ">> crash %s")
	if !ok {
		return r
	}
	obs, okObs := f.Await(ctx, t0, r.Deadline, func(e eventlog.Event) bool {
		return e.Kind == eventlog.Observed && e.What == "crash" && e.Instance == id
	})
	healed, okHealed := f.healedIncident(ctx, t0, r.Deadline, obs, okObs)
	if okHealed {
		if st, ok := f.Await(ctx, t0, 0, func(e eventlog.Event) bool {
			return e.Kind == eventlog.Acted && e.What == "start" && e.Incident == obs.Incident
		}); ok {
			startTime := healed.Time.Sub(st.Time)
			goal := 2*f.opt.Interval + startTime
			r.Goal = fmt.Sprintf("<= 2 intervals + start time (%.3fs)", goal.Seconds())
			r.GoalMet = healed.Time.Sub(t0) <= goal
		}
	}
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	return r
}

// Hang makes one replica hang; the agent replaces it.
func Hang(ctx context.Context, f *Fleet) Result {
	r := Result{Step: "hang -> replace", Deadline: 8 * time.Second}
	id, t0, ok := f.inject(ctx, &r, "hang", ">> hang %s")
	if !ok {
		return r
	}
	obs, okObs := f.Await(ctx, t0, r.Deadline, func(e eventlog.Event) bool {
		return e.Kind == eventlog.Observed && e.What == "unhealthy" && e.Instance == id
	})
	healed, okHealed := f.healedIncident(ctx, t0, r.Deadline, obs, okObs)
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	return r
}

// NodeFailure fails the node with the most replicas; the agent reschedules them.
func NodeFailure(ctx context.Context, f *Fleet) Result {
	r := Result{Step: "node failure -> reschedule", Deadline: 8 * time.Second}
	per := map[string]int{}
	for _, in := range f.Instances(ctx) {
		per[in.Node]++
	}
	node, n := "", 0
	for _, name := range f.opt.Nodes {
		if per[name] > n {
			node, n = name, per[name]
		}
	}
	want := f.Agent.Status(ctx, 0).Services[0].Desired
	f.Printf(">> node %s fails (%d replicas on it)", node, n)
	t0 := time.Now()
	if err := f.NodeState(ctx, node, driver.NodeDown); err != nil {
		r.Note = err.Error()
		return r
	}
	obs, okObs := f.Await(ctx, t0, r.Deadline, func(e eventlog.Event) bool {
		return e.Kind == eventlog.Observed && e.What == "node-down"
	})
	var healed eventlog.Event
	okHealed := okObs && WaitFor(ctx, r.Deadline, func() bool {
		incs := map[string]bool{}
		for _, e := range f.EventsSince(t0) {
			if e.Kind == eventlog.Observed && e.What == "node-down" {
				incs[e.Incident] = true
			}
		}
		for _, e := range f.EventsSince(t0) {
			if e.Kind == eventlog.Healed && incs[e.Incident] {
				delete(incs, e.Incident)
				healed = e
			}
		}
		return len(incs) == 0 && f.ReadyCount("") >= want
	})
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	for _, in := range f.Instances(ctx) {
		if in.Node == node && in.Ready {
			r.Pass, r.Note = false, "an instance is still on the failed node"
		}
	}
	_ = f.NodeState(ctx, node, driver.NodeReady)
	f.Printf(">> node %s is back", node)
	return r
}

// LatencyScaleOut adds latency to every replica; the agent scales out.
func LatencyScaleOut(ctx context.Context, f *Fleet) Result {
	r := Result{Step: "latency -> scale out", Deadline: 10 * time.Second}
	f.Printf(">> +300ms latency on every replica")
	t0 := time.Now()
	for _, in := range f.Instances(ctx) {
		_ = f.Fault(ctx, in.Addr, "latency?ms=300")
	}
	obs, okObs := f.Await(ctx, t0, r.Deadline, func(e eventlog.Event) bool {
		return e.Kind == eventlog.Decided && (e.What == "scale-out" || e.What == "scale-out-early")
	})
	healed, okHealed := f.healedIncident(ctx, t0, r.Deadline, obs, okObs)
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	return r
}

// LatencyRelieved removes the latency; the agent scales back in.
func LatencyRelieved(ctx context.Context, f *Fleet) Result {
	r := Result{Step: "relieved -> scale in", Deadline: 20 * time.Second}
	f.Printf(">> latency removed")
	t0 := time.Now()
	for _, in := range f.Instances(ctx) {
		_ = f.Fault(ctx, in.Addr, "reset")
	}
	obs, okObs := f.Await(ctx, t0, r.Deadline, func(e eventlog.Event) bool {
		return e.Kind == eventlog.Decided && e.What == "scale-in"
	})
	var healed eventlog.Event
	okHealed := okObs && WaitFor(ctx, r.Deadline, func() bool {
		e, ok := f.Await(ctx, t0, 0, func(e eventlog.Event) bool {
			return e.Kind == eventlog.Healed && e.What == "scaled"
		})
		st := f.Agent.Status(ctx, 0).Services[0]
		healed = e
		return ok && st.Desired == f.opt.Replicas && st.Ready == f.opt.Replicas
	})
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	return r
}

// ScaleTo12 scales the service to 12 by hand.
func ScaleTo12(ctx context.Context, f *Fleet) Result { return ScaleTo(ctx, f, 12) }

// ScaleTo scales the service by hand.
func ScaleTo(ctx context.Context, f *Fleet, n int) Result {
	r := Result{Step: fmt.Sprintf("scale to %d", n), Deadline: 15 * time.Second}
	f.Printf(">> scale %s to %d", f.service, n)
	t0 := time.Now()
	if err := f.Agent.Scale(f.service, n); err != nil {
		r.Note = err.Error()
		return r
	}
	obs, okObs := f.Await(ctx, t0, r.Deadline, func(e eventlog.Event) bool {
		return e.Kind == eventlog.Decided && e.What == "scale"
	})
	healed, okHealed := f.healedIncident(ctx, t0, r.Deadline, obs, okObs)
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	if r.Pass && f.ReadyCount("") != n {
		r.Pass, r.Note = false, fmt.Sprintf("%d ready, want %d", f.ReadyCount(""), n)
	}
	return r
}

// RollingUpdate rolls v2 out, 3 at a time with a delay.
func RollingUpdate(ctx context.Context, f *Fleet) Result {
	return rollout(ctx, f, "rolling update v2", "v2", 60*time.Second, false)
}

// BadVersion rolls out a version that never becomes ready; the agent rolls back.
func BadVersion(ctx context.Context, f *Fleet) Result {
	return rollout(ctx, f, "bad version -> rollback", "v3-broken", 30*time.Second, true)
}

// startUpdate announces and starts the update of the fleet's service to version. It
// returns the service as it was before and the start time, or false with r.Note set
// when the agent refused the update.
func (f *Fleet) startUpdate(ctx context.Context, r *Result, version string) (core.ServiceStatus, time.Time, bool) {
	before := f.Agent.Status(ctx, 0).Services[0]
	f.Printf(">> update %s %s -> %s (%d replicas, %s)", f.service, before.Version, version, before.Desired, f.updateNote())
	t0 := time.Now()
	if err := f.Agent.Update(f.service, version); err != nil {
		r.Note = err.Error()
		return before, t0, false
	}
	return before, t0, true
}

// servedGoal sets the goal of a step that healed: clients served through it.
func servedGoal(r *Result) {
	if r.Pass {
		r.Goal = ">= 99.9% clients served"
		r.GoalMet = r.SuccessRate() >= 0.999
	}
}

func rollout(ctx context.Context, f *Fleet, name, version string, deadline time.Duration, bad bool) Result {
	r := Result{Step: name, Deadline: deadline}
	before, t0, ok := f.startUpdate(ctx, &r, version)
	if !ok {
		return r
	}
	obs, okObs := f.Await(ctx, t0, r.Deadline, func(e eventlog.Event) bool {
		if bad {
			return e.Kind == eventlog.Observed && e.What == "rollout-failure"
		}
		return e.Kind == eventlog.Acted && e.What == "rollout-batch"
	})
	healed, okHealed := f.Await(ctx, t0, r.Deadline, func(e eventlog.Event) bool {
		if bad {
			return e.Kind == eventlog.Healed && e.What == "rollback"
		}
		return e.Kind == eventlog.Healed && e.What == "rollout"
	})
	if okHealed {
		okHealed = WaitFor(ctx, 5*time.Second, func() bool {
			want := version
			if bad {
				want = before.Version
			}
			return f.ReadyCount(want) == before.Desired
		})
	}
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	servedGoal(&r)
	return r
}

// MemoryLeak makes one replica leak memory; the agent replaces it before it dies.
func MemoryLeak(ctx context.Context, f *Fleet) Result {
	r := Result{Step: "memory leak -> replace", Deadline: 10 * time.Second}
	if st := f.Agent.Status(ctx, 0).Services[0]; st.Desired != f.opt.Replicas {
		f.Printf(">> (scale back to %d first)", f.opt.Replicas)
		_ = f.Agent.Scale(f.service, f.opt.Replicas)
		WaitFor(ctx, 15*time.Second, func() bool {
			s := f.Agent.Status(ctx, 0).Services[0]
			return s.Running == f.opt.Replicas && s.Ready == f.opt.Replicas
		})
	}
	id, t0, ok := f.inject(ctx, &r, "leak?mbps=25", ">> %s leaks 25 MB/s (heap limit %d MiB)", f.opt.HeapLimit>>20)
	if !ok {
		return r
	}
	obs, okObs := f.Await(ctx, t0, r.Deadline, func(e eventlog.Event) bool {
		return e.Kind == eventlog.Observed && e.What == "heap-trend" && e.Instance == id
	})
	healed, okHealed := f.healedIncident(ctx, t0, r.Deadline, obs, okObs)
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	crashed := slices.ContainsFunc(f.EventsSince(t0), func(e eventlog.Event) bool {
		return e.What == "crash" && e.Instance == id
	})
	r.Goal = "replaced before it dies"
	r.GoalMet = !crashed
	if crashed {
		r.Pass, r.Note = false, "the leaking instance died before it was replaced"
	}
	return r
}

// CreepingLatency raises the latency of every replica a little every probe
// interval; the agent scales out early, on the trend, before the latency crosses
// its target band.
func CreepingLatency(ctx context.Context, f *Fleet) Result {
	r := Result{Step: "creeping latency -> early", Deadline: 15 * time.Second}
	f.Printf(">> latency creeps up 10ms every %s on every replica", f.opt.Interval)
	t0 := time.Now()
	var obs eventlog.Event
	okObs := false
	for ms := 10; ms <= 400 && !okObs; ms += 10 {
		for _, in := range f.Instances(ctx) {
			_ = f.Fault(ctx, in.Addr, fmt.Sprintf("latency?ms=%d", ms))
		}
		obs, okObs = f.Await(ctx, t0, f.opt.Interval, func(e eventlog.Event) bool {
			return e.Kind == eventlog.Decided && (e.What == "scale-out-early" || e.What == "scale-out")
		})
	}
	healed, okHealed := f.healedIncident(ctx, t0, r.Deadline, obs, okObs)
	for _, in := range f.Instances(ctx) {
		_ = f.Fault(ctx, in.Addr, "reset")
	}
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	r.Goal = "scaled out on the trend, before the band"
	r.GoalMet = okObs && obs.What == "scale-out-early"
	return r
}
