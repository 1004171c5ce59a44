package decide

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// InstanceState is the driver's view of an instance, as the planner sees it.
type InstanceState string

// Instance states (the driver's own names).
const (
	InstanceStarting InstanceState = "starting"
	InstanceRunning  InstanceState = "running"
	InstanceExited   InstanceState = "exited"
)

// NodeState is the state of a node, as the planner sees it (the driver's names).
type NodeState string

// Node states the planner acts on; any other state counts as not ready.
const (
	NodeReady    NodeState = "ready"
	NodeDegraded NodeState = "degraded"
	NodeDown     NodeState = "down"
)

// Instance is one instance in a [Snapshot]: what the driver reports, the verdict of
// its [Tracker], and what the agent is doing with it.
type Instance struct {
	ID, Node, Version string
	NodeState         NodeState
	State             InstanceState
	ExitReason        string
	StartedAt         time.Time
	ExitedAt          time.Time // zero: unknown

	Health     Health
	Ready      bool      // ready by its last probe
	LastError  string    // of its last failed probe
	ReadySince time.Time // ready since then (zero: not ready)
	// NotReadySince: live but not ready since then; zero when ready or not live.
	NotReadySince time.Time
	NotReadyWhy   string // why not ready, by its last probe

	Stopping bool // being stopped by the agent
	Gone     bool // its exit was handled
	// ReplacedBy is the id of its replacement, "pending" while the replacement
	// starts, or empty.
	ReplacedBy string
	Replaces   string // the instance this one replaces, until it is ready
	Incident   string // the incident this instance heals or is part of
	Preventive bool   // a preventive replacement is under way for it
	Reported   bool   // its unhealthiness was reported
	// VerifyUntil: it healed VerifyIncident and is watched until then.
	VerifyUntil    time.Time
	VerifyIncident string
	InBatch        bool // a new instance of the current rollout batch

	Heap, Goroutines Series // samples of its health document

	// Traffic is what the front door saw of it over the outlier window; Recent, over
	// the last quarter of that window (an instance whose recent traffic is back in
	// line with its peers is not ejected for what the window still remembers).
	Traffic, Recent Traffic
	// EjectedUntil: ejected from the front door as an outlier until then (zero:
	// not ejected); Ejections counts its ejections, less those forgiven: the count
	// decays by one for every OutlierConfig.BaseEjection the instance stays in the
	// front door, counted from EjectionsSince (when its last ejection ended or the
	// count last decayed), as Envoy's ejection multiplier does.
	EjectedUntil   time.Time
	Ejections      int
	EjectionsSince time.Time
}

// ejected reports whether m is out of the front door as an outlier at now.
func (m *Instance) ejected(now time.Time) bool { return now.Before(m.EjectedUntil) }

// Restart is a restart the service owes: an instance exited and its replacement
// has not started yet.
type Restart struct {
	Incident string
	Node     string // where the exited instance ran (preferred on a tie)
	Avoid    string // escalation: the node where the last replacement failed again
	Counts   bool   // toward the crash-loop backoff (false for a node failure)
}

// BackoffView is what the service's [Backoff] says at the snapshot's time: Delay
// and Loop are [Backoff.Delay] now, Next and NextLoop after one more restart now.
type BackoffView struct {
	Delay, Next     time.Duration
	Loop, NextLoop  bool
	Restarts        int           // restarts within the window, before now
	CrashLoopWindow time.Duration // for the reason
}

// ScaleView is the autoscaler's recommendation of this round.
type ScaleView struct {
	Decision Decision
	Basis    string // what the ratio is made of, for the reason
}

// Limits are the preventive limits of a service's instances.
type Limits struct {
	Heap       float64 // bytes; <= 0: none
	Goroutines int     // <= 0: none
	Horizon    time.Duration
	MinSpan    time.Duration // the shortest span of samples a trend needs
}

