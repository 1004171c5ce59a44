package supervise

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/metric"
)

// Strategy says which children a supervisor restarts when one of them fails.
// The names and meanings are Erlang/OTP's.
type Strategy int

const (
	// OneForOne restarts only the child that ended. The zero value.
	OneForOne Strategy = iota
	// OneForAll stops all other children (in reverse start order) and then
	// restarts all of them (in start order) when one child ends and is to be
	// restarted. Use it when the children cannot work without each other.
	OneForAll
	// RestForOne stops the children started after the one that ended (in
	// reverse start order) and restarts it and them (in start order). Use it
	// when each child depends on the ones started before it.
	RestForOne
)

// String returns "one-for-one", "one-for-all" or "rest-for-one".
func (s Strategy) String() string {
	switch s {
	case OneForOne:
		return "one-for-one"
	case OneForAll:
		return "one-for-all"
	case RestForOne:
		return "rest-for-one"
	}
	return fmt.Sprintf("Strategy(%d)", int(s))
}

// RestartType says when a child is restarted after it ended. The names and
// meanings are Erlang/OTP's.
type RestartType int

const (
	// Permanent children are always restarted, whether they returned nil,
	// returned an error or panicked. The zero value.
	Permanent RestartType = iota
	// Transient children are restarted only after a failure (an error or a
	// panic). A nil return means the child is done: it stays listed as stopped.
	Transient
	// Temporary children are never restarted, not even when a sibling's
	// failure makes a OneForAll or RestForOne supervisor restart the others.
	// They stay listed (stopped or failed) until removed.
	Temporary
)

// String returns "permanent", "transient" or "temporary".
func (r RestartType) String() string {
	switch r {
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	case Temporary:
		return "temporary"
	}
	return fmt.Sprintf("RestartType(%d)", int(r))
}

// Defaults used for the zero fields of [Config].
const (
	DefaultMaxRestarts     = 5
	DefaultPeriod          = 30 * time.Second
	DefaultBackoffReset    = 10 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
)

// Config configures a [Supervisor]. The zero value is a one-for-one supervisor
// that allows 5 restarts in 30 seconds, backs off exponentially between the
// restarts of a crash-looping child, recovers panics and gives each child 5
// seconds to stop. Every field documents what its zero value means.
type Config struct {
	// Strategy says which children are restarted when one ends: OneForOne (the
	// zero value), OneForAll or RestForOne.
	Strategy Strategy

	// MaxRestarts and Period are the restart intensity: when restarting a child
	// would make more than MaxRestarts restarts within the last Period, the
	// supervisor gives up instead: it stops all its children in reverse start
	// order and its Serve returns an *EscalationError (errors.Is ErrGaveUp), which
	// its parent treats as a failure. A restart of a whole group (OneForAll,
	// RestForOne) counts once. <= 0 means DefaultMaxRestarts (5) and
	// DefaultPeriod (30s). The supervisor keeps the times of the restarts
	// within the last Period, 8 bytes each, so a large MaxRestarts costs memory
	// only while that many restarts actually happen.
	MaxRestarts int
	Period      time.Duration

	// Backoff makes the delay policy of one child: it is called once per child
	// when the child is added. The first restart after a stable run (see
	// BackoffReset) happens at once; each further restart of a child that keeps
	// failing waits NextBackOff() on a timer of its own, so a child in backoff
	// never delays its siblings. backoff.Stop from NextBackOff makes the
	// supervisor give up as if the intensity were exceeded. In OneForAll and
	// RestForOne supervisors, the failed child's delay delays its group's
	// restart. nil means DefaultBackoff; NoBackoff restarts at once every time.
	Backoff func() backoff.BackOff

	// BackoffReset is how long a child must have run before it ended for its
	// next restart to be immediate and its backoff to start over. <= 0 means
	// DefaultBackoffReset (10s).
	BackoffReset time.Duration

	// ShutdownTimeout is how long the supervisor waits for a child to return
	// after cancelling its context, unless WithShutdownTimeout says otherwise
	// for that child. A child that takes longer is reported (EventAbandoned,
	// with its stack) and abandoned. A nested *Supervisor child is instead given
	// the sum of its own children's timeouts, since it stops them one by one.
	// <= 0 means DefaultShutdownTimeout (5s).
	ShutdownTimeout time.Duration

	// NoRecover lets panics in children crash the program instead of being
	// recovered, reported with their stack and treated as failures. The zero
	// value recovers.
	NoRecover bool

	// Hook, if not nil, receives every Event of this supervisor, and of nested
	// supervisors whose own Hook is nil. It is called synchronously on the
	// goroutine where the event happens: the child's own goroutine for its
	// Started, Failed, Restarting and Stopped events, the goroutine running
	// Serve for first starts, group restarts, shutdown and giving up, or the
	// goroutine calling Add (Started) or Remove (Abandoned). It may therefore
	// be called concurrently for different children;
	// the events of one child arrive in order. It must not block, and must not
	// call Remove or Serve; Status is fine.
	Hook func(Event)

	// Logger, if not nil, logs every event: failures, giving up and abandoned
	// children at level Error, restarts at Warn, starts and stops at Debug.
	// Nested supervisors whose own Logger is nil use it too. nil means no
	// logging.
	Logger *slog.Logger

	// MeterProvider provides the meter for the metrics
	// selfheal.supervise.restarts (counter; attributes supervisor, child,
	// cause) and selfheal.supervise.children.running (up-down counter;
	// attribute supervisor). nil means the global provider.
	MeterProvider metric.MeterProvider
}

// DefaultBackoff returns the backoff policy used when Config.Backoff is nil:
// exponential from 100ms, doubling up to 10s, with ±50% jitter, never stopping.
func DefaultBackoff() backoff.BackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(100*time.Millisecond),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxInterval(10*time.Second),
		backoff.WithMaxElapsedTime(0),
	)
}

// NoBackoff returns a policy that restarts at once every time: restarts are
// then limited only by the restart intensity. Benchmarks use it to compare
// restart costs without waiting.
func NoBackoff() backoff.BackOff { return zeroBackOff }

var zeroBackOff = &backoff.ZeroBackOff{}

func (c Config) normalize() (Config, error) {
	if c.Strategy < OneForOne || c.Strategy > RestForOne {
		return c, fmt.Errorf("supervise: Config.Strategy: unknown strategy %d", int(c.Strategy))
	}
	if c.MaxRestarts <= 0 {
		c.MaxRestarts = DefaultMaxRestarts
	}
	if c.Period <= 0 {
		c.Period = DefaultPeriod
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff
	}
	if c.BackoffReset <= 0 {
		c.BackoffReset = DefaultBackoffReset
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	return c, nil
}

// ChildOption configures one child in [Supervisor.Add].
type ChildOption func(*childSpec)

type childSpec struct {
	name     string
	restart  RestartType
	shutdown time.Duration
}

// WithName names the child in events, status and metrics. Names are unique
// within a supervisor and must not contain "/". Without it the name is the
// service's String method, a nested supervisor's name, the name given to
// [ServiceFunc], or "child-N".
func WithName(name string) ChildOption {
	return func(s *childSpec) { s.name = name }
}

// WithRestart sets the child's restart type. Without it the child is
// [Permanent].
func WithRestart(r RestartType) ChildOption {
	return func(s *childSpec) { s.restart = r }
}

// WithShutdownTimeout sets how long the child is given to return after its
// context is cancelled. <= 0 means Config.ShutdownTimeout.
func WithShutdownTimeout(d time.Duration) ChildOption {
	return func(s *childSpec) { s.shutdown = d }
}
