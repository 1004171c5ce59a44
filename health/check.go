package health

import (
	"context"
	"strings"
	"time"
	"unicode"

	"github.com/selfheal-go/selfheal"
)

// Default settings of a [Check].
const (
	DefaultTimeout  = 5 * time.Second
	DefaultCacheTTL = time.Second
)

// Off, given to a field whose documentation says so, turns that limit off:
// [Check.CacheTTL] (no caching), [Check.Timeout] (no timeout of the check's own),
// [DrainConfig.Delay] (no delay) and [DrainConfig.ShutdownTimeout] (no bound). It is
// [selfheal.Off]; zero always means the documented default, and other negative
// values are invalid.
const Off = selfheal.Off

// CheckFunc is a check that passes when it returns nil. It must honour ctx, which
// carries the check's timeout.
type CheckFunc func(ctx context.Context) error

// ObserveFunc is a check that reports one or several observations: for example the
// p50 and the p99 of a latency under one key. A non-nil error fails the check (its
// text becomes the output); the observations are published either way. It must
// honour ctx, which carries the check's timeout.
type ObserveFunc func(ctx context.Context) ([]Observation, error)

// Observation is one measurement of a check: one entry under the check's key in the
// health document.
type Observation struct {
	// ComponentID tells the entries of one key apart: "p50", "p99", a breaker name.
	// Empty means the check's ComponentID.
	ComponentID string
	// ComponentType: "component", "datastore", "system" or your own. Empty means the
	// check's ComponentType.
	ComponentType string
	// ObservedValue is any value encoding/json can encode; numbers are the usual.
	ObservedValue any
	// ObservedUnit: "ms", "bytes", "%", ...
	ObservedUnit string
	// Status of this observation; empty means pass. The check's status is the worst
	// of its observations (and fail when the function returns an error).
	Status Status
	// Output: a message for people, shown to authorized callers only.
	Output string
}

// Check is a named health check. Exactly one of Func and Observe must be set; every
// other field's zero value means the documented default.
type Check struct {
	// Name is the check's key in the health document, by convention
	// "component:measurement" ("db:ping", "http:responseTime"), and its name in
	// /readyz?verbose and /readyz/<name>. Required; printable, no spaces, no '/'.
	Name string
	// Kinds is the set of probes the check belongs to. Zero means Readiness: a
	// dependency check must not be a liveness check (see the package documentation).
	Kinds Kind

	// Func is a pass/fail check. Exactly one of Func and Observe is required.
	Func CheckFunc
	// Observe is a check that reports observations. Exactly one of Func and Observe
	// is required.
	Observe ObserveFunc

	// ComponentID and ComponentType describe the component in the document; empty
	// means they are left out.
	ComponentID   string
	ComponentType string
	// AffectedEndpoints lists the URLs this check's failure affects, for the document.
	// Nil (the default): none.
	AffectedEndpoints []string

	// Interval > 0 makes the check periodic: [Registry.Run] runs it every Interval
	// in the background and probes read the cached result. Zero (the default) means
	// on demand: a probe runs the check when its cached result is older than
	// CacheTTL. Negative is invalid.
	Interval time.Duration
	// InitialDelay postpones the first run of a periodic check. Zero (the default):
	// run at once. Negative is invalid.
	InitialDelay time.Duration
	// Jitter adds a random delay in [0, Jitter) to every period of a periodic check
	// (and to its first run), so that replicas started together do not hit a shared
	// dependency in step. Zero (the default): no jitter. Negative is invalid.
	Jitter time.Duration
	// CacheTTL is how long the result of an on-demand check is reused. Zero means
	// DefaultCacheTTL (1 s); [Off] means no caching, every probe runs the check
	// (concurrent probes still share one run). Other negative values are invalid.
	CacheTTL time.Duration
	// Timeout bounds one run; the check's context ends then and the run counts as a
	// failure. Zero means DefaultTimeout (5 s). Keep it below the orchestrator's probe
	// timeout. [Off] means no timeout of the check's own: a run lasts until the
	// function returns (probes still stop waiting when their request ends). Other
	// negative values are invalid.
	Timeout time.Duration
	// Inline runs the check on the goroutine that needs it (a probe, or Run) instead
	// of a goroutine of its own, and without Timeout: for checks that only read
	// memory (a snapshot of counters or of a breaker's state) and never block, it
	// saves a goroutine and a timer per run. Concurrent probes still share one run.
	// An Inline check that blocks blocks its probes: leave Inline false (the
	// default: a goroutine of its own per run, bounded by Timeout) for anything that
	// does I/O.
	Inline bool

	// FailureThreshold is the number of consecutive failures after which a passing
	// check fails; the failures before it report warn. Zero means 1. Negative is
	// invalid.
	FailureThreshold int
	// SuccessThreshold is the number of consecutive successes after which a failing
	// check passes again. Zero means 1. Negative is invalid.
	SuccessThreshold int
	// NonCritical degrades the check's fail to warn: it shows in the document and
	// the listeners hear of it, but it never fails a probe. False (the default):
	// the check's fail fails its probes.
	NonCritical bool
}