// Snapshot is everything [Plan] looks at: one service, its instances, the node
// states and the clock.
type Snapshot struct {
	Now     time.Time
	Service string
	Desired int
	Version string
	DryRun  bool
	// Orchestrated: the driver's orchestrator (Swarm, Kubernetes) restarts
	// exited instances, keeps the replica count and places instances itself.
	// The plan then starts and stops nothing for the count: an exit is reported
	// and owed a restart that the orchestrator makes (healed once the count is
	// met by ready instances), an instance to replace is evicted (stopped for the
	// orchestrator to replace), and a preventive replacement is an eviction
	// too, one at a time and not while a restart is owed (it cannot surge
	// first); a degraded node is left to the driver.
	Orchestrated bool
	Starting     int // plain starts in flight
	// Replacing lists the instances whose replacement is starting (the driver's
	// start in flight, the new instance not listed yet). While the instance it
	// replaces counts toward the replica count, a replacement does not (surge
	// first); once that instance left (exited, stopped, forgotten) the
	// replacement counts in its place, starting or listed, exactly once.
	Replacing []string
	Pending   []Restart
	// RestartAt is when the next counted restart may start; zero: not decided.
	RestartAt time.Time
	GaveUp    bool // the crash loop was reported
	Backoff   BackoffView

	// Budget is how many disruptive actions the fleet's budget still allows;
	// BudgetMax and BudgetWindow are its limits, for the reason.
	Budget       int
	BudgetMax    int
	BudgetWindow time.Duration
	// BrokenFraction: see [Broken].
	BrokenFraction float64

	Rollout bool // a rolling update is in progress
	// Update is the rolling update that Plan steps (drivers that place
	// instances; an orchestrator runs its own): nil when none is in progress.
	Update       *Rollout
	StartTimeout time.Duration // a replacement not ready by then is given up
	// NotReadyTimeout: a live instance not ready for this long is replaced;
	// <= 0 means 30 s.
	NotReadyTimeout time.Duration
	Monitor         time.Duration // a healed instance is watched this long
	Limits          Limits
	Outliers        OutlierConfig

	// Scale is the autoscaler's recommendation, nil when it did not run.
	Scale *ScaleView
	// ScaleIncident is the open incident of a scale or restart wave, and
	// ScaleIncidentWhat its kind ("" when it is not open any more).
	ScaleIncident, ScaleIncidentWhat string

	Instances []Instance
}

// ActionKind says what an [Action] does.
type ActionKind string

// Action kinds, in the order Plan may emit them.
const (
	// ActExit: Instance exited. Unless Quiet (it was being stopped), What (crash
	// or node-down) is reported; Restart, when set, is owed; ReleaseOld (a
	// replacement that died) gets its old instance back for another try; Forget
	// removes it from the driver.
	ActExit ActionKind = "exit"
	// ActHold: nothing is done for Why; Key limits the report to one every 5 s.
	ActHold ActionKind = "hold"
	// ActReplace: a replacement for Instance starts; the instance is stopped once
	// it is ready. Preventive replacements report What first. Spends the budget.
	ActReplace ActionKind = "replace"
	// ActRetire: Instance, a replacement, is ready: Old is stopped, and Incident
	// healed when Heal.
	ActRetire ActionKind = "retire"
	// ActReturn: Instance's ejection ended: it is back in the front door, and
	// Incident healed when Heal.
	ActReturn ActionKind = "return"
	// ActEject: Instance, an outlier (What says which kind), leaves the front
	// door until At.
	ActEject ActionKind = "eject"
	// ActDecay: Instance stayed in the front door, in line with its peers, for
	// a BaseEjection since its last ejection ended (or its count last decayed):
	// its ejection count decays to Ejections, from At on.
	ActDecay ActionKind = "decay"
	// ActEvict: Instance (What says why: unhealthy, not-ready, outlier) is
	// stopped for the orchestrator to replace (Orchestrated); Restart is owed,
	// healed when the count is met by ready instances. Spends the budget.
	ActEvict ActionKind = "evict"
	// ActGiveUp: Instance, a replacement, was not ready within StartTimeout: it is
	// stopped and Old may be replaced again.
	ActGiveUp ActionKind = "give-up"
	// ActHealRestart: Instance, a plain restart, is ready: Incident is healed.
	ActHealRestart ActionKind = "heal-restart"
	// ActScale: the autoscaler sets the replica count to Replicas.
	ActScale ActionKind = "scale"
	// ActCrashLoop: the service restarts in a loop; restarts wait for the window.
	ActCrashLoop ActionKind = "crash-loop"
	// ActBackoff: the next restart waits until At.
	ActBackoff ActionKind = "backoff"
	// ActStart: an instance starts: the restart Restart when set, else a plain
	// start for the replica count.
	ActStart ActionKind = "start"
	// ActClearPending: the count is met; no restart is owed any more.
	ActClearPending ActionKind = "clear-pending"
	// ActHealCount: Incident waited for a restart that is no longer owed, as the
	// count is met (a scale-in came first): it is healed.
	ActHealCount ActionKind = "heal-count"
	// ActScaleIn: Instance is stopped to meet the count.
	ActScaleIn ActionKind = "scale-in"
	// ActHealScale: the count is met by ready instances: Incident is healed.
	ActHealScale ActionKind = "heal-scale"

	// The rolling update's steps (see [Rollout]), last in a plan.

	// ActBatchFailed: Instance, a new instance of the batch, failed (Why): it
	// leaves the batch and counts as failed; it is stopped and Old (the instance
	// it was to replace, when set) stays.
	ActBatchFailed ActionKind = "batch-failed"
	// ActBatchUpdated: Instance was monitored to the end: it leaves the batch
	// and counts as updated.
	ActBatchUpdated ActionKind = "batch-updated"
	// ActRollback: too many new instances failed: the batch's new instances
	// left (IDs) are stopped, and the update is reversed to Version.
	ActRollback ActionKind = "rollback"
	// ActRolloutPause: too many new instances failed: the update pauses.
	ActRolloutPause ActionKind = "rollout-pause"
	// ActBatchDone: every new instance of the batch is judged: the next batch
	// waits until At.
	ActBatchDone ActionKind = "batch-done"
	// ActBatch: a batch starts: a new instance of Version replaces each of IDs
	// (surge first).
	ActBatch ActionKind = "batch"
	// ActRolloutDone: every instance runs Version: the update's incident heals.
	ActRolloutDone ActionKind = "rollout-done"
)

