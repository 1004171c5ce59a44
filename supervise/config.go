package supervise

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal"
)

// Off, given to a field whose documentation says it can be turned off, turns
// that limit off: [Config.MaxRestarts] and [Config.StopTimeout]. It is
// [selfheal.Off], the same value in every package.
const Off = selfheal.Off

// NoRestarts, given to [Config.MaxRestarts], is OTP's intensity 0: the
// supervisor allows no restart at all and gives up at the first end of a child
// that would be restarted. (Zero means the default, DefaultMaxRestarts.)
const NoRestarts = -2

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

// AutoShutdown says whether a supervisor shuts itself down when its
// significant children (see [ChildConfig.Significant]) have ended on their
// own. The names and meanings are OTP 24's auto_shutdown.
type AutoShutdown int

const (
	// Never: the supervisor runs until its context is cancelled or it gives
	// up. The zero value. Significant children are not allowed.
	Never AutoShutdown = iota
	// AnySignificant: the supervisor stops all its children and its Serve
	// returns nil as soon as any significant child has ended on its own and
	// is not restarted (a Transient child returned nil, a Temporary child
	// ended).
	AnySignificant
	// AllSignificant: as AnySignificant, once every significant child has
	// ended on its own.
	AllSignificant
)

// String returns "never", "any-significant" or "all-significant".
func (a AutoShutdown) String() string {
	switch a {
	case Never:
		return "never"
	case AnySignificant:
		return "any-significant"
	case AllSignificant:
		return "all-significant"
	}
	return fmt.Sprintf("AutoShutdown(%d)", int(a))
}

// Defaults used for the zero fields of [Config].
const (
	DefaultName            = "supervisor"
	DefaultMaxRestarts     = 5
	DefaultPeriod          = 30 * time.Second
	DefaultBackoffReset    = 10 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
	// DefaultStopTimeout bounds the stop of a whole supervisor, under the 30
	// seconds that Kubernetes gives a pod by default.
	DefaultStopTimeout = 25 * time.Second
)

