package heal

import (
	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/retry"
)

// Every primitive of selfheal is a Policy.
var (
	_ Policy = (*breaker.Breaker)(nil)
	_ Policy = (*retry.Policy)(nil)
	_ Policy = (*Bulkhead)(nil)
	_ Policy = (*RateLimit)(nil)
	_ Policy = (*Timeout)(nil)
	_ Policy = (*Fallback)(nil)
	_ Policy = (*Hedge)(nil)
	_ Policy = (*AdaptiveLimit)(nil)
	_ Policy = PolicyFunc(nil)
	_ Policy = (*Pipeline)(nil)

	_ BreakerStates = (*Pipeline)(nil)
)
