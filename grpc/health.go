package healgrpc

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/selfheal-go/selfheal/health"
)

// DefaultPollInterval is how often a Watch of a [Health] server re-evaluates its
// service when its HealthConfig.PollInterval is zero.
const DefaultPollInterval = time.Second

// maxPending bounds the status changes queued for one Watch stream that has not
// sent them yet; beyond it the oldest are dropped (the newest is always sent).
const maxPending = 64

// firstRunPoll is how often a Watch re-reads the registry while a check its
// service depends on has not finished its first run: the registry's listeners
// count a check as passing until then (so a service's start is not logged as a
// change), while readiness counts it as failing, so the first pass reaches a
// Watch only this way.
const firstRunPoll = 20 * time.Millisecond

// HealthConfig configures a [Health] server.
type HealthConfig struct {
	// Registry answers the checks. Required.
	Registry *health.Registry
	// Kinds are the probes the overall service ("") answers for. Zero means
	// health.Readiness: a gRPC health check decides whether the instance gets
	// traffic, and a readiness probe fails while the registry drains.
	Kinds health.Kind
	// Services names more services that answer like "" for the given probes, for
	// example {"liveness": health.Liveness} or {"users.v1.Users": health.Readiness}.
	// A zero Kind means health.Readiness. Nil (the default): none. Any other
	// service name is the name of a check of the Registry (see the package
	// documentation).
	Services map[string]health.Kind
	// PollInterval is how often a Watch re-evaluates its service besides the
	// registry's status changes (a drain among them): it runs the on-demand
	// checks. Zero means 1s. Negative is invalid.
	PollInterval time.Duration
}

// Health is a grpc.health.v1.Health server that answers from a [health.Registry]:
// SERVING when the probe (or the check) passes or warns, NOT_SERVING when it fails,
// and NOT_SERVING for every service once the registry drains (for readiness) or
// the server is shut down ([Health.Shutdown]). Register it with
// [Health.Register]. A Health is safe for concurrent use and starts no goroutines
// of its own (a Watch runs on its stream's goroutine). Create it with
// [NewHealth]; the zero Health is not usable.
type Health struct {
	healthpb.UnimplementedHealthServer

	reg      *health.Registry
	services map[string]health.Kind
	poll     time.Duration

	shutdown chan struct{}
	once     sync.Once
}

// NewHealth returns a Health server configured by cfg. An invalid cfg gives an
// error that matches [ErrInvalidConfig] and is a *[ConfigError] naming the field.
func NewHealth(cfg HealthConfig) (*Health, error) {
	if cfg.Registry == nil {
		return nil, invalid("HealthConfig.Registry", "is required")
	}
	if cfg.PollInterval < 0 {
		return nil, invalid("HealthConfig.PollInterval", "%v is negative", cfg.PollInterval)
	}
	h := &Health{reg: cfg.Registry, poll: cfg.PollInterval, services: map[string]health.Kind{}, shutdown: make(chan struct{})}
	if h.poll == 0 {
		h.poll = DefaultPollInterval
	}
	for name, k := range cfg.Services {
		h.services[name] = orReadiness(k)
	}
	h.services[""] = orReadiness(cfg.Kinds)
	return h, nil
}

func orReadiness(k health.Kind) health.Kind {
	if k == 0 {
		return health.Readiness
	}
	return k
}

// Register registers h as the grpc.health.v1.Health service of s.
func (h *Health) Register(s grpc.ServiceRegistrar) { healthpb.RegisterHealthServer(s, h) }

// Shutdown makes every service NOT_SERVING for good, and ends every Watch stream
// after sending it NOT_SERVING, so that grpc.Server.GracefulStop does not wait
// for watchers forever. Call it before GracefulStop. It is idempotent.
func (h *Health) Shutdown() { h.once.Do(func() { close(h.shutdown) }) }

func (h *Health) isShutdown() bool {
	select {
	case <-h.shutdown:
		return true
	default:
		return false
	}
}

