package play

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// LabImage is the image every host of the test-host lab (.ci/docker/lab.sh) has
// loaded: the docker driver's test service (faults, /health document, DRAIN, a
// version containing "bad" never ready).
const LabImage = "selfheal-testsvc:lab"

// LabOptions configures PlayLab: the classic demonstration on the test-host lab, a
// Docker Swarm of hosts in network namespaces. The process must run inside the
// manager host's network namespace (the hosts' addresses are reachable only there).
type LabOptions struct {
	// Driver is the Swarm driver on the lab's manager (NewLabDocker); required. The
	// caller closes it.
	Driver *docker.Driver
	// Lab runs .ci/docker/lab.sh with args where the lab's namespaces live and
	// returns its standard output; required.
	Lab func(ctx context.Context, args ...string) (string, error)
	// Manager is the manager host's name: never killed.
	Manager string
	Dir     string // work directory; required with the agent
	// Agent: the agent runs (its front door, node guard and node pool); without it,
	// Swarm alone, with a front door that routes as Swarm's ingress mesh would.
	Agent       bool
	Image       string        // "" means LabImage
	Interval    time.Duration // probe and HEALTHCHECK interval; 0 means 1s
	Replicas    int           // 0 means 3
	ScaleTo     int           // 0 means 12
	Parallelism int           // rolling update parallelism; 0 means 3
	UpdateDelay time.Duration // delay between update batches; 0 means 10s
	LoadRPS     int           // 0 means 40
	Timeline    io.Writer     // nil means nowhere
	EventLog    io.Writer     // the agent's events as JSON lines; nil means nowhere
}

// Lab steps, in the order PlayLab plays them.
const (
	LabSpread   = "3 replicas over 3 hosts"
	LabHostLost = "host killed -> rescheduled"
	LabReplace  = "replacement host joins"
	LabScale    = "scale 3 -> 12"
	LabUpdate   = "rolling update v2"
	LabRollback = "bad version -> rollback"
)

// NewLabDocker returns the Swarm driver for the lab's manager at host and checks
// that it answers. Nothing is built: the lab's hosts have LabImage loaded.
func NewLabDocker(ctx context.Context, host string) (*docker.Driver, error) {
	// Lenient engine checks (every 2 s, 5 s, 4 in a row): on a loaded machine the
	// exec'd check times out and Swarm would kill healthy tasks; the agent judges
	// health itself.
	d, err := docker.New(docker.Config{Host: host, CallTimeout: 10 * time.Second, StopGrace: dockerStopGrace, HealthStartPeriod: 3 * time.Second,
		CheckTimeout: 5 * time.Second, CheckRetries: 4, CheckInterval: labCheckInterval})
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
	return d, nil
}

// labCheckInterval is the least interval of the engine's own health check on the
// lab (docker.Config.CheckInterval).
const labCheckInterval = 2 * time.Second

// labProbeTimeout and labFailureThreshold are the agent's probe timeout and how many
// probes must fail in a row on the lab: its hosts share this machine's cores with
// everything else, and a loaded machine answers slowly, not wrongly.
const (
	labProbeTimeout     = 2 * time.Second
	labFailureThreshold = 3
)

// labRun is one pass of the lab's steps, with the agent or with Swarm alone.
type labRun struct {
	o       LabOptions
	d       *docker.Driver
	service string
	fleet   *Fleet // with the agent
	mesh    *meshDoor
	load    *Load
	spec    driver.ServiceSpec // Swarm alone: the spec as declared
	door    string
	http    *http.Client
	t0      time.Time
	tl      io.Writer
	lost    []string  // hosts this pass killed
	before  []string  // the ready nodes before the kill
	short   time.Time // when the swarm had a node too few: the agent removed the lost one, or Swarm showed it down
}

