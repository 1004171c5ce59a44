package heal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/retry"
)

// Config configures a [Pipeline]: the ready-made composition
//
//	fallback( retry( breaker( rate limit( timeout( bulkhead( fn ))))))
//
// (see the package documentation for the reasons of that order). The zero value is a
// pipeline of the retry, breaker and bulkhead packages' defaults: 3 attempts with
// jittered exponential backoff, a breaker that opens after 5 consecutive failures, and
// a bulkhead of 25 concurrent calls; no rate limit, no timeout of its own (the
// caller's deadline applies), no fallback.
type Config struct {
	// Name names the stages: the breaker is Name, the bulkhead Name, and so on.
	// Default "pipeline".
	Name string
	// Retry configures the retries. MaxAttempts 1 leaves the stage out. Its
	// Classify (default retry.DefaultClassify) is consulted after the pipeline's
	// own rules: an open breaker is not retried, a timeout or a rejection by the
	// rate limit or bulkhead is (a rate limit's rejection after its Retry-After).
	Retry retry.Config
	// Breaker configures the circuit breaker. It judges only the calls that ran:
	// the rate limit's and bulkhead's rejections never reach it.
	Breaker breaker.Config
	// RateLimit configures the rate limit; Rate 0 leaves the stage out.
	RateLimit RateLimitConfig
	// Timeout bounds each attempt, including its wait for a bulkhead slot. Zero
	// leaves the stage out.
	Timeout time.Duration
	// Bulkhead configures the bulkhead (default: 25 concurrent calls, no queue).
	Bulkhead BulkheadConfig
	// Fallback, when set, replaces the errors that FallbackHandle accepts
	// (default DefaultFallbackHandle) once everything else has failed.
	Fallback       func(ctx context.Context, err error) error
	FallbackHandle func(error) bool
	// MeterProvider serves every stage whose own config has none. Nil means the
	// global provider.
	MeterProvider metric.MeterProvider
}

// Pipeline is the ready-made composition of policies that [New] builds from a
// [Config]. It is a [Policy] and a [BreakerStates]; its stages are reachable for
// health wiring and run-time changes.
//
// A Pipeline is safe for concurrent use. Create it with [New]; the zero value is
// not usable.
type Pipeline struct {
	fallback *Fallback
	retry    *retry.Policy
	breaker  *breaker.Breaker
	rate     *RateLimit
	timeout  *Timeout
	bulkhead *Bulkhead
	calls    sync.Pool // of *pipelineCall
}

// New builds the pipeline of cfg, or returns an error naming the invalid field.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Name == "" {
		cfg.Name = "pipeline"
	}
	p := &Pipeline{}
	var err error
	if cfg.Fallback != nil {
		if p.fallback, err = NewFallback(FallbackConfig{Name: cfg.Name, Handle: cfg.FallbackHandle,
			Func: cfg.Fallback, MeterProvider: cfg.MeterProvider}); err != nil {
			return nil, err
		}
	}
	if cfg.Retry.MaxAttempts != 1 {
		rc := cfg.Retry
		if rc.Name == "" {
			rc.Name = cfg.Name
		}
		if rc.MeterProvider == nil {
			rc.MeterProvider = cfg.MeterProvider
		}
		rc.Classify = pipelineRetryClassify(rc.Classify)
		if p.retry, err = retry.New(rc); err != nil {
			return nil, fmt.Errorf("heal: Config.Retry: %w", err)
		}
	}
	bc := cfg.Breaker
	if bc.MeterProvider == nil {
		bc.MeterProvider = cfg.MeterProvider
	}
	if bc.Name == "" {
		bc.Name = cfg.Name
	}
	if p.breaker, err = breaker.New(bc); err != nil {
		return nil, fmt.Errorf("heal: Config.Breaker: %w", err)
	}
	if cfg.RateLimit.Rate != 0 {
		rl := cfg.RateLimit
		if rl.Name == "" {
			rl.Name = cfg.Name
		}
		if rl.MeterProvider == nil {
			rl.MeterProvider = cfg.MeterProvider
		}
		if p.rate, err = NewRateLimit(rl); err != nil {
			return nil, fmt.Errorf("heal: Config.RateLimit: %w", err)
		}
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("heal: Config.Timeout %v is negative", cfg.Timeout)
	}
	if cfg.Timeout > 0 {
		if p.timeout, err = NewTimeout(TimeoutConfig{Name: cfg.Name, Timeout: cfg.Timeout, MeterProvider: cfg.MeterProvider}); err != nil {
			return nil, err
		}
	}
	bh := cfg.Bulkhead
	if bh.Name == "" {
		bh.Name = cfg.Name
	}
	if bh.MeterProvider == nil {
		bh.MeterProvider = cfg.MeterProvider
	}
	if p.bulkhead, err = NewBulkhead(bh); err != nil {
		return nil, fmt.Errorf("heal: Config.Bulkhead: %w", err)
	}

	p.calls.New = func() any {
		c := &pipelineCall{p: p}
		c.attemptFn = c.attempt
		return c
	}
	return p, nil
}