// Action is one step of a [Plan], with its reason.
type Action struct {
	Kind     ActionKind
	Instance string
	Node     string
	What     string // what was observed or decided, as the event log names it
	// Incident is an existing incident, or a new one when Opens is set: then it is
	// a placeholder ("new:<n>") that later actions and restarts of the same plan
	// use too, which the caller binds to the incident it opens.
	Incident string
	Opens    string // the kind of the incident this action opens
	Why      string
	Detail   map[string]any

	Key        string     // ActHold
	Quiet      bool       // ActExit: it was being stopped
	Forget     bool       // ActExit
	Restart    *Restart   // ActExit, ActEvict: owed; ActStart: started
	ReleaseOld string     // ActExit
	Escalate   string     // ActExit, ActReplace: why the new instance avoids the node
	Old        string     // ActRetire, ActGiveUp: the instance replaced
	Heal       bool       // ActRetire
	Version    string     // ActReplace, ActStart
	Avoid      string     // ActReplace: a node
	Preventive bool       // ActReplace
	Replicas   int        // ActScale
	Ejections  int        // ActDecay: the count after the decay
	IDs        []string   // ActBatch: the instances replaced; ActRollback: the new ones stopped
	At         time.Time  // ActBackoff
	DetectMs   float64    // ActExit
	Counts     bool       // ActStart: toward the backoff
	LogOnly    bool       // ActStart: the incident is only logged with the start
	Budget     bool       // spends one action of the disruption budget
	Verify     *time.Time // ActRetire, ActHealRestart: watched until then
}

// IsNewIncident reports whether id is a placeholder of an incident a plan opens.
func IsNewIncident(id string) bool { return len(id) > 4 && id[:4] == "new:" }

// Plan decides one round for a service from snap: a pure function (it reads snap
// and returns actions; it changes nothing and does no I/O). Actions come in the
// order they are to be carried out, and each assumes the ones before it were.
//
// The order: exits; unhealthy instances replaced (unless too many look broken);
// not-ready instances replaced past their timeout; outliers ejected (replaced
// when ejected again) and ejection counts decayed; preventive replacements (heap
// or goroutine trends, degraded nodes), one at a time; replacements that became ready retire the instance they replace, those not
// ready in time are given up; plain restarts that became ready heal; the
// autoscaler's count; the replica count (restarts after their backoff, plain
// starts, scale-in worst first); and a scale healed once the count is met by ready
// instances; last, the rolling update's step (see [Rollout]). With
// snap.Orchestrated the orchestrator restarts, keeps the count and places: see
// [Snapshot].
func Plan(snap Snapshot) []Action {
	p := planner{s: snap, budget: snap.Budget, desired: snap.Desired, starting: snap.Starting,
		pending: slices.Clone(snap.Pending), restartAt: snap.RestartAt, gaveUp: snap.GaveUp, by: map[string]*Instance{}}
	p.insts = slices.Clone(snap.Instances)
	slices.SortFunc(p.insts, func(x, y Instance) int { return cmp.Compare(x.ID, y.ID) })
	for i := range p.insts {
		p.by[p.insts[i].ID] = &p.insts[i]
	}
	p.exits()
	p.replaceUnhealthy()
	p.replaceNotReady()
	p.outliers()
	p.decay()
	p.preventive()
	p.replacements()
	p.restarts()
	p.scale()
	p.count()
	p.healScale()
	p.rollout()
	return p.out
}

type planner struct {
	s         Snapshot
	insts     []Instance // sorted by id; changed as the plan goes
	by        map[string]*Instance
	out       []Action
	budget    int
	desired   int
	starting  int
	pending   []Restart
	restartAt time.Time
	gaveUp    bool
	incs      int
	surging   int             // replacements starting whose old instance left
	outlying  map[string]bool // instances judged outliers this round (ejected or not)
}

func (p *planner) add(a Action) { p.out = append(p.out, a) }

func (p *planner) newIncident() string {
	p.incs++
	return "new:" + strconv.Itoa(p.incs)
}

