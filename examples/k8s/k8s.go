package k8s

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/health"
)

// Labels and annotations the driver writes.
const (
	LabelService = "selfheal.io/service" // the service (Deployment) a pod belongs to
	LabelVersion = "selfheal.io/version" // the version a pod runs
	// LabelManaged marks a Deployment the driver created or adopted.
	LabelManaged = "app.kubernetes.io/managed-by"
	managedBy    = "selfheal-agent"
	revisionKey  = "deployment.kubernetes.io/revision"
)

// ErrHPAOwned is returned by Scale when a HorizontalPodAutoscaler targets the
// Deployment: the autoscaler owns its replica count and the agent stays out of scaling.
var ErrHPAOwned = errors.New("k8s: a HorizontalPodAutoscaler owns the replica count")

// Config configures a Driver. The zero value of every field but Kubeconfig (or Rest)
// is its default.
type Config struct {
	// Kubeconfig is the path of a kubeconfig file; Rest, if set, is used instead.
	Kubeconfig string
	Rest       *rest.Config
	// Namespace holds the Deployments; default "default".
	Namespace string
	// Dial makes every connection: to the apiserver and to pods and nodes (health
	// documents, node probes). Nil means a net.Dialer. Tests and the demo set it to
	// a dialer inside the cluster's network namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Port is the port of the pods' HTTP server when a pod declares none; default 8080.
	Port int
	// HealthPath is the path of the health document; default "/health".
	HealthPath string
	// CallTimeout bounds every API call and health read; default 10 s.
	CallTimeout time.Duration
	// StopGrace is the pods' termination grace period; default 2 s.
	StopGrace time.Duration
	// NodeProbeInterval is how often the node guard probes each node's kubelet;
	// default 250 ms. Off (-1) turns the node guard off.
	NodeProbeInterval time.Duration
	// NodeDownAfter is the number of consecutive failed rounds after which a node is
	// declared lost; default 3.
	NodeDownAfter int
	// KubeletHealthzPort is the port of the kubelets' /healthz; default 10248.
	KubeletHealthzPort int
	// LivenessPath is the path of the pods' liveness probe, by which the kubelet
	// restarts a container that stops answering; default "/livez".
	LivenessPath string
	// LivenessPeriod is the liveness probe's period; default 10 s (Kubernetes'
	// default). Off (-1) writes no liveness probe.
	LivenessPeriod time.Duration
	// LivenessFailures is the liveness probe's failureThreshold: the kubelet restarts
	// the container after that many failed probes in a row (LivenessFailures x
	// LivenessPeriod); default 3 (Kubernetes' default).
	LivenessFailures int
	// MemoryLimit is the pods' memory limit in bytes (resources.limits.memory; the
	// request is the same): a container above it is OOM-killed by its kernel and
	// restarted by the kubelet. Zero means none.
	MemoryLimit int64
	// Logger receives the driver's decisions; nil discards them.
	Logger *slog.Logger
}

// Off turns a limit off.
const Off = -1

// Driver is the kubernetes driver. It implements driver.Orchestrator,
// driver.NodeController, driver.Adopter and driver.Watcher.
type Driver struct {
	cfg    Config
	cs     kubernetes.Interface
	ns     string
	http   *http.Client
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	pods  corelisters.PodLister
	nodes corelisters.NodeLister
	deps  appslisters.DeploymentLister
	rss   appslisters.ReplicaSetLister

	mu        sync.Mutex
	closed    bool
	watchers  []chan struct{}
	gone      map[string]driver.Instance // pods deleted by others: exited, kept a while
	ours      map[string]bool            // pods the driver deleted itself
	rollouts  map[string]*rollout
	lost      map[string]*NodeIncident // nodes the guard declared lost
	pressured map[string]*NodeIncident // nodes the guard drained under pressure
	incidents []NodeIncident
	draining  map[string]context.CancelFunc
}

