//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
	"github.com/selfheal-go/selfheal/examples/demo/play"
	"github.com/selfheal-go/selfheal/examples/k8s"
)

// The steps, in the order a pass plays them.
const (
	StepSpread   = "3 replicas over 2 nodes"
	StepCrash    = "crash -> kubelet restart"
	StepHang     = "hang -> pod replaced"
	StepLeak     = "memory leak -> replaced"
	StepNodeLost = "node killed -> rescheduled"
	StepScale    = "scale 3 -> 12"
	StepUpdate   = "rolling update v2"
	StepRollback = "bad version -> rollback"
)

const (
	service  = "web"
	replicas = 3
	scaleTo  = 12
	// drain is how long a pod that is stopped keeps serving with its readiness
	// failing (testsvc's DRAIN): whoever routes to it learns before its listener
	// closes. Below the driver's termination grace period (2 s).
	drain = time.Second
)

// StepKeys name the steps after the spread, in the order a pass plays them, for
// the -steps flag.
var StepKeys = []string{"crash", "hang", "leak", "node", "scale", "update", "rollback"}

// options is what a pass plays with.
type options struct {
	kubeconfig   string
	image        string
	interval     time.Duration // the agent's probe interval
	updateDelay  time.Duration // minReadySeconds: the delay between update batches
	nodeDeadline time.Duration // how long Kubernetes alone is given to move a lost node's pods
	rps          int
	// steps are the steps to play after the spread (StepKeys); nil means all.
	steps map[string]bool
	// cluster runs .ci/k8s/cluster.sh with args where the cluster's namespaces live
	// and returns its standard output.
	cluster  func(ctx context.Context, args ...string) (string, error)
	timeline io.Writer
}

// pass is one pass of the steps: with the agent (its front door, its kubernetes
// driver's node guard and rollout monitor), or Kubernetes alone (a front door that
// routes as a Service does, to the pods Kubernetes reports ready).
type pass struct {
	o     options
	d     *k8s.Driver
	agent *core.Agent // nil: Kubernetes alone
	ev    *eventlog.Log
	mesh  *endpointsDoor
	door  string
	load  *play.Load
	http  *http.Client
	t0    time.Time
	stop  func() // stops the agent
	evSub func()
}

func (p *pass) mode() string {
	if p.agent != nil {
		return "agent"
	}
	return "Kubernetes alone"
}

func (p *pass) printf(format string, args ...any) {
	fmt.Fprintf(p.o.timeline, "  %8.3fs  "+format+"\n", append([]any{time.Since(p.t0).Seconds()}, args...)...)
}

// playPass plays every step, with the agent or Kubernetes alone, and removes the
// service at the end.
func playPass(ctx context.Context, o options, withAgent bool) (results []play.Result, err error) {
	p := &pass{o: o, t0: time.Now(), http: &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	cfg := k8s.Config{Kubeconfig: o.kubeconfig, MemoryLimit: memoryLimit}
	if !withAgent {
		cfg.NodeProbeInterval = k8s.Off // Kubernetes alone: no node guard
	}
	if p.d, err = k8s.New(cfg); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.close()) }()
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = p.remove(rctx) // a service of an interrupted run
	cancel()
	if err != nil {
		return nil, err
	}
	if err := p.waitNodesReady(ctx, 3*time.Minute); err != nil {
		return nil, err
	}
	res, err := p.start(ctx, withAgent)
	results = append(results, res)
	if err != nil {
		return results, err
	}
	for _, step := range []struct {
		key string
		run func(context.Context) play.Result
	}{{"crash", p.crash}, {"hang", p.hang}, {"leak", p.leak}, {"node", p.nodeLost}, {"scale", p.scale}, {"update", p.update}, {"rollback", p.rollback}} {
		if ctx.Err() != nil {
			break
		}
		if o.steps != nil && !o.steps[step.key] {
			continue
		}
		results = append(results, step.run(ctx))
	}
	return results, ctx.Err()
}

