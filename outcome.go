package selfheal

// Outcome is how a policy classifies one call: every policy that classifies (breaker,
// retry, and heal's fallback, transport and adaptive limit) takes a [Classifier] that
// returns one of these, in the same shape everywhere.
type Outcome uint8

const (
	// Success: the call did what it should. A breaker counts it as a success; a retry
	// policy returns it; a fallback passes it through.
	Success Outcome = iota
	// Failure: the call failed in a way the policy handles. A breaker counts it as a
	// failure; a retry policy retries it (within its limits); a fallback replaces it.
	Failure
	// Ignored: the call neither succeeded nor failed as far as the policy is concerned
	// (a caller's cancellation, a validation error). A breaker counts it neither way; a
	// retry policy returns it without retrying; a fallback passes it through.
	Ignored
)

// String returns "success", "failure" or "ignored".
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Ignored:
		return "ignored"
	}
	return "invalid"
}

// Classifier decides the [Outcome] of one call from its result and its error. result is
// the value the call returned through a generic helper such as breaker.Call or
// heal.Call (boxed in an interface), the *http.Response for heal's Transport, and nil
// for calls without a result (Do). A Classifier is called on the calling goroutine,
// once per call or attempt, and must be safe for concurrent use.
type Classifier func(result any, err error) Outcome

// Off, given to a configuration field whose documentation says it can be turned off,
// turns that limit or stage off. Every package that has such fields declares a
// constant Off with this value, so that the spelling is the same everywhere
// (heal.Off, health.Off, ...); zero always means the documented default.
const Off = -1
