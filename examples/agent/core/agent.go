package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/decide"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
	"github.com/selfheal-go/selfheal/examples/agent/frontdoor"
)

// Errors.
var (
	ErrRunning        = errors.New("agent: already running")
	ErrUnknownService = errors.New("agent: unknown service")
	ErrBusy           = errors.New("agent: a rolling update is in progress")
	// ErrOutOfBounds: a replica count outside the service's minReplicas and
	// maxReplicas.
	ErrOutOfBounds = errors.New("agent: out of the fleet file's bounds")
)

// Config configures an Agent. Fleet and Driver are required.
type Config struct {
	Fleet  *config.Fleet
	Driver driver.Driver
	// Events receives every event; nil means a log that keeps the recent events
	// and writes nowhere.
	Events *eventlog.Log
	// Logger receives the agent's own diagnostics; nil means none.
	Logger *slog.Logger
	// MeterProvider receives selfheal.agent.* metrics; nil means the global one.
	MeterProvider metric.MeterProvider
	// StopOnExit makes Run stop every instance before it returns. By default the
	// instances keep running, for the next agent run to adopt.
	StopOnExit bool
	// FrontDoorAttemptTimeout bounds each front-door attempt; <= 0 means 2 s.
	FrontDoorAttemptTimeout time.Duration
	// ControlToken is the token the control API requires (Authorization: Bearer
	// <token>); "" means none, and then it takes commands from loopback callers
	// only. See [Agent.Protect].
	ControlToken string
	// SampleInterval is how often Run samples every service for the status
	// page's charts (replicas, latency, the front door's success rate); <= 0
	// means 1 s. The agent keeps HistorySamples samples per service.
	SampleInterval time.Duration
}

// Agent runs the loop. Create it with New; it is safe for concurrent use.
type Agent struct {
	cfg    Config
	fleet  *config.Fleet
	drv    driver.Driver
	placer driver.Placer
	orch   driver.Orchestrator
	ev     *eventlog.Log
	log    *slog.Logger
	client *http.Client
	tr     *http.Transport

	mu       sync.Mutex
	budget   decide.Budget
	svcs     map[string]*svc
	order    []string
	doors    map[string]*frontdoor.FrontDoor
	doorAdr  map[string]string
	incs     map[string]*incident
	incSeq   int
	hist     *history
	live     chan struct{} // a slot per live page (MaxLiveClients)
	liveStop chan struct{} // closed by CloseLive
	liveOnce sync.Once
	snaps    snapshots // the status page and JSON, rendered (snapshot.go)
	actx     context.Context
	actions  sync.WaitGroup
	running  atomic.Bool
	stopped  bool

	mActions   metric.Int64Counter
	mIncidents metric.Int64Counter
	mHeal      metric.Float64Histogram
}

type incident struct {
	id       string
	what     string
	detected time.Time
}