func running(m *Instance) bool { return !m.Gone && !m.Stopping && m.State == InstanceRunning }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (p *planner) takeBudget(what string) bool {
	if p.budget > 0 {
		p.budget--
		return true
	}
	p.add(Action{Kind: ActHold, Key: "budget", What: what,
		Why: fmt.Sprintf("disruption budget spent (%d per %s)", max(p.s.BudgetMax, 0), or(p.s.BudgetWindow, time.Minute))})
	return false
}

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// exits: an exited instance is reported and forgotten, and a restart owed.
func (p *planner) exits() {
	now := p.s.Now
	for i := range p.insts {
		m := &p.insts[i]
		if m.State != InstanceExited || m.Gone {
			continue
		}
		m.Gone = true
		if m.Stopping {
			p.add(Action{Kind: ActExit, Instance: m.ID, Node: m.Node, Quiet: true})
			continue
		}
		nodeDown := m.NodeState == NodeDown || m.ExitReason == "node down"
		what := "crash"
		if nodeDown {
			what = "node-down"
		}
		// An instance whose probes failed before its exit was reported (as when its
		// node dies) has an incident open already: the exit is part of it. A second
		// incident would be one that nothing heals.
		a := Action{Kind: ActExit, Instance: m.ID, Node: m.Node, What: what, Incident: m.Incident, Forget: !p.s.DryRun}
		if !m.Reported || m.Incident == "" {
			a.Incident, a.Opens = p.newIncident(), what
		} else if m.ReplacedBy != "" {
			// The replacement under way heals the open incident; no restart besides.
			a.Why = "exited: " + m.ExitReason + "; already being replaced"
			p.add(a)
			continue
		}
		if !m.ExitedAt.IsZero() {
			a.DetectMs = ms(now.Sub(m.ExitedAt))
		}
		a.Why = "exited: " + m.ExitReason
		if p.s.Orchestrated {
			// The orchestrator's restart policy replaces it; the restart owed is
			// healed when the count is met by ready instances.
			a.Why += "; the orchestrator's restart policy replaces it"
			a.Forget = false
			req := Restart{Incident: a.Incident, Node: m.Node}
			a.Restart = &req
			p.pending = append(p.pending, req)
			p.add(a)
			continue
		}
		if old := p.by[m.Replaces]; m.Replaces != "" && old != nil {
			old.ReplacedBy = "" // the replacement died; the old instance stays until another try
			a.ReleaseOld = old.ID
		} else {
			req := Restart{Incident: a.Incident, Node: m.Node, Counts: !nodeDown}
			if now.Before(m.VerifyUntil) && !nodeDown {
				req.Avoid, req.Node = m.Node, ""
				a.Escalate = fmt.Sprintf("it healed %s and failed again within the monitor window: escalating, the next replacement goes to another node", m.VerifyIncident)
			}
			a.Restart = &req
			p.pending = append(p.pending, req)
		}
		p.add(a)
	}
}

// replaceUnhealthy: an unhealthy instance is replaced, surge first.
func (p *planner) replaceUnhealthy() {
	total, broken := 0, 0
	for i := range p.insts {
		m := &p.insts[i]
		if running(m) {
			total++
			if m.Health == Unhealthy || m.Health == Suspect {
				broken++
			}
		}
	}
	for i := range p.insts {
		m := &p.insts[i]
		if !running(m) || m.Health != Unhealthy || m.ReplacedBy != "" || m.Replaces != "" {
			continue
		}
		if Broken(broken, total, p.s.BrokenFraction) {
			p.add(Action{Kind: ActHold, Key: "broken", What: "replace",
				Why: fmt.Sprintf("%d of %d instances look broken at once: the fault is likely shared or in the agent's view; holding still", broken, total)})
			break
		}
		if !p.takeBudget("replace " + m.ID) {
			continue
		}
		a := Action{Kind: ActReplace, Instance: m.ID, Node: m.Node, What: "unhealthy", Incident: m.Incident, Version: m.Version,
			Why: "unhealthy: " + m.LastError, Budget: true}
		if a.Incident == "" {
			a.Incident, a.Opens = p.newIncident(), "unhealthy"
		}
		if p.s.Now.Before(m.VerifyUntil) {
			// A relapse seen by its probes before its exit is listed escalates as
			// one seen by its exit does.
			a.Avoid = m.Node
			a.Escalate = fmt.Sprintf("it healed %s and failed again within the monitor window: escalating, the replacement goes to another node", m.VerifyIncident)
		}
		m.Incident = a.Incident
		p.replace(m, a)
	}
}

// replace adds a, the replacement of m (surge first: m is stopped once its
// replacement is ready), or with an orchestrator, m's eviction.
func (p *planner) replace(m *Instance, a Action) {
	if p.s.Orchestrated {
		a.Kind, a.Avoid, a.Escalate = ActEvict, "", ""
		a.Why += "; stopping it for the orchestrator to replace"
		if !p.s.DryRun {
			m.Stopping = true
			req := Restart{Incident: a.Incident, Node: m.Node}
			a.Restart = &req
			p.pending = append(p.pending, req)
		}
		p.add(a)
		return
	}
	if !p.s.DryRun {
		m.ReplacedBy = "pending"
	}
	p.add(a)
}

