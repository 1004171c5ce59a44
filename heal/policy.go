package heal

import (
	"context"
	"sync"
)

// Policy is what every resilience primitive of selfheal has in common: it runs fn,
// perhaps more than once, perhaps not at all, and returns what fn returned or why it
// did not run it. Implementations in this module: [Bulkhead], [RateLimit],
// [Timeout], [Fallback], [Hedge], [AdaptiveLimit], [Pipeline], the result of
// [Chain], *breaker.Breaker and *retry.Policy.
//
// Do must be safe for concurrent use. It passes fn a context derived from ctx (or ctx
// itself), and every call of fn has returned by the time Do returns: a Policy never
// leaves fn running behind its caller's back. A panic in fn propagates to the caller
// of Do.
type Policy interface {
	Do(ctx context.Context, fn func(context.Context) error) error
}

// PolicyFunc adapts a function to a [Policy]. It is safe for concurrent use when the
// function is.
type PolicyFunc func(ctx context.Context, fn func(context.Context) error) error

// Do calls f(ctx, fn).
func (f PolicyFunc) Do(ctx context.Context, fn func(context.Context) error) error {
	return f(ctx, fn)
}

// Chain composes policies, the outermost first:
//
//	heal.Chain(fallback, retrier, breaker, timeout).Do(ctx, fn)
//
// is fallback.Do(ctx, retrier.Do(ctx, breaker.Do(ctx, timeout.Do(ctx, fn)))). Nil
// policies are skipped; a chain of none calls fn directly. The result is safe for
// concurrent use when its policies are.
func Chain(policies ...Policy) Policy {
	ps := make([]Policy, 0, len(policies))
	for _, p := range policies {
		if p != nil {
			ps = append(ps, p)
		}
	}
	switch len(ps) {
	case 0:
		return passthrough{}
	case 1:
		return ps[0]
	}
	c := &chain{ps: ps}
	c.pool.New = func() any { return newChainCall(c) }
	return c
}

type passthrough struct{}

func (passthrough) Do(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) }

// chain runs its policies without allocating a closure per stage and per call: a
// pooled chainCall holds one pre-bound step function per stage. That is safe because
// a Policy never calls fn after its Do has returned (see the Policy contract); the
// call is returned to the pool only after the outermost Do returns.
type chain struct {
	ps   []Policy
	pool sync.Pool
}

type chainCall struct {
	c     *chain
	fn    func(context.Context) error
	steps []func(context.Context) error // steps[i] runs stage i+1 (or fn)
}

func newChainCall(c *chain) *chainCall {
	cc := &chainCall{c: c, steps: make([]func(context.Context) error, len(c.ps))}
	for i := range cc.steps {
		next := i + 1
		if next == len(c.ps) {
			cc.steps[i] = func(ctx context.Context) error { return cc.fn(ctx) }
		} else {
			cc.steps[i] = func(ctx context.Context) error { return c.ps[next].Do(ctx, cc.steps[next]) }
		}
	}
	return cc
}

func (c *chain) Do(ctx context.Context, fn func(context.Context) error) error {
	cc := c.pool.Get().(*chainCall)
	cc.fn = fn
	err := c.ps[0].Do(ctx, cc.steps[0])
	cc.fn = nil
	c.pool.Put(cc)
	return err
}

// Call runs fn through p and returns fn's result. When p runs fn more than once
// (retries, hedges), it returns the value of the first run that succeeded; when none
// did, it returns p's error with the value the last run of fn returned (the zero T
// only when fn never ran: a rejection, an open breaker), as breaker.Call and
// retry.Call do. A nil p calls fn directly.
//
// The policies of p classify the runs by their errors alone (their Classify sees a
// nil result); to classify results, use breaker.Call, retry.Call or
// [CallWithFallback].
func Call[T any](ctx context.Context, p Policy, fn func(context.Context) (T, error)) (T, error) {
	if p == nil {
		return fn(ctx)
	}
	r := &result[T]{}
	err := p.Do(ctx, func(ctx context.Context) error {
		v, err := fn(ctx)
		r.set(v, err == nil)
		return err
	})
	return r.get(), err
}

// result holds the value of a call that may run concurrently (hedging) or repeatedly
// (retries): the first successful run's, or else the last run's.
type result[T any] struct {
	mu  sync.Mutex
	ok  bool
	val T
}

func (r *result[T]) set(v T, ok bool) {
	r.mu.Lock()
	if !r.ok {
		r.ok, r.val = ok, v
	}
	r.mu.Unlock()
}

func (r *result[T]) get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.val
}