// PlayLab plays the classic demonstration on the lab: 3 replicas spread over 3
// hosts; a worker host killed (lab.sh kill-host) and its replicas running elsewhere;
// a replacement host joining (the agent's node pool provisions it, lab.sh add-host;
// with Swarm alone the operator adds it); scale to 12; a rolling update,
// Parallelism at a time with UpdateDelay; a bad version rolled back. Clients send
// LoadRPS requests a second through the front door the whole time. It returns one
// Result per step and removes its service; the lab keeps as many ready nodes as it
// had (with Swarm alone, the dead node is removed at the end).
func PlayLab(ctx context.Context, o LabOptions) ([]Result, error) {
	if o.Driver == nil || o.Lab == nil || o.Agent && o.Dir == "" {
		return nil, errors.New("play: LabOptions.Driver and Lab are required, and Dir with the agent")
	}
	if o.Image == "" {
		o.Image = LabImage
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Replicas <= 0 {
		o.Replicas = 3
	}
	if o.ScaleTo <= 0 {
		o.ScaleTo = 12
	}
	if o.Parallelism <= 0 {
		o.Parallelism = 3
	}
	if o.UpdateDelay <= 0 {
		o.UpdateDelay = 10 * time.Second
	}
	if o.LoadRPS <= 0 {
		o.LoadRPS = 40
	}
	o.Timeline = SyncWriter(o.Timeline)
	r := &labRun{o: o, d: o.Driver, tl: o.Timeline, t0: time.Now(),
		http: &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	defer r.http.CloseIdleConnections()
	nodes, err := r.readyNodes(ctx)
	if err != nil {
		return nil, err
	}
	if len(nodes) < 3 {
		return nil, fmt.Errorf("play: the lab has %d ready nodes (%v), the demonstration needs 3", len(nodes), nodes)
	}
	// a service of an interrupted run would be adopted, with its replicas and version
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	r.service = "web"
	err = r.removeService(rctx)
	cancel()
	if err != nil {
		return nil, err
	}
	var results []Result
	res, err := r.start(ctx)
	if err != nil {
		return nil, err
	}
	results = append(results, res)
	for _, step := range []func(context.Context) Result{r.hostLost, r.replace, r.scale, r.update, r.rollback} {
		if ctx.Err() != nil {
			break
		}
		results = append(results, step(ctx))
	}
	return results, r.close()
}

func (r *labRun) printf(format string, args ...any) {
	if r.tl != nil {
		fmt.Fprintf(r.tl, "  %8.3fs  "+format+"\n", append([]any{time.Since(r.t0).Seconds()}, args...)...)
	}
}

func (r *labRun) mode() string {
	if r.o.Agent {
		return "agent"
	}
	return "swarm alone"
}

// start declares the service (through the agent, or straight to Swarm), waits until
// its replicas are live, and starts the clients.
func (r *labRun) start(ctx context.Context) (Result, error) {
	res := Result{Step: LabSpread, Deadline: 60 * time.Second}
	t0 := time.Now()
	drain := fmt.Sprintf("DRAIN=%s", dockerDrain(r.o.Interval))
	if r.o.Agent {
		f, err := StartDocker(ctx, DockerOptions{Driver: r.d, Dir: r.o.Dir, Service: "web", Interval: r.o.Interval,
			Replicas: r.o.Replicas, MaxReplicas: r.o.ScaleTo, Parallelism: r.o.Parallelism, UpdateDelay: r.o.UpdateDelay,
			LoadRPS: r.o.LoadRPS, Timeline: r.tl, EventLog: r.o.EventLog, Image: r.o.Image,
			Env: []string{"LISTEN_HOST=0.0.0.0"}, ProbeTimeout: labProbeTimeout, FailureThreshold: labFailureThreshold,
			NodeGuard: true, MinNodes: 3, Provision: func(ctx context.Context) error {
				_, err := r.o.Lab(ctx, "add-host")
				return err
			}})
		if err != nil {
			return res, err
		}
		r.fleet, r.service, r.door, r.load = f, f.service, f.Door, f.Load
		r.t0 = f.t0
	} else {
		base, err := freePorts(r.o.ScaleTo)
		if err != nil {
			return res, err
		}
		r.service = "web"
		pol := driver.UpdatePolicy{Parallelism: r.o.Parallelism, Delay: r.o.UpdateDelay, Monitor: 2 * time.Second, FailureAction: "rollback"}
		r.spec = driver.ServiceSpec{Name: r.service, Version: "v1", Image: r.o.Image, Replicas: r.o.Replicas, BasePort: base,
			Env:    []string{"LISTEN_HOST=0.0.0.0", drain},
			Health: driver.HealthCheck{Path: "/readyz", Interval: r.o.Interval, Timeout: labProbeTimeout, Retries: labFailureThreshold},
			Update: pol, Rollback: pol}
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = r.d.Apply(actx, r.spec)
		cancel()
		if err != nil {
			return res, err
		}
		r.mesh, err = startMesh(r.d, r.service, r.http)
		if err != nil {
			return res, errors.Join(err, r.close())
		}
		r.door = r.mesh.addr
	}
	r.printf(">> %s: service %s, %d replicas of %s, front door http://%s", r.mode(), r.service, r.o.Replicas, r.o.Image, r.door)
	var insts []driver.Instance
	ok := WaitFor(ctx, res.Deadline, func() bool {
		insts = r.live(ctx, "", "")
		return len(insts) == r.o.Replicas && r.routed() == r.o.Replicas
	})
	if !ok {
		return res, errors.Join(fmt.Errorf("play: %d of %d replicas live after %v", len(insts), r.o.Replicas, res.Deadline), r.close())
	}
	res.Heal = time.Since(t0)
	if r.load == nil {
		r.load = StartLoad("http://"+r.door+"/api/hello", r.o.LoadRPS)
	}
	on := nodesOf(insts)
	res.Pass = len(on) == r.o.Replicas
	res.Note = fmt.Sprintf("on %s", strings.Join(on, ", "))
	if !res.Pass {
		res.Note = "not spread: " + res.Note
	}
	r.printf("== %s: %s", res.Step, res.Note)
	return res, nil
}

// routed is how many backends the front door routes to.
func (r *labRun) routed() int {
	if r.fleet != nil {
		return len(r.fleet.Agent.Backends(r.service))
	}
	return len(r.mesh.backends())
}

// live returns the running instances that answer /livez within a second (probed at
// once), at version v unless v is "", and none on node not.
func (r *labRun) live(ctx context.Context, v, not string) []driver.Instance {
	insts, err := r.d.Instances(ctx, r.service)
	if err != nil {
		return nil
	}
	ok := make([]bool, len(insts))
	var wg sync.WaitGroup
	for i, in := range insts {
		if in.State != driver.StateRunning || v != "" && in.Version != v || in.Node == not && not != "" {
			continue
		}
		wg.Go(func() { ok[i] = r.probe(ctx, in.Addr) })
	}
	wg.Wait()
	var out []driver.Instance
	for i, in := range insts {
		if ok[i] {
			out = append(out, in)
		}
	}
	return out
}

func (r *labRun) probe(ctx context.Context, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/livez", nil)
	if err != nil {
		return false
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func nodesOf(insts []driver.Instance) []string {
	var ns []string
	for _, in := range insts {
		if !slices.Contains(ns, in.Node) {
			ns = append(ns, in.Node)
		}
	}
	slices.Sort(ns)
	return ns
}

func (r *labRun) readyNodes(ctx context.Context) ([]string, error) {
	nodes, err := r.d.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nodes {
		if n.State == driver.NodeReady {
			out = append(out, n.Name)
		}
	}
	return out, nil
}

// finish closes a step: the clients' outcome between from and healed (plus half a
// second of the healed state), heal from t0, the pass and the timeline line.
func (r *labRun) finish(res *Result, t0, from, healed time.Time, okHealed bool) {
	end := time.Now()
	if okHealed {
		res.Heal = healed.Sub(t0)
		for time.Now().Before(healed.Add(500 * time.Millisecond)) {
			time.Sleep(20 * time.Millisecond)
		}
		end = time.Now()
	}
	res.Requests, res.OK = r.load.Between(from, end)
	for why, n := range r.load.Failures(from, end) {
		r.printf("!! %d client requests failed: %s", n, why)
	}
	res.Pass = okHealed && res.Heal <= res.Deadline
	switch {
	case !okHealed:
		res.Note = strings.TrimPrefix(res.Note+"; not healed", "; ")
	case res.Heal > res.Deadline:
		res.Note = strings.TrimPrefix(res.Note+"; healed after the deadline", "; ")
	}
	r.printf("== %s (%s)", res, r.mode())
}

// await polls cond every 50 ms for at most d and returns when it first held.
func await(ctx context.Context, d time.Duration, cond func() bool) (time.Time, bool) {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return time.Now(), true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Time{}, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// event returns the time of the first agent event since t that matches pred.
func (r *labRun) event(since time.Time, pred func(eventlog.Event) bool) (time.Time, bool) {
	for _, e := range r.fleet.EventsSince(since) {
		if pred(e) {
			return e.Time, true
		}
	}
	return time.Time{}, false
}

// hostLost kills a worker that runs a replica. Detect: the agent confirmed the loss
// (node-lost), or Swarm shows the node down; heal: the replicas live elsewhere and
// routed.
func (r *labRun) hostLost(ctx context.Context) Result {
	res := Result{Step: LabHostLost, Deadline: 60 * time.Second}
	var err error
	if r.before, err = r.readyNodes(ctx); err != nil {
		res.Note = err.Error()
		return res
	}
	victim := ""
	for _, in := range r.live(ctx, "", "") {
		if in.Node != r.o.Manager {
			victim = in.Node
		}
	}
	if victim == "" {
		res.Note = "no replica on a worker"
		return res
	}
	r.printf(">> terminate host %s (lab.sh kill-host: its link cut, kill -9 of its engine, containerd and tasks)", victim)
	out, err := r.o.Lab(ctx, "kill-host", victim)
	if err != nil {
		res.Note = err.Error()
		return res
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		res.Note = fmt.Sprintf("kill-host printed %q", out)
		return res
	}
	r.lost = append(r.lost, victim)
	t0 := time.Unix(0, ns)
	var detected time.Time
	detect := func() bool {
		if !detected.IsZero() {
			return true
		}
		if r.fleet != nil {
			detected, _ = r.event(t0, func(e eventlog.Event) bool { return e.What == NodeLost && e.Node == victim })
			return !detected.IsZero()
		}
		nodes, err := r.d.Nodes(ctx)
		if err != nil {
			return false
		}
		for _, n := range nodes {
			if n.Name == victim && n.State != driver.NodeReady {
				detected = time.Now()
			}
		}
		return !detected.IsZero()
	}
	healed, ok := await(ctx, res.Deadline, func() bool {
		detect()
		return len(r.live(ctx, "", victim)) == r.o.Replicas && r.routedOff(victim) == r.o.Replicas
	})
	if _, okd := await(ctx, 20*time.Second, detect); okd {
		res.Detect = detected.Sub(t0)
		r.short = detected
	}
	if r.fleet != nil {
		for _, e := range r.fleet.EventsSince(t0) {
			if e.What == NodeLost && e.Kind == eventlog.Healed && e.Node == victim {
				r.short = e.Time // removed from the swarm
			}
		}
	}
	res.Note = "killed " + victim
	r.finish(&res, t0, t0, healed, ok)
	res.Goal = ">= 99.9% clients served"
	res.GoalMet = res.SuccessRate() >= 0.999
	if r.o.Agent {
		res.Goal = "<= 3s, " + res.Goal
		res.GoalMet = res.GoalMet && ok && res.Heal <= 3*time.Second
	}
	return res
}

// routedOff is how many of the front door's backends are on a node other than node.
func (r *labRun) routedOff(node string) int {
	insts, err := r.d.Instances(context.Background(), r.service)
	if err != nil {
		return 0
	}
	where := map[string]string{}
	for _, in := range insts {
		where[in.Addr] = in.Node
	}
	var addrs []string
	if r.fleet != nil {
		for _, b := range r.fleet.Agent.Backends(r.service) {
			addrs = append(addrs, b.Addr)
		}
	} else {
		addrs = r.mesh.backends()
	}
	n := 0
	for _, a := range addrs {
		if w, ok := where[a]; ok && w != node {
			n++
		}
	}
	return n
}

// replace: a host joins in place of the lost one, timed from when the swarm had a
// node too few (the lost node removed by the agent, or shown down by Swarm). With
// the agent its node pool (nodePool.min 3) provisions it and spreads the service
// onto it: detect is the decision, heal a replica live on the new host (this starts
// while the previous step ends). With Swarm alone the operator adds it at the start
// of the step (detect: Swarm shows it ready) and no replica moves to it (Swarm
// places only new tasks there): not healed.
func (r *labRun) replace(ctx context.Context) Result {
	res := Result{Step: LabReplace, Deadline: 90 * time.Second}
	from := time.Now() // the clients of the step: the previous step counted those before
	t0 := r.short
	if t0.IsZero() {
		t0 = from
	}
	fresh := func() string {
		nodes, _ := r.readyNodes(ctx)
		for _, n := range nodes {
			if !slices.Contains(r.before, n) {
				return n
			}
		}
		return ""
	}
	if r.fleet == nil {
		r.printf(">> the operator adds a host (lab.sh add-host): Swarm has no node pool")
		if _, err := r.o.Lab(ctx, "add-host"); err != nil {
			res.Note = err.Error()
			return res
		}
		at, ok := await(ctx, 30*time.Second, func() bool { return fresh() != "" })
		if ok {
			res.Detect = at.Sub(t0)
		}
		node := fresh()
		_, moved := await(ctx, 5*time.Second, func() bool { return slices.Contains(nodesOf(r.live(ctx, "", "")), node) })
		res.Note = fmt.Sprintf("%s joined by hand; no replica moved to it", node)
		if moved {
			res.Note = node + " joined by hand and took a replica"
		}
		res.Requests, res.OK = r.load.Between(from, time.Now())
		res.Pass = ok && node != "" // the step is measured, not healed
		r.printf("== %s (%s)", res, r.mode())
		return res
	}
	r.printf(">> the agent's node pool (min 3 ready nodes) provisions a host and spreads the service onto it")
	node := ""
	healed, ok := await(ctx, res.Deadline, func() bool {
		if res.Detect == 0 {
			if at, ok := r.event(t0, func(e eventlog.Event) bool { return e.What == NodesBelowMin }); ok {
				res.Detect = at.Sub(t0)
			}
		}
		if node == "" {
			node = fresh()
		}
		if node == "" {
			return false
		}
		_, spread := r.event(t0, func(e eventlog.Event) bool { return e.What == NodeJoined && e.Kind == eventlog.Healed })
		live := r.live(ctx, "", "")
		return spread && len(live) == r.o.Replicas && slices.Contains(nodesOf(live), node) && r.routed() == r.o.Replicas
	})
	res.Note = fmt.Sprintf("%s provisioned, replicas on %s", node, strings.Join(nodesOf(r.live(ctx, "", "")), ", "))
	r.finish(&res, t0, from, healed, ok)
	servedGoal(&res)
	return res
}

// scale scales to ScaleTo (through the agent, or `docker service scale`). Heal: all
// live and routed.
func (r *labRun) scale(ctx context.Context) Result {
	res := Result{Step: LabScale, Deadline: 90 * time.Second}
	n := r.o.ScaleTo
	r.printf(">> scale %s %d -> %d", r.service, r.o.Replicas, n)
	t0 := time.Now()
	var err error
	if r.fleet != nil {
		err = r.fleet.Agent.Scale(r.service, n)
	} else {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = r.d.Scale(sctx, r.service, n)
		cancel()
		r.spec.Replicas = n
	}
	if err != nil {
		return r.failed(res, err)
	}
	var live []driver.Instance
	healed, ok := await(ctx, res.Deadline, func() bool {
		live = r.live(ctx, "", "")
		if res.Detect == 0 && len(live) > r.o.Replicas {
			res.Detect = time.Since(t0)
		}
		return len(live) == n && r.routed() == n
	})
	res.Note = fmt.Sprintf("on %d hosts", len(nodesOf(live)))
	r.finish(&res, t0, t0, healed, ok)
	servedGoal(&res)
	return res
}

// apply rolls version out: through the agent, or `docker service update`.
func (r *labRun) apply(ctx context.Context, version string) error {
	if r.fleet != nil {
		return r.fleet.Agent.Update(r.service, version)
	}
	r.spec.Version = version
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return r.d.Apply(actx, r.spec)
}

// update rolls v2 out by Swarm's rolling update (Parallelism at a time, UpdateDelay
// between batches). Detect: the first v2 instance live; heal: the update completed
// and every replica live at v2 and routed.
func (r *labRun) update(ctx context.Context) Result {
	res := Result{Step: LabUpdate, Deadline: 4 * time.Minute}
	n := r.o.ScaleTo
	r.printf(">> update %s v1 -> v2 (%d replicas, %d at a time, %s delay, by Swarm)", r.service, n, r.o.Parallelism, r.o.UpdateDelay)
	t0 := time.Now()
	if err := r.apply(ctx, "v2"); err != nil {
		return r.failed(res, err)
	}
	healed, ok := await(ctx, res.Deadline, func() bool {
		live := r.live(ctx, "v2", "")
		if res.Detect == 0 && len(live) > 0 {
			res.Detect = time.Since(t0)
		}
		st, err := r.d.Rollout(ctx, r.service)
		return err == nil && st.State == driver.RolloutCompleted && st.Version == "v2" && len(live) == n && r.routed() == n &&
			r.agentSaw(t0, driver.RolloutCompleted)
	})
	r.finish(&res, t0, t0, healed, ok)
	servedGoal(&res)
	return res
}

// agentSaw: the agent (if any) saw Swarm's rollout end in state since t0; until
// then it holds the rollout as its own and refuses another update.
func (r *labRun) agentSaw(t0 time.Time, state driver.RolloutState) bool {
	if r.fleet == nil {
		return true
	}
	_, ok := r.event(t0, func(e eventlog.Event) bool { return e.Kind == eventlog.Healed && e.What == string(state) })
	return ok
}

// failed ends a step that could not start.
func (r *labRun) failed(res Result, err error) Result {
	res.Note = err.Error()
	r.printf("== %s (%s)", res, r.mode())
	return res
}

// rollback rolls a version out whose instances never become ready; Swarm's update
// fails and rolls back (failure action rollback). Detect: the rollback started;
// heal: it completed and every replica is live at v2 and routed.
func (r *labRun) rollback(ctx context.Context) Result {
	res := Result{Step: LabRollback, Deadline: 4 * time.Minute}
	n := r.o.ScaleTo
	r.printf(">> update %s v2 -> v3-bad (its instances never become ready)", r.service)
	t0 := time.Now()
	if err := r.apply(ctx, "v3-bad"); err != nil {
		return r.failed(res, err)
	}
	healed, ok := await(ctx, res.Deadline, func() bool {
		st, err := r.d.Rollout(ctx, r.service)
		if err != nil {
			return false
		}
		if res.Detect == 0 && (st.State == driver.RolloutRollbackStarted || st.State == driver.RolloutRollbackCompleted) {
			res.Detect = time.Since(t0)
		}
		return st.State == driver.RolloutRollbackCompleted && len(r.live(ctx, "v2", "")) == n && r.routed() == n &&
			r.agentSaw(t0, driver.RolloutRollbackCompleted)
	})
	r.finish(&res, t0, t0, healed, ok)
	servedGoal(&res)
	return res
}

// close stops the clients and removes the service (the agent's fleet does both);
// with Swarm alone it also removes the nodes this pass killed from the swarm, as an
// operator would.
func (r *labRun) close() error {
	var errs []error
	if r.fleet != nil {
		errs = append(errs, r.fleet.Close())
	} else {
		if r.load != nil {
			r.load.Stop()
		}
		if r.mesh != nil {
			r.mesh.close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		errs = append(errs, r.removeService(ctx))
		for _, h := range r.lost {
			if err := r.d.RemoveNode(ctx, h, "lost (the operator removes it)"); err != nil && !errors.Is(err, driver.ErrNotFound) {
				errs = append(errs, err)
			}
		}
		cancel()
	}
	return errors.Join(errs...)
}

// removeService removes the service and waits until its tasks are gone.
func (r *labRun) removeService(ctx context.Context) error {
	if err := r.d.Remove(ctx, r.service); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	for ctx.Err() == nil {
		insts, err := r.d.Instances(ctx, r.service)
		if errors.Is(err, driver.ErrNotFound) || err == nil && len(insts) == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("service %s: tasks still running: %w", r.service, ctx.Err())
}

// meshDoor is the front door of Swarm alone: it routes as Swarm's ingress routing
// mesh would (which cannot run here: no IPVS), round robin over the tasks Swarm
// reports running (with a health check, only those that passed it) on nodes it
// reports ready, refreshed every 250 ms, one attempt (1 s) per request.
type meshDoor struct {
	addr   string
	srv    *http.Server
	client *http.Client
	stop   context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	addrs  []string
	next   atomic.Uint64
}

func startMesh(d *docker.Driver, service string, client *http.Client) (*meshDoor, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &meshDoor{addr: l.Addr().String(), client: client, stop: cancel, done: make(chan struct{})}
	m.srv = &http.Server{Handler: m, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = m.srv.Serve(l) }()
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
			insts, err := d.Instances(cctx, service)
			nodes, nerr := d.Nodes(cctx)
			ccancel()
			if err == nil && nerr == nil {
				ready := map[string]bool{}
				for _, n := range nodes {
					ready[n.Name] = n.State == driver.NodeReady
				}
				var addrs []string
				for _, in := range insts {
					if in.State == driver.StateRunning && ready[in.Node] {
						addrs = append(addrs, in.Addr)
					}
				}
				m.mu.Lock()
				m.addrs = addrs
				m.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return m, nil
}

func (m *meshDoor) backends() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.addrs)
}

func (m *meshDoor) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	addrs := m.backends()
	if len(addrs) == 0 {
		http.Error(w, "no task running", http.StatusServiceUnavailable)
		return
	}
	a := addrs[m.next.Add(1)%uint64(len(addrs))]
	out, err := http.NewRequestWithContext(req.Context(), req.Method, "http://"+a+req.URL.RequestURI(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	resp, err := m.client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (m *meshDoor) close() {
	m.stop()
	<-m.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.srv.Shutdown(ctx)
}