// replaceNotReady: an instance live but not ready for NotReadyTimeout is
// replaced, surge first (it keeps counting until its replacement is ready), unless
// so many are in that state at once that the cause is likely shared (a dependency
// down): then replacing them would not help.
func (p *planner) replaceNotReady() {
	timeout := or(p.s.NotReadyTimeout, 30*time.Second)
	total, stuck := 0, 0
	due := func(m *Instance) bool {
		return running(m) && m.Health == Healthy && !m.Ready && !m.NotReadySince.IsZero() && p.s.Now.Sub(m.NotReadySince) >= timeout
	}
	for i := range p.insts {
		m := &p.insts[i]
		if running(m) {
			total++
			if due(m) {
				stuck++
			}
		}
	}
	for i := range p.insts {
		m := &p.insts[i]
		if !due(m) || m.ReplacedBy != "" || m.Replaces != "" || m.InBatch {
			continue
		}
		if Broken(stuck, total, p.s.BrokenFraction) {
			p.add(Action{Kind: ActHold, Key: "not-ready", What: "replace",
				Why: fmt.Sprintf("%d of %d instances are live but not ready at once: the cause is likely shared (a dependency down); holding still", stuck, total)})
			return
		}
		if !p.takeBudget("replace " + m.ID) {
			continue
		}
		a := Action{Kind: ActReplace, Instance: m.ID, Node: m.Node, What: "not-ready", Incident: m.Incident, Version: m.Version, Budget: true,
			Why: fmt.Sprintf("not ready for %s (over %s) while live: %s", p.s.Now.Sub(m.NotReadySince).Round(time.Millisecond), timeout, m.NotReadyWhy)}
		if a.Incident == "" {
			a.Incident, a.Opens = p.newIncident(), "not-ready"
		}
		m.Incident = a.Incident
		p.replace(m, a)
	}
}

// outliers: ended ejections return; an instance whose traffic stands far from
// its peers' is ejected (never more than Outliers.MaxEjected of the fleet at once),
// and replaced at its ReplaceAfter-th ejection.
func (p *planner) outliers() {
	c := p.s.Outliers.withDefaults()
	now := p.s.Now
	for i := range p.insts {
		m := &p.insts[i]
		if m.EjectedUntil.IsZero() || m.ejected(now) || m.Gone || m.Stopping {
			continue
		}
		a := Action{Kind: ActReturn, Instance: m.ID, Node: m.Node, Incident: m.Incident,
			Why: fmt.Sprintf("ejection %d ended: back in the front door", m.Ejections)}
		a.Heal = m.Incident != "" && m.ReplacedBy == ""
		if a.Heal {
			m.Incident = ""
		}
		m.EjectedUntil, m.EjectionsSince = time.Time{}, now
		p.add(a)
	}
	if c.Off {
		return
	}
	var fleet, cands []*Instance
	ejected := 0
	for i := range p.insts {
		m := &p.insts[i]
		if !running(m) || m.Replaces != "" {
			continue
		}
		fleet = append(fleet, m)
		if m.ejected(now) {
			ejected++
			continue
		}
		if m.Health == Healthy && m.Ready && m.ReplacedBy == "" && m.Traffic.Requests >= int64(c.MinRequests) {
			cands = append(cands, m)
		}
	}
	if len(cands) < 3 {
		return // no peers to stand apart from
	}
	limit := c.maxEjected(len(fleet))
	found := c.judgeOutliers(cands)
	p.outlying = map[string]bool{}
	for _, o := range found {
		p.outlying[o.m.ID] = true
	}
	for _, o := range found {
		m := o.m
		if ejected >= limit {
			p.add(Action{Kind: ActHold, Key: "outlier-cap", What: "eject", Instance: m.ID,
				Why: fmt.Sprintf("%s is an outlier (%s) but %d of %d instances are ejected already, the most at once", m.ID, o.why, ejected, len(fleet))})
			return
		}
		ejected++
		n := m.Ejections + 1
		a := Action{Kind: ActEject, Instance: m.ID, Node: m.Node, What: o.what, Incident: m.Incident, Detail: o.detail,
			At: now.Add(time.Duration(n) * c.BaseEjection)}
		a.Why = fmt.Sprintf("%s: out of the front door for %s (ejection %d)", o.why, time.Duration(n)*c.BaseEjection, n)
		if a.Incident == "" {
			a.Incident, a.Opens = p.newIncident(), "outlier"
		}
		m.Incident, m.EjectedUntil, m.Ejections = a.Incident, a.At, n
		p.add(a)
		if n < c.ReplaceAfter || !p.takeBudget("replace "+m.ID) {
			continue
		}
		p.replace(m, Action{Kind: ActReplace, Instance: m.ID, Node: m.Node, What: "outlier", Incident: m.Incident, Version: m.Version, Budget: true,
			Why: fmt.Sprintf("an outlier again at its ejection %d: %s", n, o.why)})
	}
}