func serving(st health.Status) healthpb.HealthCheckResponse_ServingStatus {
	if st == health.StatusFail {
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	return healthpb.HealthCheckResponse_SERVING
}

// statusOf answers for service from snap; found is false for an unknown service.
func (h *Health) statusOf(service string, snap health.Snapshot) (healthpb.HealthCheckResponse_ServingStatus, bool) {
	if k, ok := h.services[service]; ok {
		if h.isShutdown() {
			return healthpb.HealthCheckResponse_NOT_SERVING, true
		}
		return serving(snap.StatusFor(k)), true
	}
	for _, c := range snap.Checks {
		if c.Name != service {
			continue
		}
		if h.isShutdown() || (snap.Draining && c.Kinds&health.Readiness != 0) {
			return healthpb.HealthCheckResponse_NOT_SERVING, true
		}
		return serving(c.Status), true
	}
	return healthpb.HealthCheckResponse_SERVICE_UNKNOWN, false
}

// evaluate runs the stale on-demand checks service depends on, then answers.
func (h *Health) evaluate(ctx context.Context, service string) (healthpb.HealthCheckResponse_ServingStatus, bool) {
	k, ok := h.services[service]
	if !ok {
		k = 0 // a check: refresh every stale check (a check's kinds are not known yet)
	}
	h.reg.Evaluate(ctx, k)
	return h.statusOf(service, h.reg.Snapshot())
}

// Check answers the health of a service: "" and the names of
// HealthConfig.Services answer for their probes, any other name for the registry's
// check of that name; an unknown name gets NOT_FOUND.
func (h *Health) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	st, ok := h.evaluate(ctx, req.GetService())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "unknown service %q", req.GetService())
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

// List answers the status of "", of the names of HealthConfig.Services and of
// every check of the registry.
func (h *Health) List(ctx context.Context, _ *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	h.reg.Evaluate(ctx, 0)
	snap := h.reg.Snapshot()
	out := &healthpb.HealthListResponse{Statuses: map[string]*healthpb.HealthCheckResponse{}}
	for name := range h.services {
		st, _ := h.statusOf(name, snap)
		out.Statuses[name] = &healthpb.HealthCheckResponse{Status: st}
	}
	for _, c := range snap.Checks {
		if _, ok := h.services[c.Name]; !ok {
			st, _ := h.statusOf(c.Name, snap)
			out.Statuses[c.Name] = &healthpb.HealthCheckResponse{Status: st}
		}
	}
	return out, nil
}

// watcher queues the statuses a Watch has to send, in order.
type watcher struct {
	mu      sync.Mutex
	pending []healthpb.HealthCheckResponse_ServingStatus
	last    healthpb.HealthCheckResponse_ServingStatus // last queued
	wake    chan struct{}
}

func (w *watcher) push(st healthpb.HealthCheckResponse_ServingStatus) {
	w.mu.Lock()
	if st != w.last {
		w.last = st
		if len(w.pending) == maxPending {
			w.pending = w.pending[1:]
		}
		w.pending = append(w.pending, st)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) take() []healthpb.HealthCheckResponse_ServingStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pending
	w.pending = nil
	return p
}

// Watch streams the status of a service: the current one at once, then every
// change, as the registry's status-change listeners hear of it (so a periodic
// check's failure shows within its interval, and a drain at once), and as a
// re-evaluation every PollInterval finds it (on-demand checks); a Watch that
// starts before the checks have run once also sees their first pass. An unknown
// service gets SERVICE_UNKNOWN and stays watched. The stream ends when the client
// goes away (with its context's error) and, after NOT_SERVING, when the server
// shuts down ([Health.Shutdown]; with a nil error).
func (h *Health) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	ctx := stream.Context()
	service := req.GetService()
	w := &watcher{last: -1, wake: make(chan struct{}, 1)}
	// The listener runs on the goroutine that finished a check: it reads the
	// snapshot there, so that no change is missed between two wake-ups.
	remove := h.reg.OnStatusChange(func(health.StatusChange) {
		st, _ := h.statusOf(service, h.reg.Snapshot())
		w.push(st)
	})
	defer remove()
	tick := time.NewTicker(h.poll)
	defer tick.Stop()
	st, _ := h.evaluate(ctx, service)
	w.push(st)
	var firstRun <-chan time.Time // ticks while a check has not run once
	if h.awaitsFirstRun(service, h.reg.Snapshot()) {
		t := time.NewTicker(firstRunPoll)
		defer t.Stop()
		firstRun = t.C
	}
	for {
		for _, st := range w.take() {
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-h.shutdown:
			w.push(healthpb.HealthCheckResponse_NOT_SERVING)
			for _, st := range w.take() {
				if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
					return err
				}
			}
			return nil
		case <-w.wake:
		case <-tick.C:
			st, _ := h.evaluate(ctx, service)
			w.push(st)
		case <-firstRun:
			snap := h.reg.Snapshot()
			st, _ := h.statusOf(service, snap)
			w.push(st)
			if !h.awaitsFirstRun(service, snap) {
				firstRun = nil
			}
		}
	}
}

// awaitsFirstRun reports whether a check that service's status depends on has
// not finished its first run yet.
func (h *Health) awaitsFirstRun(service string, snap health.Snapshot) bool {
	k, isService := h.services[service]
	for _, c := range snap.Checks {
		if !c.Pending {
			continue
		}
		if isService && c.Kinds&k != 0 && k != health.Liveness {
			return true
		}
		if !isService && c.Name == service {
			return true
		}
	}
	return false
}
