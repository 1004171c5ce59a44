package core

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/decide"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
	"github.com/selfheal-go/selfheal/examples/agent/frontdoor"
)

// svc is the agent's state of one service; guarded by Agent.mu.
type svc struct {
	cfg      *config.Service
	name     string
	desired  int
	version  string
	prev     string
	members  map[string]*member
	seq      int
	starting int // plain starts in flight (not replacements)
	// replacing: instances whose replacement's start is in flight (by id); the
	// planner counts such a start in the place of its instance once that one left.
	replacing map[string]bool
	pending   []restartReq
	restartAt time.Time
	gaveUp    bool
	backoff   *decide.Backoff
	scaler    *decide.Scaler
	scaleInc  string
	rollout   *rollout
	held      map[string]time.Time
	tcfg      decide.TrackerConfig
	placing   map[string]int // starts in flight per node
	wake      chan struct{}  // a probe round soon: a new instance may be ready
	// ended: instances the agent stopped or forgot, by when; a list the driver
	// made before they were removed must not bring them back as new members
	// (a stopped instance would then count as a crash, a forgotten exit twice).
	ended map[string]time.Time
}

type restartReq struct {
	incident string
	node     string
	avoid    string // escalation: the node where the last replacement failed again
	counts   bool   // toward the crash-loop backoff (false for a node failure)
}

type member struct {
	inst       driver.Instance
	tr         *decide.Tracker
	heap, gor  decide.Series
	p50, p99   float64 // -1: unknown
	util       float64 // -1: unknown
	readySince time.Time
	stopping   bool
	gone       bool
	replacedBy string // "pending" while its replacement starts
	replaces   string
	incident   string // the incident this instance heals
	preventive bool   // a preventive replacement is under way for it
	reported   bool   // its unhealthiness was reported
	// notReadySince: live but not ready since then (zero: ready, or not live);
	// notReadyWhy says why, notReadyInc is the incident its turning not ready
	// opened.
	notReadySince time.Time
	notReadyWhy   string
	notReadyInc   string
	wasReady      bool // it was ready at least once
	// ejectedUntil: out of the front door as an outlier until then; ejections
	// counts its ejections less those forgiven since ejectionsSince (see
	// decide.Instance); traffic holds the front door's counters of it, one
	// sample a round over the outlier window.
	ejectedUntil   time.Time
	ejections      int
	ejectionsSince time.Time
	traffic        []trafficSample
	added          time.Time
	// verifyUntil: it healed an incident and is watched until then; failing
	// within the window escalates (the next replacement goes to another node).
	verifyUntil time.Time
	verifyInc   string
}

func (m *member) routable() bool {
	return !m.stopping && !m.gone && m.inst.State == driver.StateRunning && m.tr.Ready() && !time.Now().Before(m.ejectedUntil)
}

func newSvc(c *config.Service) *svc {
	return &svc{
		cfg: c, name: c.Name, desired: c.Replicas, version: c.Version, members: map[string]*member{},
		backoff: decide.NewBackoff(decide.BackoffConfig{Initial: c.Restart.Initial.D(), Max: c.Restart.Max.D(),
			Jitter: c.Restart.Jitter, CrashLoopRestarts: c.Restart.CrashLoopRestarts, Window: c.Restart.CrashLoopWindow.D()}),
		scaler: decide.NewScaler(decide.ScalerConfig{Min: c.MinReplicas, Max: c.MaxReplicas, Tolerance: c.Scale.Tolerance,
			UpWindow: c.Scale.UpWindow.D(), DownWindow: c.Scale.DownWindow.D(), MaxStep: c.Scale.MaxStep}),
		held: map[string]time.Time{}, replacing: map[string]bool{}, ended: map[string]time.Time{}, placing: map[string]int{}, wake: make(chan struct{}, 1),
		tcfg: decide.TrackerConfig{StartupGrace: c.Health.StartupGrace.D(), FailureThreshold: c.Health.FailureThreshold,
			SuccessThreshold: c.Health.SuccessThreshold, MinUnhealthy: c.Health.MinUnhealthy.D()},
	}
}

func (s *svc) newMember(in driver.Instance, now time.Time) *member {
	born := in.StartedAt
	if born.IsZero() {
		born = now
	}
	m := &member{inst: in, tr: decide.NewTracker(s.tcfg, born), p50: -1, p99: -1, util: -1, added: now,
		heap: decide.Series{Cap: 24}, gor: decide.Series{Cap: 24}}
	if i := strings.LastIndexByte(in.ID, '-'); i >= 0 {
		if n, err := strconv.Atoi(in.ID[i+1:]); err == nil && n > s.seq {
			s.seq = n
		}
	}
	return m
}

func (s *svc) nextID() string {
	s.seq++
	return s.name + "-" + strconv.Itoa(s.seq)
}