// decay: the ejection count of an instance that stayed in the front door for a
// BaseEjection since its last ejection ended (or its count last decayed) decays
// by one, as Envoy's ejection multiplier does: an instance ejected now and then
// over a long life is not ejected for ever longer, nor replaced for it. Only on
// evidence: it is healthy and ready, served at least MinRequests in the window
// (since its return) and was judged in line with its peers this round; an
// instance still slow but not judged yet (a least-request balancer sends a slow
// instance few requests) keeps its count, and is replaced when ejected again.
func (p *planner) decay() {
	c := p.s.Outliers.withDefaults()
	now := p.s.Now
	for i := range p.insts {
		m := &p.insts[i]
		if m.Ejections == 0 || !m.EjectedUntil.IsZero() || !running(m) || m.EjectionsSince.IsZero() || now.Sub(m.EjectionsSince) < c.BaseEjection {
			continue
		}
		if c.Off || m.Health != Healthy || !m.Ready || m.Traffic.Requests < int64(c.MinRequests) || p.outlying[m.ID] {
			continue // no evidence that it is in line with its peers
		}
		m.Ejections--
		m.EjectionsSince = now
		p.add(Action{Kind: ActDecay, Instance: m.ID, Node: m.Node, Ejections: m.Ejections, At: now,
			Why: fmt.Sprintf("in the front door for %s since its last ejection or decay: its ejection count decays to %d (the next ejection lasts %s)",
				c.BaseEjection, m.Ejections, time.Duration(m.Ejections+1)*c.BaseEjection)})
	}
}

// preventive: an instance trending to a limit, or on a degraded node, is replaced
// before it fails; one at a time.
func (p *planner) preventive() {
	inFlight := false
	for i := range p.insts {
		if p.insts[i].Preventive && !p.insts[i].Gone {
			inFlight = true
		}
	}
	if p.s.Orchestrated && len(p.s.Pending) > 0 {
		// The orchestrator still owes a replacement: one at a time.
		inFlight = true
	}
	lim := p.s.Limits
	for i := range p.insts {
		m := &p.insts[i]
		if inFlight || !running(m) || m.Health != Healthy || m.ReplacedBy != "" || m.Replaces != "" || p.s.Rollout {
			continue
		}
		var why, what string
		var detail map[string]any
		if lim.Heap > 0 {
			if tr, left, ok := m.Heap.Forecast(lim.Heap, lim.Horizon, lim.MinSpan, 0.8); ok {
				what = "heap-trend"
				why = fmt.Sprintf("heap %.0f MiB growing %.1f MiB/s reaches its %.0f MiB limit in %s", tr.Value/(1<<20), tr.Slope/(1<<20),
					lim.Heap/(1<<20), left.Round(100*time.Millisecond))
				detail = map[string]any{"value": tr.Value, "slopePerSec": tr.Slope, "limit": lim.Heap, "etaMs": ms(left), "r2": tr.R2, "samples": tr.N}
			}
		}
		if what == "" && lim.Goroutines > 0 {
			if tr, left, ok := m.Goroutines.Forecast(float64(lim.Goroutines), lim.Horizon, lim.MinSpan, 0.8); ok {
				what = "goroutine-trend"
				why = fmt.Sprintf("goroutines %.0f growing %.1f/s reach their limit %d in %s", tr.Value, tr.Slope, lim.Goroutines, left.Round(100*time.Millisecond))
				detail = map[string]any{"value": tr.Value, "slopePerSec": tr.Slope, "limit": lim.Goroutines, "etaMs": ms(left), "r2": tr.R2, "samples": tr.N}
			}
		}
		avoid := ""
		if what == "" && m.NodeState == NodeDegraded && !p.s.Orchestrated {
			// (An orchestrator's driver drains a degraded node itself.)
			what = "node-degraded"
			why = fmt.Sprintf("node %s reports itself degraded: draining it before it fails", m.Node)
			avoid = m.Node
		}
		if what == "" {
			continue
		}
		if !p.takeBudget("preventive") {
			continue
		}
		inc := p.newIncident()
		a := Action{Kind: ActReplace, Instance: m.ID, Node: m.Node, What: what, Incident: inc, Opens: what, Why: why, Detail: detail,
			Version: m.Version, Avoid: avoid, Preventive: true, Budget: true}
		if p.s.Orchestrated {
			// It cannot surge first (the orchestrator keeps the count): evicted
			// before it fails, it leaves the front door at once and drains, where
			// the failure would drop what it was serving.
			m.Incident = inc
			p.replace(m, a)
			if !p.s.DryRun {
				m.Preventive = true
			}
			inFlight = true
			continue
		}
		p.add(a)
		if !p.s.DryRun {
			m.Preventive, m.Incident, m.ReplacedBy = true, inc, "pending"
		}
		inFlight = true
	}
}

