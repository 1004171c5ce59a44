package k8s

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/health"
)

// rollout is the driver's record of a rolling update it started (or a rollback).
type rollout struct {
	status   driver.RolloutStatus
	policy   driver.UpdatePolicy
	version  string
	previous string
	cancel   context.CancelFunc
	failed   map[string]bool // new pods whose health document reported fail
}

// HPAOwner returns the name of the HorizontalPodAutoscaler that targets the
// Deployment service, or "" if none does.
func (d *Driver) HPAOwner(ctx context.Context, service string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	list, err := d.cs.AutoscalingV1().HorizontalPodAutoscalers(d.ns).List(cctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, h := range list.Items {
		r := h.Spec.ScaleTargetRef
		if r.Kind == "Deployment" && r.Name == service {
			return h.Name, nil
		}
	}
	return "", nil
}

// Scale sets the replica count through the Deployment's scale subresource. When an
// HorizontalPodAutoscaler targets the Deployment it changes nothing, logs so and
// returns an error matching ErrHPAOwned: the autoscaler owns the count.
func (d *Driver) Scale(ctx context.Context, service string, replicas int) error {
	if d.isClosed() {
		return driver.ErrClosed
	}
	if replicas < 0 {
		return fmt.Errorf("k8s: scale %q to %d: negative", service, replicas)
	}
	hpa, err := d.HPAOwner(ctx, service)
	if err != nil {
		return err
	}
	if hpa != "" {
		d.log.Info("k8s: not scaling: a HorizontalPodAutoscaler owns the replica count", "service", service, "hpa", hpa, "wanted", replicas)
		return fmt.Errorf("%w: %q targets deployment %q; the agent stays out of scaling", ErrHPAOwned, hpa, service)
	}
	cctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	for range 5 {
		sc, err := d.cs.AppsV1().Deployments(d.ns).GetScale(cctx, service, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%w: deployment %q", driver.ErrNotFound, service)
		}
		if err != nil {
			return err
		}
		if int(sc.Spec.Replicas) == replicas {
			return nil
		}
		sc.Spec.Replicas = int32(replicas)
		_, err = d.cs.AppsV1().Deployments(d.ns).UpdateScale(cctx, service, sc, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("k8s: scale %q: conflicting writers", service)
}

// template builds the pod template of spec.
func (d *Driver) template(spec driver.ServiceSpec) corev1.PodTemplateSpec {
	port := spec.BasePort
	if port == 0 {
		port = d.cfg.Port
	}
	env := []corev1.EnvVar{
		{Name: "PORT", Value: strconv.Itoa(port)},
		{Name: "VERSION", Value: spec.Version},
		{Name: "SERVICE", Value: spec.Name},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "INSTANCE_ID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
	}
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, corev1.EnvVar{Name: k, Value: fill(v, spec, port)})
	}
	var cmd []string
	for _, a := range spec.Command {
		cmd = append(cmd, fill(a, spec, port))
	}
	c := corev1.Container{Name: "app", Image: spec.Image, Command: cmd, Env: env,
		ImagePullPolicy: corev1.PullNever,
		Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	if spec.Health.Path != "" {
		period := int32(max(1, spec.Health.Interval/time.Second))
		timeout := int32(max(1, spec.Health.Timeout/time.Second))
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: spec.Health.Path, Port: intstr.FromInt32(int32(port))}},
			PeriodSeconds: period, TimeoutSeconds: timeout, FailureThreshold: int32(max(1, spec.Health.Retries))}
	}
	if d.cfg.LivenessPeriod > 0 {
		c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: d.cfg.LivenessPath, Port: intstr.FromInt32(int32(port))}},
			PeriodSeconds: int32(max(1, d.cfg.LivenessPeriod/time.Second)), TimeoutSeconds: 1, FailureThreshold: int32(d.cfg.LivenessFailures)}
	}
	if d.cfg.MemoryLimit > 0 {
		q := *resource.NewQuantity(d.cfg.MemoryLimit, resource.BinarySI)
		c.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: q},
			Requests: corev1.ResourceList{corev1.ResourceMemory: q}}
	}
	grace := int64(d.cfg.StopGrace / time.Second)
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelService: spec.Name, LabelVersion: spec.Version}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{c}, TerminationGracePeriodSeconds: &grace,
			EnableServiceLinks: new(bool)},
	}
}