// normalize validates c and fills in defaults.
func (c Check) normalize() (Check, error) {
	if err := validName(c.Name); err != nil {
		return c, err
	}
	if (c.Func == nil) == (c.Observe == nil) {
		return c, &ConfigError{Field: "Check.Func", Reason: "exactly one of Func and Observe must be set (check " + c.Name + ")"}
	}
	if c.Kinds == 0 {
		c.Kinds = Readiness
	}
	if c.Kinds&^AllKinds != 0 {
		return c, &ConfigError{Field: "Check.Kinds", Reason: "unknown kind bits (check " + c.Name + ")"}
	}
	switch {
	case c.Interval < 0:
		return c, &ConfigError{Field: "Check.Interval", Reason: "must not be negative (check " + c.Name + ")"}
	case c.InitialDelay < 0:
		return c, &ConfigError{Field: "Check.InitialDelay", Reason: "must not be negative (check " + c.Name + ")"}
	case c.Jitter < 0:
		return c, &ConfigError{Field: "Check.Jitter", Reason: "must not be negative (check " + c.Name + ")"}
	case c.Timeout < 0 && c.Timeout != Off:
		return c, &ConfigError{Field: "Check.Timeout", Reason: c.Timeout.String() + " is negative; want >= 0, or Off for no timeout (check " + c.Name + ")"}
	case c.CacheTTL < 0 && c.CacheTTL != Off:
		return c, &ConfigError{Field: "Check.CacheTTL", Reason: c.CacheTTL.String() + " is negative; want >= 0, or Off for no caching (check " + c.Name + ")"}
	case c.FailureThreshold < 0:
		return c, &ConfigError{Field: "Check.FailureThreshold", Reason: "must not be negative (check " + c.Name + ")"}
	case c.SuccessThreshold < 0:
		return c, &ConfigError{Field: "Check.SuccessThreshold", Reason: "must not be negative (check " + c.Name + ")"}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = 1
	}
	if c.SuccessThreshold == 0 {
		c.SuccessThreshold = 1
	}
	c.AffectedEndpoints = append([]string(nil), c.AffectedEndpoints...)
	return c, nil
}

func validName(name string) error {
	if name == "" {
		return &ConfigError{Field: "Check.Name", Reason: "must not be empty"}
	}
	if len(name) > 200 {
		return &ConfigError{Field: "Check.Name", Reason: "longer than 200 bytes"}
	}
	if strings.ContainsRune(name, '/') {
		return &ConfigError{Field: "Check.Name", Reason: "must not contain '/': " + name}
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return &ConfigError{Field: "Check.Name", Reason: "must be printable without spaces: " + name}
		}
	}
	return nil
}

// StatusChange is what status-change listeners receive.
type StatusChange struct {
	Name  string // the check
	Kinds Kind   // the probes it belongs to
	From  Status // the previous status
	To    Status // the new status
	// Output is the check's error text, or its first failing observation's output.
	Output string
	Time   time.Time
}
