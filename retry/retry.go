package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// Defaults of [Config].
const (
	DefaultMaxAttempts    = 3
	DefaultInitialDelay   = 100 * time.Millisecond
	DefaultMaxDelay       = 10 * time.Second
	DefaultMultiplier     = 2.0
	DefaultMaxServerDelay = 30 * time.Second
)

// Config configures a [Policy]. The zero value is a sensible policy: 3 attempts,
// exponential backoff with full jitter from 100ms doubling up to 10s, server-requested
// delays honoured up to 30s, no budget, [DefaultRetryable] classification, no hooks,
// telemetry to the global OpenTelemetry providers, no logging.
type Config struct {
	// Name identifies the policy in telemetry (attribute "retry.policy") and logs.
	// Empty means no name.
	Name string

	// MaxAttempts is the most attempts a call makes, the first one included: 3 means
	// at most 2 retries. Zero means 3; 1 means never retry. Negative is an error.
	MaxAttempts int

	// InitialDelay is the base delay of the exponential backoff: the delay before the
	// first retry before jitter. Zero means 100ms. Negative is an error.
	InitialDelay time.Duration
	// MaxDelay caps every backoff delay (after jitter, and also the delays of
	// NewBackOff). Zero means 10s, or InitialDelay when that is larger. Negative, or less
	// than InitialDelay, is an error.
	MaxDelay time.Duration
	// Multiplier is the growth of the exponential backoff from one retry to the next.
	// Zero means 2; 1 gives a constant delay. Less than 1, NaN or infinite is an error.
	Multiplier float64
	// Jitter is how delays are randomized; the zero value is [JitterFull]. An unknown
	// value is an error.
	Jitter Jitter
	// NewBackOff, when set, replaces the built-in backoff (InitialDelay, Multiplier and
	// Jitter are then unused): it is called once per call, at the first retry, on the
	// calling goroutine, and the [backoff.BackOff] it returns is used by that call only,
	// so a stateful BackOff such as [backoff.ExponentialBackOff] is never shared between
	// concurrent calls unless NewBackOff itself shares it. [backoff.Stop] ends the
	// retries ([ReasonBackOff]). See [Constant] and [Exponential]. Nil means the built-in
	// backoff, which allocates nothing.
	NewBackOff func() backoff.BackOff

	// MaxElapsedTime bounds the time from the start of a call to the start of its last
	// attempt: a wait that would end after it is not started ([ReasonMaxElapsed]). It
	// does not interrupt a running attempt; use a context deadline for that. Zero means
	// no limit of its own (MaxAttempts and the context still bound the call). Negative is
	// an error.
	MaxElapsedTime time.Duration
	// AttemptTimeout, when more than zero, gives each attempt a context with that
	// timeout. An attempt that fails after its own timeout expired (while the caller's
	// context is still live) is retryable unless marked [Permanent]; its error is an
	// [*AttemptTimeoutError]. Zero means no per-attempt timeout. Negative is an error.
	AttemptTimeout time.Duration
	// MaxServerDelay caps the delays that failed attempts ask for through a [DelayHint]
	// (see [After] and [ParseRetryAfter]); a longer request is shortened to the cap. Zero
	// means 30s; a negative value means server-requested delays are ignored.
	MaxServerDelay time.Duration

	// Retryable classifies the error of a failed attempt: true means it may be retried.
	// Errors marked [Permanent] are never retried, and nothing is retried once the
	// caller's context is done, whatever Retryable says. It is called on the calling
	// goroutine and must be safe for concurrent use. Nil means [DefaultRetryable].
	Retryable func(error) bool

	// Budget, when set, limits retries to a share of recent calls; it may be shared by
	// many policies. A refused retry ends the call with an error matching
	// [ErrBudgetExhausted]. Nil means no budget.
	Budget *Budget

	// OnRetry, when set, is called before each wait, on the calling goroutine, with the
	// call's context, the number of the attempt that just failed (1 for the first), its
	// error, and the delay about to be waited. It is not called when the policy gives up.
	OnRetry func(ctx context.Context, attempt int, err error, delay time.Duration)

	// Logger, when set, receives a Debug record before each retry. Nil means no logging.
	Logger *slog.Logger
	// MeterProvider provides the attempts counter. Nil means the global provider.
	MeterProvider metric.MeterProvider
}

// Outcome attribute values of the "selfheal.retry.attempts" counter.
const (
	outcomeSuccess   = "success"   // the attempt succeeded
	outcomeRetry     = "retry"     // it failed and a retry follows
	outcomePermanent = "permanent" // it failed and was not retryable
	outcomeExhausted = "exhausted" // it failed and a limit (budget included) stopped the retries
	outcomeCanceled  = "canceled"  // it failed and the caller's context was done
	outcomePanic     = "panic"     // fn panicked
	numOutcomes      = 6
)