// strategy maps the agent's update policy onto the Deployment's: Parallelism is
// maxSurge (new pods started at once; maxUnavailable 0, so capacity never drops) and
// Delay is minReadySeconds (a new pod counts as available only after it).
func strategy(p driver.UpdatePolicy) (appsv1.DeploymentStrategy, int32) {
	par := max(1, p.Parallelism)
	surge, unavail := intstr.FromInt32(int32(par)), intstr.FromInt32(0)
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavail}}, int32(p.Delay / time.Second)
}

// Apply creates the Deployment spec.Name or updates it to spec. A changed Version or
// Image rolls out with the Deployment's strategy, and the driver watches the new pods'
// health documents: when more than spec.Update.MaxFailureRatio of them report fail
// within spec.Update.Monitor, it acts per spec.Update.FailureAction (rollback by
// default: the previous revision; "pause" pauses the Deployment). When an HPA owns
// the Deployment, Apply leaves its replica count alone.
func (d *Driver) Apply(ctx context.Context, spec driver.ServiceSpec) error {
	if d.isClosed() {
		return driver.ErrClosed
	}
	if spec.Name == "" || spec.Image == "" {
		return fmt.Errorf("k8s: apply: name and image are required")
	}
	cctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	// The Deployment's controller writes its status between our read and our write
	// (a conflict): read it again and retry, as Scale does.
	for range 5 {
		old, oldImage, err := d.apply(cctx, spec)
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return err
		}
		if old != nil && (*old != spec.Version || oldImage != spec.Image) {
			d.startRollout(spec, *old)
		}
		return nil
	}
	return fmt.Errorf("k8s: apply %q: conflicting writers", spec.Name)
}

// apply is one read-modify-write of Apply. It returns the version and image the
// Deployment had (nil: it created it).
func (d *Driver) apply(cctx context.Context, spec driver.ServiceSpec) (old *string, oldImage string, err error) {
	tmpl := d.template(spec)
	strat, minReady := strategy(spec.Update)
	dep, err := d.cs.AppsV1().Deployments(d.ns).Get(cctx, spec.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		n := int32(spec.Replicas)
		dep = &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Namespace: d.ns,
				Labels: map[string]string{LabelManaged: managedBy, LabelService: spec.Name}},
			Spec: appsv1.DeploymentSpec{Replicas: &n, Template: tmpl, Strategy: strat, MinReadySeconds: minReady,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelService: spec.Name}}},
		}
		_, err = d.cs.AppsV1().Deployments(d.ns).Create(cctx, dep, metav1.CreateOptions{})
		return nil, "", err
	}
	if err != nil {
		return nil, "", err
	}
	hpa, err := d.HPAOwner(cctx, spec.Name)
	if err != nil {
		return nil, "", err
	}
	version := dep.Spec.Template.Labels[LabelVersion]
	if len(dep.Spec.Template.Spec.Containers) > 0 {
		oldImage = dep.Spec.Template.Spec.Containers[0].Image
	}
	// keep the adopted Deployment's selector labels on the template
	for k, v := range dep.Spec.Selector.MatchLabels {
		tmpl.Labels[k] = v
	}
	dep.Spec.Template = tmpl
	dep.Spec.Strategy, dep.Spec.MinReadySeconds = strat, minReady
	if hpa == "" {
		n := int32(spec.Replicas)
		dep.Spec.Replicas = &n
	} else {
		d.log.Info("k8s: apply leaves replicas alone: a HorizontalPodAutoscaler owns them", "service", spec.Name, "hpa", hpa)
	}
	if dep.Labels == nil {
		dep.Labels = map[string]string{}
	}
	dep.Labels[LabelManaged] = managedBy
	dep.Spec.Paused = false
	if _, err := d.cs.AppsV1().Deployments(d.ns).Update(cctx, dep, metav1.UpdateOptions{}); err != nil {
		return nil, "", err
	}
	return &version, oldImage, nil
}

