package play

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// Token is the fault-injection token of the demo's instances.
const Token = "demo-fault-token"

// BuildService builds the demo service into dir and returns the binary's path.
func BuildService(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "service")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/selfheal-go/selfheal/examples/service")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build the demo service: %v\n%s", err, out)
	}
	return bin, nil
}

// SyncWriter returns w made safe for concurrent writers (the timeline is written by
// the event collector and by the steps). A writer it returned is returned as is.
func SyncWriter(w io.Writer) io.Writer {
	if _, ok := w.(*syncWriter); ok || w == nil {
		return w
	}
	return &syncWriter{w: w}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Options configures a Fleet. Zero fields mean the defaults in the comments.
type Options struct {
	Dir        string        // work directory (state file, logs); required
	ServiceBin string        // the demo service binary; required
	Interval   time.Duration // probe interval; 0 means 250ms
	Replicas   int           // 0 means 3
	Nodes      []string      // nil means node-1, node-2
	LoadRPS    int           // load generator rate; 0 means 40
	Timeline   io.Writer     // where the timeline is printed; nil means nowhere
	EventLog   io.Writer     // JSON lines of every event; nil means nowhere
	HeapLimit  int64         // the instances' heap limit; 0 means 160 MiB
	// NotReadyTimeout: how long an instance may stay not ready (live) before it is
	// replaced; 0 means the agent's default (health.notReadyTimeout).
	NotReadyTimeout time.Duration
	// OutlierEjection: how long an outlier's first ejection lasts (the agent's
	// outliers.baseEjection); 0 means the agent's default.
	OutlierEjection time.Duration
}

// Fleet is a running demo: agent, driver, instances, load.
type Fleet struct {
	Agent  *core.Agent
	Driver *local.Driver // the local driver; nil on Docker (see StartDocker)
	Events *eventlog.Log
	Load   *Load
	Door   string // the front door's address
	opt    Options
	t0     time.Time
	cancel context.CancelFunc
	done   chan error
	client *http.Client
	tr     *http.Transport

	mu     sync.Mutex
	events []eventlog.Event
	unsub  func()
	evDone chan struct{}

	// docker: the Swarm driver, the service's name and its event watcher.
	docker    *docker.Driver
	service   string
	dopt      DockerOptions
	dbase     int
	watchStop context.CancelFunc
	watchDone chan struct{}
	guardStop func()
}

// Start starts the agent and waits until the replicas are ready and the front
// door serves.
func Start(ctx context.Context, opt Options) (*Fleet, error) {
	if opt.Interval <= 0 {
		opt.Interval = 250 * time.Millisecond
	}
	if opt.Replicas <= 0 {
		opt.Replicas = 3
	}
	if opt.Nodes == nil {
		opt.Nodes = []string{"node-1", "node-2"}
	}
	if opt.LoadRPS <= 0 {
		opt.LoadRPS = 40
	}
	if opt.HeapLimit <= 0 {
		opt.HeapLimit = 160 << 20
	}
	opt.Timeline = SyncWriter(opt.Timeline)
	outliers := ""
	if opt.OutlierEjection > 0 {
		outliers = "    outliers: {baseEjection: " + opt.OutlierEjection.String() + "}\n"
	}
	notReady := ""
	if opt.NotReadyTimeout > 0 {
		notReady = ", notReadyTimeout: " + opt.NotReadyTimeout.String()
	}
	iv := opt.Interval
	yaml := fmt.Sprintf(`agent:
  listen: "off"
  stateFile: %q
  logDir: %q
  budget: {max: 30, window: 1m}
nodes: [%s]
services:
  - name: web
    version: v1
    command: [%q, -addr, "127.0.0.1:{port}", -version, "{version}", -id, "{id}", -fault-token, %q, -heap-limit, "%d", -drain, 150ms, -window, 2s]
    replicas: %d
    minReplicas: %d
    maxReplicas: 12
    frontDoor: 127.0.0.1:0
    stopGrace: 2s
    health: {interval: %s, timeout: %s, failureThreshold: 2, startupGrace: 5s%s}
    restart: {initial: 100ms, max: 2s, crashLoopRestarts: 10}
    scale: {latencyTarget: 100ms, tolerance: 0.25, upWindow: %s, downWindow: %s, maxStep: 3}
    update: {parallelism: 3, delay: 2s, monitor: %s, startTimeout: 3s}
    limits: {heap: %d, horizon: 8s}
%s`, filepath.Join(opt.Dir, "agent-state.json"), filepath.Join(opt.Dir, "logs"), strings.Join(opt.Nodes, ", "),
		opt.ServiceBin, Token, opt.HeapLimit, opt.Replicas, opt.Replicas,
		iv, iv*4/5, notReady, 4*iv, 16*iv, 4*iv, opt.HeapLimit, outliers)
	if err := os.WriteFile(filepath.Join(opt.Dir, "fleet.yaml"), []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	fleet, err := config.Parse(filepath.Join(opt.Dir, "fleet.yaml"), []byte(yaml))
	if err != nil {
		return nil, err
	}
	drv, err := local.New(local.Config{Nodes: fleet.Nodes, StateFile: fleet.Agent.StateFile, LogDir: fleet.Agent.LogDir, StopGrace: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	ev := eventlog.New(opt.EventLog, 1000)
	a, err := core.New(core.Config{Fleet: fleet, Driver: drv, Events: ev, StopOnExit: true, FrontDoorAttemptTimeout: time.Second})
	if err != nil {
		drv.Close()
		return nil, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	f := &Fleet{Agent: a, Driver: drv, Events: ev, opt: opt, t0: time.Now(), done: make(chan error, 1),
		tr: tr, client: &http.Client{Transport: tr, Timeout: 2 * time.Second}, evDone: make(chan struct{}), service: "web"}
	c, unsub := ev.Subscribe(4096)
	f.unsub = unsub
	go f.collect(c)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel = cancel
	go func() { f.done <- a.Run(rctx) }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		f.Door = a.FrontDoorAddr("web")
		if f.Door != "" && len(a.Backends("web")) == opt.Replicas {
			break
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("the fleet did not become ready in 20s: %d ready", len(a.Backends("web")))
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.Load = StartLoad("http://"+f.Door+"/api/hello", opt.LoadRPS)
	return f, nil
}

func (f *Fleet) collect(c <-chan eventlog.Event) {
	defer close(f.evDone)
	for e := range c {
		f.mu.Lock()
		f.events = append(f.events, e)
		f.mu.Unlock()
		if f.opt.Timeline != nil && printable(e) {
			fmt.Fprintf(f.opt.Timeline, "  %8.3fs  %-8s %-14s %s\n", e.Time.Sub(f.t0).Seconds(), e.Kind, e.What, describe(e))
		}
	}
}

func printable(e eventlog.Event) bool {
	switch e.What {
	case "docker:" + docker.EventInstanceStarted, "docker:" + docker.EventInstanceHealthy:
		return false // routine on Swarm; in the event log, not on the timeline
	case "stop", "start", "retire":
		return e.Kind != eventlog.Acted || e.Incident != "" && e.What != "start"
	}
	return true
}

func describe(e eventlog.Event) string {
	var b strings.Builder
	if e.Instance != "" {
		b.WriteString(e.Instance)
		if e.Node != "" {
			b.WriteString("@" + e.Node)
		}
		b.WriteString(": ")
	} else if e.Node != "" {
		b.WriteString(e.Node + ": ")
	}
	b.WriteString(e.Why)
	if e.HealMs > 0 {
		fmt.Fprintf(&b, " (healed in %.0fms)", e.HealMs)
	}
	return b.String()
}

// Printf prints a line on the timeline.
func (f *Fleet) Printf(format string, args ...any) {
	if f.opt.Timeline != nil {
		fmt.Fprintf(f.opt.Timeline, "  %8.3fs  "+format+"\n", append([]any{time.Since(f.t0).Seconds()}, args...)...)
	}
}

// Close stops the load, the agent and every instance, and reports processes left
// behind as an error.
func (f *Fleet) Close() error {
	if f.Load != nil {
		f.Load.Stop()
	}
	f.cancel()
	err := <-f.done
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if f.docker != nil {
		return errors.Join(err, f.closeDocker())
	}
	f.unsub()
	<-f.evDone
	f.tr.CloseIdleConnections()
	f.Driver.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := local.Leftovers(f.Driver.Marker())
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return errors.Join(err, fmt.Errorf("processes left behind: %v", left))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// Events returns the events recorded since t.
func (f *Fleet) EventsSince(t time.Time) []eventlog.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, _ := slices.BinarySearchFunc(f.events, t, func(e eventlog.Event, t time.Time) int { return e.Time.Compare(t) })
	return slices.Clone(f.events[i:])
}

// Await waits until an event since t matches pred, for at most d.
func (f *Fleet) Await(ctx context.Context, since time.Time, d time.Duration, pred func(eventlog.Event) bool) (eventlog.Event, bool) {
	deadline := time.Now().Add(d)
	for {
		for _, e := range f.EventsSince(since) {
			if pred(e) {
				return e, true
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return eventlog.Event{}, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Instances returns the agent's view of the service's instances.
func (f *Fleet) Instances(ctx context.Context) []core.InstanceStatus {
	st := f.Agent.Status(ctx, 0)
	return st.Services[0].Instances
}

// Fault posts a fault to one instance.
func (f *Fleet) Fault(ctx context.Context, addr, fault string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/fault/"+fault, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Fault-Token", Token)
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fault %s on %s: %s", fault, addr, resp.Status)
	}
	return nil
}

// ReadyCount returns the number of ready instances (and of those, at version v when
// v is not "").
func (f *Fleet) ReadyCount(v string) int {
	n := 0
	for _, in := range f.Instances(context.Background()) {
		if in.Ready && (v == "" || in.Version == v) {
			n++
		}
	}
	return n
}

// WaitFor polls cond every 20ms for at most d.
func WaitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// NodeState sets a virtual node's state.
func (f *Fleet) NodeState(ctx context.Context, node string, st driver.NodeState) error {
	return f.Agent.SetNodeState(ctx, node, st, "demo")
}

// updateNote describes the fleet's rolling update policy for the timeline.
func (f *Fleet) updateNote() string {
	if f.docker != nil {
		return fmt.Sprintf("%d at a time, %s delay, by Swarm", f.dopt.Parallelism, f.dopt.UpdateDelay)
	}
	return "3 at a time, 2s delay"
}
