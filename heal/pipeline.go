package heal

import (
	"cmp"
	"context"
	"errors"
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/retry"
)

// Config configures a [Pipeline]: the ready-made composition
//
//	fallback( retry( breaker( rate limit( timeout( bulkhead( fn ))))))
//
// of the stages it names (see the package documentation for the reasons of that
// order). Every stage is optional: a nil field leaves it out, a non-nil one puts it in
// with that configuration (whose zero value is the stage's defaults). The zero Config
// is a pipeline of no stage, which calls fn directly.
//
// Beyond what the stages' own configurations say, the pipeline adds exactly this:
// each stage's Name, Logger, MeterProvider and TracerProvider default to the Config's; the breaker's
// Classify counts the rate limit's and the bulkhead's rejections neither way
// ([selfheal.Ignored]: they are not failures of the dependency, and counting them as
// successes would hide failures), and otherwise defers to the configured Classify
// (default breaker.DefaultClassify); the retry policy's Classify is wrapped as
// described at [DefaultRetryClassify].
type Config struct {
	// Name names the stages whose own Name is empty. Empty means "pipeline".
	Name string
	// Fallback, when set, is the outermost stage: it replaces what the retries
	// finally failed with (see [FallbackConfig]; its Func is required).
	Fallback *FallbackConfig
	// Retry, when set, retries the attempts that fail. Its Classify (default
	// retry.DefaultClassify) is consulted after the pipeline's own rules: an open
	// breaker is not retried, a timeout or a rejection by the rate limit or
	// bulkhead is (a rate limit's rejection after its Retry-After).
	Retry *retry.Config
	// Breaker, when set, fails fast while the dependency is down. It sees each
	// attempt, including its wait for a token and a slot; it counts timeouts as
	// failures and the rate limit's and bulkhead's rejections neither way.
	Breaker *breaker.Config
	// RateLimit, when set, bounds the rate of attempts (retries included). Its Rate
	// is required.
	RateLimit *RateLimitConfig
	// Timeout, when set, bounds each attempt, including its wait for a bulkhead
	// slot. Its Timeout is required.
	Timeout *TimeoutConfig
	// Bulkhead, when set, bounds the attempts running at once (default 25, no
	// queue).
	Bulkhead *BulkheadConfig
	// Logger serves every stage whose own config has none (each logs what its
	// config says: a breaker its state changes, a retry policy its retries, the
	// others what they do to a call, at Debug). Nil means no logging.
	Logger *slog.Logger
	// MeterProvider serves every stage whose own config has none. Nil means the
	// global provider.
	MeterProvider metric.MeterProvider
	// TracerProvider serves every stage whose own config has none. Nil means the
	// global provider.
	TracerProvider trace.TracerProvider
}

// Pipeline is the ready-made composition of policies that [New] builds from a
// [Config]. It is a [Policy] and a [BreakerStates]; its stages are reachable for
// health wiring and run-time changes (nil for a stage it does not have).
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
	chain    Policy
}

