package k8s

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

// NodeIncident records a node the guard declared lost, or drained under resource
// pressure.
type NodeIncident struct {
	Node string
	// Pressure lists the conditions (MemoryPressure, DiskPressure, PIDPressure) the
	// node was drained for; nil for a lost node.
	Pressure  []string
	Silent    time.Time // the first failed probe round (lost), or the pressure seen
	Confirmed time.Time // NodeDownAfter rounds later, or at once under pressure: cordoned
	// Healed: a lost node's pods deleted (their ReplicaSets start them elsewhere),
	// or the last of a drained node's pods evicted (PodDisruptionBudgets hold).
	Healed    time.Time
	Pods      []string  // the pods deleted or evicted
	Recovered time.Time // its kubelet answered again, or its pressure ended: uncordoned; zero until then
}

// Incidents returns the node incidents so far, oldest first.
func (d *Driver) Incidents() []NodeIncident {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]NodeIncident(nil), d.incidents...)
}

func (d *Driver) lostNode(name string) (NodeIncident, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.lost[name]
	if !ok {
		return NodeIncident{}, false
	}
	return *n, true
}

// Nodes lists the nodes: ready; drained (cordoned); degraded (memory, disk or pid
// pressure: drain it before it fails); down (not Ready, or declared lost by the guard).
func (d *Driver) Nodes(ctx context.Context) ([]driver.Node, error) {
	if d.isClosed() {
		return nil, driver.ErrClosed
	}
	list, err := d.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]driver.Node, 0, len(list))
	for _, n := range list {
		out = append(out, d.nodeState(n))
	}
	return out, nil
}

func (d *Driver) nodeState(n *corev1.Node) driver.Node {
	if inc, ok := d.lostNode(n.Name); ok {
		return driver.Node{Name: n.Name, State: driver.NodeDown, Reason: "kubelet silent since " + inc.Silent.Format(time.RFC3339Nano)}
	}
	ready, pressure := conditions(n)
	switch {
	case !ready:
		return driver.Node{Name: n.Name, State: driver.NodeDown, Reason: "not Ready"}
	case n.Spec.Unschedulable:
		why := "cordoned"
		if d.underPressure(n.Name) {
			why += ": drained under " + strings.Join(pressure, ", ")
		}
		return driver.Node{Name: n.Name, State: driver.NodeDrained, Reason: why}
	case len(pressure) > 0:
		return driver.Node{Name: n.Name, State: driver.NodeDegraded, Reason: strings.Join(pressure, ", ")}
	}
	return driver.Node{Name: n.Name, State: driver.NodeReady}
}

// conditions reads a node's Ready condition and the pressure conditions it reports.
func conditions(n *corev1.Node) (ready bool, pressure []string) {
	for _, c := range n.Status.Conditions {
		switch c.Type {
		case corev1.NodeReady:
			ready = c.Status == corev1.ConditionTrue
		case corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure:
			if c.Status == corev1.ConditionTrue {
				pressure = append(pressure, string(c.Type))
			}
		}
	}
	return ready, pressure
}

func (d *Driver) underPressure(node string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pressured[node] != nil
}

// relieve drains a node that turned degraded (the kubelet reports memory, disk or
// pid pressure: its own evictions, or its failure, would come next) before it
// fails: cordoned, its pods evicted through the Eviction API (PodDisruptionBudgets
// hold) so that their ReplicaSets start them elsewhere. It records the incident
// once the node has no pod left, and uncordons the node once its pressure ended. A
// node cordoned by someone else is left alone. It runs in the guard's rounds.
func (d *Driver) relieve(nodes []*corev1.Node) {
	for _, n := range nodes {
		_, pressure := conditions(n)
		d.mu.Lock()
		inc := d.pressured[n.Name]
		d.mu.Unlock()
		switch {
		case inc == nil && d.nodeState(n).State == driver.NodeDegraded:
			inc = &NodeIncident{Node: n.Name, Pressure: pressure, Silent: time.Now()}
			ctx, cancel := context.WithTimeout(d.ctx, 3*d.cfg.CallTimeout)
			pods, _ := d.podsOn(ctx, n.Name)
			for _, p := range pods {
				if p.DeletionTimestamp == nil {
					inc.Pods = append(inc.Pods, p.Name)
				}
			}
			d.mu.Lock()
			d.pressured[n.Name] = inc
			d.mu.Unlock()
			d.log.Warn("k8s: node under pressure: draining it before it fails", "node", n.Name, "pressure", pressure, "pods", len(inc.Pods))
			err := d.SetNodeState(ctx, n.Name, driver.NodeDrained, strings.Join(pressure, ", "))
			cancel()
			d.mu.Lock()
			inc.Confirmed = time.Now()
			if err != nil {
				delete(d.pressured, n.Name) // tried again next round
			}
			d.mu.Unlock()
			if err != nil {
				d.log.Error("k8s: draining a node under pressure", "node", n.Name, "err", err)
			}
			d.notify()
		case inc != nil && len(pressure) == 0:
			ctx, cancel := d.call()
			err := d.SetNodeState(ctx, n.Name, driver.NodeReady, "pressure ended")
			cancel()
			if err != nil {
				d.log.Error("k8s: uncordoning a node whose pressure ended", "node", n.Name, "err", err)
				continue
			}
			d.mu.Lock()
			delete(d.pressured, n.Name)
			if inc.Healed.IsZero() { // ended before its last pod could go
				inc.Healed = time.Now()
				d.incidents = append(d.incidents, *inc)
			}
			for i := range d.incidents {
				if d.incidents[i].Node == n.Name && d.incidents[i].Pressure != nil && d.incidents[i].Recovered.IsZero() {
					d.incidents[i].Recovered = time.Now()
				}
			}
			d.mu.Unlock()
			d.log.Info("k8s: node pressure ended: uncordoned", "node", n.Name)
			d.notify()
		case inc != nil && inc.Healed.IsZero():
			ctx, cancel := d.call()
			pods, err := d.podsOn(ctx, n.Name)
			cancel()
			if err == nil && len(pods) == 0 {
				d.mu.Lock()
				inc.Healed = time.Now()
				d.incidents = append(d.incidents, *inc)
				d.mu.Unlock()
				d.log.Info("k8s: node under pressure drained", "node", n.Name)
				d.notify()
			}
		}
	}
}

