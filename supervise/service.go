package supervise

import "context"

// Service is something a [Supervisor] runs and restarts: a long-running goroutine
// such as a consumer, a poller or a server. It has the same shape as a
// github.com/thejerf/suture/v4 Service, so services port over unchanged.
//
// Serve runs the service until ctx is cancelled or the service ends. The contract:
//
//   - Serve must return promptly after ctx is cancelled. A service that does not
//     return within its shutdown timeout is reported ([EventAbandoned]) and
//     abandoned: the supervisor stops waiting for it, but cannot kill it.
//   - A nil return means the service finished its work. Whether it is then
//     restarted depends on its [RestartType]: a [Permanent] service is, a [Transient]
//     or [Temporary] one is not.
//   - A non-nil return, or a panic, is a failure. [Permanent] and [Transient]
//     services are restarted after a failure; [Temporary] ones are not.
//   - ctx is cancelled as soon as Serve returns, so goroutines that Serve started
//     and tied to ctx are told to stop before the next run begins.
//   - Serve may be called again after it returned, on the same value, so a
//     service must either reset its state at the start of Serve or be prepared
//     to continue from where it stopped. Serve is never called concurrently with
//     itself by one supervisor.
//
// A *Supervisor is a Service, so supervisors nest into trees.
type Service interface {
	Serve(ctx context.Context) error
}

// Func adapts a plain function to a [Service]. Its name in events and status is
// "child-N" unless [WithName] gives one; [ServiceFunc] attaches a name to the
// function itself.
type Func func(ctx context.Context) error

// Serve calls f(ctx).
func (f Func) Serve(ctx context.Context) error { return f(ctx) }

// ServiceFunc returns a [Service] named name that runs fn. The name is used in
// events and status unless [WithName] overrides it when the service is added.
func ServiceFunc(name string, fn func(ctx context.Context) error) Service {
	return &namedFunc{name: name, fn: fn}
}

type namedFunc struct {
	name string
	fn   func(ctx context.Context) error
}

func (n *namedFunc) Serve(ctx context.Context) error { return n.fn(ctx) }
func (n *namedFunc) String() string                  { return n.name }

var (
	_ Service = Func(nil)
	_ Service = (*namedFunc)(nil)
	_ Service = (*Supervisor)(nil)
)
