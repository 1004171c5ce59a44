package telemetry

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The attribute keys of every metric, span, span event and log record of selfheal
// (log records use the same strings as keys). The root package's TELEMETRY.md lists
// where each one appears; a test in internal/integration checks that list against
// what the packages emit.
const (
	// KeyPolicyName is the Name of the breaker, retry policy or heal policy.
	KeyPolicyName = attribute.Key("selfheal.policy.name")
	// KeyOutcome is the outcome of a call or an attempt.
	KeyOutcome = attribute.Key("selfheal.outcome")
	// KeyState is a state after a change (or the current state); KeyStatePrevious the
	// state before it.
	KeyState         = attribute.Key("selfheal.state")
	KeyStatePrevious = attribute.Key("selfheal.state.previous")
	// KeyForced tells a state change or rejection made by ForceOpen, ForceClosed or
	// Reset.
	KeyForced = attribute.Key("selfheal.forced")
	// KeyReason is why a call was refused or a retry stopped.
	KeyReason = attribute.Key("selfheal.reason")
	// KeyAttempt is the number of an attempt, 1 for the first.
	KeyAttempt = attribute.Key("selfheal.attempt")
	// KeyDelay is a delay about to be waited, in seconds.
	KeyDelay = attribute.Key("selfheal.delay")
	// KeyRetryAfter is how long a refusal asks the caller to wait, in seconds.
	KeyRetryAfter = attribute.Key("selfheal.retry_after")
	// KeyCheckName is the name of a health check.
	KeyCheckName = attribute.Key("selfheal.check.name")
	// KeySupervisorName is the path of a supervisor; KeyChildName the name of a
	// child; KeyRestartCause why the child was restarted.
	KeySupervisorName = attribute.Key("selfheal.supervisor.name")
	KeyChildName      = attribute.Key("selfheal.child.name")
	KeyRestartCause   = attribute.Key("selfheal.restart.cause")
	// KeyErrorType is the semantic conventions' error.type: the type of an error,
	// never its text (which can be sensitive or of unbounded cardinality).
	KeyErrorType = attribute.Key("error.type")
)

// The HTTP semantic conventions' keys of a client request, on the heal Transport's
// attempt spans (the semantic conventions name them; selfheal does not).
const (
	// KeyHTTPMethod is the request's method, one of the known ones or "_OTHER".
	KeyHTTPMethod = attribute.Key("http.request.method")
	// KeyHTTPStatus is the response's status code.
	KeyHTTPStatus = attribute.Key("http.response.status_code")
	// KeyHTTPResendCount is how many times the request was sent before: 1 on the
	// first retry (absent on the first attempt).
	KeyHTTPResendCount = attribute.Key("http.request.resend_count")
	// KeyServerAddress and KeyServerPort are the host and port the request goes to.
	KeyServerAddress = attribute.Key("server.address")
	KeyServerPort    = attribute.Key("server.port")
	// KeyURLFull is the request's URL, without credentials, query or fragment.
	KeyURLFull = attribute.Key("url.full")
)

// ErrorType returns the error.type value of err, per the semantic conventions: the
// fully qualified type of the outermost error that is not a plain wrapper made by
// fmt.Errorf, errors.Join or errors.New (which give "_OTHER"), "context.DeadlineExceeded"
// or "context.Canceled" for those, and "" for nil.
func ErrorType(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded):
		return "context.DeadlineExceeded"
	case errors.Is(err, context.Canceled):
		return "context.Canceled"
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		t := reflect.TypeOf(e)
		if t.PkgPath() == "" && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.PkgPath() + "." + t.Name() {
		case "errors.errorString", "fmt.wrapError", "fmt.wrapErrors", "errors.joinError":
			continue
		}
		if t.Name() == "" {
			return fmt.Sprintf("%T", e)
		}
		return t.PkgPath() + "." + t.Name()
	}
	return "_OTHER"
}

// EndSpan ends span after recording err on it, if not nil, as error.type and an
// Error status whose description is the error type (never the error's text).
func EndSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		et := ErrorType(err)
		span.SetAttributes(KeyErrorType.String(et))
		span.SetStatus(codes.Error, et)
	}
	span.End()
}
