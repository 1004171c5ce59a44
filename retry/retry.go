package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// Off, given to a field whose documentation says so ([Config.MaxServerDelay],
// [BudgetConfig.MinPerSecond]), turns that feature off. It is [selfheal.Off].
const Off = selfheal.Off

// Defaults of [Config].
const (
	DefaultMaxAttempts    = 3
	DefaultMaxServerDelay = 30 * time.Second
)

// Config configures a [Policy]. The zero value is a sensible policy: 3 attempts,
// exponential backoff with full jitter from 100ms doubling up to 10s, server-requested
// delays honoured up to 30s (a longer request ends the retries), no budget,
// [DefaultClassify] classification, no hooks, telemetry to the global OpenTelemetry
// providers, no logging.
type Config struct {
	// Name identifies the policy in telemetry (attribute selfheal.policy.name) and logs.
	// Empty means no name.
	Name string

	// MaxAttempts is the most attempts a call makes, the first one included: 3 means
	// at most 2 retries. Zero means 3; 1 means never retry. Negative is an error.
	MaxAttempts int

	// Backoff computes the delay before each retry. Nil means
	// Exponential(ExponentialConfig{}): full jitter from 100ms, doubling, up to 10s.
	// See [Exponential], [Constant] and [BackoffFunc]. An invalid [ExponentialConfig]
	// or a negative [Constant] is reported by [New].
	Backoff Backoff

	// MaxElapsedTime bounds the time from the start of a call to the start of its last
	// attempt: a wait that would end after it is not started ([ReasonMaxElapsed]). It
	// does not interrupt a running attempt; use a context deadline for that. Zero means
	// no limit of its own (MaxAttempts and the context still bound the call). Negative is
	// an error.
	MaxElapsedTime time.Duration
	// AttemptTimeout, when more than zero, gives each attempt a context with that
	// timeout. An attempt that fails after its own timeout expired (while the caller's
	// context is still live) is retried unless marked [Permanent], whatever Classify
	// says; its error is an [*AttemptTimeoutError]. Zero means no per-attempt timeout.
	// Negative is an error.
	AttemptTimeout time.Duration
	// MaxServerDelay is the longest delay a failed attempt may ask for through a
	// [DelayHint] (see [After] and [ParseRetryAfter]; a circuit breaker's open error is
	// one too). A request up to it replaces the backoff delay; a longer one ends the
	// retries at once with [ReasonServerDelay]: the policy neither retries earlier than
	// the server asked nor blocks its caller for longer than this. Zero means 30s; [Off]
	// means delays that servers ask for are ignored (the backoff applies). Other
	// negative values are an error.
	MaxServerDelay time.Duration

	// Classify decides, after each attempt, from its error and (through [Call]) its
	// result: [selfheal.Failure] is retried, within the limits; [selfheal.Success] and
	// [selfheal.Ignored] end the call at once, returning the attempt's error as it is
	// (nil or not). A Failure with a nil error (a result that says "try again") is
	// retried too; when the retries run out on it, the error wraps [ErrFailedResult].
	// Errors marked [Permanent] are never retried and nothing is retried once the
	// caller's context is done, whatever Classify says. [Call] passes fn's value boxed
	// in an interface, after every attempt; [Policy.Do], which has no result, asks only
	// about errors (with a nil result): an attempt of Do that returns nil succeeded. It is called on the calling
	// goroutine and must be safe for concurrent use. Nil means [DefaultClassify], which
	// retries every error but [Permanent] ones and [context.Canceled].
	Classify selfheal.Classifier

	// Budget, when set, limits retries to a share of recent calls; it may be shared by
	// many policies. A refused retry ends the call with an error matching
	// [ErrBudgetExhausted]. Nil means no budget.
	Budget *Budget

	// OnRetry, when set, is called before each wait, on the calling goroutine, with the
	// call's context, the number of the attempt that just failed (1 for the first), its
	// error ([ErrFailedResult] for a result judged a failure), and the delay about to be
	// waited. It is not called when the policy gives up. Nil means no hook.
	OnRetry func(ctx context.Context, attempt int, err error, delay time.Duration)
	// OnGiveUp, when set, is called when a limit stops the retries (the call is about
	// to return an *[ExhaustedError]: max attempts, elapsed time, deadline, budget,
	// backoff or server delay), on the calling goroutine, with the call's context and
	// that error. It is not called for a success, a permanent error or a canceled
	// context. Nil means no hook.
	OnGiveUp func(ctx context.Context, err *ExhaustedError)

	// Logger, when set, receives a Debug record before each retry. Nil means no logging.
	Logger *slog.Logger
	// MeterProvider provides the attempts counter. Nil means the global provider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the tracer of the selfheal.retry.attempt spans: when the
	// caller's span is recording, each retry (attempt 2 onward) runs in a span of its
	// own, a child of the caller's. Nil means the global provider. Without a
	// recording span in the context no span is started, and a call whose first
	// attempt succeeds never looks.
	TracerProvider trace.TracerProvider
}