// New returns an agent. It starts nothing.
func New(cfg Config) (*Agent, error) {
	if cfg.Fleet == nil {
		return nil, errors.New("agent: Config.Fleet is required")
	}
	if cfg.Driver == nil {
		return nil, errors.New("agent: Config.Driver is required")
	}
	a := &Agent{cfg: cfg, fleet: cfg.Fleet, drv: cfg.Driver, ev: cfg.Events, log: cfg.Logger,
		svcs: map[string]*svc{}, doors: map[string]*frontdoor.FrontDoor{}, doorAdr: map[string]string{},
		incs: map[string]*incident{}, actx: context.Background(), hist: newHistory(),
		live: make(chan struct{}, MaxLiveClients), liveStop: make(chan struct{})}
	switch d := cfg.Driver.(type) {
	case driver.Placer:
		a.placer = d
	case driver.Orchestrator:
		a.orch = d
	default:
		return nil, fmt.Errorf("agent: driver %q is neither a Placer nor an Orchestrator", cfg.Driver.Name())
	}
	if a.ev == nil {
		a.ev = eventlog.New(nil, 0)
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.cfg.FrontDoorAttemptTimeout <= 0 {
		a.cfg.FrontDoorAttemptTimeout = 2 * time.Second
	}
	a.budget = decide.Budget{Max: cfg.Fleet.Agent.Budget.Max, Window: cfg.Fleet.Agent.Budget.Window.D()}
	a.tr = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     10 * time.Second,
	}
	a.client = &http.Client{Transport: a.tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i := range cfg.Fleet.Services {
		sc := &cfg.Fleet.Services[i]
		s := newSvc(sc)
		a.svcs[sc.Name] = s
		a.order = append(a.order, sc.Name)
		if sc.FrontDoor != "" {
			name := sc.Name
			fd, err := frontdoor.New(frontdoor.Config{
				Backends:       func() []frontdoor.Backend { return a.Backends(name) },
				AttemptTimeout: a.cfg.FrontDoorAttemptTimeout,
				Logger:         a.log,
			})
			if err != nil {
				return nil, err
			}
			a.doors[name] = fd
		}
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter("github.com/selfheal-go/selfheal/examples/agent")
	a.mActions, _ = m.Int64Counter("selfheal.agent.actions", metric.WithDescription("actions taken, by service and action"))
	a.mIncidents, _ = m.Int64Counter("selfheal.agent.incidents", metric.WithDescription("faults observed, by service and kind"))
	a.mHeal, _ = m.Float64Histogram("selfheal.agent.heal.duration", metric.WithUnit("s"), metric.WithDescription("from detection to healed"))
	return a, nil
}

// Events returns the event log.
func (a *Agent) Events() *eventlog.Log { return a.ev }

// FrontDoor returns the front door of service, or nil.
func (a *Agent) FrontDoor(service string) *frontdoor.FrontDoor { return a.doors[service] }

// FrontDoorAddr returns the address the front door of service listens on while Run
// runs ("" before).
func (a *Agent) FrontDoorAddr(service string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.doorAdr[service]
}

func (a *Agent) emit(e eventlog.Event) {
	e.DryRun = a.fleet.Agent.DryRun && (e.Kind == eventlog.Decided || e.Kind == eventlog.Held)
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	a.hist.record(e)
	a.ev.Emit(e)
}

// newIncident opens an incident detected at now; callers hold a.mu.
func (a *Agent) newIncident(service, what string, now time.Time) string {
	a.incSeq++
	id := service + "#" + strconv.Itoa(a.incSeq)
	a.incs[id] = &incident{id: id, what: what, detected: now}
	a.mIncidents.Add(context.Background(), 1, metric.WithAttributes(attribute.String("service", service), attribute.String("kind", what)))
	return id
}

// healed closes an incident; callers hold a.mu.
func (a *Agent) healed(e eventlog.Event, now time.Time) {
	inc := a.incs[e.Incident]
	if inc == nil {
		return
	}
	delete(a.incs, e.Incident)
	e.Kind = eventlog.Healed
	e.HealMs = float64(now.Sub(inc.detected).Microseconds()) / 1000
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	e.Detail["fault"] = inc.what
	a.mHeal.Record(context.Background(), now.Sub(inc.detected).Seconds(), metric.WithAttributes(attribute.String("service", e.Service), attribute.String("kind", inc.what)))
	a.emit(e)
}

func (a *Agent) counted(service, action string) {
	a.mActions.Add(context.Background(), 1, metric.WithAttributes(attribute.String("service", service), attribute.String("action", action)))
}

// Run runs the agent until ctx ends: it adopts what a previous run left (when the
// driver can), starts the front doors, runs one loop per service, and on the way out
// waits for every action in flight (and, with StopOnExit, stops every instance). It
// returns ctx.Err(), or an error when a front door cannot listen.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer a.running.Store(false)
	actx, cancelActions := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelActions()
	a.mu.Lock()
	a.actx = actx
	a.stopped = false
	a.mu.Unlock()

	if ad, ok := a.drv.(driver.Adopter); ok {
		insts, err := ad.Adopt(ctx)
		if err != nil {
			a.emit(eventlog.Event{Kind: eventlog.Failed, What: "adopt", Why: err.Error()})
		}
		adopted, foreign := a.ownInstances(insts)
		for _, in := range adopted {
			a.emit(eventlog.Event{Kind: eventlog.Acted, What: "adopt", Service: in.Service, Instance: in.ID, Node: in.Node,
				Why: "left running by a previous agent run", Detail: map[string]any{"pid": in.PID, "version": in.Version}})
		}
		for _, in := range foreign {
			a.emit(eventlog.Event{Kind: eventlog.Observed, What: "adopt-ignored", Service: in.Service, Instance: in.ID, Node: in.Node,
				Why:    fmt.Sprintf("service %q is not in this fleet; left alone, not adopted", in.Service),
				Detail: map[string]any{"pid": in.PID, "version": in.Version}})
		}
	}
	if a.orch != nil {
		for _, name := range a.order {
			s := a.svcs[name]
			if err := a.orch.Apply(ctx, a.serviceSpec(s)); err != nil {
				a.emit(eventlog.Event{Kind: eventlog.Failed, What: "apply", Service: name, Why: err.Error()})
			}
		}
	}

	var servers []*http.Server
	var swg sync.WaitGroup
	for _, name := range a.order {
		fd := a.doors[name]
		if fd == nil {
			continue
		}
		l, err := net.Listen("tcp", a.svcs[name].cfg.FrontDoor)
		if err != nil {
			for _, srv := range servers {
				srv.Close()
			}
			swg.Wait()
			return fmt.Errorf("agent: front door of %s: %w", name, err)
		}
		a.mu.Lock()
		a.doorAdr[name] = l.Addr().String()
		a.mu.Unlock()
		srv := &http.Server{Handler: fd, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		swg.Add(1)
		go func() {
			defer swg.Done()
			_ = srv.Serve(l)
		}()
		a.emit(eventlog.Event{Kind: eventlog.Acted, What: "front-door", Service: name, Why: "listening on " + l.Addr().String()})
	}

	var wg sync.WaitGroup
	every := a.cfg.SampleInterval
	if every <= 0 {
		every = time.Second
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.sampler(ctx, every)
	}()
	for _, name := range a.order {
		s := a.svcs[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.loop(ctx, s)
		}()
	}
	wg.Wait()

	if a.cfg.StopOnExit {
		a.stopAll()
	}
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	a.actions.Wait()
	for _, srv := range servers {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	swg.Wait()
	for _, fd := range a.doors {
		fd.CloseIdleConnections()
	}
	a.tr.CloseIdleConnections()
	return ctx.Err()
}

// stopAll stops every instance of every service, in parallel.
func (a *Agent) stopAll() {
	a.actions.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, name := range a.order {
		s := a.svcs[name]
		if a.orch != nil {
			_ = a.orch.Remove(ctx, name)
			continue
		}
		insts, _ := a.drv.Instances(ctx, name)
		for _, in := range insts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = a.drv.Stop(ctx, in.ID, s.cfg.StopGrace.D())
			}()
		}
	}
	wg.Wait()
	a.emit(eventlog.Event{Kind: eventlog.Acted, What: "stop-all", Why: "the agent is exiting with StopOnExit"})
}

// spawn runs an action in the background; callers hold a.mu. After Run has begun
// its exit, actions are not started.
func (a *Agent) spawn(fn func(ctx context.Context)) bool {
	if a.stopped {
		return false
	}
	a.actions.Add(1)
	ctx := a.actx
	go func() {
		defer a.actions.Done()
		fn(ctx)
	}()
	return true
}

func (a *Agent) loop(ctx context.Context, s *svc) {
	iv := s.cfg.Health.Interval.D()
	t := time.NewTicker(iv)
	defer t.Stop()
	var changed <-chan struct{} // nil (never ready) without a Watcher
	if w, ok := a.drv.(driver.Watcher); ok {
		changed = w.Watch(ctx)
	}
	for {
		a.tick(ctx, s)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
			// An exit or a node change: look now rather than at the next round.
		case <-s.wake:
		}
	}
}

