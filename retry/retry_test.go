package retry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	tnoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/internal/oteltest"
	"github.com/selfheal-go/selfheal/retry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var errFlaky = errors.New("flaky")

// fast is a config whose waits are negligible in real time.
func fast(cfg retry.Config) retry.Config {
	if cfg.Backoff == nil {
		cfg.Backoff = retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Microsecond, MaxDelay: 10 * time.Microsecond})
	}
	return cfg
}

func mustNew(t testing.TB, cfg retry.Config) *retry.Policy {
	t.Helper()
	p, err := retry.New(cfg)
	require.NoError(t, err)
	return p
}

// failing returns fn failing its first n calls with err, and the attempt counter.
func failing(n int, err error) (func(context.Context) error, *int) {
	calls := 0
	return func(context.Context) error {
		calls++
		if calls <= n {
			return err
		}
		return nil
	}, &calls
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	exp := func(c retry.ExponentialConfig) retry.Config { return retry.Config{Backoff: retry.Exponential(c)} }
	tests := []struct {
		name  string
		give  retry.Config
		field string
	}{
		{"negative attempts", retry.Config{MaxAttempts: -1}, "Config.MaxAttempts"},
		{"Off attempts", retry.Config{MaxAttempts: retry.Off}, "Config.MaxAttempts"},
		{"negative initial delay", exp(retry.ExponentialConfig{InitialDelay: -time.Second}), "ExponentialConfig.InitialDelay"},
		{"negative max delay", exp(retry.ExponentialConfig{MaxDelay: -time.Second}), "ExponentialConfig.MaxDelay"},
		{"max below initial", exp(retry.ExponentialConfig{InitialDelay: time.Second, MaxDelay: time.Millisecond}), "ExponentialConfig.MaxDelay"},
		{"max below default initial", exp(retry.ExponentialConfig{MaxDelay: time.Millisecond}), "ExponentialConfig.MaxDelay"},
		{"multiplier below 1", exp(retry.ExponentialConfig{Multiplier: 0.5}), "ExponentialConfig.Multiplier"},
		{"negative multiplier", exp(retry.ExponentialConfig{Multiplier: -2}), "ExponentialConfig.Multiplier"},
		{"NaN multiplier", exp(retry.ExponentialConfig{Multiplier: nan()}), "ExponentialConfig.Multiplier"},
		{"unknown jitter", exp(retry.ExponentialConfig{Jitter: retry.Jitter(42)}), "ExponentialConfig.Jitter"},
		{"negative jitter", exp(retry.ExponentialConfig{Jitter: retry.Jitter(-1)}), "ExponentialConfig.Jitter"},
		{"negative constant", retry.Config{Backoff: retry.Constant(-time.Second)}, "Config.Backoff"},
		{"negative elapsed", retry.Config{MaxElapsedTime: -1}, "Config.MaxElapsedTime"},
		{"negative attempt timeout", retry.Config{AttemptTimeout: -1}, "Config.AttemptTimeout"},
		{"negative server delay other than Off", retry.Config{MaxServerDelay: -time.Second}, "Config.MaxServerDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := retry.New(tt.give)
			require.Error(t, err)
			assert.Nil(t, p)
			assert.ErrorIs(t, err, retry.ErrInvalidConfig)
			var ce *retry.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.field, ce.Field)
			assert.NotEmpty(t, ce.Reason)
			assert.Equal(t, "retry: invalid configuration: "+ce.Field+": "+ce.Reason, err.Error())
		})
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}

func TestNewAcceptsValidConfig(t *testing.T) {
	for _, cfg := range []retry.Config{
		{},
		{MaxAttempts: 1},
		{Backoff: retry.Exponential(retry.ExponentialConfig{Multiplier: 1, Jitter: retry.JitterNone})},
		{Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Minute})}, // MaxDelay defaults to at least InitialDelay
		{Backoff: retry.Constant(0)},
		{Backoff: retry.BackoffFunc(func(int, time.Duration) time.Duration { return time.Second })},
		{MaxServerDelay: retry.Off},
		{Backoff: retry.Exponential(retry.ExponentialConfig{Jitter: retry.JitterDecorrelated}), Name: "db"},
	} {
		_, err := retry.New(cfg)
		assert.NoError(t, err, "%+v", cfg)
	}
}