// New connects to the cluster, starts the informers (pods, nodes, Deployments,
// ReplicaSets) and the node guard, and returns once the informers' caches are filled.
func New(cfg Config) (*Driver, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.Port == 0 {
		cfg.Port = 8080
	}
	if cfg.HealthPath == "" {
		cfg.HealthPath = "/health"
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 2 * time.Second
	}
	if cfg.NodeProbeInterval == 0 {
		cfg.NodeProbeInterval = 250 * time.Millisecond
	}
	if cfg.NodeDownAfter <= 0 {
		cfg.NodeDownAfter = 3
	}
	if cfg.KubeletHealthzPort == 0 {
		cfg.KubeletHealthzPort = 10248
	}
	if cfg.LivenessPath == "" {
		cfg.LivenessPath = "/livez"
	}
	if cfg.LivenessPeriod == 0 {
		cfg.LivenessPeriod = 10 * time.Second
	}
	if cfg.LivenessFailures <= 0 {
		cfg.LivenessFailures = 3
	}
	if cfg.MemoryLimit < 0 {
		return nil, errors.New("k8s: Config.MemoryLimit is negative")
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{Timeout: 2 * time.Second}).DialContext
	}
	rc := cfg.Rest
	if rc == nil {
		if cfg.Kubeconfig == "" {
			return nil, errors.New("k8s: Config.Kubeconfig or Config.Rest is required")
		}
		var err error
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("k8s: kubeconfig: %w", err)
		}
	} else {
		rc = rest.CopyConfig(rc)
	}
	rc.Dial = cfg.Dial
	rc.QPS, rc.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("k8s: client: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Driver{cfg: cfg, cs: cs, ns: cfg.Namespace, log: log, ctx: ctx, cancel: cancel,
		http: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			DialContext: cfg.Dial, DisableKeepAlives: true}},
		gone: map[string]driver.Instance{}, ours: map[string]bool{}, rollouts: map[string]*rollout{},
		lost: map[string]*NodeIncident{}, pressured: map[string]*NodeIncident{}, draining: map[string]context.CancelFunc{}}
	nsf := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(cfg.Namespace))
	allf := informers.NewSharedInformerFactory(cs, 0)
	pi := nsf.Core().V1().Pods()
	ni := allf.Core().V1().Nodes()
	di := nsf.Apps().V1().Deployments()
	ri := nsf.Apps().V1().ReplicaSets()
	d.pods, d.nodes, d.deps, d.rss = pi.Lister(), ni.Lister(), di.Lister(), ri.Lister()
	notify := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { d.notify() },
		UpdateFunc: func(any, any) { d.notify() },
		DeleteFunc: func(any) { d.notify() },
	}
	if _, err := pi.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { d.notify() },
		UpdateFunc: func(any, any) { d.notify() },
		DeleteFunc: d.podDeleted,
	}); err != nil {
		cancel()
		return nil, err
	}
	if _, err := ni.Informer().AddEventHandler(notify); err != nil {
		cancel()
		return nil, err
	}
	_ = di.Informer()
	_ = ri.Informer()
	nsf.Start(ctx.Done())
	allf.Start(ctx.Done())
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	for typ, ok := range nsf.WaitForCacheSync(sctx.Done()) {
		if !ok {
			cancel()
			nsf.Shutdown()
			allf.Shutdown()
			return nil, fmt.Errorf("k8s: the %v informer did not sync: is the apiserver reachable?", typ)
		}
	}
	for typ, ok := range allf.WaitForCacheSync(sctx.Done()) {
		if !ok {
			cancel()
			nsf.Shutdown()
			allf.Shutdown()
			return nil, fmt.Errorf("k8s: the %v informer did not sync", typ)
		}
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		<-ctx.Done()
		nsf.Shutdown()
		allf.Shutdown()
	}()
	if cfg.NodeProbeInterval > 0 {
		d.wg.Add(1)
		go d.guard()
	}
	return d, nil
}

// Clientset is the driver's Kubernetes client (for tests and tools).
func (d *Driver) Clientset() kubernetes.Interface { return d.cs }

// Name returns "kubernetes".
func (d *Driver) Name() string { return "kubernetes" }

// Close stops the informers, the node guard and the rollout monitors. It does not
// touch the Deployments.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
	if t, ok := d.http.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
	return nil
}

func (d *Driver) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

func (d *Driver) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(d.ctx, d.cfg.CallTimeout)
}

// Watch returns a channel that receives a value after every change of a pod, a node,
// a rollout or a node incident, until ctx is done (coalesced: buffer of one).
func (d *Driver) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	d.mu.Lock()
	d.watchers = append(d.watchers, ch)
	d.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-d.ctx.Done():
		}
		d.mu.Lock()
		for i, w := range d.watchers {
			if w == ch {
				d.watchers = append(d.watchers[:i], d.watchers[i+1:]...)
				break
			}
		}
		d.mu.Unlock()
	}()
	return ch
}

func (d *Driver) notify() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// podDeleted keeps a pod that someone else deleted (or the kubelet lost) as an
// exited instance for a while, so that the agent sees it between two probes.
func (d *Driver) podDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	in := d.instance(p) // before d.mu: instance locks it
	d.mu.Lock()
	if d.ours[p.Name] {
		delete(d.ours, p.Name)
	} else if svc := p.Labels[LabelService]; svc != "" {
		in.State, in.ExitedAt, in.ExitReason = driver.StateExited, time.Now(), "pod deleted"
		d.gone[p.Name] = in
	}
	for id, in := range d.gone {
		if time.Since(in.ExitedAt) > 30*time.Second {
			delete(d.gone, id)
		}
	}
	d.mu.Unlock()
	d.notify()
}