func (d *Driver) startRollout(spec driver.ServiceSpec, previous string) {
	now := time.Now()
	ctx, cancel := context.WithCancel(d.ctx)
	r := &rollout{policy: spec.Update, version: spec.Version, previous: previous, cancel: cancel,
		failed: map[string]bool{},
		status: driver.RolloutStatus{State: driver.RolloutUpdating, Version: spec.Version, StartedAt: now, UpdatedAt: now,
			Message: fmt.Sprintf("rolling out %s (was %s)", spec.Version, previous)}}
	d.mu.Lock()
	if o := d.rollouts[spec.Name]; o != nil && o.cancel != nil {
		o.cancel()
	}
	d.rollouts[spec.Name] = r
	d.mu.Unlock()
	d.notify()
	d.wg.Add(1)
	go d.monitor(ctx, spec.Name, r)
}

// monitor reads the health document of every new pod of the rollout every 250 ms
// until the Deployment completed and its new pods stayed healthy for the monitor
// window (default 5 s), or too many reported fail.
func (d *Driver) monitor(ctx context.Context, service string, r *rollout) {
	defer d.wg.Done()
	window := r.policy.Monitor
	if window <= 0 {
		window = 5 * time.Second
	}
	var healthySince time.Time
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sel, _ := d.selector(service)
		pods, _ := d.pods.Pods(d.ns).List(sel)
		var fresh []string
		for _, p := range pods {
			if p.Labels[LabelVersion] == r.version && p.DeletionTimestamp == nil && p.Status.PodIP != "" {
				fresh = append(fresh, p.Name)
			}
		}
		bad := 0
		for _, id := range fresh {
			hctx, cancel := context.WithTimeout(ctx, time.Second)
			doc, _, err := d.Health(hctx, id)
			cancel()
			if err == nil && doc.Status == health.StatusFail {
				r.failed[id] = true
			}
		}
		bad = len(r.failed)
		updated := max(len(fresh), bad)
		if bad > 0 && float64(bad)/float64(max(1, updated)) > r.policy.MaxFailureRatio {
			d.failRollout(ctx, service, r, bad, updated)
			return
		}
		if d.complete(service) && len(fresh) > 0 {
			if healthySince.IsZero() {
				healthySince = time.Now()
			}
			if time.Since(healthySince) >= window {
				d.setRollout(service, r, driver.RolloutCompleted, fmt.Sprintf("%s rolled out; %d new pods healthy for %s", r.version, len(fresh), window))
				return
			}
		} else {
			healthySince = time.Time{}
		}
	}
}

func (d *Driver) failRollout(ctx context.Context, service string, r *rollout, bad, updated int) {
	msg := fmt.Sprintf("%d of %d new pods of %s report fail in their health document", bad, updated, r.version)
	switch r.policy.FailureAction {
	case "continue":
		d.setRollout(service, r, driver.RolloutUpdating, msg+"; continuing")
	case "pause":
		dep, err := d.depFor(service)
		if err == nil {
			dep.Spec.Paused = true
			cctx, cancel := d.call()
			_, err = d.cs.AppsV1().Deployments(d.ns).Update(cctx, dep, metav1.UpdateOptions{})
			cancel()
		}
		if err != nil {
			msg += "; pausing failed: " + err.Error()
		}
		d.setRollout(service, r, driver.RolloutPaused, msg+"; paused")
	default:
		d.log.Warn("k8s: rolling back", "service", service, "reason", msg)
		d.setRollout(service, r, driver.RolloutRollbackStarted, msg+"; rolling back")
		if err := d.undo(ctx, service); err != nil {
			d.setRollout(service, r, driver.RolloutRollbackPaused, msg+"; rollback failed: "+err.Error())
			return
		}
		d.wg.Add(1)
		go d.awaitRollback(ctx, service, r, msg)
	}
}

func (d *Driver) awaitRollback(ctx context.Context, service string, r *rollout, msg string) {
	defer d.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if d.complete(service) {
			d.setRollout(service, r, driver.RolloutRollbackCompleted, msg+"; rolled back")
			return
		}
	}
}

func (d *Driver) setRollout(service string, r *rollout, s driver.RolloutState, msg string) {
	d.mu.Lock()
	r.status.State, r.status.Message, r.status.UpdatedAt = s, msg, time.Now()
	if s == driver.RolloutRollbackCompleted || s == driver.RolloutRollbackStarted {
		r.status.Version = r.previous
	}
	d.mu.Unlock()
	d.log.Info("k8s: rollout", "service", service, "state", string(s), "message", msg)
	d.notify()
}