// Outcome attribute values of the "selfheal.retry.attempts" counter.
const (
	outcomeSuccess   = "success"   // the attempt succeeded
	outcomeRetry     = "retry"     // it failed and a retry follows
	outcomePermanent = "permanent" // it returned an error that is not retried (classified Success or Ignored, or Permanent)
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

// Policy retries calls whose attempts its [Config.Classify] judges failures, waiting
// between attempts with exponential backoff and jitter (or its [Config.Backoff]), until
// an attempt is not a failure, or a limit is reached (attempts, elapsed time, the
// caller's deadline, a server-requested delay beyond the cap, the budget).
//
// A Policy is immutable once built by [New], safe for concurrent use, and meant to be
// reused: every call keeps its own state on its own stack. It starts no goroutines:
// attempts and waits run on the calling goroutine.
type Policy struct {
	name           string
	maxAttempts    int
	backoff        Backoff
	maxElapsed     time.Duration
	attemptTimeout time.Duration
	maxServerDelay time.Duration       // Off: ignore
	classify       selfheal.Classifier // nil: DefaultClassify
	budget         *Budget
	onRetry        func(context.Context, int, error, time.Duration)
	onGiveUp       func(context.Context, *ExhaustedError)
	logger         *slog.Logger
	tracer         trace.Tracer
	spanOpts       []trace.SpanStartOption // the attempt span's, without the attempt number
	nameAttr       []attribute.KeyValue    // selfheal.policy.name, when the policy has a name

	// Attempts are counted in atomics and reported by an observable counter when
	// the meter collects: a synchronous SDK counter would cost more than a whole
	// call whose first attempt succeeds.
	attempts metric.Int64ObservableCounter
	outcomes [numOutcomes]metric.ObserveOption
	counts   [numOutcomes]atomic.Int64
}

// New returns a Policy configured by cfg. An invalid cfg gives an error that matches
// [ErrInvalidConfig] and is a *[ConfigError] naming the first invalid field.
func New(cfg Config) (*Policy, error) {
	if cfg.Backoff == nil {
		cfg.Backoff = Exponential(ExponentialConfig{})
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Policy{
		name:           cfg.Name,
		maxAttempts:    orDefault(cfg.MaxAttempts, DefaultMaxAttempts),
		backoff:        cfg.Backoff,
		maxElapsed:     cfg.MaxElapsedTime,
		attemptTimeout: cfg.AttemptTimeout,
		maxServerDelay: orDefault(cfg.MaxServerDelay, DefaultMaxServerDelay),
		classify:       cfg.Classify,
		budget:         cfg.Budget,
		onRetry:        cfg.OnRetry,
		onGiveUp:       cfg.OnGiveUp,
		logger:         cfg.Logger,
		tracer:         telemetry.Tracer(cfg.TracerProvider, "retry"),
	}
	if cfg.Name != "" {
		p.nameAttr = []attribute.KeyValue{telemetry.KeyPolicyName.String(cfg.Name)}
	}
	p.spanOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(p.nameAttr...)}

	meter := telemetry.Meter(cfg.MeterProvider, "retry")
	var err error
	p.attempts, err = meter.Int64ObservableCounter("selfheal.retry.attempts",
		metric.WithDescription("Attempts made by retry policies, by outcome."),
		metric.WithUnit("{attempt}"))
	if err != nil {
		return nil, fmt.Errorf("retry: creating the attempts counter: %w", err)
	}
	for i, o := range outcomeNames {
		attrs := append([]attribute.KeyValue{telemetry.KeyOutcome.String(o)}, p.nameAttr...)
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
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: "Config." + field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case cfg.MaxAttempts < 0:
		return bad("MaxAttempts", "%d is negative; want >= 1 (0 means %d)", cfg.MaxAttempts, DefaultMaxAttempts)
	case cfg.MaxElapsedTime < 0:
		return bad("MaxElapsedTime", "%v is negative; want >= 0 (0 means no limit)", cfg.MaxElapsedTime)
	case cfg.AttemptTimeout < 0:
		return bad("AttemptTimeout", "%v is negative; want >= 0 (0 means none)", cfg.AttemptTimeout)
	case cfg.MaxServerDelay < 0 && cfg.MaxServerDelay != Off:
		return bad("MaxServerDelay", "%v is negative; want >= 0 (0 means %v) or Off", cfg.MaxServerDelay, DefaultMaxServerDelay)
	}
	if v, ok := cfg.Backoff.(interface{ validate() error }); ok {
		return v.validate()
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

// Do calls fn until an attempt is not a failure, or a limit is reached, waiting between
// attempts. Every attempt gets ctx (or, with [Config.AttemptTimeout], a child of it).
// An attempt that returns nil is a success (Do has no result to classify); an error is
// judged by [Config.Classify] (with a nil result).
//
// Do returns nil when an attempt succeeded, and otherwise:
//   - the attempt's error itself when it is not retried (marked [Permanent], or
//     classified [selfheal.Success] or [selfheal.Ignored]);
//   - an [*ExhaustedError] matching [ErrExhausted] and wrapping the last error when a
//     limit stopped the retries: MaxAttempts, MaxElapsedTime, the [Budget] (then it also
//     matches [ErrBudgetExhausted]), the [Backoff] strategy, a server-requested delay
//     beyond MaxServerDelay ([ReasonServerDelay]), or a wait that could not end before
//     ctx's deadline (then it also matches [context.DeadlineExceeded]); Do never starts
//     such a wait, so it returns before the deadline instead of sleeping into it;
//   - when ctx is done after an attempt failed or during a wait, an error that matches
//     ctx.Err() and wraps (or is) the last error.
//
// If fn panics, Do records the attempt (outcome "panic") and lets the panic continue.
// Do is safe for concurrent use.
func (p *Policy) Do(ctx context.Context, fn func(context.Context) error) error {
	return p.run(ctx, fn, nil)
}

// Call is [Policy.Do] for functions that return a value: [Config.Classify] sees the
// value of each attempt (boxed in an interface; no boxing happens when Classify is
// nil), so that a result can be retried as well as an error. Call returns, with the
// error, the value the last attempt returned.
func Call[T any](ctx context.Context, p *Policy, fn func(context.Context) (T, error)) (T, error) {
	var res T
	attempt := func(ctx context.Context) error {
		v, err := fn(ctx)
		res = v
		return err
	}
	var result func() any
	if p.classify != nil {
		result = func() any { return res }
	}
	err := p.run(ctx, attempt, result)
	return res, err
}

// run is Do; result, when set, returns the last attempt's value for Classify.
func (p *Policy) run(ctx context.Context, fn func(context.Context) error, result func() any) error {
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
	// Attempt 1 is the caller's own call: it gets no span of its own, so that a call
	// whose first attempt succeeds costs nothing for tracing, not even a lookup.
	var err error
	if p.attemptTimeout > 0 {
		err = p.timedAttempt(ctx, fn, 1)
	} else {
		err = fn(ctx)
	}
	if err == nil && (p.classify == nil || result == nil) {
		done = true
		p.record(oSuccess)
		return nil
	}
	err = p.retry(ctx, fn, result, err, start)
	done = true
	return err
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

// attempt runs attempt n > 1 of fn (a retry): under AttemptTimeout when there is
// one, and in a span of its own when the caller's span is recording.
func (p *Policy) attempt(ctx context.Context, fn func(context.Context) error, n int) error {
	if trace.SpanFromContext(ctx).IsRecording() {
		return p.tracedAttempt(ctx, fn, n)
	}
	if p.attemptTimeout > 0 {
		return p.timedAttempt(ctx, fn, n)
	}
	return fn(ctx)
}

// tracedAttempt runs attempt n of fn in a selfheal.retry.attempt span, a child of
// the span in ctx, that records the attempt's error type (a panic too, re-raised).
func (p *Policy) tracedAttempt(ctx context.Context, fn func(context.Context) error, n int) (err error) {
	sctx, span := p.tracer.Start(ctx, spanAttempt, append(p.spanOpts[:len(p.spanOpts):len(p.spanOpts)],
		trace.WithAttributes(telemetry.KeyAttempt.Int(n)))...)
	panicked := true
	defer func() {
		if panicked {
			span.SetAttributes(telemetry.KeyErrorType.String("panic"))
			span.SetStatus(codes.Error, "panic")
			span.End()
		}
	}()
	if p.attemptTimeout > 0 {
		err = p.timedAttempt(sctx, fn, n)
	} else {
		err = fn(sctx)
	}
	panicked = false
	telemetry.EndSpan(span, err)
	return err
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

// retry is the slow path of Do, entered after attempt 1 returned err (a failure, or
// anything when Classify is set). start is when Do began, set only when
// MaxElapsedTime is.
func (p *Policy) retry(ctx context.Context, fn func(context.Context) error, result func() any, err error, start time.Time) error {
	var (
		prev    time.Duration // the previous delay, for decorrelated jitter
		timer   *time.Timer
		elapsed = p.maxElapsed > 0
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for n := 1; ; n++ {
		// Attempt n returned err.
		if !p.failed(err, result) {
			if err == nil {
				p.record(oSuccess)
			} else {
				p.record(oPermanent)
			}
			return err
		}
		if err == nil {
			err = ErrFailedResult
		}
		if cerr := ctx.Err(); cerr != nil {
			p.record(oCanceled)
			if errors.Is(err, cerr) {
				return err // the attempt's error already says so
			}
			return fmt.Errorf("retry: %w after attempt %d: %w", cerr, n, err)
		}
		if n >= p.maxAttempts {
			return p.exhausted(ctx, n, ReasonMaxAttempts, err)
		}

		// The delay: the server's request, or the backoff.
		var delay time.Duration
		if sd := p.serverDelay(err); sd > 0 && sd > p.maxServerDelay {
			return p.exhausted(ctx, n, ReasonServerDelay, err)
		} else if sd > 0 {
			delay = sd
		} else {
			delay = p.backoff.Delay(n, prev)
			if delay < 0 {
				return p.exhausted(ctx, n, ReasonBackoff, err)
			}
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

		err = p.attempt(ctx, fn, n+1)
		if err == nil && (p.classify == nil || result == nil) {
			p.record(oSuccess)
			return nil
		}
	}
}

// failed reports whether the attempt that returned err (and, through result, its value)
// is a failure to retry.
func (p *Policy) failed(err error, result func() any) bool {
	if err != nil {
		if IsPermanent(err) {
			return false
		}
		if _, ok := asType[*AttemptTimeoutError](err); ok {
			return true
		}
	}
	if p.classify == nil {
		// DefaultClassify without its IsPermanent, already asked above.
		return err != nil && !errors.Is(err, context.Canceled)
	}
	var v any
	if result != nil {
		v = result()
	}
	return p.classify(v, err) == selfheal.Failure
}

// serverDelay returns the delay a DelayHint in err asks for, or 0 when there is none
// or MaxServerDelay is Off.
func (p *Policy) serverDelay(err error) time.Duration {
	if p.maxServerDelay == Off {
		return 0
	}
	return serverDelay(err)
}

func (p *Policy) exhausted(ctx context.Context, n int, r Reason, err error) error {
	p.record(oExhausted)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(eventExhausted, trace.WithAttributes(append(p.nameAttr[:len(p.nameAttr):len(p.nameAttr)],
			telemetry.KeyAttempt.Int(n),
			telemetry.KeyReason.String(string(r)),
			telemetry.KeyErrorType.String(telemetry.ErrorType(err)))...))
	}
	e := &ExhaustedError{Attempts: n, Reason: r, Err: err}
	if p.onGiveUp != nil {
		p.onGiveUp(ctx, e)
	}
	return e
}

// notify runs the hook, the span event and the log record of a retry.
func (p *Policy) notify(ctx context.Context, n int, err error, delay time.Duration) {
	if p.onRetry != nil {
		p.onRetry(ctx, n, err, delay)
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(eventRetry, trace.WithAttributes(append(p.nameAttr[:len(p.nameAttr):len(p.nameAttr)],
			telemetry.KeyAttempt.Int(n),
			telemetry.KeyDelay.Float64(delay.Seconds()),
			telemetry.KeyErrorType.String(telemetry.ErrorType(err)))...))
	}
	if p.logger != nil {
		p.logger.LogAttrs(ctx, slog.LevelDebug, "retrying",
			p.logName(),
			slog.Int(string(telemetry.KeyAttempt), n),
			slog.Float64(string(telemetry.KeyDelay), delay.Seconds()),
			slog.String(string(telemetry.KeyErrorType), telemetry.ErrorType(err)),
			slog.Any("error", err))
	}
}

// logName is the policy's name attribute of a log record.
func (p *Policy) logName() slog.Attr { return slog.String(string(telemetry.KeyPolicyName), p.name) }

// The span and span event names.
const (
	spanAttempt    = "selfheal.retry.attempt"
	eventRetry     = "selfheal.retry.retry"
	eventExhausted = "selfheal.retry.exhausted"
)