// --- instances -----------------------------------------------------------------------------

func (d *Driver) podPort(p *corev1.Pod) int {
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			if port.ContainerPort > 0 {
				return int(port.ContainerPort)
			}
		}
	}
	return d.cfg.Port
}

// instance maps a pod to the driver's view. A container that the kubelet is
// restarting (restartPolicy Always) is "starting", not "exited": the kubelet already
// restarts it and the agent must not replace it on top. So is a container the
// kubelet restarted less than restartWindow ago and does not count ready yet.
func (d *Driver) instance(p *corev1.Pod) driver.Instance {
	in := driver.Instance{ID: p.Name, Service: p.Labels[LabelService], Version: p.Labels[LabelVersion],
		Node: p.Spec.NodeName, StartedAt: p.CreationTimestamp.Time, State: driver.StateStarting}
	if p.Status.PodIP != "" {
		in.Addr = net.JoinHostPort(p.Status.PodIP, strconv.Itoa(d.podPort(p)))
	}
	if p.Status.StartTime != nil {
		in.StartedAt = p.Status.StartTime.Time
	}
	switch p.Status.Phase {
	case corev1.PodRunning:
		in.State = driver.StateRunning
		for _, cs := range p.Status.ContainerStatuses {
			last := cs.LastTerminationState.Terminated
			switch {
			case cs.State.Running == nil:
				in.State = driver.StateStarting
				if t := cs.State.Terminated; t != nil {
					in.ExitReason = "restarting (kubelet): " + exitReason(t)
				} else if w := cs.State.Waiting; w != nil {
					in.ExitReason = "restarting (kubelet): " + w.Reason
				}
			case !cs.Ready && last != nil && time.Since(last.FinishedAt.Time) < restartWindow:
				in.State = driver.StateStarting
				in.ExitReason = "restarted (kubelet): " + exitReason(last)
			}
		}
	case corev1.PodFailed, corev1.PodSucceeded:
		in.State = driver.StateExited
		in.ExitReason = string(p.Status.Phase) + ": " + p.Status.Reason
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil {
				in.ExitReason = exitReason(t)
				in.ExitedAt = t.FinishedAt.Time
			}
		}
	}
	if p.DeletionTimestamp != nil && in.State != driver.StateExited {
		in.ExitReason = "terminating"
	}
	if n, ok := d.lostNode(p.Spec.NodeName); ok && in.State != driver.StateExited {
		in.State, in.ExitReason, in.ExitedAt = driver.StateExited, "node lost", n.Confirmed
	}
	return in
}

// restartWindow is how long after the kubelet restarted a container that it is
// "starting" until the kubelet counts it ready.
const restartWindow = 30 * time.Second

func exitReason(t *corev1.ContainerStateTerminated) string {
	if t.Signal != 0 {
		return fmt.Sprintf("signal %d", t.Signal)
	}
	s := fmt.Sprintf("exit status %d", t.ExitCode)
	if t.Reason != "" {
		s += " (" + t.Reason + ")"
	}
	return s
}

func (d *Driver) selector(service string) (labels.Selector, error) {
	dep, err := d.deps.Deployments(d.ns).Get(service)
	if err == nil && dep.Spec.Selector != nil {
		return metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	}
	return labels.SelectorFromSet(labels.Set{LabelService: service}), nil
}

// Instances lists the pods of service ("" means every service the driver manages),
// from the informer's cache, plus pods deleted by others in the last 30 s (exited).
func (d *Driver) Instances(ctx context.Context, service string) ([]driver.Instance, error) {
	if d.isClosed() {
		return nil, driver.ErrClosed
	}
	var sel labels.Selector
	if service == "" {
		req, _ := labels.NewRequirement(LabelService, "exists", nil)
		sel = labels.NewSelector().Add(*req)
	} else {
		var err error
		if sel, err = d.selector(service); err != nil {
			return nil, err
		}
	}
	pods, err := d.pods.Pods(d.ns).List(sel)
	if err != nil {
		return nil, err
	}
	out := make([]driver.Instance, 0, len(pods))
	seen := map[string]bool{}
	for _, p := range pods {
		in := d.instance(p)
		if in.Service == "" {
			in.Service = service
		}
		seen[p.Name] = true
		out = append(out, in)
	}
	d.mu.Lock()
	for id, in := range d.gone {
		if !seen[id] && (service == "" || in.Service == service) {
			out = append(out, in)
		}
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Stop deletes the pod (its ReplicaSet starts a replacement) with grace as its
// termination grace period (<= 0: Config.StopGrace). A pod on a lost node is deleted
// at once (grace 0): its kubelet cannot confirm. Unknown pods: ErrNotFound.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	if d.isClosed() {
		return driver.ErrClosed
	}
	if grace <= 0 {
		grace = d.cfg.StopGrace
	}
	p, err := d.pods.Pods(d.ns).Get(id)
	if apierrors.IsNotFound(err) {
		d.mu.Lock()
		_, was := d.gone[id]
		delete(d.gone, id)
		d.mu.Unlock()
		if was {
			return nil
		}
		return fmt.Errorf("%w: pod %q", driver.ErrNotFound, id)
	}
	if _, lost := d.lostNode(p.Spec.NodeName); lost {
		grace = 0
	}
	return d.deletePod(ctx, id, grace)
}