// start declares the service (through the agent, or as a Deployment), waits until
// its replicas are ready and routed, and starts the clients.
func (p *pass) start(ctx context.Context, withAgent bool) (play.Result, error) {
	res := play.Result{Step: StepSpread, Deadline: 90 * time.Second}
	t0 := time.Now()
	pol := driver.UpdatePolicy{Parallelism: 3, Delay: p.o.updateDelay, Monitor: 3 * time.Second, FailureAction: "rollback"}
	if withAgent {
		if err := p.startAgent(ctx); err != nil {
			return res, err
		}
	} else {
		spec := driver.ServiceSpec{Name: service, Version: "v1", Image: p.o.image, Replicas: replicas,
			Env:    []string{"DRAIN=" + drain.String(), "FAULTS=on"},
			Health: driver.HealthCheck{Path: "/readyz", Interval: time.Second, Retries: 3}, Update: pol, Rollback: pol}
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := p.d.Apply(actx, spec) // a new Deployment: no rollout to monitor
		cancel()
		if err != nil {
			return res, err
		}
		if p.mesh, err = startEndpointsDoor(p.d, service, p.http); err != nil {
			return res, err
		}
		p.door = p.mesh.addr
	}
	p.printf(">> %s: Deployment %s, %d replicas of %s, front door http://%s", p.mode(), service, replicas, p.o.image, p.door)
	var ready []pod
	ok := play.WaitFor(ctx, res.Deadline, func() bool {
		ready = p.ready("", "")
		return len(ready) == replicas && p.routed("", "") == replicas
	})
	if !ok {
		return res, fmt.Errorf("%d of %d replicas ready and routed after %v", len(ready), replicas, res.Deadline)
	}
	res.Heal = time.Since(t0)
	p.load = play.StartLoad("http://"+p.door+"/api/hello", p.o.rps)
	on := nodesOf(ready)
	res.Pass = true
	res.Note = "on " + strings.Join(on, ", ")
	p.printf("== %s: %s", res.Step, res.Note)
	return res, nil
}

func (p *pass) startAgent(ctx context.Context) error {
	iv := p.o.interval
	yaml := fmt.Sprintf(`agent:
  driver: kubernetes
  listen: "off"
  budget: {max: 30, window: 1m}
services:
  - name: %s
    version: v1
    image: %s
    env: [DRAIN=%s, FAULTS=on]
    replicas: %d
    minReplicas: 1
    maxReplicas: %d
    frontDoor: 127.0.0.1:0
    stopGrace: 2s
    health: {interval: %s, timeout: %s, failureThreshold: 3, minUnhealthy: 2s, startupGrace: 10s}
    update: {parallelism: 3, delay: %s, monitor: 3s, failureAction: rollback}
    limits: {heap: %d, horizon: 10s}
`, service, p.o.image, drain, replicas, scaleTo, iv, 2*iv, p.o.updateDelay, heapLimit)
	fleet, err := config.Parse("demo-fleet.yaml", []byte(yaml))
	if err != nil {
		return err
	}
	p.ev = eventlog.New(nil, 4000)
	a, err := core.New(core.Config{Fleet: fleet, Driver: p.d, Events: p.ev, FrontDoorAttemptTimeout: time.Second})
	if err != nil {
		return err
	}
	p.agent = a
	c, unsub := p.ev.Subscribe(4096)
	p.evSub = unsub
	go func() {
		for e := range c {
			if e.Kind == eventlog.Decided || e.Kind == eventlog.Healed || e.What == "rollout-state" {
				p.printf("   agent %s %s %s%s", e.Kind, e.What, strings.TrimSpace(e.Node+" "+e.Instance), orEmpty(": ", e.Why))
			}
		}
	}()
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	incDone := make(chan struct{})
	go func() {
		defer close(incDone)
		k8s.RecordIncidents(rctx, p.d, a.Record)
	}()
	p.stop = func() {
		cancel()
		<-done
		<-incDone
	}
	if !play.WaitFor(ctx, 30*time.Second, func() bool { return a.FrontDoorAddr(service) != "" }) {
		return errors.New("the agent's front door did not open")
	}
	p.door = a.FrontDoorAddr(service)
	return nil
}

func orEmpty(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

// pod is a pod as the steps see it.
type pod struct {
	name, node, version, addr string
}

// ready returns the pods Kubernetes reports ready (the Ready condition, not
// terminating), at version v unless v is "", and on no node not.
func (p *pass) ready(v, not string) []pod {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := p.d.Clientset().CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: k8s.LabelService + "=" + service})
	if err != nil {
		return nil
	}
	var out []pod
	for _, po := range list.Items {
		q := podOf(&po)
		if !isReady(&po) || v != "" && q.version != v || not != "" && q.node == not {
			continue
		}
		out = append(out, q)
	}
	return out
}