func TestDoSucceedsAfterRetries(t *testing.T) {
	p := mustNew(t, fast(retry.Config{MaxAttempts: 3}))
	fn, calls := failing(2, errFlaky)
	require.NoError(t, p.Do(context.Background(), fn))
	assert.Equal(t, 3, *calls)
}

func TestDoExhausted(t *testing.T) {
	p := mustNew(t, fast(retry.Config{MaxAttempts: 4}))
	fn, calls := failing(100, errFlaky)
	err := p.Do(context.Background(), fn)
	require.Error(t, err)
	assert.Equal(t, 4, *calls)
	assert.ErrorIs(t, err, retry.ErrExhausted)
	assert.ErrorIs(t, err, errFlaky)
	assert.NotErrorIs(t, err, retry.ErrBudgetExhausted)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	var ee *retry.ExhaustedError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 4, ee.Attempts)
	assert.Equal(t, retry.ReasonMaxAttempts, ee.Reason)
	assert.Equal(t, "retry: gave up after 4 attempts (max attempts reached): flaky", err.Error())
}

func TestDefaultPolicy(t *testing.T) {
	fn, calls := failing(0, nil)
	require.NoError(t, retry.Do(context.Background(), fn))
	assert.Equal(t, 1, *calls)
}

func TestMaxAttemptsOneNeverRetries(t *testing.T) {
	p := mustNew(t, retry.Config{MaxAttempts: 1})
	fn, calls := failing(100, errFlaky)
	err := p.Do(context.Background(), fn)
	assert.ErrorIs(t, err, retry.ErrExhausted)
	assert.Equal(t, 1, *calls)
	assert.Equal(t, "retry: gave up after 1 attempt (max attempts reached): flaky", err.Error())
}

type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

func TestClassification(t *testing.T) {
	classify5xx := func(_ any, err error) selfheal.Outcome {
		var se *statusError
		switch {
		case err == nil:
			return selfheal.Success
		case errors.As(err, &se) && se.code >= 500:
			return selfheal.Failure
		}
		return selfheal.Ignored
	}
	always := func(any, error) selfheal.Outcome { return selfheal.Failure }
	tests := []struct {
		name      string
		classify  selfheal.Classifier
		give      error
		wantCalls int
		wantSame  bool // the error is returned as it is
	}{
		{"plain error retried", nil, errFlaky, 3, false},
		{"wrapped plain error retried", nil, fmt.Errorf("op: %w", errFlaky), 3, false},
		{"context canceled not retried", nil, context.Canceled, 1, true},
		{"wrapped deadline retried", nil, fmt.Errorf("dial: %w", context.DeadlineExceeded), 3, false},
		{"our permanent not retried", nil, retry.Permanent(errFlaky), 1, true},
		{"backoff permanent not retried", nil, backoff.Permanent(errFlaky), 1, true},
		{"wrapped permanent not retried", nil, fmt.Errorf("x: %w", retry.Permanent(errFlaky)), 1, true},
		{"classifier fails 503", classify5xx, &statusError{503}, 3, false},
		{"classifier ignores 404", classify5xx, &statusError{404}, 1, true},
		{"classifier success on an error", func(any, error) selfheal.Outcome { return selfheal.Success }, errFlaky, 1, true},
		{"permanent wins over classifier", always, retry.Permanent(errFlaky), 1, true},
		{"classifier may retry context errors", always, context.Canceled, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, fast(retry.Config{MaxAttempts: 3, Classify: tt.classify}))
			fn, calls := failing(100, tt.give)
			err := p.Do(context.Background(), fn)
			assert.Equal(t, tt.wantCalls, *calls)
			assert.ErrorIs(t, err, tt.give)
			if tt.wantSame {
				assert.Same(t, tt.give, err)
			} else {
				assert.ErrorIs(t, err, retry.ErrExhausted)
			}
		})
	}
}