var outcomeNames = [numOutcomes]string{outcomeSuccess, outcomeRetry, outcomePermanent, outcomeExhausted, outcomeCanceled, outcomePanic}

type outcome int

const (
	oSuccess outcome = iota
	oRetry
	oPermanent
	oExhausted
	oCanceled
	oPanic
)

// Policy retries calls that fail with a retryable error, waiting between attempts with
// exponential backoff and jitter, until an attempt succeeds, an error is not retryable,
// or a limit is reached (attempts, elapsed time, the caller's deadline, the budget).
//
// A Policy is immutable once built by [New], safe for concurrent use, and meant to be
// reused: every call keeps its own state on its own stack. It starts no goroutines:
// attempts and waits run on the calling goroutine.
type Policy struct {
	name           string
	maxAttempts    int
	delays         delays
	newBackOff     func() backoff.BackOff
	maxElapsed     time.Duration
	attemptTimeout time.Duration
	maxServerDelay time.Duration // < 0: ignore
	retryable      func(error) bool
	budget         *Budget
	onRetry        func(context.Context, int, error, time.Duration)
	logger         *slog.Logger

	// Attempts are counted in atomics and reported by an observable counter when
	// the meter collects: a synchronous SDK counter would cost more than a whole
	// call whose first attempt succeeds.
	attempts metric.Int64ObservableCounter
	outcomes [numOutcomes]metric.ObserveOption
	counts   [numOutcomes]atomic.Int64
}

// New returns a Policy configured by cfg, or an error naming the first invalid field.
func New(cfg Config) (*Policy, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Policy{
		name:           cfg.Name,
		maxAttempts:    orDefault(cfg.MaxAttempts, DefaultMaxAttempts),
		newBackOff:     cfg.NewBackOff,
		maxElapsed:     cfg.MaxElapsedTime,
		attemptTimeout: cfg.AttemptTimeout,
		maxServerDelay: orDefault(cfg.MaxServerDelay, DefaultMaxServerDelay),
		retryable:      cfg.Retryable,
		budget:         cfg.Budget,
		onRetry:        cfg.OnRetry,
		logger:         cfg.Logger,
	}
	base := orDefault(cfg.InitialDelay, DefaultInitialDelay)
	maxDelay := cfg.MaxDelay
	if maxDelay == 0 {
		maxDelay = max(DefaultMaxDelay, base)
	}
	p.delays = delays{base: base, cap: maxDelay, multiplier: orDefault(cfg.Multiplier, DefaultMultiplier), jitter: cfg.Jitter}
	if p.retryable == nil {
		p.retryable = DefaultRetryable
	}

	meter := telemetry.Meter(cfg.MeterProvider, "retry")
	var err error
	p.attempts, err = meter.Int64ObservableCounter("selfheal.retry.attempts",
		metric.WithDescription("Attempts made by retry policies, by outcome."),
		metric.WithUnit("{attempt}"))
	if err != nil {
		return nil, fmt.Errorf("retry: creating the attempts counter: %w", err)
	}
	for i, o := range outcomeNames {
		attrs := []attribute.KeyValue{attribute.String("outcome", o)}
		if cfg.Name != "" {
			attrs = append(attrs, attribute.String("retry.policy", cfg.Name))
		}
		p.outcomes[i] = metric.WithAttributeSet(attribute.NewSet(attrs...))
	}
	// The callback holds p weakly and is unregistered once p is garbage.
	if err := telemetry.RegisterWeak(meter, p, (*Policy).observe, p.attempts); err != nil {
		return nil, fmt.Errorf("retry: registering the attempts callback: %w", err)
	}
	return p, nil
}

// observe reports the attempt counts that are not zero.
func (p *Policy) observe(o metric.Observer) {
	telemetry.ObserveCounts(o, p.attempts, p.counts[:], p.outcomes[:])
}

