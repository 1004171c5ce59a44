package health

import "strings"

// Status is the health of a check or of the whole service, as the IETF draft "Health
// Check Response Format for HTTP APIs" names it: [StatusPass], [StatusWarn] or
// [StatusFail]. The empty Status means "not stated" and ranks as pass.
type Status string

// The three statuses of the health document.
const (
	// StatusPass: healthy.
	StatusPass Status = "pass"
	// StatusWarn: healthy, with some concern. Probes answer 200 and the document
	// answers 200.
	StatusWarn Status = "warn"
	// StatusFail: unhealthy. Probes and the document answer 503.
	StatusFail Status = "fail"
)

// Valid reports whether s is one of pass, warn and fail.
func (s Status) Valid() bool {
	return s == StatusPass || s == StatusWarn || s == StatusFail
}

// severity orders statuses: pass (and "") < warn < fail.
func (s Status) severity() int {
	switch s {
	case StatusWarn:
		return 1
	case StatusFail:
		return 2
	default:
		return 0
	}
}

// worse returns the more severe of a and b; pass when both are empty.
func worse(a, b Status) Status {
	if b.severity() > a.severity() {
		a = b
	}
	if a == "" {
		return StatusPass
	}
	return a
}

// Kind is the set of probes a check belongs to: any combination of [Liveness],
// [Readiness] and [Startup]. The zero Kind in a [Check] means [Readiness], the right
// default for a check of a dependency (see the package documentation).
type Kind uint8

// The probe kinds, one bit each.
const (
	// Liveness checks answer "is this process beyond repair?": /livez. A failing
	// liveness probe makes the orchestrator restart the process.
	Liveness Kind = 1 << iota
	// Readiness checks answer "should this instance get traffic now?": /readyz. A
	// failing readiness probe takes the instance out of load balancing; nothing is
	// restarted.
	Readiness
	// Startup checks answer "has this process finished starting?": /startupz. Until
	// it passes, orchestrators hold off liveness and readiness probes.
	Startup

	// AllKinds is Liveness|Readiness|Startup.
	AllKinds = Liveness | Readiness | Startup
)

// String returns the kinds joined by "|", for example "liveness|readiness".
func (k Kind) String() string {
	if k == 0 {
		return "none"
	}
	var parts []string
	if k&Liveness != 0 {
		parts = append(parts, "liveness")
	}
	if k&Readiness != 0 {
		parts = append(parts, "readiness")
	}
	if k&Startup != 0 {
		parts = append(parts, "startup")
	}
	if k&^AllKinds != 0 {
		parts = append(parts, "unknown")
	}
	return strings.Join(parts, "|")
}

// probeName is the Kubernetes-style endpoint name of a single kind: "livez".
func (k Kind) probeName() string {
	switch k {
	case Liveness:
		return "livez"
	case Readiness:
		return "readyz"
	case Startup:
		return "startupz"
	}
	return "healthz"
}
