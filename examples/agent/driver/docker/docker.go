package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

// Sentinel errors returned (wrapped) by the driver, in addition to driver.ErrNotFound,
// driver.ErrUnsupported and driver.ErrClosed.
var (
	// ErrEngineUnavailable: the Docker engine does not answer (not running, wrong
	// address, restarting). Calls may succeed again once it is back.
	ErrEngineUnavailable = errors.New("docker: engine unavailable")
	// ErrNotManager: the engine answers but is not a swarm manager (swarm mode is
	// off, or this node is a worker).
	ErrNotManager = errors.New("docker: engine is not a swarm manager")
	// ErrStaleVersion: Swarm refused a write because the object changed since it was
	// read, on every one of the driver's attempts.
	ErrStaleVersion = errors.New("docker: stale version")
)

// EngineError reports a call that failed because of the engine: it is unavailable,
// not a swarm manager, or refused a write. It matches its sentinel (ErrEngineUnavailable,
// ErrNotManager, ErrStaleVersion) with errors.Is and unwraps to the client's error.
type EngineError struct {
	Op   string // the driver operation, e.g. "scale service web"
	Host string // the engine address
	Kind error  // ErrEngineUnavailable, ErrNotManager or ErrStaleVersion
	Err  error  // the client's error
}

func (e *EngineError) Error() string {
	return fmt.Sprintf("%s: %s: %s (%v)", e.Kind, e.Op, e.Host, e.Err)
}

// Unwrap returns the client's error.
func (e *EngineError) Unwrap() error { return e.Err }

// Is reports whether target is the error's kind.
func (e *EngineError) Is(target error) bool { return target == e.Kind }

// Label keys the driver sets on what it creates.
const (
	// LabelManaged marks services and containers that the driver manages ("true").
	LabelManaged = "selfheal.managed"
	// LabelVersion is the version an instance was started with.
	LabelVersion = "selfheal.version"
	// LabelBasePort is the port of replica slot 1.
	LabelBasePort = "selfheal.base-port"
	// LabelPortPrefix + slot is the service label that maps a replica slot to its
	// port; the PORT environment variable of each task is looked up in these labels
	// by a Swarm template, since templates cannot add.
	LabelPortPrefix = "selfheal.port."
	// LabelUpdateParallelism and LabelRollbackParallelism keep the parallelism the
	// spec asked for; Swarm's UpdateConfig and RollbackConfig get it capped at
	// replicas-1 (see fill).
	LabelUpdateParallelism   = "selfheal.update-parallelism"
	LabelRollbackParallelism = "selfheal.rollback-parallelism"
)

