//go:build linux

package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
	"github.com/selfheal-go/selfheal/examples/demo/play"
)

// The faults of the crash, hang and leak steps: the test service serves them with
// FAULTS=on (internal/testsvc).
const (
	// memoryLimit is the pods' memory limit (the driver's Config.MemoryLimit): the
	// kernel OOM-kills a container above it.
	memoryLimit = 128 << 20
	// heapLimit is the agent's heap limit (limits.heap): it replaces an instance
	// whose heap trend reaches it within its horizon.
	heapLimit = 112 << 20
	// leakMBps is the leak's rate: the limit is reached in about 8 s.
	leakMBps = 16
)

// victim picks a ready pod that the front door routes to.
func (p *pass) victim() (pod, bool) {
	routed := p.backends()
	for _, q := range p.ready("", "") {
		if slices.Contains(routed, q.addr) {
			return q, true
		}
	}
	return pod{}, false
}

// backends are the addresses the front door routes to.
func (p *pass) backends() []string {
	if p.agent == nil {
		return p.mesh.backends()
	}
	var out []string
	for _, b := range p.agent.Backends(service) {
		out = append(out, b.Addr)
	}
	return out
}

// fault posts /fault/<what> to q.
func (p *pass) fault(ctx context.Context, q pod, what string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+q.addr+"/fault/"+what, nil)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("fault %s on %s: %s", what, q.name, resp.Status)
	}
	return nil
}

// podNow is pod name as the apiserver has it (nil: gone).
func (p *pass) podNow(ctx context.Context, name string) *corev1.Pod {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	po, err := p.d.Clientset().CoreV1().Pods("default").Get(cctx, name, metav1.GetOptions{})
	if err != nil || po.DeletionTimestamp != nil {
		return nil
	}
	return po
}

// restarts is how often the kubelet restarted po's container, and why it last ended.
func restarts(po *corev1.Pod) (int, string) {
	if po == nil || len(po.Status.ContainerStatuses) == 0 {
		return 0, ""
	}
	cs := po.Status.ContainerStatuses[0]
	why := ""
	if t := cs.LastTerminationState.Terminated; t != nil {
		why = fmt.Sprintf("%s, exit code %d", t.Reason, t.ExitCode)
	}
	return int(cs.RestartCount), why
}

// names are the names of the service's pods that are not terminating.
func (p *pass) names() []string {
	var out []string
	for _, q := range p.ready("", "") {
		out = append(out, q.name)
	}
	slices.Sort(out)
	return out
}

// observed is the time of the agent's first event of kind what about instance id
// since t0 (zero if none).
func (p *pass) observed(t0 time.Time, kind, what, id string) time.Time {
	if p.agent == nil {
		return time.Time{}
	}
	for _, e := range p.ev.Recent(4000) {
		if !e.Time.Before(t0) && e.Kind == kind && e.What == what && e.Instance == id {
			return e.Time
		}
	}
	return time.Time{}
}

// settled: every replica ready and routed, and v (if not "") neither.
func (p *pass) settled(v pod) bool {
	ready := p.ready("", "")
	if len(ready) != replicas || p.routed("", "") != replicas {
		return false
	}
	return v.name == "" || !slices.ContainsFunc(ready, func(q pod) bool { return q.name == v.name })
}

// crash kills one pod's service process (POST /fault/crash: exit 2). The kubelet
// restarts the container in the same pod; the agent must not replace the pod on top
// of that, but takes it out of its front door as soon as its probes fail. Detect:
// the pod out of the front door (the agent's, or the ready endpoints for
// Kubernetes alone); heal: the same pod restarted, ready and routed again, every
// replica ready, no pod replaced.
func (p *pass) crash(ctx context.Context) play.Result {
	res := play.Result{Step: StepCrash, Deadline: 30 * time.Second}
	v, ok := p.victim()
	if !ok {
		res.Note = "no ready replica"
		return res
	}
	before := p.names()
	n0, _ := restarts(p.podNow(ctx, v.name))
	p.printf(">> crash %s on %s (its process exits 2; restartPolicy Always)", v.name, v.node)
	t0 := time.Now()
	if err := p.fault(ctx, v, "crash"); err != nil {
		res.Note = err.Error()
		return res
	}
	var why string
	healed, ok := await(ctx, res.Deadline, func() bool {
		if res.Detect == 0 && !slices.Contains(p.backends(), v.addr) {
			res.Detect = time.Since(t0)
			p.printf("   %s out of the front door", v.name)
		}
		po := p.podNow(ctx, v.name)
		var n int
		n, why = restarts(po)
		return res.Detect > 0 && n > n0 && isReady(po) && slices.Contains(p.backends(), v.addr) && p.settled(pod{})
	})
	p.finish(&res, t0, t0, healed, ok)
	if ok {
		res.Note = fmt.Sprintf("%s restarted in place by the kubelet (%s)", v.name, why)
		if after := p.names(); !slices.Equal(before, after) {
			res.Pass = false
			res.Note = fmt.Sprintf("pods replaced besides the kubelet's restart: %v, then %v", before, after)
		}
	}
	servedGoal(&res)
	return res
}