func TestDefaultClassify(t *testing.T) {
	tests := []struct {
		give error
		want selfheal.Outcome
	}{
		{nil, selfheal.Success},
		{errFlaky, selfheal.Failure},
		{io.ErrUnexpectedEOF, selfheal.Failure},
		{context.Canceled, selfheal.Ignored},
		{context.DeadlineExceeded, selfheal.Failure},
		{fmt.Errorf("attempt: %w", context.DeadlineExceeded), selfheal.Failure},
		{retry.Permanent(errFlaky), selfheal.Ignored},
		{backoff.Permanent(errFlaky), selfheal.Ignored},
		{retry.After(errFlaky, time.Second), selfheal.Failure},
		{retry.After(retry.Permanent(errFlaky), time.Second), selfheal.Ignored},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, retry.DefaultClassify("ignored result", tt.give), "%v", tt.give)
	}
}

// A result can be retried: Call passes each attempt's value to Classify, retries a
// result it judges a failure, and returns the last value with the error.
func TestCallRetriesResults(t *testing.T) {
	type reply struct{ status string }
	var seen []any
	p := mustNew(t, fast(retry.Config{MaxAttempts: 3, Classify: func(res any, err error) selfheal.Outcome {
		seen = append(seen, res)
		if r, ok := res.(reply); ok && r.status == "try again" {
			return selfheal.Failure
		}
		return retry.DefaultClassify(res, err)
	}}))

	n := 0
	v, err := retry.Call(context.Background(), p, func(context.Context) (reply, error) {
		n++
		if n < 3 {
			return reply{"try again"}, nil
		}
		return reply{"done"}, nil
	})
	require.NoError(t, err)
	assert.Equal(t, reply{"done"}, v)
	assert.Equal(t, []any{reply{"try again"}, reply{"try again"}, reply{"done"}}, seen)

	n = 0
	v, err = retry.Call(context.Background(), p, func(context.Context) (reply, error) {
		n++
		return reply{"try again"}, nil
	})
	assert.Equal(t, 3, n)
	assert.Equal(t, reply{"try again"}, v, "the last attempt's value")
	assert.ErrorIs(t, err, retry.ErrExhausted)
	assert.ErrorIs(t, err, retry.ErrFailedResult)
	assert.Equal(t, "retry: gave up after 3 attempts (max attempts reached): retry: result classified as a failure", err.Error())

	// Do has no result: Classify sees errors only, with a nil result.
	seen = nil
	require.NoError(t, p.Do(context.Background(), func(context.Context) error { return nil }))
	assert.Empty(t, seen, "an attempt of Do that returns nil succeeded")
	fn, _ := failing(1, errFlaky)
	require.NoError(t, p.Do(context.Background(), fn))
	assert.Equal(t, []any{nil}, seen)
}

func TestPermanentAndAfterOfNil(t *testing.T) {
	assert.NoError(t, retry.Permanent(nil))
	assert.NoError(t, retry.After(nil, time.Second))
	assert.False(t, retry.IsPermanent(nil))
	assert.True(t, retry.IsPermanent(retry.Permanent(errFlaky)))
	assert.Equal(t, "flaky", retry.Permanent(errFlaky).Error())
	assert.Equal(t, "flaky", retry.After(errFlaky, time.Second).Error())
}

func TestCall(t *testing.T) {
	p := mustNew(t, fast(retry.Config{}))
	n := 0
	v, err := retry.Call(context.Background(), p, func(context.Context) (string, error) {
		n++
		if n < 2 {
			return "", errFlaky
		}
		return "ok", nil
	})
	require.NoError(t, err)
	assert.Equal(t, "ok", v)
	assert.Equal(t, 2, n)

	v, err = retry.Call(context.Background(), p, func(context.Context) (string, error) {
		return "partial", errFlaky
	})
	assert.ErrorIs(t, err, retry.ErrExhausted)
	assert.Equal(t, "partial", v, "Call returns the last attempt's value")
}

