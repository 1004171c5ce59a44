package play

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// DockerImage is the tag of the demo service's image on the engine.
const DockerImage = "selfheal-demo:latest"

// ServicePackage is the demo service's Go package, built into the image.
const ServicePackage = "github.com/selfheal-go/selfheal/examples/service"

// NewDocker returns the Swarm driver for the engine at host (the demo reads it from
// SELFHEAL_DOCKER_HOST), checks that the engine answers, and builds the demo
// service's image on it (FROM scratch, nothing pulled). An engine that does not
// answer is an error matching docker.ErrEngineUnavailable.
func NewDocker(ctx context.Context, host string) (*docker.Driver, error) {
	d, err := docker.New(docker.Config{Host: host, StopGrace: dockerStopGrace, HealthStartPeriod: 3 * time.Second})
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = d.Ping(pctx)
	cancel()
	if err != nil {
		d.Close()
		return nil, err
	}
	if _, err := d.BuildGoImage(ctx, "", ServicePackage, docker.ImageSpec{Tag: DockerImage}); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// dockerStopGrace is the time Swarm gives a task between SIGTERM and SIGKILL: enough
// for the service's drain (see dockerDrain) and its graceful shutdown.
const dockerStopGrace = 5 * time.Second

// dockerDrain is how long a task that Swarm stops (scaling in, updating) keeps
// serving with its readiness failing before its listener closes. Swarm, not the
// agent, picks the tasks it stops, so the agent cannot take them out of the front
// door first as the local driver does: the front door only learns at the agent's
// next probe. A drain of two probe intervals and a margin lets it learn before the
// listener closes, so no request meets a closed port.
func dockerDrain(interval time.Duration) time.Duration {
	return min(2*interval+250*time.Millisecond, dockerStopGrace-time.Second)
}

// DockerOptions configures a Fleet on Docker Swarm. Zero fields mean the defaults in
// the comments.
type DockerOptions struct {
	Driver      *docker.Driver // from NewDocker; required. Fleet.Close closes it.
	Dir         string         // work directory (the fleet file); required
	Service     string         // the Swarm service's name; "" means "web"
	Interval    time.Duration  // probe interval (also Docker's HEALTHCHECK interval); 0 means 500ms
	Replicas    int            // 0 means 3
	MaxReplicas int            // ports reserved for replica slots; 0 means 12
	Parallelism int            // rolling update parallelism; 0 means 3
	UpdateDelay time.Duration  // delay between update batches; 0 means 2s
	LoadRPS     int            // load generator rate; 0 means 40
	Timeline    io.Writer      // where the timeline is printed; nil means nowhere
	EventLog    io.Writer      // JSON lines of every event; nil means nowhere
	// ProbeTimeout is the agent's probe timeout; 0 means 4/5 of Interval.
	ProbeTimeout time.Duration
	// FailureThreshold is how many probes must fail in a row; 0 means 2.
	FailureThreshold int
	Image            string   // the service's image; "" means DockerImage
	Env              []string // more environment for every task
	// NodeGuard runs the docker driver's node guard beside the agent (the agent's
	// nodePool): a confirmed-lost worker removed from the swarm, a node provisioned
	// below MinNodes (Provision), the service spread onto a node that joins. Every
	// action is an incident on the timeline.
	NodeGuard bool
	MinNodes  int
	Provision func(ctx context.Context) error
}

// StartDocker starts the agent with the Swarm driver: it declares the service to
// Swarm (image DockerImage, host networking, one port per replica slot), feeds the
// engine's own events (restarts, health changes, update states) into the event log,
// and waits until the replicas are ready and the front door serves.
func StartDocker(ctx context.Context, o DockerOptions) (*Fleet, error) {
	if o.Driver == nil || o.Dir == "" {
		return nil, errors.New("play: DockerOptions.Driver and Dir are required")
	}
	if o.Service == "" {
		o.Service = "web"
	}
	if o.Interval <= 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.Replicas <= 0 {
		o.Replicas = 3
	}
	if o.MaxReplicas <= 0 {
		o.MaxReplicas = 12
	}
	if o.Parallelism <= 0 {
		o.Parallelism = 3
	}
	if o.UpdateDelay <= 0 {
		o.UpdateDelay = 2 * time.Second
	}
	if o.LoadRPS <= 0 {
		o.LoadRPS = 40
	}
	if o.Image == "" {
		o.Image = DockerImage
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = o.Interval * 4 / 5
	}
	if o.FailureThreshold <= 0 {
		o.FailureThreshold = 2
	}
	o.Timeline = SyncWriter(o.Timeline)
	base, err := freePorts(o.MaxReplicas)
	if err != nil {
		return nil, err
	}
	iv := o.Interval
	// No command: the image's entrypoint reads PORT, VERSION and INSTANCE_ID from
	// the environment Swarm gives each task (Swarm templates only the environment).
	yaml := fmt.Sprintf(`agent:
  driver: docker
  listen: "off"
  budget: {max: 30, window: 1m}
services:
  - name: %s
    version: v1
    image: %s
    env: [FAULT_TOKEN=%s, DRAIN=%s%s]
    replicas: %d
    minReplicas: 1
    maxReplicas: %d
    basePort: %d
    frontDoor: 127.0.0.1:0
    stopGrace: %s
    health: {interval: %s, timeout: %s, failureThreshold: %d, startupGrace: 5s}
    update: {parallelism: %d, delay: %s, monitor: 2s, failureAction: rollback}
`, o.Service, o.Image, Token, dockerDrain(iv), envList(o.Env), o.Replicas, o.MaxReplicas, base, dockerStopGrace, iv, o.ProbeTimeout, o.FailureThreshold, o.Parallelism, o.UpdateDelay)
	path := filepath.Join(o.Dir, "fleet.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	fleet, err := config.Parse(path, []byte(yaml))
	if err != nil {
		return nil, err
	}
	ev := eventlog.New(o.EventLog, 2000)
	a, err := core.New(core.Config{Fleet: fleet, Driver: o.Driver, Events: ev, FrontDoorAttemptTimeout: time.Second})
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	f := &Fleet{Agent: a, Events: ev, t0: time.Now(), done: make(chan error, 1),
		opt: Options{Interval: iv, Replicas: o.Replicas, LoadRPS: o.LoadRPS, Timeline: o.Timeline},
		tr:  tr, client: &http.Client{Transport: tr, Timeout: 2 * time.Second}, evDone: make(chan struct{}),
		docker: o.Driver, service: o.Service, dopt: o, dbase: base, watchDone: make(chan struct{})}
	c, unsub := ev.Subscribe(4096)
	f.unsub = unsub
	go f.collect(c)
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	f.watchStop = wcancel
	go func() {
		defer close(f.watchDone)
		_ = o.Driver.Watch(wctx, func(e docker.Event) {
			if e.Service != "" && e.Service != o.Service {
				return
			}
			ev.Emit(eventlog.Event{Time: e.Time, Kind: eventlog.Observed, What: "docker:" + e.Kind, Service: e.Service,
				Instance: e.Instance, Node: e.Node, Why: e.Message})
		})
	}()
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel = cancel
	go func() { f.done <- a.Run(rctx) }()
	f.guardStop = func() {}
	if o.NodeGuard {
		stop, err := startGuard(rctx, o, a.Record)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.guardStop = stop
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		f.Door = a.FrontDoorAddr(o.Service)
		if f.Door != "" && len(a.Backends(o.Service)) == o.Replicas {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.Close()
			return nil, fmt.Errorf("the fleet did not become ready on Swarm in 60s: %d ready", len(a.Backends(o.Service)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.Load = StartLoad("http://"+f.Door+"/api/hello", o.LoadRPS)
	return f, nil
}

// envList renders env as more items of a YAML flow sequence.
func envList(env []string) string {
	var b strings.Builder
	for _, e := range env {
		fmt.Fprintf(&b, ", %q", e)
	}
	return b.String()
}

// startGuard runs the docker driver's node guard as the agent's nodePool does, its
// actions recorded as incidents through rec. stop ends it and waits for it.
func startGuard(ctx context.Context, o DockerOptions, rec func(eventlog.Event)) (stop func(), err error) {
	var mu sync.Mutex
	n := 0
	g, err := docker.NewNodeGuard(docker.NodeGuardConfig{
		Driver: o.Driver, MinNodes: o.MinNodes, Provision: o.Provision, Spread: true,
		OnIncident: func(in docker.NodeIncident) {
			mu.Lock()
			n++
			id := fmt.Sprintf("node#%d", n)
			mu.Unlock()
			recordNodeIncident(rec, id, in)
		},
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Run(ctx)
	}()
	return func() { cancel(); <-done }, nil
}

// Node incidents on the event log, as the agent records them (examples/agent).
const (
	NodeLost      = "node-lost"       // a confirmed-lost worker removed from the swarm
	NodesBelowMin = "nodes-below-min" // a node provisioned
	NodeJoined    = "node-joined"     // the services spread onto a node that joined
)

// recordNodeIncident turns a guard's action into an incident: decided (why, at the
// confirmation), then acted and healed, or failed.
func recordNodeIncident(rec func(eventlog.Event), id string, in docker.NodeIncident) {
	what := map[string]string{docker.ActionRemove: NodeLost, docker.ActionProvision: NodesBelowMin,
		docker.ActionSpread: NodeJoined, docker.ActionDrain: "node-pressure"}[in.Action]
	obs := eventlog.Event{Time: in.Confirmed, Kind: eventlog.Decided, What: what, Node: in.Node, Incident: id, Why: in.Reason}
	if !in.SilentFrom.IsZero() {
		obs.DetectMs = float64(in.Confirmed.Sub(in.SilentFrom).Microseconds()) / 1e3
	}
	rec(obs)
	if in.Err != nil {
		rec(eventlog.Event{Kind: eventlog.Failed, What: in.Action, Node: in.Node, Incident: id, Why: in.Err.Error()})
		return
	}
	rec(eventlog.Event{Time: in.Removed, Kind: eventlog.Healed, What: what, Node: in.Node, Incident: id,
		HealMs: float64(in.Removed.Sub(in.Confirmed).Microseconds()) / 1e3})
}

// freePorts returns the first of n consecutive free loopback ports below the
// kernel's ephemeral range, for the replica slots (host networking).
func freePorts(n int) (int, error) {
	for base := 21000 + int(time.Now().UnixNano()%4000); base < 32000; base += n {
		free := true
		for p := base; p < base+n && free; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				continue
			}
			l.Close()
		}
		if free {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free ports on 127.0.0.1", n)
}

// closeDocker removes the service (Swarm stops its tasks), waits for the replica
// ports to be free and the tasks to be gone, and joins the event watcher. The
// agent has already stopped.
func (f *Fleet) closeDocker() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if f.guardStop != nil {
		f.guardStop()
	}
	var errs []error
	if err := f.docker.Remove(ctx, f.service); err != nil && !errors.Is(err, driver.ErrNotFound) {
		errs = append(errs, fmt.Errorf("remove service %s: %w", f.service, err))
	}
	for ctx.Err() == nil {
		insts, err := f.docker.Instances(ctx, f.service)
		if errors.Is(err, driver.ErrNotFound) || err == nil && len(insts) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var wg sync.WaitGroup
	for slot := range f.dopt.MaxReplicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := fmt.Sprintf("127.0.0.1:%d", f.dbase+slot)
			for ctx.Err() == nil {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					return
				}
				c.Close()
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("service %s: tasks still running after 60s", f.service))
	}
	f.watchStop()
	<-f.watchDone
	f.unsub()
	<-f.evDone
	f.tr.CloseIdleConnections()
	f.docker.Close()
	return errors.Join(errs...)
}

// DockerSteps are the demo's steps on Docker Swarm, in the order the demo plays
// them. A real node failure cannot be shown on one engine: the node step drains the
// only node (its tasks go pending) and activates it again (they return).
var DockerSteps = []Step{
	{"crash -> swarm restarts", DockerCrash},
	{"unhealthy doc -> replace", DockerUnhealthy},
	{"scale 3 -> 12", func(ctx context.Context, f *Fleet) Result { return DockerScale(ctx, f, 12) }},
	{"rolling update v2", func(ctx context.Context, f *Fleet) Result { return DockerRollout(ctx, f, "v2", false) }},
	{"bad version -> rollback", func(ctx context.Context, f *Fleet) Result { return DockerRollout(ctx, f, "v3-broken", true) }},
	{"scale 12 -> 3", func(ctx context.Context, f *Fleet) Result { return DockerScale(ctx, f, 3) }},
	{"node drain -> activate", DockerNodeDrain},
}

// awaitHealed polls until want() holds, for at most d, and returns when it first
// held.
func awaitHealed(ctx context.Context, d time.Duration, want func() bool) (eventlog.Event, bool) {
	ok := WaitFor(ctx, d, want)
	return eventlog.Event{Time: time.Now()}, ok
}

// readyWithout is the number of ready instances other than id.
func (f *Fleet) readyWithout(ctx context.Context, id string) int {
	n := 0
	for _, in := range f.Instances(ctx) {
		if in.Ready && in.ID != id {
			n++
		}
	}
	return n
}

func (f *Fleet) desired(ctx context.Context) int { return f.Agent.Status(ctx, 0).Services[0].Desired }

// DockerCrash crashes one task; Swarm's restart policy replaces it, the agent
// reports it. Healed: as many ready instances as desired, the crashed one gone.
func DockerCrash(ctx context.Context, f *Fleet) Result {
	r := Result{Step: "crash -> swarm restarts", Deadline: 20 * time.Second}
	want := f.desired(ctx)
	id, t0, ok := f.inject(ctx, &r, "crash", ">> crash %s")
	if !ok {
		return r
	}
	obs, okObs := f.Await(ctx, t0, r.Deadline, func(e eventlog.Event) bool {
		return e.Instance == id && (e.What == "crash" || e.What == "docker:"+docker.EventInstanceExited)
	})
	healed, okHealed := awaitHealed(ctx, r.Deadline, func() bool { return f.readyWithout(ctx, id) >= want })
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	return r
}

// DockerUnhealthy serves a malformed health document from one task: Docker's
// HEALTHCHECK (readiness) still passes, the agent sees it and stops the task, and
// Swarm starts a replacement in its slot.
func DockerUnhealthy(ctx context.Context, f *Fleet) Result {
	r := Result{Step: "unhealthy doc -> replace", Deadline: 20 * time.Second}
	want := f.desired(ctx)
	id, t0, ok := f.inject(ctx, &r, "garble", ">> %s serves a malformed health document (Swarm's HEALTHCHECK still passes)")
	if !ok {
		return r
	}
	obs, okObs := f.Await(ctx, t0, r.Deadline, func(e eventlog.Event) bool {
		return e.Kind == eventlog.Observed && e.What == "unhealthy" && e.Instance == id
	})
	healed, okHealed := awaitHealed(ctx, r.Deadline, func() bool {
		return okObs && f.readyWithout(ctx, id) >= want && !f.has(ctx, id)
	})
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	return r
}

func (f *Fleet) has(ctx context.Context, id string) bool {
	for _, in := range f.Instances(ctx) {
		if in.ID == id {
			return true
		}
	}
	return false
}

// DockerScale scales the service by hand through the agent (Swarm's replica count).
func DockerScale(ctx context.Context, f *Fleet, n int) Result {
	from := f.desired(ctx)
	r := Result{Step: fmt.Sprintf("scale %d -> %d", from, n), Deadline: 40 * time.Second}
	f.Printf(">> scale %s %d -> %d", f.service, from, n)
	t0 := time.Now()
	if err := f.Agent.Scale(f.service, n); err != nil {
		r.Note = err.Error()
		return r
	}
	obs, okObs := f.Await(ctx, t0, r.Deadline, func(e eventlog.Event) bool {
		return e.Kind == eventlog.Decided && e.What == "scale"
	})
	healed, okHealed := awaitHealed(ctx, r.Deadline, func() bool {
		st := f.Agent.Status(ctx, 0).Services[0]
		return st.Ready == n && len(st.Instances) == n
	})
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	return r
}

// DockerRollout rolls version out through Swarm's rolling update (parallelism and
// delay from DockerOptions, readiness as Swarm's health check). A bad version never
// becomes ready and Swarm rolls it back by itself.
func DockerRollout(ctx context.Context, f *Fleet, version string, bad bool) Result {
	name := "rolling update " + version
	if bad {
		name = "bad version -> rollback"
	}
	r := Result{Step: name, Deadline: 90 * time.Second}
	before, t0, ok := f.startUpdate(ctx, &r, version)
	if !ok {
		return r
	}
	obs, okObs := f.Await(ctx, t0, r.Deadline, func(e eventlog.Event) bool {
		if bad {
			return e.Kind == eventlog.Observed && e.What == "rollout-state" && e.Incident != "" &&
				(strings.Contains(e.Why, string(driver.RolloutRollbackStarted)) || strings.Contains(e.Why, string(driver.RolloutRollbackCompleted)))
		}
		return e.Kind == eventlog.Observed && e.What == "rollout-state"
	})
	want := version
	final := string(driver.RolloutCompleted)
	if bad {
		want, final = before.Version, string(driver.RolloutRollbackCompleted)
	}
	left := func() time.Duration { return max(0, r.Deadline-time.Since(t0)) }
	_, okFinal := f.Await(ctx, t0, left(), func(e eventlog.Event) bool {
		return okObs && e.Kind == eventlog.Healed && e.What == final
	})
	healed, okHealed := awaitHealed(ctx, left(), func() bool {
		return okFinal && f.ReadyCount(want) == before.Desired
	})
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	servedGoal(&r)
	return r
}

// DockerNodeDrain drains the engine's only node: its tasks go pending, since no
// other node can take them (a real node failure and rescheduling cannot be shown on
// one engine: the local driver's virtual nodes show that). Activating the node
// brings the tasks back. Detect: all tasks gone from the node; healed: all ready
// again after the node is active.
func DockerNodeDrain(ctx context.Context, f *Fleet) Result {
	r := Result{Step: "node drain -> activate", Deadline: 40 * time.Second}
	nodes, err := f.docker.Nodes(ctx)
	if err != nil || len(nodes) == 0 {
		r.Note = fmt.Sprintf("no node: %v", err)
		return r
	}
	node := nodes[0].Name
	want := f.desired(ctx)
	f.Printf(">> drain node %s (the only node: its %d tasks go pending; a real node failure cannot be shown on one engine)", node, want)
	t0 := time.Now()
	if err := f.NodeState(ctx, node, driver.NodeDrained); err != nil {
		r.Note = err.Error()
		return r
	}
	var obs eventlog.Event
	okObs := WaitFor(ctx, 20*time.Second, func() bool {
		insts, err := f.docker.Instances(ctx, f.service)
		if err != nil {
			return false
		}
		for _, in := range insts {
			if in.State == driver.StateRunning {
				return false
			}
		}
		obs = eventlog.Event{Time: time.Now()}
		return true
	})
	f.Printf(">> tasks pending: %v; activate node %s", okObs, node)
	if err := f.NodeState(ctx, node, driver.NodeReady); err != nil {
		r.Note = err.Error()
		return r
	}
	healed, okHealed := awaitHealed(ctx, r.Deadline, func() bool { return f.ReadyCount("") >= want })
	f.finish(&r, t0, obs, healed, okObs, okHealed)
	r.Goal = "clients fail while the only node is drained (expected)"
	r.GoalMet = true
	return r
}