// New builds the pipeline of cfg. An invalid stage configuration gives an error that
// matches [ErrInvalidConfig] and is a *[ConfigError] naming the field (for example
// "Config.Bulkhead.MaxQueued"); it also matches the stage package's own
// ErrInvalidConfig for a breaker or retry configuration.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Name == "" {
		cfg.Name = "pipeline"
	}
	p := &Pipeline{}
	var err error
	if cfg.Fallback != nil {
		fc := *cfg.Fallback
		fc.Name = cmp.Or(fc.Name, cfg.Name)
		if fc.Logger == nil {
			fc.Logger = cfg.Logger
		}
		if fc.MeterProvider == nil {
			fc.MeterProvider = cfg.MeterProvider
		}
		if fc.TracerProvider == nil {
			fc.TracerProvider = cfg.TracerProvider
		}
		if p.fallback, err = NewFallback(fc); err != nil {
			return nil, invalidSub("Config.Fallback", err)
		}
	}
	if cfg.Retry != nil {
		rc := *cfg.Retry
		rc.Name = cmp.Or(rc.Name, cfg.Name)
		if rc.Logger == nil {
			rc.Logger = cfg.Logger
		}
		if rc.MeterProvider == nil {
			rc.MeterProvider = cfg.MeterProvider
		}
		if rc.TracerProvider == nil {
			rc.TracerProvider = cfg.TracerProvider
		}
		rc.Classify = pipelineRetryClassify(rc.Classify)
		if p.retry, err = retry.New(rc); err != nil {
			return nil, invalidSub("Config.Retry", err)
		}
	}
	if cfg.Breaker != nil {
		bc := *cfg.Breaker
		bc.Name = cmp.Or(bc.Name, cfg.Name)
		if bc.Logger == nil {
			bc.Logger = cfg.Logger
		}
		if bc.MeterProvider == nil {
			bc.MeterProvider = cfg.MeterProvider
		}
		if bc.TracerProvider == nil {
			bc.TracerProvider = cfg.TracerProvider
		}
		bc.Classify = pipelineBreakerClassify(bc.Classify)
		if p.breaker, err = breaker.New(bc); err != nil {
			return nil, invalidSub("Config.Breaker", err)
		}
	}
	if cfg.RateLimit != nil {
		rl := *cfg.RateLimit
		rl.Name = cmp.Or(rl.Name, cfg.Name)
		if rl.Logger == nil {
			rl.Logger = cfg.Logger
		}
		if rl.MeterProvider == nil {
			rl.MeterProvider = cfg.MeterProvider
		}
		if rl.TracerProvider == nil {
			rl.TracerProvider = cfg.TracerProvider
		}
		if p.rate, err = NewRateLimit(rl); err != nil {
			return nil, invalidSub("Config.RateLimit", err)
		}
	}
	if cfg.Timeout != nil {
		tc := *cfg.Timeout
		tc.Name = cmp.Or(tc.Name, cfg.Name)
		if tc.Logger == nil {
			tc.Logger = cfg.Logger
		}
		if tc.MeterProvider == nil {
			tc.MeterProvider = cfg.MeterProvider
		}
		if tc.TracerProvider == nil {
			tc.TracerProvider = cfg.TracerProvider
		}
		if p.timeout, err = NewTimeout(tc); err != nil {
			return nil, invalidSub("Config.Timeout", err)
		}
	}
	if cfg.Bulkhead != nil {
		bh := *cfg.Bulkhead
		bh.Name = cmp.Or(bh.Name, cfg.Name)
		if bh.Logger == nil {
			bh.Logger = cfg.Logger
		}
		if bh.MeterProvider == nil {
			bh.MeterProvider = cfg.MeterProvider
		}
		if bh.TracerProvider == nil {
			bh.TracerProvider = cfg.TracerProvider
		}
		if p.bulkhead, err = NewBulkhead(bh); err != nil {
			return nil, invalidSub("Config.Bulkhead", err)
		}
	}
	p.chain = Chain(policyOrNil(p.fallback), policyOrNil(p.retry), policyOrNil(p.breaker),
		policyOrNil(p.rate), policyOrNil(p.timeout), policyOrNil(p.bulkhead))
	return p, nil
}

// policyOrNil returns p as a Policy, or a nil Policy (which Chain skips) when p is a
// nil pointer.
func policyOrNil[P interface {
	*E
	Policy
}, E any](p P) Policy {
	if p == nil {
		return nil
	}
	return p
}

// pipelineBreakerClassify counts the rejections of the pipeline's inner stages
// neither way, and leaves the rest to user (default breaker.DefaultClassify).
func pipelineBreakerClassify(user selfheal.Classifier) selfheal.Classifier {
	if user == nil {
		user = breaker.DefaultClassify
	}
	return func(result any, err error) selfheal.Outcome {
		if err != nil && IsRejected(err) {
			return selfheal.Ignored
		}
		return user(result, err)
	}
}

// DefaultRetryClassify is the retry classification of the [Pipeline], for retry
// policies composed with [Chain] around the policies of this package: a rejection by
// an open or half-open breaker is not retried (failing fast is its point:
// [selfheal.Ignored]), a *[TimeoutError] and a *[RejectedError] are
// ([selfheal.Failure]), and everything else is retry.DefaultClassify's call. Use it as
// retry.Config.Classify.
func DefaultRetryClassify(result any, err error) selfheal.Outcome {
	return defaultRetryClassify(result, err)
}

var defaultRetryClassify = pipelineRetryClassify(nil)

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

// Do runs fn through the pipeline's stages. It returns nil, fn's error, or a
// stage's: a *retry.ExhaustedError wrapping the last attempt's error, a
// *breaker.OpenError, a *[RejectedError], a *[TimeoutError]; or the fallback's result
// in place of any of them.
func (p *Pipeline) Do(ctx context.Context, fn func(context.Context) error) error {
	return p.chain.Do(ctx, fn)
}

// Snapshot returns the state of the pipeline's breaker, if it has one: a
// [BreakerStates].
func (p *Pipeline) Snapshot() []breaker.Snapshot {
	if p.breaker == nil {
		return nil
	}
	return []breaker.Snapshot{p.breaker.Snapshot()}
}

// Breaker returns the pipeline's circuit breaker, or nil when it has none.
func (p *Pipeline) Breaker() *breaker.Breaker { return p.breaker }

// Bulkhead returns the pipeline's bulkhead, or nil when it has none.
func (p *Pipeline) Bulkhead() *Bulkhead { return p.bulkhead }

// RateLimit returns the pipeline's rate limit, or nil when it has none.
func (p *Pipeline) RateLimit() *RateLimit { return p.rate }

// Retry returns the pipeline's retry policy, or nil when it has none.
func (p *Pipeline) Retry() *retry.Policy { return p.retry }

// Timeout returns the pipeline's timeout, or nil when it has none.
func (p *Pipeline) Timeout() *Timeout { return p.timeout }

// Fallback returns the pipeline's fallback, or nil when it has none.
func (p *Pipeline) Fallback() *Fallback { return p.fallback }