// Config configures a [Supervisor]. The zero value is a valid one-for-one
// supervisor named "supervisor" that allows 5 restarts in 30 seconds, backs
// off exponentially between the restarts of a crash-looping child, recovers
// panics, gives each child 5 seconds and all of them together 25 seconds to
// stop. Every field documents what its zero value means; negative values are
// invalid except where a field says it accepts [Off] or [NoRestarts].
type Config struct {
	// Name names the supervisor in events, snapshots, metrics and the paths
	// of its descendants. It must not contain "/". "" means DefaultName
	// ("supervisor"). A nested supervisor's name is also its default child
	// name in its parent.
	Name string

	// Strategy says which children are restarted when one ends: OneForOne (the
	// zero value), OneForAll or RestForOne.
	Strategy Strategy

	// MaxRestarts and Period are the restart intensity: when restarting a child
	// would make more than MaxRestarts restarts within the last Period, the
	// supervisor gives up instead: it stops all its children in reverse start
	// order and its Serve returns an *EscalationError (errors.Is ErrGaveUp), which
	// its parent treats as a failure. A restart of a whole group (OneForAll,
	// RestForOne) counts once. MaxRestarts 0 means DefaultMaxRestarts (5);
	// NoRestarts allows none (OTP's intensity 0: give up at the first end that
	// would need a restart); Off removes the limit (the supervisor never gives
	// up because of restarts). Period 0 means DefaultPeriod (30s). The
	// supervisor keeps the times of the restarts within the last Period, 8
	// bytes each, so a large MaxRestarts costs memory only while that many
	// restarts actually happen.
	MaxRestarts int
	Period      time.Duration

	// Backoff is the delay policy between the restarts of a child that keeps
	// failing. The first restart after a stable run (see BackoffReset) happens
	// at once; the n-th further restart in a row waits Backoff(n) on a timer
	// of the child's own, so a child in backoff never delays its siblings. A
	// negative delay makes the supervisor give up as if the intensity were
	// exceeded. In OneForAll and RestForOne supervisors, the failed child's
	// delay delays its group's restart. nil means DefaultBackoff; NoBackoff
	// restarts at once every time.
	Backoff Backoff

	// BackoffReset is how long a child must have run before it ended for its
	// next restart to be immediate and its backoff to start over. 0 means
	// DefaultBackoffReset (10s).
	BackoffReset time.Duration

	// ShutdownTimeout is how long the supervisor waits for a child to return
	// after cancelling its context, unless the child's ChildConfig says
	// otherwise. A child that takes longer is reported (EventAbandoned, with
	// its stack) and abandoned; see the package documentation for what
	// happens to it then. A nested *Supervisor child is instead given the
	// time it takes to stop its own children (the sum of their timeouts,
	// bounded by its StopTimeout) plus a second. 0 means
	// DefaultShutdownTimeout (5s).
	ShutdownTimeout time.Duration

	// StopTimeout bounds the stop of the whole supervisor, when Serve's
	// context is cancelled, it gives up or it shuts down on its own: the
	// children are still stopped one by one in reverse start order, each
	// within its own shutdown timeout, but once StopTimeout has passed since
	// the stop began, the children still running are cancelled at once and
	// abandoned (as suture's Timeout does). 0 means DefaultStopTimeout (25s);
	// Off means no overall bound (the sum of the children's timeouts).
	StopTimeout time.Duration

	// AutoShutdown says whether the supervisor shuts down on its own when its
	// significant children end: Never (the zero value), AnySignificant or
	// AllSignificant. It then stops its other children and its Serve returns
	// nil, so a parent that added it as Transient treats it as done.
	AutoShutdown AutoShutdown

	// NoRecover lets panics in children crash the program instead of being
	// recovered, reported with their stack and treated as failures. The zero
	// value recovers.
	NoRecover bool

	// Hook, if not nil, receives every Event of this supervisor, and of nested
	// supervisors whose own Hook is nil. It is called synchronously on the
	// goroutine where the event happens: the child's own goroutine for its
	// Started, Failed, Restarting, Stopped and Returned events, the goroutine
	// running Serve for first starts, group restarts, shutdown and giving up,
	// or the goroutine calling Add, RestartChild (Started), Remove or StopChild
	// (Abandoned). It may therefore be called concurrently for different
	// children; the events of one child arrive in order. It must not block,
	// and must not call Remove, StopChild, RestartChild or Serve; Snapshot is
	// fine.
	Hook func(Event)

	// Logger, if not nil, logs every event: failures, giving up and abandoned
	// children at level Error, restarts at Warn, starts and stops at Debug.
	// Nested supervisors whose own Logger is nil use it too. nil means no
	// logging.
	Logger *slog.Logger

	// MeterProvider provides the meter for the metrics
	// selfheal.supervise.restarts (counter; attributes selfheal.supervisor.name,
	// selfheal.child.name, selfheal.restart.cause),
	// selfheal.supervise.children.running (up-down counter; attribute
	// selfheal.supervisor.name) and selfheal.supervise.children.abandoned (gauge
	// of the abandoned child goroutines still running; attribute
	// selfheal.supervisor.name), the
	// last two reported while Serve runs. nil means the global provider.
	MeterProvider metric.MeterProvider

	// TracerProvider provides the tracer of the spans selfheal.supervise.restart
	// (one per restart; attributes selfheal.supervisor.name, selfheal.child.name,
	// selfheal.restart.cause, selfheal.delay, and error.type of the failure that
	// caused it) and selfheal.supervise.gave_up (when the supervisor gives up),
	// children of the span in the context given to Serve. nil means the global
	// provider.
	TracerProvider trace.TracerProvider
}

// Backoff is a supervisor's delay policy between the restarts of a child that
// keeps failing: Backoff(n) is the delay before the n-th restart in a row
// (n >= 1) after the immediate first one. A negative delay makes the
// supervisor give up. A Backoff is called with the supervisor's lock held, on
// the goroutine of the child that ended: it must be quick, safe for
// concurrent use, and must not call the supervisor.
type Backoff func(n int) time.Duration

// DefaultBackoff is the policy used when Config.Backoff is nil: exponential
// from 100ms, doubling up to 10s, with ±50% jitter, never giving up. It is
// ExponentialBackoff(100*time.Millisecond, 10*time.Second).
func DefaultBackoff(n int) time.Duration {
	return exponential(n, 100*time.Millisecond, 10*time.Second)
}

// NoBackoff restarts at once every time: restarts are then limited only by the
// restart intensity.
func NoBackoff(int) time.Duration { return 0 }

// ConstantBackoff returns a policy that waits d before every restart after the
// first. d must not be negative.
func ConstantBackoff(d time.Duration) Backoff {
	return func(int) time.Duration { return d }
}

