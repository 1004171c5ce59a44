package health

import "errors"

// Sentinel errors. Match them with [errors.Is].
var (
	// ErrInvalidConfig is matched by every *[ConfigError].
	ErrInvalidConfig = errors.New("health: invalid configuration")
	// ErrDuplicate is returned by [Registry.Register] for a name already registered.
	ErrDuplicate = errors.New("health: check already registered")
	// ErrRunning is returned by [Registry.Run] when the registry is already running.
	ErrRunning = errors.New("health: registry already running")
	// ErrMalformed is matched by every *[ParseError].
	ErrMalformed = errors.New("health: malformed health document")
	// ErrTooLarge is returned (inside a *[ParseError]) for a document larger than
	// [MaxDocumentSize].
	ErrTooLarge = errors.New("health: health document too large")
	// ErrTimeout is the output of a check that did not return within its timeout.
	ErrTimeout = errors.New("health: check timed out")
	// ErrStillRunning is the output of a check whose previous run ignored its
	// context and has not returned yet: the registry never runs a check twice at once.
	ErrStillRunning = errors.New("health: previous run of the check has not returned")
	// ErrUnsupported is returned by built-in checks that this platform cannot run.
	ErrUnsupported = errors.New("health: not supported on this platform")
)

// ConfigError reports an invalid setting, naming the field. It matches
// [ErrInvalidConfig] with [errors.Is] and unwraps to it. [Registry.Register],
// [HTTPGet], [Registry.Drain] and [Registry.DrainOnSignal] return it.
type ConfigError struct {
	Field  string // for example "Check.Name"
	Reason string // for example "must not be empty"
}

// Error reads "health: invalid configuration: Check.Name: must not be empty".
func (e *ConfigError) Error() string {
	return "health: invalid configuration: " + e.Field + ": " + e.Reason
}

// Is reports whether target is [ErrInvalidConfig].
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns [ErrInvalidConfig].
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// ParseError reports a malformed health document: where (a JSON path such as
// "checks[\"db:ping\"][0].status", empty for the whole document) and why. It matches
// [ErrMalformed] and unwraps to the cause ([ErrTooLarge], a *json.SyntaxError, ...).
type ParseError struct {
	Path string
	Err  error
}

func (e *ParseError) Error() string {
	if e.Path == "" {
		return "health: malformed health document: " + e.Err.Error()
	}
	return "health: malformed health document: " + e.Path + ": " + e.Err.Error()
}

// Is reports whether target is [ErrMalformed].
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

// Unwrap returns the cause.
func (e *ParseError) Unwrap() error { return e.Err }