// Config configures a Driver. The zero value talks to the engine named by the
// environment (DOCKER_HOST, else unix:///var/run/docker.sock), negotiates the API
// version, bounds every call by 30 s, gives instances 10 s to stop, lets Swarm restart
// an exited instance after 500 ms, and logs nothing.
type Config struct {
	// Host is the engine address, e.g. "unix:///run/docker.sock" or
	// "tcp://127.0.0.1:2375"; "" means DOCKER_HOST, else the client's default.
	Host string
	// APIVersion pins the Engine API version, e.g. "1.41"; "" means negotiate it with
	// the engine on the first call.
	APIVersion string
	// CallTimeout bounds every API call whose context has no earlier deadline; <= 0
	// means 30 s. Writes never wait for the swarm to converge: they return once Swarm
	// accepted them, whatever the timeout.
	CallTimeout time.Duration
	// StopGrace is the time between SIGTERM and SIGKILL for Stop when the caller passes
	// no grace, and the services' stop grace period; <= 0 means 10 s.
	StopGrace time.Duration
	// RestartDelay is the delay of Swarm's restart policy (condition "any") between an
	// instance's exit and its replacement; <= 0 means 500 ms.
	RestartDelay time.Duration
	// InstanceHost is the host of Instance.Addr; "" means the address Swarm reports
	// for the instance's node, or 127.0.0.1 when it reports none.
	InstanceHost string
	// ProbeCommand is the command Docker runs inside a container to check its health
	// when a ServiceSpec sets Health.Path; "{path}" in any argument is replaced by
	// that path. Docker runs it without a shell, so the command itself must expand
	// $PORT. nil means DefaultProbeCommand.
	ProbeCommand []string
	// HealthStartPeriod is the start period of the health checks the driver sets (a
	// failed probe counts only after it; a passing one ends it); <= 0 means 5 s.
	HealthStartPeriod time.Duration
	// CheckTimeout is the least timeout of the engine's own health check (an exec in
	// the container, far slower than an HTTP probe when the host is loaded); <= 0
	// means 2 s. CheckRetries is the least number of failed checks in a row before
	// the engine marks a task unhealthy and Swarm kills it; <= 0 means the service's
	// Health.Retries (3 if unset). The agent judges health itself and holds still
	// when many instances look broken at once, which Swarm does not: on a machine
	// where CPU runs short, lenient engine checks keep Swarm from killing healthy
	// tasks (the test-host lab at load 60 timed out 2 s checks and Swarm churned
	// through every task).
	CheckTimeout time.Duration
	CheckRetries int
	// CheckInterval is the least interval of the engine's own health check; <= 0
	// means the service's Health.Interval (1 s if unset). Each check is an exec in the
	// container: 12 tasks checked every 500 ms cost about 1.2 cores of a 2-core host.
	CheckInterval time.Duration
	// WriteAttempts is how often a write is tried when Swarm refuses it for a stale
	// version index; each attempt re-reads the object first. <= 0 means 5.
	WriteAttempts int
	// Logger receives what the driver does; nil means no logging.
	Logger *slog.Logger
	// MeterProvider provides the driver's metrics; nil means the global provider.
	MeterProvider metric.MeterProvider
}

// DefaultProbeCommand runs the image's entrypoint binary (at /service, as BuildImage
// puts it) in its probe mode against the instance's own port.
var DefaultProbeCommand = []string{"/service", "-probe", "http://127.0.0.1:${PORT}{path}"}

// Driver runs services as Swarm services through the Docker Engine API. Create it with
// New; it is safe for concurrent use. It implements driver.Orchestrator,
// driver.NodeController and driver.Adopter.
type Driver struct {
	cfg  Config
	cli  *client.Client
	host string
	log  *slog.Logger

	writes  metric.Int64Counter
	retries metric.Int64Counter
	okAttr  attribute.Set
	errAttr attribute.Set

	mu        sync.Mutex
	closed    bool
	forgotten map[string]time.Time // task id -> when Stop forgot it
}

var (
	_ driver.Orchestrator   = (*Driver)(nil)
	_ driver.NodeController = (*Driver)(nil)
	_ driver.Adopter        = (*Driver)(nil)
)