// ExponentialBackoff returns a policy that waits initial before the first
// delayed restart and doubles the wait for each further one up to max, with
// ±50% jitter so that children failing together do not restart together. It
// never gives up (the restart intensity does).
func ExponentialBackoff(initial, max time.Duration) Backoff {
	return func(n int) time.Duration { return exponential(n, initial, max) }
}

func exponential(n int, initial, limit time.Duration) time.Duration {
	if initial <= 0 {
		return 0
	}
	d := initial
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	// ±50%: uniform in [d/2, 3d/2).
	return d/2 + rand.N(d)
}

// ChildConfig configures one child in [Supervisor.Add]. The zero value is a
// Permanent child named after its service, stopped within the supervisor's
// ShutdownTimeout.
type ChildConfig struct {
	// Name names the child in events, snapshots and metrics. Names are unique
	// within a supervisor and must not contain "/". "" means the service's
	// String method (a nested supervisor's name), or "child-N".
	Name string

	// Restart says when the child is restarted: Permanent (the zero value),
	// Transient or Temporary.
	Restart RestartType

	// ShutdownTimeout is how long the child is given to return after its
	// context is cancelled. 0 means the supervisor's Config.ShutdownTimeout.
	ShutdownTimeout time.Duration

	// Significant marks a child whose end ends its supervisor's work: with
	// Config.AutoShutdown AnySignificant or AllSignificant, the supervisor
	// shuts down when this child (or every significant child) has ended on
	// its own. Only Transient and Temporary children can be significant, and
	// only in a supervisor whose AutoShutdown is not Never, as in OTP.
	Significant bool
}

func (c Config) normalize() (Config, error) {
	switch {
	case strings.Contains(c.Name, "/"):
		return c, &ConfigError{Field: "Config.Name", Reason: fmt.Sprintf("%q contains \"/\"", c.Name)}
	case c.Strategy < OneForOne || c.Strategy > RestForOne:
		return c, &ConfigError{Field: "Config.Strategy", Reason: fmt.Sprintf("unknown strategy %d", int(c.Strategy))}
	case c.MaxRestarts < 0 && c.MaxRestarts != Off && c.MaxRestarts != NoRestarts:
		return c, &ConfigError{Field: "Config.MaxRestarts", Reason: fmt.Sprintf("%d is negative (use Off for no limit, NoRestarts for none)", c.MaxRestarts)}
	case c.Period < 0:
		return c, &ConfigError{Field: "Config.Period", Reason: "must not be negative"}
	case c.BackoffReset < 0:
		return c, &ConfigError{Field: "Config.BackoffReset", Reason: "must not be negative"}
	case c.ShutdownTimeout < 0:
		return c, &ConfigError{Field: "Config.ShutdownTimeout", Reason: "must not be negative"}
	case c.StopTimeout < 0 && c.StopTimeout != Off:
		return c, &ConfigError{Field: "Config.StopTimeout", Reason: "must not be negative except Off"}
	case c.AutoShutdown < Never || c.AutoShutdown > AllSignificant:
		return c, &ConfigError{Field: "Config.AutoShutdown", Reason: fmt.Sprintf("unknown value %d", int(c.AutoShutdown))}
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	switch c.MaxRestarts {
	case 0:
		c.MaxRestarts = DefaultMaxRestarts
	case NoRestarts:
		c.MaxRestarts = 0
	}
	if c.Period == 0 {
		c.Period = DefaultPeriod
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff
	}
	if c.BackoffReset == 0 {
		c.BackoffReset = DefaultBackoffReset
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	return c, nil
}

func (cc ChildConfig) validate(auto AutoShutdown) error {
	switch {
	case cc.Restart < Permanent || cc.Restart > Temporary:
		return &ConfigError{Field: "ChildConfig.Restart", Reason: fmt.Sprintf("unknown restart type %d", int(cc.Restart))}
	case strings.Contains(cc.Name, "/"):
		return &ConfigError{Field: "ChildConfig.Name", Reason: fmt.Sprintf("%q contains \"/\"", cc.Name)}
	case cc.ShutdownTimeout < 0:
		return &ConfigError{Field: "ChildConfig.ShutdownTimeout", Reason: "must not be negative"}
	case cc.Significant && cc.Restart == Permanent:
		return &ConfigError{Field: "ChildConfig.Significant", Reason: "a Permanent child cannot be significant"}
	case cc.Significant && auto == Never:
		return &ConfigError{Field: "ChildConfig.Significant", Reason: "the supervisor's AutoShutdown is Never"}
	}
	return nil
}