// replacements: a replacement that became ready retires the instance it replaces;
// one not ready in time is given up.
func (p *planner) replacements() {
	now := p.s.Now
	for i := range p.insts {
		m := &p.insts[i]
		if m.Replaces == "" || m.Gone || m.Stopping {
			continue
		}
		old := p.by[m.Replaces]
		switch {
		case m.Ready:
			a := Action{Kind: ActRetire, Instance: m.ID, Node: m.Node, Old: m.Replaces, Incident: m.Incident}
			m.Replaces = ""
			if old != nil && !old.Stopping && !old.Gone {
				old.Stopping = true
			} else {
				a.Old = ""
			}
			if m.Incident != "" && !(p.s.Rollout && m.InBatch) {
				a.Heal = true
				v := now.Add(p.s.Monitor)
				a.Verify = &v
				m.Incident = ""
			}
			p.add(a)
		case now.Sub(m.StartedAt) > p.s.StartTimeout && !(p.s.Rollout && m.InBatch):
			a := Action{Kind: ActGiveUp, Instance: m.ID, Node: m.Node, Old: m.Replaces, Incident: m.Incident,
				Why: fmt.Sprintf("replacement not ready within %s; stopping it and trying again", p.s.StartTimeout)}
			if old != nil {
				old.ReplacedBy = ""
			}
			m.Stopping = true
			p.add(a)
		}
	}
}

// restarts: a plain restart that became ready heals its incident.
func (p *planner) restarts() {
	for i := range p.insts {
		m := &p.insts[i]
		if m.Replaces == "" && m.Incident != "" && !m.Gone && m.Ready && !m.Preventive && m.ReplacedBy == "" && m.Health == Healthy && !m.Reported &&
			m.EjectedUntil.IsZero() {
			v := p.s.Now.Add(p.s.Monitor)
			p.add(Action{Kind: ActHealRestart, Instance: m.ID, Node: m.Node, Incident: m.Incident, Verify: &v})
			m.Incident = ""
		}
	}
}

// scale: the autoscaler's recommendation.
func (p *planner) scale() {
	v := p.s.Scale
	if v == nil || p.s.Rollout {
		return
	}
	d := v.Decision
	cur := p.desired
	if d.Replicas == cur {
		return
	}
	what := "scale-out"
	if d.Replicas < cur {
		what = "scale-in"
	}
	if d.Early {
		what = "scale-out-early"
	}
	a := Action{Kind: ActScale, What: what, Incident: p.s.ScaleIncident, Replicas: d.Replicas,
		Why:    fmt.Sprintf("%s: %s -> %d replicas", v.Basis, d.Reason, d.Replicas),
		Detail: map[string]any{"from": cur, "to": d.Replicas, "ratio": d.Ratio}}
	if d.Early {
		a.Detail["trendSlopePerSec"] = d.Trend.Slope
		a.Detail["trendR2"] = d.Trend.R2
	}
	if a.Incident == "" || p.s.ScaleIncidentWhat != what {
		a.Incident, a.Opens = p.newIncident(), what
	}
	p.add(a)
	if !p.s.DryRun {
		p.desired = d.Replicas
		p.s.ScaleIncident = a.Incident
	}
}

// live reports whether m is an instance that is up or coming up and not on its
// way out.
func live(m *Instance) bool {
	return !m.Gone && !m.Stopping && (m.State == InstanceRunning || m.State == InstanceStarting)
}

// holds reports whether the instance id still holds its place in the replica
// count (a replacement of it does not count until it left).
func (p *planner) holds(id string) bool {
	m := p.by[id]
	return m != nil && live(m)
}

// counts reports whether m counts toward the replica count: it is live, and it
// replaces no instance or one that left already. An instance and its replacement
// are never both counted, and a replacement whose old instance died is never
// missed (that started one instance too many).
func (p *planner) counts(m *Instance) bool {
	return live(m) && (m.Replaces == "" || !p.holds(m.Replaces))
}

// orphanStarts is the number of replacements starting (not listed yet) whose old
// instance left: each counts in its place.
func (p *planner) orphanStarts() int {
	n := 0
	for _, id := range p.s.Replacing {
		if !p.holds(id) {
			n++
		}
	}
	return n
}

