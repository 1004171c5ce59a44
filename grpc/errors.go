package healgrpc

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/status"

	"github.com/selfheal-go/selfheal"
)

// Off, given to a field whose documentation says so, turns that limit off.
const Off = selfheal.Off

var (
	// ErrInvalidConfig is matched by every *[ConfigError].
	ErrInvalidConfig = errors.New("healgrpc: invalid configuration")
	// ErrNotServing is matched by the error of a [Probe] check whose service
	// answered anything but SERVING.
	ErrNotServing = errors.New("healgrpc: service not serving")
)

// ConfigError reports an invalid setting, naming the field. It matches
// [ErrInvalidConfig] with [errors.Is] and unwraps to it. [NewClient], [NewServer],
// [NewHealth] and [Probe] return it.
type ConfigError struct {
	Field  string // for example "ServerConfig.MaxConcurrent"
	Reason string // for example "-2 is negative"
}

// Error reads "healgrpc: invalid configuration: Field: reason".
func (e *ConfigError) Error() string {
	return "healgrpc: invalid configuration: " + e.Field + ": " + e.Reason
}

// Is reports whether target is [ErrInvalidConfig].
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns [ErrInvalidConfig].
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

func invalid(field, format string, args ...any) error {
	return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// statusError is a gRPC status error that also wraps the error behind it (an open
// breaker's, the retry policy's), so that status.Code and errors.Is both work.
type statusError struct {
	st  *status.Status
	err error
}

func (e *statusError) Error() string              { return e.st.Err().Error() }
func (e *statusError) GRPCStatus() *status.Status { return e.st }
func (e *statusError) Unwrap() error              { return e.err }