// tick runs one round of the loop for s: probe, judge, plan, act.
func (a *Agent) tick(ctx context.Context, s *svc) {
	insts, err := a.drv.Instances(ctx, s.name)
	if err != nil {
		if ctx.Err() == nil {
			a.mu.Lock()
			a.holdOnce(s, "driver", time.Now(), eventlog.Event{Kind: eventlog.Failed, What: "list", Service: s.name, Why: err.Error()})
			a.mu.Unlock()
		}
		return
	}
	nodes, _ := a.drv.Nodes(ctx)
	a.mu.Lock()
	targets := a.observe(s, insts, time.Now())
	a.mu.Unlock()

	results := probeAll(ctx, proberFor(a.client, s.cfg), s.cfg, targets)
	if ctx.Err() != nil {
		return
	}

	var traffic map[string]frontdoor.BackendStats
	if fd := a.doors[s.name]; fd != nil {
		traffic = fd.BackendStats()
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.judge(s, results, now)
	s.judgeTraffic(traffic, now)
	if fd := a.doors[s.name]; fd != nil {
		// The front door forgets the instances the agent no longer has: its
		// memory is the fleet's, not every instance there ever was.
		var gone []string
		for id := range traffic {
			if s.members[id] == nil {
				gone = append(gone, id)
			}
		}
		fd.Forget(gone...)
	}
	nstate := map[string]driver.NodeState{}
	for _, n := range nodes {
		nstate[n.Name] = n.State
	}
	if a.orch != nil {
		a.planOrchestrated(s, now, nodes, nstate)
		return
	}
	a.act(s, now, nodes, decide.Plan(a.snapshot(s, now, nstate)))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// startInstance starts an instance in the background; callers hold a.mu.
func (a *Agent) startInstance(s *svc, o startOpts) {
	if o.replaces != nil {
		o.replaces.replacedBy = "pending" // not counted by place: it is on its way out
	}
	node := a.place(s, o)
	if node == "" {
		a.holdOnce(s, "no-node", time.Now(), eventlog.Event{Kind: eventlog.Failed, What: "start", Service: s.name,
			Why: "no ready node accepts instances"})
		if o.replaces != nil {
			o.replaces.replacedBy = ""
		}
		if o.incident != "" && o.replaces == nil && o.batch == nil {
			s.pending = append([]restartReq{{incident: o.incident}}, s.pending...)
		}
		return
	}
	id := s.nextID()
	s.placing[node]++
	spec := driver.InstanceSpec{Service: s.name, ID: id, Version: o.version, Node: node, Command: s.cfg.Command, Env: s.cfg.Env}
	var old string
	if o.replaces != nil {
		old = o.replaces.inst.ID
		s.replacing[old] = true
	}
	switch {
	case o.replaces != nil:
		o.replaces.replacedBy = "pending"
	case o.batch != nil:
		o.batch.starting++
	default:
		s.starting++
	}
	ok := a.spawn(func(ctx context.Context) {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		in, err := a.placer.Start(sctx, spec)
		cancel()
		a.mu.Lock()
		defer a.mu.Unlock()
		s.placing[node]--
		delete(s.replacing, old)
		switch {
		case o.batch != nil:
			o.batch.starting--
		case o.replaces == nil:
			s.starting--
		}
		if err != nil {
			if o.replaces != nil && o.replaces.replacedBy == "pending" {
				o.replaces.replacedBy = ""
			}
			if o.batch != nil {
				o.batch.failed++
			}
			if o.incident != "" && o.replaces == nil && o.batch == nil {
				s.pending = append([]restartReq{{incident: o.incident}}, s.pending...)
			}
			a.emit(eventlog.Event{Kind: eventlog.Failed, What: "start", Service: s.name, Instance: id, Node: node, Incident: o.incident, Why: err.Error()})
			return
		}
		m := s.newMember(in, time.Now())
		m.replaces = old
		if !o.logOnly {
			m.incident = o.incident
		}
		s.members[id] = m
		if o.replaces != nil {
			o.replaces.replacedBy = id
		}
		if o.batch != nil && s.rollout == o.batch {
			o.batch.batch[id] = true
		}
		a.counted(s.name, "start")
		why := "start"
		if old != "" {
			why = "replacing " + old
		}
		a.emit(eventlog.Event{Kind: eventlog.Acted, What: "start", Service: s.name, Instance: id, Node: node, Incident: o.incident,
			Why: why, Detail: map[string]any{"version": in.Version, "addr": in.Addr, "pid": in.PID}})
		// Probe the new instance soon rather than at the next round: healing ends
		// when it is ready.
		for _, d := range []time.Duration{30 * time.Millisecond, 100 * time.Millisecond} {
			time.AfterFunc(d, func() {
				select {
				case s.wake <- struct{}{}:
				default:
				}
			})
		}
	})
	if !ok {
		s.placing[node]--
		delete(s.replacing, old)
		switch {
		case o.batch != nil:
			o.batch.starting--
		case o.replaces == nil:
			s.starting--
		default:
			o.replaces.replacedBy = ""
		}
	}
}

// stop drains m from the front door and stops it in the background; callers hold
// a.mu.
func (a *Agent) stop(s *svc, m *member, why string) {
	if m.stopping {
		return
	}
	m.stopping = true
	id := m.inst.ID
	grace := s.cfg.StopGrace.D()
	a.counted(s.name, "stop")
	a.spawn(func(ctx context.Context) {
		err := a.drv.Stop(ctx, id, grace)
		a.mu.Lock()
		defer a.mu.Unlock()
		if cur := s.members[id]; cur == m {
			delete(s.members, id)
			s.ended[id] = time.Now()
		}
		if err != nil {
			a.emit(eventlog.Event{Kind: eventlog.Failed, What: "stop", Service: s.name, Instance: id, Why: err.Error()})
			return
		}
		a.emit(eventlog.Event{Kind: eventlog.Acted, What: "stop", Service: s.name, Instance: id, Node: m.inst.Node, Why: why})
	})
}

// forget removes an exited instance from the driver; callers hold a.mu.
func (a *Agent) forget(s *svc, m *member) {
	id := m.inst.ID
	a.spawn(func(ctx context.Context) {
		_ = a.drv.Stop(ctx, id, time.Millisecond)
		a.mu.Lock()
		defer a.mu.Unlock()
		if cur := s.members[id]; cur == m {
			delete(s.members, id)
			s.ended[id] = time.Now()
		}
	})
}