// hang makes one pod stop answering (POST /fault/hang: every request, probes and
// health document included, waits without an answer; the process lives). With the
// agent, its probes time out and it deletes the pod (the ReplicaSet starts another);
// Kubernetes alone takes it out of the Service after the readiness probe's 3
// failures and restarts it after the liveness probe's failureThreshold x period.
// Detect: the agent reported it unhealthy, or Kubernetes took it out of its
// endpoints; heal: every replica ready and routed, the hung one replaced (agent)
// or restarted (Kubernetes alone).
func (p *pass) hang(ctx context.Context) play.Result {
	res := play.Result{Step: StepHang, Deadline: 30 * time.Second}
	if p.agent == nil {
		res.Deadline = 90 * time.Second
	}
	v, ok := p.victim()
	if !ok {
		res.Note = "no ready replica"
		return res
	}
	n0, _ := restarts(p.podNow(ctx, v.name))
	p.printf(">> hang %s on %s (no request gets an answer, probes included; the process lives)", v.name, v.node)
	t0 := time.Now()
	if err := p.fault(ctx, v, "hang"); err != nil {
		res.Note = err.Error()
		return res
	}
	var why string
	healed, ok := await(ctx, res.Deadline, func() bool {
		if p.agent != nil {
			if at := p.observed(t0, eventlog.Observed, "unhealthy", v.name); res.Detect == 0 && !at.IsZero() {
				res.Detect = at.Sub(t0)
			}
			return res.Detect > 0 && p.podNow(ctx, v.name) == nil && p.settled(v)
		}
		if res.Detect == 0 && !slices.Contains(p.backends(), v.addr) {
			res.Detect = time.Since(t0)
			p.printf("   %s out of the endpoints (readiness failed)", v.name)
		}
		po := p.podNow(ctx, v.name)
		var n int
		n, why = restarts(po)
		return res.Detect > 0 && n > n0 && isReady(po) && p.settled(pod{})
	})
	p.finish(&res, t0, t0, healed, ok)
	if ok {
		res.Note = v.name + " deleted by the agent, replaced by its ReplicaSet"
		if p.agent == nil {
			res.Note = fmt.Sprintf("%s restarted by its liveness probe (%s)", v.name, why)
		}
	}
	servedGoal(&res)
	return res
}

// leak makes one pod's heap grow (POST /fault/leak: 16 MB/s) toward its memory
// limit (128 MiB); its health document shows the heap. With the agent, the heap
// trend reaches the agent's heap limit (112 MiB) within its horizon and it deletes
// the pod before it dies; Kubernetes alone lets the kernel OOM-kill the container at
// the limit, and the kubelet restarts it. Detect: the agent's heap-trend
// observation, or the container's end; heal: every replica ready and routed, the
// leaking one replaced (agent) or restarted (Kubernetes alone).
func (p *pass) leak(ctx context.Context) play.Result {
	res := play.Result{Step: StepLeak, Deadline: 30 * time.Second}
	if p.agent == nil {
		res.Deadline = 60 * time.Second
	}
	v, ok := p.victim()
	if !ok {
		res.Note = "no ready replica"
		return res
	}
	n0, _ := restarts(p.podNow(ctx, v.name))
	p.printf(">> %s on %s leaks %d MB/s (memory limit %d MiB; the agent's heap limit %d MiB)", v.name, v.node, leakMBps, memoryLimit>>20, heapLimit>>20)
	t0 := time.Now()
	if err := p.fault(ctx, v, fmt.Sprintf("leak?mbps=%d", leakMBps)); err != nil {
		res.Note = err.Error()
		return res
	}
	var why string
	died := false
	healed, ok := await(ctx, res.Deadline, func() bool {
		po := p.podNow(ctx, v.name)
		n, w := restarts(po)
		if n > n0 && !died {
			died, why = true, w
			p.printf("   %s died: %s", v.name, why)
			if p.agent == nil {
				res.Detect = time.Since(t0)
			}
		}
		if p.agent != nil {
			if at := p.observed(t0, eventlog.Observed, "heap-trend", v.name); res.Detect == 0 && !at.IsZero() {
				res.Detect = at.Sub(t0)
			}
			return res.Detect > 0 && po == nil && p.settled(v)
		}
		return died && isReady(po) && p.settled(pod{})
	})
	p.finish(&res, t0, t0, healed, ok)
	switch {
	case p.agent != nil:
		res.Goal = "replaced before it dies, >= 99% clients served"
		res.GoalMet = !died && res.SuccessRate() >= 0.99
		if ok {
			res.Note = v.name + " deleted by the agent before its limit, replaced by its ReplicaSet"
		}
		if died {
			res.Pass = false
			res.Note = fmt.Sprintf("%s died before the agent replaced it: %s", v.name, why)
		}
	case ok:
		res.Note = fmt.Sprintf("%s killed after %.1fs (%s) and restarted by the kubelet", v.name, res.Detect.Seconds(), why)
	default:
		res.Note = fmt.Sprintf("%s not killed within %s", v.name, res.Deadline)
	}
	return res
}