func podOf(po *corev1.Pod) pod {
	q := pod{name: po.Name, node: po.Spec.NodeName, version: po.Labels[k8s.LabelVersion]}
	if po.Status.PodIP != "" {
		port := 8080
		if c := po.Spec.Containers; len(c) > 0 && len(c[0].Ports) > 0 {
			port = int(c[0].Ports[0].ContainerPort)
		}
		q.addr = net.JoinHostPort(po.Status.PodIP, strconv.Itoa(port))
	}
	return q
}

func isReady(po *corev1.Pod) bool {
	if po.DeletionTimestamp != nil || po.Status.Phase != corev1.PodRunning || po.Status.PodIP == "" {
		return false
	}
	for _, c := range po.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// routed is how many of the front door's backends are pods at version v (unless v
// is "") on no node not: with the agent, the backends it routes to; alone, the
// ready pods the endpoints door routes to. A backend that is no such pod (a
// deleted pod, another version, a pod on node not) makes it -1: not settled.
func (p *pass) routed(v, not string) int {
	var addrs []string
	if p.agent != nil {
		for _, b := range p.agent.Backends(service) {
			addrs = append(addrs, b.Addr)
		}
	} else {
		addrs = p.mesh.backends()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := p.d.Clientset().CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: k8s.LabelService + "=" + service})
	if err != nil {
		return -1
	}
	by := map[string]pod{}
	for _, po := range list.Items {
		if q := podOf(&po); q.addr != "" && po.DeletionTimestamp == nil {
			by[q.addr] = q
		}
	}
	n := 0
	for _, a := range addrs {
		q, ok := by[a]
		if !ok || v != "" && q.version != v || not != "" && q.node == not {
			return -1
		}
		n++
	}
	return n
}