// complete reports whether the Deployment's controller finished: every replica
// updated, available, and no old one left.
func (d *Driver) complete(service string) bool {
	dep, err := d.deps.Deployments(d.ns).Get(service)
	if err != nil || dep.Spec.Replicas == nil {
		return false
	}
	s, n := dep.Status, *dep.Spec.Replicas
	return s.ObservedGeneration >= dep.Generation && s.UpdatedReplicas == n && s.Replicas == n && s.AvailableReplicas == n
}

// undo puts the template of the previous revision back (what `kubectl rollout undo`
// does): the Deployment rolls back with its own strategy.
func (d *Driver) undo(ctx context.Context, service string) error {
	for range 5 {
		dep, err := d.depFor(service)
		if err != nil {
			return err
		}
		sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
		if err != nil {
			return err
		}
		rss, err := d.rss.ReplicaSets(d.ns).List(sel)
		if err != nil {
			return err
		}
		type rev struct {
			n  int
			rs *appsv1.ReplicaSet
		}
		var revs []rev
		for _, rs := range rss {
			if !metav1.IsControlledBy(rs, dep) {
				continue
			}
			n, err := strconv.Atoi(rs.Annotations[revisionKey])
			if err == nil {
				revs = append(revs, rev{n, rs})
			}
		}
		sort.Slice(revs, func(i, j int) bool { return revs[i].n > revs[j].n })
		if len(revs) < 2 {
			return fmt.Errorf("k8s: rollback %q: no previous revision", service)
		}
		tmpl := *revs[1].rs.Spec.Template.DeepCopy()
		delete(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
		dep.Spec.Template = tmpl
		dep.Spec.Paused = false
		cctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
		_, err = d.cs.AppsV1().Deployments(d.ns).Update(cctx, dep, metav1.UpdateOptions{})
		cancel()
		if !apierrors.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("k8s: rollback %q: conflicting writers", service)
}

// Rollback rolls the Deployment back to its previous revision.
func (d *Driver) Rollback(ctx context.Context, service string) error {
	if d.isClosed() {
		return driver.ErrClosed
	}
	d.mu.Lock()
	r := d.rollouts[service]
	if r != nil && r.cancel != nil {
		r.cancel()
	}
	d.mu.Unlock()
	if err := d.undo(ctx, service); err != nil {
		return err
	}
	if r == nil {
		r = &rollout{status: driver.RolloutStatus{StartedAt: time.Now()}}
	}
	rctx, cancel := context.WithCancel(d.ctx)
	d.mu.Lock()
	nr := &rollout{status: r.status, previous: r.previous, cancel: cancel, failed: map[string]bool{}}
	d.rollouts[service] = nr
	d.mu.Unlock()
	d.setRollout(service, nr, driver.RolloutRollbackStarted, "manual rollback")
	d.wg.Add(1)
	go d.awaitRollback(rctx, service, nr, "manual rollback")
	return nil
}

// Rollout reports the last rolling update the driver started, or the Deployment's own
// progress when the driver started none.
func (d *Driver) Rollout(ctx context.Context, service string) (driver.RolloutStatus, error) {
	d.mu.Lock()
	r := d.rollouts[service]
	var st driver.RolloutStatus
	if r != nil {
		st = r.status
	}
	d.mu.Unlock()
	if r != nil {
		return st, nil
	}
	dep, err := d.deps.Deployments(d.ns).Get(service)
	if err != nil {
		return st, fmt.Errorf("%w: deployment %q", driver.ErrNotFound, service)
	}
	st.Version = dep.Spec.Template.Labels[LabelVersion]
	if dep.Annotations[revisionKey] == "1" || dep.Annotations[revisionKey] == "" {
		return st, nil
	}
	if d.complete(service) {
		st.State = driver.RolloutCompleted
	} else {
		st.State = driver.RolloutUpdating
	}
	return st, nil
}

// Remove deletes the Deployment; its ReplicaSets and pods go with it (foreground).
func (d *Driver) Remove(ctx context.Context, service string) error {
	if d.isClosed() {
		return driver.ErrClosed
	}
	d.mu.Lock()
	if r := d.rollouts[service]; r != nil && r.cancel != nil {
		r.cancel()
	}
	delete(d.rollouts, service)
	d.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	fg := metav1.DeletePropagationForeground
	err := d.cs.AppsV1().Deployments(d.ns).Delete(cctx, service, metav1.DeleteOptions{PropagationPolicy: &fg})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: deployment %q", driver.ErrNotFound, service)
	}
	return err
}