// Backends returns the instances of service that the front door may use: ready by
// the agent's probes, and not being stopped. When none is, it returns the running
// instances that were ready and are suspect (failing, below the failure
// threshold), if any.
func (a *Agent) Backends(service string) []frontdoor.Backend {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.svcs[service]
	if s == nil {
		return nil
	}
	var out []frontdoor.Backend
	for _, m := range s.members {
		if m.routable() {
			out = append(out, frontdoor.Backend{ID: m.inst.ID, Addr: m.inst.Addr})
		}
	}
	if len(out) == 0 {
		// Panic routing, as Envoy's panic threshold: with no instance ready, the
		// ones that were ready and have failed fewer probes in a row than the
		// failure threshold (suspect) keep the traffic. Every instance failing a
		// probe at once is likelier a loaded machine (probes timing out while
		// replacements start) than every instance broken; the front door retries
		// another instance and ejects one whose attempt fails, and an instance
		// leaves for good once it is unhealthy. (The chaos test's node failures
		// answered clients 503 "no ready instance" without this.)
		for _, m := range s.members {
			if !m.stopping && !m.gone && m.inst.State == driver.StateRunning && m.wasReady && m.tr.Health() == decide.Suspect {
				out = append(out, frontdoor.Backend{ID: m.inst.ID, Addr: m.inst.Addr})
			}
		}
	}
	slices.SortFunc(out, func(x, y frontdoor.Backend) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// Scale sets the replica count of service by hand. The autoscaler keeps it as its
// floor (it may scale out beyond it, never in below it). A count outside the
// service's minReplicas and maxReplicas returns an error matching ErrOutOfBounds.
func (a *Agent) Scale(service string, replicas int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.svcs[service]
	if s == nil {
		return fmt.Errorf("%w: %q", ErrUnknownService, service)
	}
	if lo, hi := s.cfg.MinReplicas, s.cfg.MaxReplicas; replicas < lo || replicas > hi {
		return fmt.Errorf("%w: scale %s to %d replicas: want %d to %d (minReplicas to maxReplicas)", ErrOutOfBounds, service, replicas, lo, hi)
	}
	now := time.Now()
	_, hi := s.scaler.Range()
	s.scaler.SetRange(max(replicas, 1), max(hi, replicas))
	inc := a.newIncident(service, "manual-scale", now)
	a.emit(eventlog.Event{Kind: eventlog.Decided, What: "scale", Service: service, Incident: inc,
		Why: fmt.Sprintf("manual: %d -> %d replicas", s.desired, replicas), Detail: map[string]any{"from": s.desired, "to": replicas}})
	a.counted(service, "scale")
	if !a.fleet.Agent.DryRun {
		s.desired = replicas
		s.scaleInc = inc
	}
	if a.orch != nil && !a.fleet.Agent.DryRun {
		a.spawn(func(ctx context.Context) {
			if err := a.orch.Scale(ctx, service, replicas); err != nil {
				a.emit(eventlog.Event{Kind: eventlog.Failed, What: "scale", Service: service, Why: err.Error()})
			}
		})
	}
	return nil
}

// Update starts a rolling update of service to version. It returns ErrBusy while
// another update runs.
func (a *Agent) Update(service, version string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.svcs[service]
	if s == nil {
		return fmt.Errorf("%w: %q", ErrUnknownService, service)
	}
	if s.rollout != nil && !s.rollout.paused {
		return ErrBusy
	}
	if version == s.version && s.rollout == nil {
		return nil
	}
	now := time.Now()
	inc := a.newIncident(service, "update", now)
	u := s.cfg.Update
	a.emit(eventlog.Event{Kind: eventlog.Decided, What: "rollout", Service: service, Incident: inc,
		Why: fmt.Sprintf("update %s -> %s, %d at a time, delay %s, monitor %s, on failure %s", s.version, version,
			u.Parallelism, u.Delay.D(), u.Monitor.D(), u.FailureAction)})
	a.counted(service, "rollout")
	if a.fleet.Agent.DryRun {
		return nil
	}
	s.prev, s.version = s.version, version
	s.rollout = newRollout(inc, s.prev, version, false, &s.cfg.Update)
	if a.orch != nil {
		spec := a.serviceSpec(s)
		r := s.rollout
		a.spawn(func(ctx context.Context) {
			// The orchestrator reports the last update's state until it starts this
			// one: remember that update, so that its "completed" does not end ours.
			prev, _ := a.orch.Rollout(ctx, service)
			if err := a.orch.Apply(ctx, spec); err != nil {
				a.emit(eventlog.Event{Kind: eventlog.Failed, What: "rollout", Service: service, Why: err.Error()})
				a.mu.Lock()
				if s.rollout == r { // not applied: the service keeps its version
					s.rollout, s.version = nil, r.from
				}
				a.mu.Unlock()
				return
			}
			a.mu.Lock()
			r.applied, r.prevStart = true, prev.StartedAt
			a.mu.Unlock()
		})
	}
	return nil
}

// SetNodeState changes a node through the driver (drain, undrain; with the local
// driver also fail and recover a virtual node). A reason longer than MaxReason
// bytes is an error.
func (a *Agent) SetNodeState(ctx context.Context, node string, state driver.NodeState, reason string) error {
	if len(reason) > MaxReason {
		return fmt.Errorf("agent: node %s: reason longer than %d bytes", node, MaxReason)
	}
	nc, ok := a.drv.(driver.NodeController)
	if !ok {
		return fmt.Errorf("agent: driver %s: %w", a.drv.Name(), driver.ErrUnsupported)
	}
	if err := nc.SetNodeState(ctx, node, state, reason); err != nil {
		return err
	}
	a.emit(eventlog.Event{Kind: eventlog.Acted, What: "node-state", Node: node, Why: fmt.Sprintf("%s: %s", state, reason)})
	return nil
}

// ownInstances splits what a driver's Adopt returned into the instances of the
// fleet's own services and the rest, which the agent never adopts: another fleet
// (or an operator) may own them.
func (a *Agent) ownInstances(insts []driver.Instance) (own, foreign []driver.Instance) {
	for _, in := range insts {
		if _, ok := a.svcs[in.Service]; ok {
			own = append(own, in)
		} else {
			foreign = append(foreign, in)
		}
	}
	return own, foreign
}

// serviceSpec is the spec handed to an Orchestrator. Its health check probes the
// readiness path, not liveness: the orchestrator's rolling update judges a new task
// by that check, so a release that runs but never becomes ready fails it and is
// rolled back by the orchestrator itself.
func (a *Agent) serviceSpec(s *svc) driver.ServiceSpec {
	c := s.cfg
	pol := driver.UpdatePolicy{Parallelism: c.Update.Parallelism, Delay: c.Update.Delay.D(), Monitor: c.Update.Monitor.D(),
		FailureAction: c.Update.FailureAction, MaxFailureRatio: c.Update.MaxFailureRatio}
	return driver.ServiceSpec{Name: c.Name, Version: s.version, Image: strings.ReplaceAll(c.Image, "{version}", s.version),
		Command: c.Command, Env: c.Env, Replicas: s.desired, BasePort: c.BasePort,
		Health: driver.HealthCheck{Path: c.Health.Readiness, Interval: c.Health.Interval.D(), Timeout: c.Health.Timeout.D(), Retries: c.Health.FailureThreshold},
		Update: pol, Rollback: pol}
}
