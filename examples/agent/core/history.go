package core

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// Bounds of the history the agent keeps in memory for its status page. Nothing
// grows beyond them, whatever runs for however long.
const (
	// HistorySamples is how many samples the agent keeps per service: one every
	// Config.SampleInterval (1 s by default), so an hour at the default.
	HistorySamples = 3600
	// HistoryEvents is how many events the history keeps (the oldest go first).
	HistoryEvents = 5000
	// HistoryIncidents is how many incidents it keeps (the oldest closed ones go
	// first; open ones are kept while there are fewer than this).
	HistoryIncidents = 1000
	// IncidentEvents is how many events an incident keeps (its first ones and
	// its last ones; those in between are counted, not kept).
	IncidentEvents = 64
	// historyRestarts bounds the per-instance restart counts.
	historyRestarts = 8192
)

// Sample is one point of a service's time series.
type Sample struct {
	Time    time.Time `json:"time"`
	Ready   int       `json:"ready"`
	Running int       `json:"running"`
	Wanted  int       `json:"wanted"`
	// P50Ms and P99Ms are the mean over the ready instances of the latency
	// quantiles their health documents report; -1 when none reports one.
	P50Ms float64 `json:"p50Ms"`
	P99Ms float64 `json:"p99Ms"`
	// Requests is how many requests the front door received since the previous
	// sample, Success the share of them it did not fail itself (502, 503, no
	// ready instance); -1 without requests or without a front door.
	Requests int64   `json:"requests"`
	Success  float64 `json:"success"`
	// Ejections is how many times the front door took an instance out of
	// rotation since the previous sample.
	Ejections int64 `json:"ejections,omitempty"`
}

// Incident is the history of one incident: a fault, or a change an operator or the
// autoscaler asked for, from its first event to its healing.
type Incident struct {
	ID       string    `json:"id"`
	Service  string    `json:"service"`
	Instance string    `json:"instance,omitempty"` // the instance that failed, if one did
	Node     string    `json:"node,omitempty"`
	Opened   time.Time `json:"opened"`
	Closed   time.Time `json:"closed,omitzero"`
	// Observed is what the agent saw ("crash: exit status 1"), Decided what it
	// decided and Done what it did, in order and without repeats.
	Observed []string `json:"observed,omitempty"`
	Decided  []string `json:"decided,omitempty"`
	Done     []string `json:"done,omitempty"`
	// DetectMs is the time to detect (from the first failed probe or the exit to
	// the decision), HealMs the time to heal (from detection to healed); 0 until
	// known.
	DetectMs float64 `json:"detectMs,omitempty"`
	HealMs   float64 `json:"healMs,omitempty"`
	// Outcome is "open", "healed", "held" (the agent would act but may not) or
	// "failed" (an action failed or the agent gave up).
	Outcome string `json:"outcome"`
	// Events are the incident's events (at most IncidentEvents; Dropped says how
	// many more there were).
	Events  []eventlog.Event `json:"events"`
	Dropped int              `json:"droppedEvents,omitempty"`
}

// Open reports whether the incident is not healed yet.
func (i *Incident) Open() bool { return i.Outcome != "healed" }

// history is what the status page shows beyond the present: samples, events and
// incidents, all bounded. It has its own lock, taken after Agent.mu (never the
// other way round).
type history struct {
	mu       sync.Mutex
	samples  map[string]*ring[Sample]
	events   ring[eventlog.Event]
	incs     map[string]*Incident
	incOrder []string // oldest first
	restarts map[string]int
	doorLast map[string][2]int64 // requests, failures at the previous sample
	ejLast   map[string]int64
	version  uint64 // bumped on every change

	// liveMu guards frags, the live renderings the pages share (one per
	// window); it is taken before Agent.mu and mu.
	liveMu sync.Mutex
	frags  map[time.Duration]liveFrag
}

func newHistory() *history {
	return &history{samples: map[string]*ring[Sample]{}, events: ring[eventlog.Event]{buf: make([]eventlog.Event, HistoryEvents)},
		incs: map[string]*Incident{}, frags: map[time.Duration]liveFrag{}, restarts: map[string]int{}, doorLast: map[string][2]int64{}, ejLast: map[string]int64{}}
}

// ring is a fixed-size ring buffer.
type ring[T any] struct {
	buf  []T
	next int
	full bool
}