func TestCanceledContextStopsRetries(t *testing.T) {
	p := mustNew(t, fast(retry.Config{MaxAttempts: 5}))
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := p.Do(ctx, func(context.Context) error {
		calls++
		cancel()
		return errFlaky
	})
	assert.Equal(t, 1, calls)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, errFlaky)
	assert.NotErrorIs(t, err, retry.ErrExhausted)
}

func TestPanicPropagates(t *testing.T) {
	m := oteltest.NewMeterProvider()
	p := mustNew(t, retry.Config{MeterProvider: m})
	assert.PanicsWithValue(t, "boom", func() {
		_ = p.Do(context.Background(), func(context.Context) error { panic("boom") })
	})
	assert.Equal(t, map[string]int64{"panic": 1}, m.Observe(t).Int64By("selfheal.retry.attempts", "selfheal.outcome"))
}

func TestOnRetryHook(t *testing.T) {
	type call struct {
		attempt int
		err     error
		delay   time.Duration
	}
	var got []call
	var hookGoroutineCtx context.Context
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "caller")
	p := mustNew(t, retry.Config{
		MaxAttempts: 4,
		Backoff:     retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Microsecond, Multiplier: 1, Jitter: retry.JitterNone}),
		OnRetry: func(ctx context.Context, attempt int, err error, delay time.Duration) {
			hookGoroutineCtx = ctx
			got = append(got, call{attempt, err, delay})
		},
	})
	fn, _ := failing(100, errFlaky)
	err := p.Do(ctx, fn)
	assert.ErrorIs(t, err, retry.ErrExhausted)
	assert.Equal(t, []call{{1, errFlaky, time.Microsecond}, {2, errFlaky, time.Microsecond}, {3, errFlaky, time.Microsecond}}, got,
		"called before each wait, not when giving up")
	assert.Equal(t, "caller", hookGoroutineCtx.Value(key{}))
}

// OnGiveUp hears of every ExhaustedError, once, with the caller's context, and of
// nothing else: not a success, a permanent error or a canceled call.
func TestOnGiveUpHook(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "caller")
	var got []*retry.ExhaustedError
	p := mustNew(t, retry.Config{
		MaxAttempts: 3,
		Backoff:     retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Microsecond, Multiplier: 1, Jitter: retry.JitterNone}),
		OnGiveUp: func(c context.Context, e *retry.ExhaustedError) {
			assert.Equal(t, "caller", c.Value(key{}))
			got = append(got, e)
		},
	})
	fn, _ := failing(100, errFlaky)
	err := p.Do(ctx, fn)
	require.Len(t, got, 1)
	var e *retry.ExhaustedError
	require.ErrorAs(t, err, &e)
	assert.Same(t, e, got[0], "the error the call returns")
	assert.Equal(t, 3, e.Attempts)
	assert.Equal(t, retry.ReasonMaxAttempts, e.Reason)

	fn, _ = failing(1, errFlaky)
	require.NoError(t, p.Do(ctx, fn))
	assert.Error(t, p.Do(ctx, func(context.Context) error { return retry.Permanent(errFlaky) }))
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	assert.Error(t, p.Do(canceled, func(context.Context) error { return errFlaky }))
	assert.Len(t, got, 1, "a success, a permanent error and a cancellation are no give-up")
}

