package supervise

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
)

var (
	// ErrGaveUp matches the *EscalationError a supervisor's Serve returns when
	// its restart intensity was exceeded, a child's Backoff returned a
	// negative delay, or a child could not be stopped for a group restart, and
	// it stopped all its children.
	ErrGaveUp = errors.New("supervise: gave up")

	// ErrStopTimeout matches the *StopTimeoutError reported for a child that
	// did not return within its shutdown timeout and was abandoned.
	ErrStopTimeout = errors.New("supervise: child did not stop in time")

	// ErrUnknownChild is returned by Remove, StopChild and RestartChild for a
	// child ID that is not one of the supervisor's children: removed, never
	// returned by its Add, or an ID of another supervisor (IDs belong to the
	// supervisor that returned them).
	ErrUnknownChild = errors.New("supervise: unknown child")

	// ErrRunning is returned by RestartChild for a child that is running, is
	// about to restart, or whose abandoned copy has not returned yet.
	ErrRunning = errors.New("supervise: child is running")

	// ErrInvalidConfig matches every *ConfigError returned by New and Add.
	ErrInvalidConfig = errors.New("supervise: invalid configuration")

	// ErrDuplicateName is returned by Add when a child of that name exists.
	ErrDuplicateName = errors.New("supervise: duplicate child name")

	// ErrAlreadyServing is returned by Serve when the supervisor is already
	// being served, and by Add for a *Supervisor that already has a parent.
	ErrAlreadyServing = errors.New("supervise: supervisor already serving")

	// ErrGoexit is the failure recorded for a service that called
	// runtime.Goexit (for example through testing.T.FailNow) instead of
	// returning.
	ErrGoexit = errors.New("supervise: service called runtime.Goexit")

	// ErrNotCreated is returned by the methods of a Supervisor that was not
	// made by New.
	ErrNotCreated = errors.New("supervise: Supervisor not created by New")
)

// ConfigError reports an invalid field of a [Config] (from [New]) or of a
// [ChildConfig] (from [Supervisor.Add]). It matches [ErrInvalidConfig].
type ConfigError struct {
	Field  string // e.g. "Config.MaxRestarts"
	Reason string
}

func (e *ConfigError) Error() string {
	return "supervise: invalid configuration: " + e.Field + ": " + e.Reason
}

// Is reports whether target is [ErrInvalidConfig].
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns [ErrInvalidConfig].
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// EscalationError is returned by [Supervisor.Serve] when the supervisor gave
// up. It matches [ErrGaveUp] with errors.Is and unwraps to the failure that
// made it give up.
type EscalationError struct {
	Supervisor string        // path of the supervisor that gave up, e.g. "root/db"
	Child      string        // the child whose failure exceeded the intensity
	Restarts   int           // restarts allowed (Config.MaxRestarts) ...
	Period     time.Duration // ... within this period
	// Err is the child's last failure (nil if it returned nil), or, if the
	// child could not be stopped for a group restart, its *StopTimeoutError.
	Err error
	// BackoffStop is true if the child's Backoff returned a negative delay,
	// rather than the intensity being exceeded.
	BackoffStop bool
}

func (e *EscalationError) Error() string {
	var b strings.Builder
	if _, ok := e.Err.(*StopTimeoutError); ok {
		fmt.Fprintf(&b, "supervise: %s gave up: child %q could not be stopped: %v", e.Supervisor, e.Child, e.Err)
		return b.String()
	}
	if e.BackoffStop {
		fmt.Fprintf(&b, "supervise: %s gave up when the backoff of child %q said stop; it ", e.Supervisor, e.Child)
	} else {
		fmt.Fprintf(&b, "supervise: %s gave up after more than %d restarts within %s; last, child %q ", e.Supervisor, e.Restarts, e.Period, e.Child)
	}
	if e.Err != nil {
		b.WriteString("failed: ")
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("returned")
	}
	return b.String()
}

// Is reports whether target is [ErrGaveUp].
func (e *EscalationError) Is(target error) bool { return target == ErrGaveUp }

// Unwrap returns the child's last failure.
func (e *EscalationError) Unwrap() error { return e.Err }

// StopTimeoutError reports a child that did not return within its shutdown
// timeout. It matches [ErrStopTimeout].
type StopTimeoutError struct {
	Supervisor string        // path of the supervisor
	Child      string        // name of the child
	Timeout    time.Duration // how long it was given
	// Stack is the child's goroutine stack at the moment it was abandoned, or
	// nil if it could not be captured.
	Stack []byte
}

func (e *StopTimeoutError) Error() string {
	return fmt.Sprintf("supervise: %s: child %q did not stop within %s and was abandoned", e.Supervisor, e.Child, e.Timeout)
}

// Is reports whether target is [ErrStopTimeout].
func (e *StopTimeoutError) Is(target error) bool { return target == ErrStopTimeout }

// PanicError is the failure recorded for a service that panicked: the value
// passed to panic and where it happened.
type PanicError struct {
	Value any

	pcs   []uintptr // the panicking goroutine's stack, from the panic up
	once  sync.Once
	stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns the panic value if it is an error, else nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Stack returns the stack of the goroutine that panicked, from the panic up
// to the supervisor, one function per line followed by its file and line, in
// the layout of runtime/debug.Stack. Only the program counters are recorded
// when the panic is recovered; the text is made on the first call, so a
// restart after a panic costs a fraction of formatting the stack at once.
func (e *PanicError) Stack() []byte {
	e.once.Do(func() {
		if len(e.pcs) == 0 {
			return
		}
		var b bytes.Buffer
		frames := runtime.CallersFrames(e.pcs)
		for {
			f, more := frames.Next()
			fn := f.Function
			if fn == "" {
				fn = "unknown"
			}
			fmt.Fprintf(&b, "%s(...)\n\t%s:%d\n", fn, f.File, f.Line)
			if !more {
				break
			}
		}
		e.stack = b.Bytes()
	})
	return e.stack
}