func (r *ring[T]) add(v T) {
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

func (r *ring[T]) len() int {
	if r.full {
		return len(r.buf)
	}
	return r.next
}

// at returns the i-th oldest element.
func (r *ring[T]) at(i int) T {
	if r.full {
		return r.buf[(r.next+i)%len(r.buf)]
	}
	return r.buf[i]
}

// record files an event.
func (h *history) record(e eventlog.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.version++
	h.events.add(e)
	if e.Incident == "" {
		return
	}
	inc := h.incs[e.Incident]
	if inc == nil {
		inc = &Incident{ID: e.Incident, Service: e.Service, Opened: e.Time, Outcome: "open"}
		h.incs[e.Incident] = inc
		h.incOrder = append(h.incOrder, e.Incident)
		h.trimIncidents()
	}
	if e.Kind == eventlog.Acted && e.What == "start" && inc.Instance != "" && e.Instance != "" && e.Instance != inc.Instance {
		if len(h.restarts) >= historyRestarts {
			clear(h.restarts)
		}
		h.restarts[e.Instance] = h.restarts[inc.Instance] + 1
	}
	if inc.Instance == "" && e.Instance != "" && e.Kind != eventlog.Acted {
		inc.Instance = e.Instance
	}
	if inc.Node == "" && e.Node != "" {
		inc.Node = e.Node
	}
	what := e.What
	if e.Why != "" && e.Kind == eventlog.Observed {
		what += ": " + e.Why
	}
	// The time to detect is on the decision for a failed probe, on the
	// observation for an exit.
	if e.DetectMs > 0 && inc.DetectMs == 0 {
		inc.DetectMs = e.DetectMs
	}
	switch e.Kind {
	case eventlog.Observed:
		inc.Observed = addOnce(inc.Observed, what)
	case eventlog.Decided:
		inc.Decided = addOnce(inc.Decided, e.What)
	case eventlog.Acted:
		inc.Done = addOnce(inc.Done, e.What)
	case eventlog.Held:
		inc.Decided = addOnce(inc.Decided, "held: "+e.What)
		if inc.Outcome == "open" {
			inc.Outcome = "held"
		}
	case eventlog.Failed:
		inc.Done = addOnce(inc.Done, "failed: "+e.What)
		if inc.Outcome != "healed" {
			inc.Outcome = "failed"
		}
	case eventlog.Healed:
		inc.Outcome, inc.Closed, inc.HealMs = "healed", e.Time, e.HealMs
		inc.Done = addOnce(inc.Done, e.What)
	}
	if len(inc.Events) < IncidentEvents {
		inc.Events = append(inc.Events, e)
	} else {
		// Keep the first half and the latest ones.
		half := IncidentEvents / 2
		copy(inc.Events[half:], inc.Events[half+1:])
		inc.Events[len(inc.Events)-1] = e
		inc.Dropped++
	}
}

func addOnce(l []string, s string) []string {
	if len(l) >= 16 || slices.Contains(l, s) {
		return l
	}
	return append(l, s)
}

// trimIncidents drops the oldest incidents beyond HistoryIncidents, closed ones
// first.
func (h *history) trimIncidents() {
	for len(h.incOrder) > HistoryIncidents {
		drop := 0
		for i, id := range h.incOrder {
			if !h.incs[id].Open() {
				drop = i
				break
			}
		}
		delete(h.incs, h.incOrder[drop])
		h.incOrder = slices.Delete(h.incOrder, drop, drop+1)
	}
}

// sample takes one sample of every service.
func (a *Agent) sample(now time.Time) {
	type door struct{ req, fail, ej int64 }
	doors := map[string]door{}
	for name, fd := range a.doors {
		st := fd.Stats()
		doors[name] = door{st.Requests, st.Failures, st.Ejections}
	}
	var out []struct {
		name string
		s    Sample
	}
	live := map[string]bool{}
	a.mu.Lock()
	for _, name := range a.order {
		s := a.svcs[name]
		sm := Sample{Time: now, Wanted: s.desired, P50Ms: -1, P99Ms: -1, Success: -1}
		var p50, p99 []float64
		for _, m := range s.members {
			if m.gone {
				continue
			}
			live[m.inst.ID] = true
			if m.inst.State == "running" && !m.stopping {
				sm.Running++
			}
			if m.routable() {
				sm.Ready++
				if m.p50 >= 0 {
					p50 = append(p50, m.p50)
				}
				if m.p99 >= 0 {
					p99 = append(p99, m.p99)
				}
			}
		}
		if len(p50) > 0 {
			sm.P50Ms = avg(p50)
		}
		if len(p99) > 0 {
			sm.P99Ms = avg(p99)
		}
		out = append(out, struct {
			name string
			s    Sample
		}{name, sm})
	}
	a.mu.Unlock()

	h := a.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	h.version++
	for _, o := range out {
		if d, ok := doors[o.name]; ok {
			last, seen := h.doorLast[o.name]
			if seen {
				if dr := d.req - last[0]; dr > 0 {
					o.s.Requests = dr
					o.s.Success = 1 - float64(d.fail-last[1])/float64(dr)
				}
				o.s.Ejections = d.ej - h.ejLast[o.name]
			}
			h.doorLast[o.name] = [2]int64{d.req, d.fail}
			h.ejLast[o.name] = d.ej
		}
		r := h.samples[o.name]
		if r == nil {
			r = &ring[Sample]{buf: make([]Sample, HistorySamples)}
			h.samples[o.name] = r
		}
		r.add(o.s)
	}
	if len(h.restarts) > len(live) {
		for id := range h.restarts {
			if !live[id] {
				delete(h.restarts, id)
			}
		}
	}
}

// sampler samples every interval until ctx ends.
func (a *Agent) sampler(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	a.sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			a.sample(now)
		}
	}
}