func TestPolicyIsSafeForConcurrentUse(t *testing.T) {
	b, err := retry.NewBudget(retry.BudgetConfig{})
	require.NoError(t, err)
	for _, j := range []retry.Jitter{retry.JitterFull, retry.JitterEqual, retry.JitterDecorrelated, retry.JitterNone} {
		p := mustNew(t, retry.Config{MaxAttempts: 3, Budget: b, Backoff: retry.Exponential(retry.ExponentialConfig{
			InitialDelay: time.Microsecond, MaxDelay: 10 * time.Microsecond, Jitter: j})})
		pc := mustNew(t, retry.Config{MaxAttempts: 3, Backoff: retry.Constant(time.Microsecond),
			Classify: func(_ any, err error) selfheal.Outcome { return retry.DefaultClassify(nil, err) }})
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					fn, _ := failing(i%4, errFlaky)
					_ = p.Do(context.Background(), fn)
					fn, _ = failing(i%4, errFlaky)
					_, _ = retry.Call(context.Background(), pc, func(ctx context.Context) (int, error) { return i, fn(ctx) })
				}
			}()
		}
		wg.Wait()
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	p := mustNew(t, fast(retry.Config{Name: "db", MaxAttempts: 2,
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}))
	_ = p.Do(context.Background(), func(context.Context) error { return errFlaky })
	assert.Contains(t, buf.String(), "msg=retrying selfheal.policy.name=db selfheal.attempt=1")
	assert.Contains(t, buf.String(), "error=flaky")
	assert.Equal(t, 1, bytes.Count(buf.Bytes(), []byte("\n")), "one record per retry, none for giving up")
	assert.Equal(t, "db", p.Name())
}

// counter is an OpenTelemetry Int64Counter that counts by outcome, with the meter
// provider that hands it out: enough of the metric API for these tests, no SDK.
func TestAttemptsCounter(t *testing.T) {
	m := oteltest.NewMeterProvider()
	p := mustNew(t, fast(retry.Config{Name: "db", MaxAttempts: 3, MeterProvider: m}))
	ctx := context.Background()

	fn, _ := failing(1, errFlaky)
	require.NoError(t, p.Do(ctx, fn)) // retry, success
	fn, _ = failing(100, errFlaky)
	require.Error(t, p.Do(ctx, fn)) // retry, retry, exhausted
	fn, _ = failing(100, retry.Permanent(errFlaky))
	require.Error(t, p.Do(ctx, fn)) // permanent

	assert.Equal(t, []string{"selfheal.retry.attempts"}, m.InstrumentNames())
	assert.Equal(t, map[string]int64{"db success": 1, "db retry": 3, "db exhausted": 1, "db permanent": 1},
		m.Observe(t).Int64By("selfheal.retry.attempts", "selfheal.policy.name", "selfheal.outcome"),
		"counts that are zero are not reported")
}

// The attempts callback holds its policy weakly: a policy that is garbage is not kept
// alive by the meter provider, and its callback is unregistered.
func TestAttemptsCallbackDoesNotKeepPoliciesAlive(t *testing.T) {
	m := oteltest.NewMeterProvider()
	func() {
		p := mustNew(t, retry.Config{MeterProvider: m})
		require.NoError(t, p.Do(context.Background(), func(context.Context) error { return nil }))
		assert.Equal(t, map[string]int64{"success": 1}, m.Observe(t).Int64By("selfheal.retry.attempts", "selfheal.outcome"))
	}()
	regs := m.Registrations()
	require.Len(t, regs, 1)
	assert.Equal(t, 1, oteltest.AwaitUnregistered(10*time.Second, regs...), "callback unregistered")
}

// span is a recording span that keeps its events.
type span struct {
	tnoop.Span
	recording bool
	mu        sync.Mutex
	events    []map[attribute.Key]attribute.Value
}

func (s *span) IsRecording() bool { return s.recording }

func (s *span) AddEvent(name string, opts ...trace.EventOption) {
	cfg := trace.NewEventConfig(opts...)
	ev := map[attribute.Key]attribute.Value{"name": attribute.StringValue(name)}
	for _, kv := range cfg.Attributes() {
		ev[kv.Key] = kv.Value
	}
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
}

