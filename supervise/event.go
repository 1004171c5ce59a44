package supervise

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// EventKind says what an [Event] reports.
type EventKind int

const (
	// EventStarted: a child's Serve is about to be called.
	EventStarted EventKind = iota + 1
	// EventStopped: a child ended and will not be restarted: it was stopped by
	// its supervisor or removed, it was Transient and returned nil, or it was
	// Temporary. Err is its failure, if any.
	EventStopped
	// EventFailed: a child returned an error, or panicked (Err is then a
	// *PanicError and Stack its stack). EventRestarting or EventStopped
	// follows, or the supervisor gives up. A Permanent child that returns nil
	// gets EventRestarting with Cause "exit" and no EventFailed.
	EventFailed
	// EventRestarting: a child will be restarted after Delay. Cause says why:
	// "error", "panic", "exit" (a nil return) or "sibling" (a group restart).
	EventRestarting
	// EventAbandoned: a child did not return within its shutdown timeout (Delay)
	// and was abandoned. Err is a *StopTimeoutError; Stack its goroutine's stack.
	// The child is not started again until its abandoned copy returns
	// (EventReturned).
	EventAbandoned
	// EventGaveUp: the supervisor exceeded its restart intensity, or could not
	// stop a child for a group restart, and is stopping all its children; its
	// Serve will return Err, an *EscalationError.
	EventGaveUp
	// EventReturned: the abandoned copy of a child returned at last. If the
	// child was waiting for it to start again, EventStarted follows.
	EventReturned
	// EventAutoShutdown: a significant child ended (Child), and the
	// supervisor's AutoShutdown makes it stop all its children; its Serve will
	// return nil.
	EventAutoShutdown
)

// String returns "started", "stopped", "failed", "restarting", "abandoned",
// "gave-up", "returned" or "auto-shutdown".
func (k EventKind) String() string {
	switch k {
	case EventStarted:
		return "started"
	case EventStopped:
		return "stopped"
	case EventFailed:
		return "failed"
	case EventRestarting:
		return "restarting"
	case EventAbandoned:
		return "abandoned"
	case EventGaveUp:
		return "gave-up"
	case EventReturned:
		return "returned"
	case EventAutoShutdown:
		return "auto-shutdown"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is what a supervisor reports to Config.Hook and Config.Logger. It is a
// plain value: a hook may keep it.
type Event struct {
	Kind       EventKind
	Time       time.Time
	Supervisor string // path of the supervisor, e.g. "root/db"
	Child      string // name of the child; empty for EventGaveUp
	// Err is the failure (EventFailed, EventStopped), the *StopTimeoutError
	// (EventAbandoned) or the *EscalationError (EventGaveUp).
	Err error
	// Stack is the goroutine stack of a panic (EventFailed) or of an abandoned
	// child (EventAbandoned).
	Stack    []byte
	Delay    time.Duration // EventRestarting: wait before the restart; EventAbandoned: the timeout
	Cause    string        // EventRestarting: "error", "panic", "exit" or "sibling"
	Restarts int           // the child's restarts so far
}

// String formats the event on one line, without the stack.
func (e Event) String() string {
	switch e.Kind {
	case EventRestarting:
		return fmt.Sprintf("%s/%s: restarting in %s (cause %s, restart %d)", e.Supervisor, e.Child, e.Delay, e.Cause, e.Restarts)
	case EventGaveUp:
		return fmt.Sprintf("%s: gave up: %v", e.Supervisor, e.Err)
	}
	if e.Err != nil {
		return fmt.Sprintf("%s/%s: %s: %v", e.Supervisor, e.Child, e.Kind, e.Err)
	}
	return fmt.Sprintf("%s/%s: %s", e.Supervisor, e.Child, e.Kind)
}

func (e Event) log(l *slog.Logger) {
	level := slog.LevelDebug
	switch e.Kind {
	case EventFailed, EventAbandoned, EventGaveUp:
		level = slog.LevelError
	case EventRestarting, EventReturned:
		level = slog.LevelWarn
	}
	if !l.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]slog.Attr, 0, 7)
	attrs = append(attrs, slog.String(string(telemetry.KeySupervisorName), e.Supervisor))
	if e.Child != "" {
		attrs = append(attrs, slog.String(string(telemetry.KeyChildName), e.Child))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.Any("error", e.Err))
	}
	switch e.Kind {
	case EventRestarting:
		attrs = append(attrs, slog.Duration(string(telemetry.KeyDelay), e.Delay), slog.String(string(telemetry.KeyRestartCause), e.Cause), slog.Int("restarts", e.Restarts))
	case EventAbandoned:
		attrs = append(attrs, slog.Duration("timeout", e.Delay))
	}
	if len(e.Stack) > 0 {
		attrs = append(attrs, slog.String("stack", string(e.Stack)))
	}
	l.LogAttrs(context.Background(), level, "supervise: "+e.Kind.String(), attrs...)
}