// DefaultRetryClassify is the retry classification of the [Pipeline], for retry
// policies composed with [Chain] around the policies of this package: a rejection by
// an open or half-open breaker is not retried (failing fast is its point:
// [selfheal.Ignored]), a *[TimeoutError] and a *[RejectedError] are
// ([selfheal.Failure]), and everything else is retry.DefaultClassify's call. Use it as
// retry.Config.Classify.
func DefaultRetryClassify(result any, err error) selfheal.Outcome {
	return pipelineRetryClassify(nil)(result, err)
}

func pipelineRetryClassify(user selfheal.Classifier) selfheal.Classifier {
	if user == nil {
		user = retry.DefaultClassify
	}
	return func(result any, err error) selfheal.Outcome {
		switch {
		case errors.Is(err, breaker.ErrOpen), errors.Is(err, breaker.ErrTooManyRequests):
			return selfheal.Ignored
		case errors.Is(err, ErrTimeout), IsRejected(err):
			return selfheal.Failure
		}
		return user(result, err)
	}
}

// Do runs fn through the pipeline. It returns nil, fn's error, or a stage's: a
// *retry.ExhaustedError wrapping the last attempt's error, a *breaker.OpenError, a
// *[RejectedError], a *[TimeoutError]; or the fallback's result in place of any of
// them.
func (p *Pipeline) Do(ctx context.Context, fn func(context.Context) error) error {
	c := p.calls.Get().(*pipelineCall)
	c.fn = fn
	var err error
	if p.retry != nil {
		err = p.retry.Do(ctx, c.attemptFn)
	} else {
		err = c.attempt(ctx)
	}
	c.fn = nil
	p.calls.Put(c)
	if p.fallback != nil {
		err = p.fallback.result(ctx, err)
	}
	return err
}

// pipelineCall is the state of one call, pooled so that the attempt function is
// bound once, not allocated per call. It is returned to the pool only when the
// retry policy, which never calls it after returning, is done.
type pipelineCall struct {
	p         *Pipeline
	fn        func(context.Context) error
	attemptFn func(context.Context) error
}

// attempt is one attempt: breaker(rate limit(timeout(bulkhead(fn)))), except that
// admission by the rate limit and the bulkhead is decided before the breaker's, so
// that their rejections never reach the breaker (see the package documentation).
func (c *pipelineCall) attempt(ctx context.Context) error {
	p := c.p
	if p.rate != nil {
		if err := p.rate.Take(ctx); err != nil {
			return err
		}
	}
	actx := ctx
	if p.timeout != nil && !p.timeout.callerFirst(ctx) {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, p.timeout.d)
		defer cancel()
	}
	if err := p.bulkhead.Acquire(actx); err != nil {
		return c.timeoutResult(ctx, actx, err)
	}
	defer p.bulkhead.Release()
	return c.timeoutResult(ctx, actx, p.breaker.Do(actx, c.fn))
}

func (c *pipelineCall) timeoutResult(ctx, actx context.Context, err error) error {
	if c.p.timeout == nil {
		return err
	}
	return c.p.timeout.result(ctx, actx, err)
}

// States returns the state of the pipeline's breaker: a [BreakerStates].
func (p *Pipeline) States() []breaker.Snapshot { return []breaker.Snapshot{p.breaker.Snapshot()} }

// Breaker returns the pipeline's circuit breaker.
func (p *Pipeline) Breaker() *breaker.Breaker { return p.breaker }

// Bulkhead returns the pipeline's bulkhead.
func (p *Pipeline) Bulkhead() *Bulkhead { return p.bulkhead }

// RateLimit returns the pipeline's rate limit, or nil when it has none.
func (p *Pipeline) RateLimit() *RateLimit { return p.rate }

// Retry returns the pipeline's retry policy, or nil when it has none.
func (p *Pipeline) Retry() *retry.Policy { return p.retry }