func orDefault[T int | time.Duration | float64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func (cfg *Config) validate() error {
	switch {
	case cfg.MaxAttempts < 0:
		return fmt.Errorf("retry: Config.MaxAttempts is %d; want >= 1 (0 means %d)", cfg.MaxAttempts, DefaultMaxAttempts)
	case cfg.InitialDelay < 0:
		return fmt.Errorf("retry: Config.InitialDelay is %v; want >= 0 (0 means %v)", cfg.InitialDelay, DefaultInitialDelay)
	case cfg.MaxDelay < 0:
		return fmt.Errorf("retry: Config.MaxDelay is %v; want >= 0 (0 means %v)", cfg.MaxDelay, DefaultMaxDelay)
	case cfg.MaxDelay > 0 && cfg.MaxDelay < orDefault(cfg.InitialDelay, DefaultInitialDelay):
		return fmt.Errorf("retry: Config.MaxDelay (%v) is less than Config.InitialDelay (%v)", cfg.MaxDelay, orDefault(cfg.InitialDelay, DefaultInitialDelay))
	case math.IsNaN(cfg.Multiplier) || math.IsInf(cfg.Multiplier, 0) || (cfg.Multiplier != 0 && cfg.Multiplier < 1):
		return fmt.Errorf("retry: Config.Multiplier is %v; want a finite value >= 1 (0 means %v)", cfg.Multiplier, DefaultMultiplier)
	case cfg.Jitter < 0 || cfg.Jitter >= jitterEnd:
		return fmt.Errorf("retry: Config.Jitter is %v; want JitterFull, JitterEqual, JitterDecorrelated or JitterNone", cfg.Jitter)
	case cfg.MaxElapsedTime < 0:
		return fmt.Errorf("retry: Config.MaxElapsedTime is %v; want >= 0 (0 means no limit)", cfg.MaxElapsedTime)
	case cfg.AttemptTimeout < 0:
		return fmt.Errorf("retry: Config.AttemptTimeout is %v; want >= 0 (0 means none)", cfg.AttemptTimeout)
	}
	return nil
}

// Name returns [Config.Name].
func (p *Policy) Name() string { return p.name }

// AttemptTimeoutError is the error of an attempt that failed after its own
// [Config.AttemptTimeout] expired. It unwraps to the attempt's error (usually
// [context.DeadlineExceeded]).
type AttemptTimeoutError struct {
	Attempt int
	Timeout time.Duration
	Err     error
}

// Error reads "retry: attempt 2 timed out after 1s: context deadline exceeded".
func (e *AttemptTimeoutError) Error() string {
	return fmt.Sprintf("retry: attempt %d timed out after %v: %v", e.Attempt, e.Timeout, e.Err)
}

// Unwrap returns the attempt's error.
func (e *AttemptTimeoutError) Unwrap() error { return e.Err }

// Do calls fn until it succeeds, fails with an error that is not retryable, or a limit
// is reached, waiting between attempts. Every attempt gets ctx (or, with
// [Config.AttemptTimeout], a child of it).
//
// Do returns nil when an attempt succeeded, and otherwise:
//   - the attempt's error itself when it is not retryable (marked [Permanent], or
//     rejected by [Config.Retryable]);
//   - an [*ExhaustedError] matching [ErrExhausted] and wrapping the last error when a
//     limit stopped the retries: MaxAttempts, MaxElapsedTime, the [Budget] (then it also
//     matches [ErrBudgetExhausted]), the NewBackOff strategy, or a wait that could not
//     end before ctx's deadline (then it also matches [context.DeadlineExceeded]); Do
//     never starts such a wait, so it returns before the deadline instead of sleeping
//     into it;
//   - when ctx is done before a retry or during a wait, an error that matches ctx.Err()
//     and wraps the last error too.
//
// If fn panics, Do records the attempt (outcome "panic") and lets the panic continue.
// Do is safe for concurrent use.
func (p *Policy) Do(ctx context.Context, fn func(context.Context) error) error {
	if p.budget != nil {
		p.budget.Deposit()
	}
	var start time.Time
	if p.maxElapsed > 0 {
		start = time.Now()
	}
	done := false
	defer func() {
		if !done {
			p.record(oPanic)
		}
	}()
	var err error
	if p.attemptTimeout > 0 {
		err = p.timedAttempt(ctx, fn, 1)
	} else {
		err = fn(ctx)
	}
	if err == nil {
		done = true
		p.record(oSuccess)
		return nil
	}
	err = p.retry(ctx, fn, err, start)
	done = true
	return err
}

// Call is [Policy.Do] for functions that return a value: it returns the value and error
// of the last attempt, or the error that ended the retries.
func Call[T any](ctx context.Context, p *Policy, fn func(context.Context) (T, error)) (T, error) {
	var res T
	err := p.Do(ctx, func(ctx context.Context) error {
		v, err := fn(ctx)
		res = v
		return err
	})
	return res, err
}

var defaultPolicy = sync.OnceValue(func() *Policy {
	p, err := New(Config{})
	if err != nil {
		panic(err) // the zero Config is valid
	}
	return p
})

// Do calls fn with a Policy built from the zero [Config]: up to 3 attempts with full
// jitter from 100ms. See [Policy.Do].
func Do(ctx context.Context, fn func(context.Context) error) error {
	return defaultPolicy().Do(ctx, fn)
}

func (p *Policy) record(o outcome) {
	p.counts[o].Add(1)
}

// timedAttempt runs attempt n of fn under AttemptTimeout.
func (p *Policy) timedAttempt(ctx context.Context, fn func(context.Context) error, n int) error {
	actx, cancel := context.WithTimeout(ctx, p.attemptTimeout)
	defer cancel() // also when fn panics
	err := fn(actx)
	if err != nil && actx.Err() != nil && ctx.Err() == nil {
		err = &AttemptTimeoutError{Attempt: n, Timeout: p.attemptTimeout, Err: err}
	}
	return err
}

// retry is the slow path of Do, entered after attempt 1 failed with err.
// start is when Do began, set only when MaxElapsedTime is.
func (p *Policy) retry(ctx context.Context, fn func(context.Context) error, err error, start time.Time) error {
	var (
		prev    time.Duration // the previous delay, for decorrelated jitter
		bo      backoff.BackOff
		timer   *time.Timer
		elapsed = p.maxElapsed > 0
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for n := 1; ; n++ {
		// Attempt n failed with err.
		if !p.isRetryable(err) {
			p.record(oPermanent)
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			p.record(oCanceled)
			return fmt.Errorf("retry: %w after attempt %d: %w", cerr, n, err)
		}
		if n >= p.maxAttempts {
			return p.exhausted(ctx, n, ReasonMaxAttempts, err)
		}

		// The delay: the server's request, or the backoff.
		var delay time.Duration
		if sd := p.serverDelay(err); sd > 0 {
			delay = sd
		} else if p.newBackOff != nil {
			if bo == nil {
				bo = p.newBackOff()
			}
			delay = bo.NextBackOff()
			if delay == backoff.Stop || delay < 0 {
				return p.exhausted(ctx, n, ReasonBackOff, err)
			}
			delay = min(delay, p.delays.cap)
		} else {
			delay = p.delays.next(n, prev)
			prev = delay
		}

		// Never start a wait that cannot end in time.
		if dl, ok := ctx.Deadline(); ok || elapsed {
			now := time.Now()
			if ok && !now.Add(delay).Before(dl) {
				return p.exhausted(ctx, n, ReasonDeadline, err)
			}
			if elapsed && now.Add(delay).Sub(start) > p.maxElapsed {
				return p.exhausted(ctx, n, ReasonMaxElapsed, err)
			}
		}
		if p.budget != nil && !p.budget.Withdraw() {
			return p.exhausted(ctx, n, ReasonBudget, err)
		}

		p.record(oRetry)
		p.notify(ctx, n, err, delay)

		if delay > 0 {
			if timer == nil {
				timer = time.NewTimer(delay)
			} else {
				timer.Reset(delay)
			}
			select {
			case <-ctx.Done():
				// The attempt was counted as "retry"; the wait, not an attempt, ended.
				return fmt.Errorf("retry: %w while waiting after attempt %d: %w", ctx.Err(), n, err)
			case <-timer.C:
			}
		}

		if p.attemptTimeout > 0 {
			err = p.timedAttempt(ctx, fn, n+1)
		} else {
			err = fn(ctx)
		}
		if err == nil {
			p.record(oSuccess)
			return nil
		}
	}
}

func (p *Policy) isRetryable(err error) bool {
	if IsPermanent(err) {
		return false
	}
	var te *AttemptTimeoutError
	if errors.As(err, &te) {
		return true
	}
	return p.retryable(err)
}

func (p *Policy) serverDelay(err error) time.Duration {
	if p.maxServerDelay < 0 {
		return 0
	}
	return min(serverDelay(err), p.maxServerDelay)
}

func (p *Policy) exhausted(ctx context.Context, n int, r Reason, err error) error {
	p.record(oExhausted)
	return &ExhaustedError{Attempts: n, Reason: r, Err: err}
}

// notify runs the hook, the span event and the log record of a retry.
func (p *Policy) notify(ctx context.Context, n int, err error, delay time.Duration) {
	if p.onRetry != nil {
		p.onRetry(ctx, n, err, delay)
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("retry", trace.WithAttributes(
			attribute.Int("retry.attempt", n),
			attribute.Float64("retry.delay_ms", float64(delay)/float64(time.Millisecond)),
			attribute.String("retry.error", err.Error()),
		))
	}
	if p.logger != nil {
		p.logger.LogAttrs(ctx, slog.LevelDebug, "retrying",
			slog.String("policy", p.name),
			slog.Int("attempt", n),
			slog.Duration("delay", delay),
			slog.Any("error", err))
	}
}