// SetNodeState drains (cordon, then every pod evicted through the Eviction API, so
// PodDisruptionBudgets hold: a pod the budget protects is retried every second in the
// background until it may go, or the node is undrained), undrains (uncordon), or
// takes a node as lost (down: cordon and delete its pods at once, grace 0, for a node
// whose kubelet is gone). Degraded is ErrUnsupported: the node reports that itself.
func (d *Driver) SetNodeState(ctx context.Context, node string, state driver.NodeState, reason string) error {
	if d.isClosed() {
		return driver.ErrClosed
	}
	switch state {
	case driver.NodeReady:
		d.mu.Lock()
		if c := d.draining[node]; c != nil {
			c()
			delete(d.draining, node)
		}
		d.mu.Unlock()
		return d.cordon(ctx, node, false)
	case driver.NodeDrained:
		if err := d.cordon(ctx, node, true); err != nil {
			return err
		}
		dctx, cancel := context.WithCancel(d.ctx)
		d.mu.Lock()
		if c := d.draining[node]; c != nil {
			c()
		}
		d.draining[node] = cancel
		d.mu.Unlock()
		left, err := d.evictAll(ctx, node)
		if err != nil || left == 0 {
			cancel()
			return err
		}
		d.log.Info("k8s: drain waits for PodDisruptionBudgets", "node", node, "pods", left)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-dctx.Done():
					return
				case <-t.C:
				}
				if n, err := d.evictAll(dctx, node); err == nil && n == 0 {
					d.log.Info("k8s: drained", "node", node)
					return
				}
			}
		}()
		return nil
	case driver.NodeDown:
		_, err := d.takeLost(ctx, node, time.Now(), reason)
		return err
	default:
		return &driver.NodeError{Node: node, Op: "set " + string(state), Err: driver.ErrUnsupported}
	}
}

