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
//     abandoned: the supervisor stops waiting for it, but cannot kill it, so it
//     does not start that child again until the abandoned Serve has returned.
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
//     itself by one supervisor, not even after a copy was abandoned.
//
// A *Supervisor is a Service, so supervisors nest into trees.
type Service interface {
	Serve(ctx context.Context) error
}

// Func adapts a plain function to a [Service]: Func(fn).Serve(ctx) calls
// fn(ctx). Name the child with [ChildConfig.Name]; without one it is
// "child-N".
type Func func(ctx context.Context) error

// Serve calls f(ctx).
func (f Func) Serve(ctx context.Context) error { return f(ctx) }

var (
	_ Service = Func(nil)
	_ Service = (*Supervisor)(nil)
)