// Series returns the samples of service since since, oldest first.
func (a *Agent) Series(service string, since time.Time) []Sample {
	h := a.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.samples[service]
	if r == nil {
		return nil
	}
	n := r.len()
	// Samples are in time order: find the first one at or after since.
	lo, hi := 0, n
	for lo < hi {
		mid := (lo + hi) / 2
		if r.at(mid).Time.Before(since) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	out := make([]Sample, 0, n-lo)
	for j := lo; j < n; j++ {
		out = append(out, r.at(j))
	}
	return out
}

// EventFilter selects events or incidents; empty fields match everything.
type EventFilter struct {
	Service  string
	Instance string
	Kind     string // an event kind (observed, decided, held, acted, healed, failed)
	Since    time.Time
}

func (f EventFilter) match(e *eventlog.Event) bool {
	return (f.Service == "" || e.Service == f.Service) && (f.Instance == "" || e.Instance == f.Instance) &&
		(f.Kind == "" || e.Kind == f.Kind) && (f.Since.IsZero() || !e.Time.Before(f.Since))
}

// HistoryEvents returns the events that match f, newest first: the page-th page
// (from 1) of per events, and how many match in all.
func (a *Agent) HistoryEvents(f EventFilter, page, per int) ([]eventlog.Event, int) {
	h := a.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	skip, total := (page-1)*per, 0
	var out []eventlog.Event
	for i := h.events.len() - 1; i >= 0; i-- {
		e := h.events.at(i)
		if !f.match(&e) {
			continue
		}
		if total >= skip && len(out) < per {
			out = append(out, e)
		}
		total++
	}
	return out, total
}

// Incidents returns the incidents that match f (Kind is an outcome here: open,
// healed, held, failed; "open" means not healed), open ones first, then newest
// first: the page-th page (from 1) of per, and how many match in all. The
// incidents are copies.
func (a *Agent) Incidents(f EventFilter, page, per int) ([]Incident, int) {
	h := a.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	var sel []*Incident
	for i := len(h.incOrder) - 1; i >= 0; i-- {
		inc := h.incs[h.incOrder[i]]
		if f.Service != "" && inc.Service != f.Service {
			continue
		}
		if f.Instance != "" && inc.Instance != f.Instance && !slices.ContainsFunc(inc.Events, func(e eventlog.Event) bool { return e.Instance == f.Instance }) {
			continue
		}
		if f.Kind != "" && inc.Outcome != f.Kind && (f.Kind != "open" || !inc.Open()) {
			continue
		}
		if !f.Since.IsZero() && inc.Opened.Before(f.Since) && !inc.Open() && inc.Closed.Before(f.Since) {
			continue
		}
		sel = append(sel, inc)
	}
	slices.SortStableFunc(sel, func(x, y *Incident) int {
		if x.Open() != y.Open() {
			if x.Open() {
				return -1
			}
			return 1
		}
		return 0
	})
	total := len(sel)
	lo := min((page-1)*per, total)
	hi := min(lo+per, total)
	out := make([]Incident, 0, hi-lo)
	for _, inc := range sel[lo:hi] {
		c := *inc
		c.Observed, c.Decided, c.Done = slices.Clone(c.Observed), slices.Clone(c.Decided), slices.Clone(c.Done)
		c.Events = slices.Clone(c.Events)
		out = append(out, c)
	}
	return out, total
}

// markers returns the agent's actions on service since since, for the charts.
func (a *Agent) markers(service string, since time.Time) []marker {
	h := a.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []marker
	for i := h.events.len() - 1; i >= 0; i-- {
		e := h.events.at(i)
		if e.Time.Before(since) {
			break
		}
		if e.Service != service {
			continue
		}
		if label := actionLabel(&e); label != "" {
			out = append(out, marker{Time: e.Time, Label: label, Why: e.Instance + " " + e.Why})
		}
	}
	if r := h.samples[service]; r != nil {
		for i := r.len() - 1; i >= 0; i-- {
			s := r.at(i)
			if s.Time.Before(since) {
				break
			}
			if s.Ejections > 0 {
				out = append(out, marker{Time: s.Time, Label: "eject", Why: "the front door took an instance out of rotation"})
			}
		}
	}
	return out
}

type marker struct {
	Time  time.Time
	Label string
	Why   string
}

// actionLabel names an action for the charts' time axis ("" for other events).
func actionLabel(e *eventlog.Event) string {
	switch {
	case e.Kind == eventlog.Decided && (e.What == "restart" || e.What == "replace" || e.What == "rollback"):
		return e.What
	case e.Kind == eventlog.Decided && (e.What == "scale" || strings.HasPrefix(e.What, "scale-")):
		return "scale"
	case e.Kind == eventlog.Acted && strings.HasSuffix(e.What, "-batch"):
		return "rollout batch"
	}
	return ""
}

// restartCount returns how many times the instance's slot was restarted or
// replaced: the count of the instance it replaced, plus one.
func (a *Agent) restartCount(id string) int {
	h := a.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.restarts[id]
}

func avg(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}