func (d *Driver) cordon(ctx context.Context, node string, on bool) error {
	cctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	for range 5 {
		n, err := d.cs.CoreV1().Nodes().Get(cctx, node, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return &driver.NodeError{Node: node, Op: "cordon", Err: driver.ErrNotFound}
		}
		if err != nil {
			return err
		}
		if n.Spec.Unschedulable == on {
			return nil
		}
		n.Spec.Unschedulable = on
		_, err = d.cs.CoreV1().Nodes().Update(cctx, n, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("k8s: cordon %q: conflicting writers", node)
}

func (d *Driver) podsOn(ctx context.Context, node string) ([]corev1.Pod, error) {
	cctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	list, err := d.cs.CoreV1().Pods(d.ns).List(cctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// evictAll evicts every pod on node and returns how many a PodDisruptionBudget kept.
func (d *Driver) evictAll(ctx context.Context, node string) (int, error) {
	pods, err := d.podsOn(ctx, node)
	if err != nil {
		return 0, err
	}
	left := 0
	g := int64(d.cfg.StopGrace / time.Second)
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
		d.mu.Lock()
		d.ours[p.Name] = true
		d.mu.Unlock()
		err := d.cs.CoreV1().Pods(d.ns).EvictV1(cctx, &policyv1.Eviction{
			ObjectMeta:    metav1.ObjectMeta{Name: p.Name, Namespace: d.ns},
			DeleteOptions: &metav1.DeleteOptions{GracePeriodSeconds: &g}})
		cancel()
		switch {
		case err == nil, apierrors.IsNotFound(err):
		case apierrors.IsTooManyRequests(err): // the budget allows no disruption now
			d.mu.Lock()
			delete(d.ours, p.Name)
			d.mu.Unlock()
			left++
		default:
			return left, err
		}
	}
	return left, nil
}

// takeLost cordons a lost node and deletes its pods with grace 0 (a dead kubelet
// never confirms a graceful deletion): their ReplicaSets start replacements on the
// other nodes at once, instead of after the node-monitor grace period and the
// 300 s not-ready toleration.
func (d *Driver) takeLost(ctx context.Context, node string, silent time.Time, reason string) (NodeIncident, error) {
	inc := &NodeIncident{Node: node, Silent: silent, Confirmed: time.Now()}
	d.mu.Lock()
	if old, ok := d.lost[node]; ok {
		d.mu.Unlock()
		return *old, nil
	}
	d.lost[node] = inc
	d.mu.Unlock()
	d.notify()
	d.log.Warn("k8s: node lost: cordoning it and deleting its pods", "node", node, "reason", reason)
	if err := d.cordon(ctx, node, true); err != nil {
		d.log.Error("k8s: cordon failed", "node", node, "err", err)
	}
	pods, err := d.podsOn(ctx, node)
	if err != nil {
		d.mu.Lock()
		defer d.mu.Unlock()
		return *inc, err
	}
	var errs []error
	var names []string
	for _, p := range pods {
		if err := d.deletePod(ctx, p.Name, 0); err != nil && !errors.Is(err, driver.ErrNotFound) {
			errs = append(errs, err)
		}
		names = append(names, p.Name)
	}
	d.mu.Lock() // inc is shared through d.lost: written under d.mu only
	inc.Pods, inc.Healed = names, time.Now()
	d.incidents = append(d.incidents, *inc)
	out := *inc
	d.mu.Unlock()
	d.notify()
	return out, errors.Join(errs...)
}

func nodeIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// guard probes every node's kubelet (GET /healthz on KubeletHealthzPort) every
// NodeProbeInterval. A node that fails NodeDownAfter rounds in a row while another
// node answers is taken as lost (takeLost); never when every node is silent (the
// fault is more likely on the prober's side). A lost node whose kubelet answers
// NodeDownAfter rounds in a row again is uncordoned.
func (d *Driver) guard() {
	defer d.wg.Done()
	fails, oks := map[string]int{}, map[string]int{}
	first := map[string]time.Time{}
	client := &http.Client{Timeout: max(d.cfg.NodeProbeInterval, 200*time.Millisecond),
		Transport: &http.Transport{DialContext: d.cfg.Dial, DisableKeepAlives: true}}
	t := time.NewTicker(d.cfg.NodeProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		nodes, _ := d.nodes.List(labels.Everything())
		d.relieve(nodes)
		type res struct {
			name string
			ok   bool
		}
		ch := make(chan res, len(nodes))
		for _, n := range nodes {
			ip := nodeIP(n)
			go func(name string) {
				ok := false
				if ip != "" {
					resp, err := client.Get("http://" + net.JoinHostPort(ip, strconv.Itoa(d.cfg.KubeletHealthzPort)) + "/healthz")
					if err == nil {
						ok = resp.StatusCode == http.StatusOK
						resp.Body.Close()
					}
				}
				ch <- res{name, ok}
			}(n.Name)
		}
		answered := 0
		results := make([]res, 0, len(nodes))
		for range nodes {
			r := <-ch
			results = append(results, r)
			if r.ok {
				answered++
			}
		}
		for _, r := range results {
			_, isLost := d.lostNode(r.name)
			if r.ok {
				fails[r.name] = 0
				oks[r.name]++
				if isLost && oks[r.name] >= d.cfg.NodeDownAfter {
					d.recovered(r.name)
				}
				continue
			}
			oks[r.name] = 0
			if fails[r.name] == 0 {
				first[r.name] = time.Now()
			}
			fails[r.name]++
			if !isLost && fails[r.name] >= d.cfg.NodeDownAfter && answered > 0 {
				ctx, cancel := context.WithTimeout(d.ctx, 3*d.cfg.CallTimeout)
				if _, err := d.takeLost(ctx, r.name, first[r.name], fmt.Sprintf("kubelet silent for %d probe rounds", fails[r.name])); err != nil {
					d.log.Error("k8s: handling a lost node", "node", r.name, "err", err)
				}
				cancel()
			}
		}
	}
}

func (d *Driver) recovered(node string) {
	d.mu.Lock()
	delete(d.lost, node)
	for i := range d.incidents {
		if d.incidents[i].Node == node && d.incidents[i].Pressure == nil && d.incidents[i].Recovered.IsZero() {
			d.incidents[i].Recovered = time.Now()
		}
	}
	d.mu.Unlock()
	d.log.Info("k8s: node answers again: uncordoning it", "node", node)
	ctx, cancel := d.call()
	defer cancel()
	if err := d.cordon(ctx, node, false); err != nil {
		d.log.Error("k8s: uncordon failed", "node", node, "err", err)
	}
	d.notify()
}