// New returns a driver for the engine in cfg. It does not contact the engine (use Ping
// to check it is there) and starts nothing. It returns an error for an invalid
// Config.Host.
func New(cfg Config) (*Driver, error) {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 10 * time.Second
	}
	if cfg.RestartDelay <= 0 {
		cfg.RestartDelay = 500 * time.Millisecond
	}
	if cfg.ProbeCommand == nil {
		cfg.ProbeCommand = DefaultProbeCommand
	}
	if len(cfg.ProbeCommand) == 0 {
		return nil, errors.New("docker: Config.ProbeCommand: empty command")
	}
	if cfg.HealthStartPeriod <= 0 {
		cfg.HealthStartPeriod = 5 * time.Second
	}
	if cfg.WriteAttempts <= 0 {
		cfg.WriteAttempts = 5
	}
	opts := []client.Opt{client.FromEnv}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	if cfg.APIVersion != "" {
		opts = append(opts, client.WithVersion(cfg.APIVersion))
	} else {
		opts = append(opts, client.WithAPIVersionNegotiation())
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker: Config.Host %q: %w", cfg.Host, err)
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter("github.com/selfheal-go/selfheal/examples/agent/driver/docker")
	writes, err := meter.Int64Counter("selfheal.docker.writes",
		metric.WithDescription("Writes to the swarm (create, update, scale, rollback, remove, stop, node), by outcome"))
	if err != nil {
		return nil, fmt.Errorf("docker: metrics: %w", err)
	}
	retries, err := meter.Int64Counter("selfheal.docker.stale_retries",
		metric.WithDescription("Writes retried because Swarm refused a stale version index"))
	if err != nil {
		return nil, fmt.Errorf("docker: metrics: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{
		cfg:       cfg,
		cli:       cli,
		host:      cli.DaemonHost(),
		log:       log,
		writes:    writes,
		retries:   retries,
		okAttr:    attribute.NewSet(attribute.String("outcome", "ok")),
		errAttr:   attribute.NewSet(attribute.String("outcome", "error")),
		forgotten: map[string]time.Time{},
	}, nil
}

// Name returns "docker".
func (d *Driver) Name() string { return "docker" }

// Host returns the engine address the driver talks to.
func (d *Driver) Host() string { return d.host }

// Close releases the client's connections. It leaves the services running (the agent
// may be restarting and adopt them). Calls after Close return driver.ErrClosed.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.cli.Close()
}

// Ping checks that the engine answers and is a swarm manager. It returns an error
// matching ErrEngineUnavailable or ErrNotManager otherwise.
func (d *Driver) Ping(ctx context.Context) error {
	ctx, cancel, err := d.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := d.cli.Ping(ctx); err != nil {
		return d.wrap("ping", err)
	}
	info, err := d.cli.Info(ctx)
	if err != nil {
		return d.wrap("ping", err)
	}
	if !info.Swarm.ControlAvailable {
		return &EngineError{Op: "ping", Host: d.host, Kind: ErrNotManager,
			Err: fmt.Errorf("swarm state %q", info.Swarm.LocalNodeState)}
	}
	return nil
}

// begin checks the driver is open and bounds ctx by CallTimeout.
func (d *Driver) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	return d.beginFor(ctx, d.cfg.CallTimeout)
}

func (d *Driver) beginFor(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc, error) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return ctx, func() {}, driver.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return ctx, func() {}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return ctx, cancel, nil
}

// wrap classifies a client error: engine unavailable, not a manager, not found, stale.
func (d *Driver) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if client.IsErrConnectionFailed(err) {
			return &EngineError{Op: op, Host: d.host, Kind: ErrEngineUnavailable, Err: err}
		}
		return fmt.Errorf("docker: %s: %w", op, err)
	case client.IsErrConnectionFailed(err) || isConnRefused(err):
		return &EngineError{Op: op, Host: d.host, Kind: ErrEngineUnavailable, Err: err}
	case strings.Contains(err.Error(), "not a swarm manager"),
		strings.Contains(err.Error(), "swarm is not active"),
		strings.Contains(err.Error(), "node is not part of a swarm"):
		return &EngineError{Op: op, Host: d.host, Kind: ErrNotManager, Err: err}
	case isStale(err):
		return &EngineError{Op: op, Host: d.host, Kind: ErrStaleVersion, Err: err}
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("docker: %s: %w (%v)", op, driver.ErrNotFound, err)
	}
	return fmt.Errorf("docker: %s: %w", op, err)
}

func isConnRefused(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "no such file or directory") ||
		strings.Contains(s, "Cannot connect to the Docker daemon") || strings.Contains(s, "EOF") ||
		strings.Contains(s, "connection reset by peer")
}

// isStale reports Swarm's refusal of a write with an old version index.
func isStale(err error) bool {
	return err != nil && strings.Contains(err.Error(), "update out of sequence")
}

// count records a write's outcome.
func (d *Driver) count(ctx context.Context, err error) {
	if err != nil {
		d.writes.Add(ctx, 1, metric.WithAttributeSet(d.errAttr))
		return
	}
	d.writes.Add(ctx, 1, metric.WithAttributeSet(d.okAttr))
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