// count keeps the replica count: restarts after their backoff, plain starts, and
// scale-in of the worst instances first.
func (p *planner) count() {
	if p.s.Orchestrated {
		p.orchestratedCount()
		return
	}
	now := p.s.Now
	p.surging = p.orphanStarts()
	count := p.starting + p.surging
	var active []*Instance
	for i := range p.insts {
		m := &p.insts[i]
		if p.counts(m) {
			count++
			active = append(active, m)
		}
	}
	if count != p.desired && p.s.DryRun {
		p.add(Action{Kind: ActHold, Key: "dry-count", What: "count",
			Why: fmt.Sprintf("dry run: %d instances, %d wanted; would start or stop %d", count, p.desired, p.desired-count)})
	}
	if count < p.desired && !p.s.DryRun {
		recorded := 0
	starts:
		for range p.desired - count {
			a := Action{Kind: ActStart, Version: p.s.Version}
			if len(p.pending) > 0 {
				req := p.pending[0]
				if req.Counts {
					if p.restartAt.IsZero() {
						d, loop := p.s.Backoff.Delay, p.s.Backoff.Loop
						if recorded > 0 {
							d, loop = p.s.Backoff.Next, p.s.Backoff.NextLoop
						}
						if loop {
							if !p.gaveUp {
								p.gaveUp = true
								p.add(Action{Kind: ActCrashLoop, What: "crash-loop", Incident: req.Incident,
									Why: fmt.Sprintf("%d restarts within %s: giving up until the window passes", p.s.Backoff.Restarts+recorded, or(p.s.Backoff.CrashLoopWindow, time.Minute))})
							}
							break starts
						}
						p.restartAt = now.Add(d)
						if d > 0 {
							p.add(Action{Kind: ActBackoff, What: "backoff", Incident: req.Incident, At: p.restartAt,
								Why: fmt.Sprintf("restart in %s (%d restarts in the window)", d.Round(time.Millisecond), p.s.Backoff.Restarts+recorded)})
						}
					}
					if now.Before(p.restartAt) {
						break starts
					}
					p.restartAt = time.Time{}
					p.gaveUp = false
					recorded++
					a.Counts = true
				}
				p.pending = p.pending[1:]
				a.Restart = &req
				a.Incident = req.Incident
				a.What = "restart"
				a.Why = "replacing an exited instance"
			} else {
				a.Incident, a.LogOnly = p.s.ScaleIncident, true
			}
			p.starting++
			p.add(a)
		}
	}
	if count >= p.desired {
		// A restart dropped here would leave its incident open for good (a node
		// failure while the autoscaler scaled in: the survivors met the count).
		for _, r := range p.pending {
			if r.Incident != "" {
				p.add(Action{Kind: ActHealCount, What: "count-met", Incident: r.Incident,
					Why: fmt.Sprintf("no restart owed: %d instances, %d wanted", count, p.desired)})
			}
		}
		p.pending = nil
		p.add(Action{Kind: ActClearPending})
	}
	if count > p.desired && !p.s.DryRun && p.starting == 0 && p.surging == 0 {
		victims := p.victims(active)
		for _, m := range victims[:min(len(victims), count-p.desired)] {
			m.Stopping = true
			p.add(Action{Kind: ActScaleIn, What: "scale-in", Instance: m.ID, Node: m.Node, Incident: p.s.ScaleIncident,
				Why: fmt.Sprintf("%d instances, %d wanted", count, p.desired)})
		}
	}
}

// orchestratedCount: the orchestrator keeps the count; the restarts owed (exits,
// evictions) are healed once the count is met by ready instances.
func (p *planner) orchestratedCount() {
	ready := 0
	for i := range p.insts {
		m := &p.insts[i]
		if p.counts(m) && m.Ready && m.State == InstanceRunning {
			ready++
		}
	}
	if ready < p.desired {
		return
	}
	for _, r := range p.pending {
		if r.Incident != "" {
			p.add(Action{Kind: ActHealCount, What: "replaced", Incident: r.Incident,
				Why: fmt.Sprintf("the orchestrator replaced it: %d ready instances, %d wanted", ready, p.desired)})
		}
	}
	p.pending = nil
	p.add(Action{Kind: ActClearPending})
}

// victims orders the instances to stop first on a scale-in, worst first: ejected
// outliers, not ready, then on a node that is not ready, then of another version;
// then from the node with the most instances, the most often ejected, newest first.
func (p *planner) victims(active []*Instance) []*Instance {
	score := func(m *Instance) int {
		sc := 0
		if m.ejected(p.s.Now) {
			sc += 16
		}
		if !m.Ready {
			sc += 8
		}
		if m.NodeState != NodeReady {
			sc += 4
		}
		if m.Version != p.s.Version {
			sc += 2
		}
		return sc
	}
	perNode := map[string]int{}
	for _, m := range active {
		perNode[m.Node]++
	}
	out := slices.Clone(active)
	slices.SortStableFunc(out, func(x, y *Instance) int {
		if d := score(y) - score(x); d != 0 {
			return d
		}
		if d := perNode[y.Node] - perNode[x.Node]; d != 0 {
			return d
		}
		if d := y.Ejections - x.Ejections; d != 0 {
			return d
		}
		if d := y.StartedAt.Compare(x.StartedAt); d != 0 {
			return d
		}
		return cmp.Compare(y.ID, x.ID)
	})
	return out
}

// healScale: a scale (or a restart wave) is healed when the count is met by ready
// instances.
func (p *planner) healScale() {
	if p.s.ScaleIncident == "" {
		return
	}
	ready, n := 0, 0
	for i := range p.insts {
		m := &p.insts[i]
		if p.counts(m) {
			n++
			if m.Ready && m.State == InstanceRunning {
				ready++
			}
		}
	}
	if n == p.desired && ready == p.desired && p.starting == 0 && p.surging == 0 {
		p.add(Action{Kind: ActHealScale, What: "scaled", Incident: p.s.ScaleIncident, Why: fmt.Sprintf("%d ready instances", ready)})
	}
}