func (d *Driver) deletePod(ctx context.Context, id string, grace time.Duration) error {
	d.mu.Lock()
	d.ours[id] = true
	d.mu.Unlock()
	g := int64(grace / time.Second)
	cctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	err := d.cs.CoreV1().Pods(d.ns).Delete(cctx, id, metav1.DeleteOptions{GracePeriodSeconds: &g})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: pod %q", driver.ErrNotFound, id)
	}
	return err
}

// Health reads the health document of pod id directly from the pod (its IP and port).
func (d *Driver) Health(ctx context.Context, id string) (*health.Document, int, error) {
	p, err := d.pods.Pods(d.ns).Get(id)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: pod %q", driver.ErrNotFound, id)
	}
	in := d.instance(p)
	if in.Addr == "" {
		return nil, 0, fmt.Errorf("k8s: pod %q has no IP yet", id)
	}
	return health.Fetch(ctx, d.http, "http://"+in.Addr+d.cfg.HealthPath)
}

// Adopt takes over the Deployments named by services (as the fleet file names them):
// it labels each as managed by the agent and returns its live pods, marked Adopted.
// A name with no Deployment is skipped (Apply creates it).
func (d *Driver) Adopt(ctx context.Context) ([]driver.Instance, error) {
	return d.AdoptServices(ctx, nil)
}

// AdoptServices is Adopt for the named Deployments (nil: every Deployment already
// labeled as managed by the agent).
func (d *Driver) AdoptServices(ctx context.Context, services []string) ([]driver.Instance, error) {
	if services == nil {
		deps, err := d.deps.Deployments(d.ns).List(labels.SelectorFromSet(labels.Set{LabelManaged: managedBy}))
		if err != nil {
			return nil, err
		}
		for _, dep := range deps {
			services = append(services, dep.Name)
		}
	}
	var out []driver.Instance
	for _, s := range services {
		cctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
		dep, err := d.cs.AppsV1().Deployments(d.ns).Get(cctx, s, metav1.GetOptions{})
		if err != nil {
			cancel()
			if apierrors.IsNotFound(err) {
				continue
			}
			return out, err
		}
		if dep.Labels[LabelManaged] != managedBy {
			if dep.Labels == nil {
				dep.Labels = map[string]string{}
			}
			dep.Labels[LabelManaged] = managedBy
			if _, err := d.cs.AppsV1().Deployments(d.ns).Update(cctx, dep, metav1.UpdateOptions{}); err != nil {
				cancel()
				return out, err
			}
		}
		cancel()
		sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
		if err != nil {
			return out, err
		}
		pods, err := d.cs.CoreV1().Pods(d.ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return out, err
		}
		for i := range pods.Items {
			in := d.instance(&pods.Items[i])
			if in.State == driver.StateExited {
				continue
			}
			in.Service, in.Adopted = s, true
			out = append(out, in)
		}
	}
	return out, nil
}

var (
	_ driver.Orchestrator   = (*Driver)(nil)
	_ driver.NodeController = (*Driver)(nil)
	_ driver.Adopter        = (*Driver)(nil)
	_ driver.Watcher        = (*Driver)(nil)
)

func fill(s string, spec driver.ServiceSpec, port int) string {
	return strings.NewReplacer("{port}", strconv.Itoa(port), "{service}", spec.Name, "{version}", spec.Version).Replace(s)
}

func (d *Driver) depFor(service string) (*appsv1.Deployment, error) {
	ctx, cancel := d.call()
	defer cancel()
	dep, err := d.cs.AppsV1().Deployments(d.ns).Get(ctx, service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: deployment %q", driver.ErrNotFound, service)
	}
	return dep, err
}