func TestSpanEvents(t *testing.T) {
	p := mustNew(t, retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(retry.ExponentialConfig{InitialDelay: time.Millisecond, Multiplier: 2, Jitter: retry.JitterNone})})

	rec := &span{recording: true}
	fn, _ := failing(100, errFlaky)
	_ = p.Do(trace.ContextWithSpan(context.Background(), rec), fn)
	require.Len(t, rec.events, 3)
	for i, ev := range rec.events[:2] {
		assert.Equal(t, "selfheal.retry.retry", ev["name"].AsString())
		assert.Equal(t, int64(i+1), ev["selfheal.attempt"].AsInt64())
		assert.Equal(t, float64(int(1)<<i)/1000, ev["selfheal.delay"].AsFloat64())
		assert.Equal(t, "_OTHER", ev["error.type"].AsString(), "an errors.New error has no type of its own")
		assert.NotContains(t, ev, attribute.Key("retry.error"), "never the error's text")
	}
	ex := rec.events[2]
	assert.Equal(t, "selfheal.retry.exhausted", ex["name"].AsString())
	assert.Equal(t, int64(3), ex["selfheal.attempt"].AsInt64())
	assert.Equal(t, string(retry.ReasonMaxAttempts), ex["selfheal.reason"].AsString())

	quiet := &span{recording: false}
	fn, _ = failing(100, errFlaky)
	_ = p.Do(trace.ContextWithSpan(context.Background(), quiet), fn)
	assert.Empty(t, quiet.events, "no events on a span that is not recording")
}

func TestBackoffFuncAndStop(t *testing.T) {
	var got []int
	p := mustNew(t, retry.Config{MaxAttempts: 10, Backoff: retry.BackoffFunc(func(n int, prev time.Duration) time.Duration {
		got = append(got, n)
		if n == 3 {
			return retry.Stop
		}
		return 0
	})})
	fn, calls := failing(100, errFlaky)
	err := p.Do(context.Background(), fn)
	var ee *retry.ExhaustedError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, retry.ReasonBackoff, ee.Reason)
	assert.Equal(t, 3, *calls)
	assert.Equal(t, []int{1, 2, 3}, got, "called only when a retry is about to happen")
}

func TestJitterString(t *testing.T) {
	assert.Equal(t, "full", retry.JitterFull.String())
	assert.Equal(t, "equal", retry.JitterEqual.String())
	assert.Equal(t, "decorrelated", retry.JitterDecorrelated.String())
	assert.Equal(t, "none", retry.JitterNone.String())
	assert.Equal(t, "Jitter(9)", retry.Jitter(9).String())
}

func TestFirstAttemptSuccessDoesNotAllocate(t *testing.T) {
	b, err := retry.NewBudget(retry.BudgetConfig{})
	require.NoError(t, err)
	ctx := context.Background()
	ok := func(context.Context) error { return nil }
	for _, cfg := range []retry.Config{
		{},
		{Name: "db", Budget: b, MaxElapsedTime: time.Second},
		{Backoff: retry.Constant(time.Second)},
		{Classify: retry.DefaultClassify}, // classifying a success costs nothing either
	} {
		p := mustNew(t, cfg)
		assert.Zero(t, testing.AllocsPerRun(100, func() { _ = p.Do(ctx, ok) }))
		assert.Zero(t, testing.AllocsPerRun(100, func() {
			_, _ = retry.Call(ctx, p, func(context.Context) (int, error) { return 12345, nil })
		})-boxed(cfg))
	}
}

// boxed is the number of allocations Call makes for a result: one to box an int for
// Classify, none without one.
func boxed(cfg retry.Config) float64 {
	if cfg.Classify != nil {
		return 1
	}
	return 0
}

// Do has no result, so an attempt that returns nil is a success without asking
// Classify: a classifier that costs something (errors.As allocates) costs nothing on
// the success path of Do.
func TestDoDoesNotClassifySuccess(t *testing.T) {
	classified := 0
	p := mustNew(t, retry.Config{Classify: func(_ any, err error) selfheal.Outcome {
		classified++
		var pe *retry.PermanentError
		if errors.As(err, &pe) {
			return selfheal.Ignored
		}
		return retry.DefaultClassify(nil, err)
	}})
	ctx := context.Background()
	ok := func(context.Context) error { return nil }
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = p.Do(ctx, ok) }))
	assert.Zero(t, classified)
}