func nodesOf(ps []pod) []string {
	var ns []string
	for _, q := range ps {
		if !slices.Contains(ns, q.node) {
			ns = append(ns, q.node)
		}
	}
	slices.Sort(ns)
	return ns
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

// finish closes a step: the clients' outcome from from to healed (plus half a
// second of the healed state) or to now, heal from t0, and the timeline line.
func (p *pass) finish(res *play.Result, t0, from, healed time.Time, ok bool) {
	p.finishMeasured(res, t0, from, healed, ok, nil)
}

// finishMeasured is finish for a step Kubernetes alone is not expected to heal:
// measured() says whether it passed (the measurement was made).
func (p *pass) finishMeasured(res *play.Result, t0, from, healed time.Time, ok bool, measured func() bool) {
	if ok {
		res.Heal = healed.Sub(t0)
		for time.Now().Before(healed.Add(500 * time.Millisecond)) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	end := time.Now()
	res.Requests, res.OK = p.load.Between(from, end)
	for why, n := range p.load.Failures(from, end) {
		if len(why) > 100 {
			why = why[:100] + "..."
		}
		p.printf("!! %d client requests failed: %s", n, why)
	}
	res.Pass = ok && res.Heal <= res.Deadline
	switch {
	case measured != nil:
		res.Pass = measured()
	case !ok:
		res.Note = strings.TrimPrefix(res.Note+"; not healed within "+res.Deadline.String(), "; ")
	}
	p.printf("== %s (%s)", res, p.mode())
}

// nodeLost kills the node of a replica (cluster.sh kill-node: kill -9 of its
// kubelet, containerd, shims and pods, its link cut). Detect: the agent's node guard
// declared it lost, or Kubernetes marked it NotReady; heal: every replica ready on
// the other node and routed, and none routed to the lost one. Then the node is
// restarted (cluster.sh restart-node) and the pass waits until it is schedulable.
func (p *pass) nodeLost(ctx context.Context) play.Result {
	res := play.Result{Step: StepNodeLost, Deadline: 60 * time.Second}
	if p.agent == nil {
		res.Deadline = p.o.nodeDeadline
	}
	victim := ""
	for _, q := range p.ready("", "") {
		if victim == "" || q.node == "shk8s2" {
			victim = q.node
		}
	}
	if victim == "" {
		res.Note = "no ready replica"
		return res
	}
	idx := strings.TrimPrefix(victim, "shk8s")
	p.printf(">> kill node %s (cluster.sh kill-node %s: kill -9 of its kubelet, containerd, shims and pods; its link cut)", victim, idx)
	out, err := p.o.cluster(ctx, "kill-node", idx)
	if err != nil {
		res.Note = err.Error()
		return res
	}
	out = strings.TrimSpace(out)
	ns, err := strconv.ParseInt(out[strings.LastIndexByte(out, '\n')+1:], 10, 64)
	if err != nil {
		res.Note = fmt.Sprintf("kill-node printed %q", out)
		return res
	}
	t0 := time.Unix(0, ns)
	var detected time.Time
	detect := func() bool {
		if !detected.IsZero() {
			return true
		}
		if p.agent != nil {
			for _, in := range p.d.Incidents() {
				if in.Node == victim && in.Confirmed.After(t0) {
					detected = in.Confirmed
				}
			}
			return !detected.IsZero()
		}
		nodes, err := p.d.Nodes(ctx)
		if err != nil {
			return false
		}
		for _, n := range nodes {
			if n.Name == victim && n.State == driver.NodeDown {
				detected = time.Now()
			}
		}
		return !detected.IsZero()
	}
	healed, ok := await(ctx, res.Deadline-time.Since(t0), func() bool {
		detect()
		return len(p.ready("", victim)) == replicas && p.routed("", victim) == replicas
	})
	if detect() {
		res.Detect = detected.Sub(t0)
	}
	res.Note = "killed " + victim
	if p.agent == nil {
		if !ok {
			res.Note += fmt.Sprintf("; %d of %d replicas ready after %s (the lost node's pods wait for the 300 s not-ready toleration)",
				len(p.ready("", victim)), replicas, res.Deadline)
		}
		// measured: Kubernetes alone is not expected to heal within the deadline
		p.finishMeasured(&res, t0, t0, healed, ok, func() bool { return res.Detect > 0 })
	} else {
		p.finish(&res, t0, t0, healed, ok)
	}
	res.Goal = ">= 99% clients served"
	res.GoalMet = res.SuccessRate() >= 0.99
	if p.agent != nil {
		res.Goal = "<= 10s, " + res.Goal
		res.GoalMet = res.GoalMet && ok && res.Heal <= 10*time.Second
	}
	t1 := time.Now()
	if _, err := p.o.cluster(ctx, "restart-node", idx); err != nil {
		res.Pass = false
		res.Note += "; restart-node: " + err.Error()
		return res
	}
	if err := p.waitNodesReady(ctx, 2*time.Minute); err != nil {
		res.Pass = false
		res.Note += "; " + err.Error()
		return res
	}
	p.printf("   node %s restarted and schedulable again after %.1fs", victim, time.Since(t1).Seconds())
	return res
}

// waitNodesReady waits until every node is ready and schedulable (with the agent,
// its node guard uncordons a node that answers again).
func (p *pass) waitNodesReady(ctx context.Context, d time.Duration) error {
	var last []driver.Node
	ok := play.WaitFor(ctx, d, func() bool {
		nodes, err := p.d.Nodes(ctx)
		if err != nil || len(nodes) == 0 {
			return false
		}
		last = nodes
		for _, n := range nodes {
			if n.State != driver.NodeReady {
				return false
			}
		}
		return true
	})
	if !ok {
		return fmt.Errorf("nodes not ready and schedulable after %v: %+v", d, last)
	}
	return nil
}

// scale scales to 12 (through the agent, or the Deployment's scale subresource, as
// `kubectl scale` does). Detect: a new replica ready; heal: all ready and routed.
func (p *pass) scale(ctx context.Context) play.Result {
	res := play.Result{Step: StepScale, Deadline: 90 * time.Second}
	p.printf(">> scale %s %d -> %d", service, replicas, scaleTo)
	t0 := time.Now()
	var err error
	if p.agent != nil {
		err = p.agent.Scale(service, scaleTo)
	} else {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = p.d.Scale(sctx, service, scaleTo)
		cancel()
	}
	if err != nil {
		res.Note = err.Error()
		return res
	}
	var ready []pod
	healed, ok := await(ctx, res.Deadline, func() bool {
		ready = p.ready("", "")
		if res.Detect == 0 && len(ready) > replicas {
			res.Detect = time.Since(t0)
		}
		return len(ready) == scaleTo && p.routed("", "") == scaleTo
	})
	res.Note = "on " + strings.Join(nodesOf(ready), ", ")
	p.finish(&res, t0, t0, healed, ok)
	servedGoal(&res)
	return res
}

func servedGoal(res *play.Result) {
	res.Goal = ">= 99% clients served"
	res.GoalMet = res.SuccessRate() >= 0.99
}

// setVersion rolls version out: through the agent, or by changing the Deployment's
// pod template as `kubectl set env`/`set image` would (Kubernetes alone: the
// driver's rollout monitor is not involved).
func (p *pass) setVersion(ctx context.Context, version string) error {
	if p.agent != nil {
		return p.agent.Update(service, version)
	}
	deps := p.d.Clientset().AppsV1().Deployments("default")
	for range 5 {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		dep, err := deps.Get(cctx, service, metav1.GetOptions{})
		if err != nil {
			cancel()
			return err
		}
		t := &dep.Spec.Template
		t.Labels[k8s.LabelVersion] = version
		for i := range t.Spec.Containers[0].Env {
			if e := &t.Spec.Containers[0].Env[i]; e.Name == "VERSION" {
				e.Value = version
			}
		}
		_, err = deps.Update(cctx, dep, metav1.UpdateOptions{})
		cancel()
		if !apierrors.IsConflict(err) {
			return err
		}
	}
	return errors.New("updating the Deployment: conflicting writers")
}

// complete: the Deployment's controller finished its rollout.
func (p *pass) complete(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dep, err := p.d.Clientset().AppsV1().Deployments("default").Get(cctx, service, metav1.GetOptions{})
	if err != nil || dep.Spec.Replicas == nil {
		return false
	}
	return deploymentComplete(dep)
}

func deploymentComplete(dep *appsv1.Deployment) bool {
	s, n := dep.Status, *dep.Spec.Replicas
	return s.ObservedGeneration >= dep.Generation && s.UpdatedReplicas == n && s.Replicas == n && s.AvailableReplicas == n
}

// agentSaw: the agent (if any) saw the rollout end in state since t0; until then it
// holds the rollout as its own and refuses another update.
func (p *pass) agentSaw(t0 time.Time, state driver.RolloutState) bool {
	if p.agent == nil {
		return true
	}
	for _, e := range p.ev.Recent(4000) {
		if !e.Time.Before(t0) && e.Kind == eventlog.Healed && e.What == string(state) {
			return true
		}
	}
	return false
}

// update rolls v2 out with the Deployment's strategy: maxSurge 3, maxUnavailable 0,
// minReadySeconds the update delay. Detect: the first v2 replica ready; heal: the
// rollout completed and every replica ready at v2 and routed.
func (p *pass) update(ctx context.Context) play.Result {
	res := play.Result{Step: StepUpdate, Deadline: 4 * time.Minute}
	p.printf(">> update %s v1 -> v2 (%d replicas, 3 at a time (maxSurge 3, maxUnavailable 0), minReadySeconds %s)", service, scaleTo, p.o.updateDelay)
	t0 := time.Now()
	if err := p.setVersion(ctx, "v2"); err != nil {
		res.Note = err.Error()
		return res
	}
	healed, ok := await(ctx, res.Deadline, func() bool {
		ready := p.ready("v2", "")
		if res.Detect == 0 && len(ready) > 0 {
			res.Detect = time.Since(t0)
		}
		return len(ready) == scaleTo && p.complete(ctx) && p.routed("v2", "") == scaleTo && p.agentSaw(t0, driver.RolloutCompleted)
	})
	p.finish(&res, t0, t0, healed, ok)
	servedGoal(&res)
	return res
}

// rollback rolls v3-bad out: its pods pass their probes (Kubernetes counts them
// ready) but serve 500 and report fail in their health documents. With the agent,
// the driver's rollout monitor reads the documents and rolls back to v2. Detect:
// the rollback started; heal: it completed and every replica is ready at v2 and
// routed. Kubernetes alone completes the rollout: measured until it did, not healed.
func (p *pass) rollback(ctx context.Context) play.Result {
	res := play.Result{Step: StepRollback, Deadline: 3 * time.Minute}
	p.printf(">> update %s v2 -> v3-bad (ready for Kubernetes; serves 500, its health document reports fail)", service)
	t0 := time.Now()
	if err := p.setVersion(ctx, "v3-bad"); err != nil {
		res.Note = err.Error()
		return res
	}
	if p.agent == nil {
		done, ok := await(ctx, res.Deadline, func() bool {
			return len(p.ready("v3-bad", "")) == scaleTo && p.complete(ctx) && p.routed("v3-bad", "") == scaleTo
		})
		if ok {
			// a few seconds of the clients on the bad release
			for time.Now().Before(done.Add(3 * time.Second)) {
				time.Sleep(50 * time.Millisecond)
			}
			res.Note = fmt.Sprintf("v3-bad rolled out in %.1fs: its pods pass readiness, nothing rolls back", done.Sub(t0).Seconds())
		}
		if !ok {
			res.Note = fmt.Sprintf("v3-bad not rolled out within %s", res.Deadline)
		}
		p.finishMeasured(&res, t0, t0, time.Time{}, false, func() bool { return ok })
		return res
	}
	healed, ok := await(ctx, res.Deadline, func() bool {
		st, err := p.d.Rollout(ctx, service)
		if err != nil {
			return false
		}
		if res.Detect == 0 && (st.State == driver.RolloutRollbackStarted || st.State == driver.RolloutRollbackCompleted) {
			res.Detect = time.Since(t0)
		}
		return st.State == driver.RolloutRollbackCompleted && len(p.ready("v2", "")) == scaleTo && p.complete(ctx) &&
			p.routed("v2", "") == scaleTo && p.agentSaw(t0, driver.RolloutRollbackCompleted)
	})
	p.finish(&res, t0, t0, healed, ok)
	servedGoal(&res)
	return res
}

// close stops the clients and the agent, removes the service and closes the driver.
func (p *pass) close() error {
	if p.load != nil {
		p.load.Stop()
	}
	if p.stop != nil {
		p.stop()
	}
	if p.evSub != nil {
		p.evSub()
	}
	if p.mesh != nil {
		p.mesh.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	err := p.remove(ctx)
	p.d.Close()
	p.http.CloseIdleConnections()
	return err
}

// remove deletes the Deployment and waits until its pods are gone.
func (p *pass) remove(ctx context.Context) error {
	if err := p.d.Remove(ctx, service); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	for ctx.Err() == nil {
		l, err := p.d.Clientset().CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: k8s.LabelService + "=" + service})
		if err == nil && len(l.Items) == 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("service %s: pods still there: %w", service, ctx.Err())
}

// endpointsDoor is the front door of Kubernetes alone: it routes as a Service does
// (kube-proxy is not run here), round robin over the pods Kubernetes reports ready
// and not terminating (a Service's ready endpoints), refreshed every 250 ms, one
// attempt (1 s) per request.
type endpointsDoor struct {
	addr   string
	srv    *http.Server
	client *http.Client
	stop   context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	addrs  []string
	next   atomic.Uint64
}

func startEndpointsDoor(d *k8s.Driver, svc string, client *http.Client) (*endpointsDoor, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &endpointsDoor{addr: l.Addr().String(), client: client, stop: cancel, done: make(chan struct{})}
	m.srv = &http.Server{Handler: m, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = m.srv.Serve(l) }()
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
			list, err := d.Clientset().CoreV1().Pods("default").List(cctx, metav1.ListOptions{LabelSelector: k8s.LabelService + "=" + svc})
			ccancel()
			if err == nil {
				var addrs []string
				for _, po := range list.Items {
					if isReady(&po) {
						addrs = append(addrs, podOf(&po).addr)
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

func (m *endpointsDoor) backends() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.addrs)
}

func (m *endpointsDoor) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	addrs := m.backends()
	if len(addrs) == 0 {
		http.Error(w, "no ready endpoint", http.StatusServiceUnavailable)
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

func (m *endpointsDoor) close() {
	m.stop()
	<-m.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.srv.Shutdown(ctx)
}

// script is $SELFHEAL_K8S_SCRIPT, or .ci/k8s/cluster.sh in the working directory or
// the nearest directory above it that has one.
func script() string {
	if s := os.Getenv("SELFHEAL_K8S_SCRIPT"); s != "" {
		return s
	}
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, ".ci", "k8s", "cluster.sh")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		up := filepath.Dir(dir)
		if up == dir {
			return filepath.Join(".ci", "k8s", "cluster.sh")
		}
		dir = up
	}
}
