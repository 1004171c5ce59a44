package breaker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/metric"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// Breaker is a circuit breaker: it watches the outcomes of the calls it runs and, when
// they go bad, rejects calls for a while instead of running them, so that a failing
// downstream gets room to recover and callers fail fast. See the package
// documentation for the model and [Config] for the rules.
//
// Its state machine is github.com/sony/gobreaker/v2's; Breaker adds what gobreaker
// lacks: contexts, classification that knows the caller's own cancellation, rate and
// slow-call rules over count- or time-based windows, manual control, state hooks that
// run outside its locks, errors that say which breaker rejected a call and until
// when, and telemetry.
//
// A Breaker is safe for concurrent use. It starts no goroutines. Create it with [New];
// the zero Breaker is not usable.
type Breaker struct {
	name          string
	s             settings
	tel           breakerTelemetry
	onStateChange func(name string, from, to State)

	eng atomic.Pointer[engine]

	// Transitions wait in queue (guarded by pendMu) until a caller delivers them to
	// the hooks, one deliverer at a time (deliverMu), outside the engine's locks.
	pending   atomic.Bool
	pendMu    sync.Mutex
	queue     []transition
	deliverMu sync.Mutex
}

type transition struct {
	from, to State
	forced   bool
}

type mode uint8

const (
	modeNormal mode = iota
	modeForcedOpen
	modeForcedClosed
)

// engine is one life of a breaker: a gobreaker state machine and the window that
// feeds the rate rules, or a forced state. Reset and the Force methods replace it.
type engine struct {
	b    *Breaker
	mode mode
	cb   *gobreaker.CircuitBreaker[struct{}] // nil when forced

	state   atomic.Int32              // gobreaker's state, written under its lock
	openErr atomic.Pointer[OpenError] // non-nil while open: the error for this open period
	tooMany *OpenError                // the error for a saturated half-open state
	trip    bool                      // a window rule tripped; guarded by gobreaker's lock
	mu      sync.Mutex                // guards win, so that State can read it
	win     *window                   // nil without window rules
}

// New returns a breaker named name (the name appears in errors, hooks, logs and
// telemetry) configured by cfg. It returns an error matching [ErrInvalidConfig] that
// names the field when cfg cannot be honoured, or an error from the meter provider
// when the instruments cannot be created.
//
// The breaker registers a callback for the selfheal.breaker.state gauge and the
// selfheal.breaker.calls counter with the meter; the callback holds the breaker
// weakly and is unregistered once the breaker is garbage.
func New(name string, cfg Config) (*Breaker, error) {
	if name == "" {
		return nil, invalid("empty breaker name")
	}
	s, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	inst, err := newInstruments(cfg.MeterProvider)
	if err != nil {
		return nil, err
	}
	b := newBreaker(name, s, inst, &cfg)
	if err := telemetry.RegisterWeak(inst.meter, b, (*Breaker).observe, inst.state, inst.calls); err != nil {
		return nil, err
	}
	return b, nil
}

func newBreaker(name string, s settings, inst *instruments, cfg *Config) *Breaker {
	b := &Breaker{
		name:          name,
		s:             s,
		onStateChange: cfg.OnStateChange,
	}
	newBreakerTelemetry(&b.tel, inst, name, cfg.Logger)
	b.eng.Store(b.newEngine(modeNormal))
	return b
}

func (b *Breaker) newEngine(m mode) *engine {
	e := &engine{b: b, mode: m}
	switch m {
	case modeForcedOpen:
		e.openErr.Store(&OpenError{Name: b.name, State: StateOpen, Forced: true})
		return e
	case modeForcedClosed:
		return e
	}
	e.tooMany = &OpenError{Name: b.name, State: StateHalfOpen}
	e.win = newWindow(&b.s, time.Now())
	st := gobreaker.Settings{
		Name:          b.name,
		MaxRequests:   uint32(b.s.probes),
		Timeout:       b.s.openDuration,
		ReadyToTrip:   e.readyToTrip,
		OnStateChange: e.stateChanged,
		IsSuccessful:  e.successful,
		IsExcluded:    excluded,
	}
	if e.win == nil {
		// Without a window there is no slow-call rule: every verdict but a fast
		// success is a failure, in either state, which is gobreaker's default.
		st.IsSuccessful = nil
	}
	if b.s.timeWindow() {
		st.Interval = b.s.windowDur
		st.BucketPeriod = b.s.windowDur / time.Duration(b.s.buckets)
	}
	e.cb = gobreaker.NewCircuitBreaker[struct{}](st)
	return e
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// Do runs fn with ctx if the breaker lets the call through, and returns fn's error
// unchanged. If the breaker rejects the call, Do returns an [*OpenError] matching
// [ErrOpen] (the circuit is open) or [ErrTooManyRequests] (it is half-open and every
// probe slot is taken) without calling fn.
//
// The outcome counts as a success when fn returns nil or an error that
// [Config.IsFailure] does not classify as a failure, as neither when fn returns the
// caller's own cancellation (ctx is done and the error matches context.Canceled), and
// as a failure otherwise. If fn panics, the call counts as a failure and Do panics
// again with the same value after the breaker has recorded it.
func (b *Breaker) Do(ctx context.Context, fn func(context.Context) error) error {
	e := b.eng.Load()
	if oe := e.openErr.Load(); oe != nil && (oe.Forced || time.Until(oe.Until) > 0) {
		// Open: reject without touching gobreaker's lock.
		return b.reject(ctx, oe)
	}
	if e.cb == nil {
		return b.direct(ctx, fn)
	}
	// out stays outPending while fn runs: if it is still pending when Do unwinds,
	// fn panicked; gobreaker has recorded the failure and re-panics, and the deferred
	// function counts it and delivers the transitions before the panic goes on.
	var callErr error
	out := outRejected
	defer func() {
		if out == outPending {
			b.tel.count(outFailure)
			b.flush()
		}
	}()
	_, err := e.cb.Execute(func() (struct{}, error) {
		if b.pending.Load() {
			b.flush() // a move to half-open: tell the hooks before the probe runs
		}
		if b.s.slowDuration > 0 {
			return b.timed(ctx, fn, &callErr, &out)
		}
		out = outPending
		if callErr = fn(ctx); callErr == nil {
			out = outSuccess
			return struct{}{}, nil
		}
		var v error
		out, v = b.classify(ctx, callErr, false)
		return struct{}{}, v
	})
	if out == outRejected {
		oe := e.tooMany
		if err == gobreaker.ErrOpenState {
			if oe = e.openErr.Load(); oe == nil {
				oe = &OpenError{Name: b.name, State: StateOpen} // reset concurrently; not expected
			}
		}
		if b.pending.Load() {
			b.flush()
		}
		return b.reject(ctx, oe)
	}
	b.tel.count(out)
	if b.pending.Load() {
		b.flush()
	}
	return callErr
}

// Call runs fn through b like [Breaker.Do] and returns fn's value, or the zero T with
// the rejection error when b rejects the call.
func Call[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error)) (T, error) {
	var v T
	err := b.Do(ctx, func(ctx context.Context) error {
		var err error
		v, err = fn(ctx)
		return err
	})
	return v, err
}

// verdict is what a call tells gobreaker: a failure, a slow call, or neither (the
// caller cancelled). The caller's own error is returned to the caller, never to
// gobreaker, so classification can look at the context.
type verdict struct {
	o uint8
}

func (*verdict) Error() string { return "breaker: internal verdict" }

var (
	vSlow       = &verdict{outcomeSlow}
	vFailed     = &verdict{outcomeFailed}
	vSlowFailed = &verdict{outcomeFailed | outcomeSlow}
	vExcluded   = &verdict{}
)

// timed runs fn for a breaker with a slow-call rule: it reads the clock around it.
func (b *Breaker) timed(ctx context.Context, fn func(context.Context) error, callErr *error, out *int) (struct{}, error) {
	start := time.Now()
	*out = outPending
	*callErr = fn(ctx)
	var v error
	*out, v = b.classify(ctx, *callErr, time.Since(start) >= b.s.slowDuration)
	return struct{}{}, v
}

// classify returns the outcome for telemetry and the verdict for gobreaker (nil for
// a fast success).
func (b *Breaker) classify(ctx context.Context, err error, slow bool) (int, error) {
	switch {
	case err == nil:
	case callerCanceled(ctx, err):
		return outExcluded, vExcluded
	case b.s.isFailure(err):
		if slow {
			return outFailure, vSlowFailed
		}
		return outFailure, vFailed
	}
	if slow {
		return outSuccess, vSlow
	}
	return outSuccess, nil
}

// direct runs fn on a breaker forced closed: no rules, telemetry only.
func (b *Breaker) direct(ctx context.Context, fn func(context.Context) error) error {
	out := outPending
	defer func() {
		if out == outPending {
			b.tel.count(outFailure)
		}
	}()
	err := fn(ctx)
	out, _ = b.classify(ctx, err, false)
	b.tel.count(out)
	return err
}

func (b *Breaker) reject(ctx context.Context, oe *OpenError) error {
	b.tel.count(outRejected)
	rejectedEvent(ctx, oe)
	return oe
}

// The gobreaker hooks below run with gobreaker's lock held.

func excluded(err error) bool { return err == error(vExcluded) }

func (e *engine) successful(err error) bool {
	var o uint8
	if v, ok := err.(*verdict); ok {
		o = v.o
	} else if err != nil {
		o = outcomeFailed
	}
	if State(e.state.Load()) != StateClosed {
		// Half-open: a probe must succeed, and be fast if slowness is watched.
		return o == 0
	}
	if e.win != nil {
		var now time.Time
		if e.win.buckets != nil {
			now = time.Now()
		}
		e.mu.Lock()
		e.win.add(o, now)
		trip := e.win.trips(&e.b.s, o)
		e.mu.Unlock()
		if trip {
			e.trip = true // gobreaker counts a failure and asks readyToTrip
			return false
		}
	}
	return o&outcomeFailed == 0
}

func (e *engine) readyToTrip(c gobreaker.Counts) bool {
	if e.trip {
		e.trip = false
		return true
	}
	s := &e.b.s
	if s.consecutive > 0 && c.ConsecutiveFailures >= s.consecutive {
		return true
	}
	if s.timeWindow() && s.failureRate > 0 {
		calls := c.TotalSuccesses + c.TotalFailures
		return calls > 0 && int(calls) >= s.minCalls && float64(c.TotalFailures)/float64(calls) >= s.failureRate
	}
	return false
}

func (e *engine) stateChanged(_ string, from, to gobreaker.State) {
	now := time.Now()
	e.state.Store(int32(to))
	e.trip = false
	if e.win != nil {
		e.mu.Lock()
		e.win.reset(now)
		e.mu.Unlock()
	}
	if to == gobreaker.StateOpen {
		e.openErr.Store(&OpenError{Name: e.b.name, State: StateOpen, Until: now.Add(e.b.s.openDuration)})
	} else {
		e.openErr.Store(nil)
	}
	e.b.enqueue(e, transition{from: State(from), to: State(to)})
}

// current returns the engine's state as last seen (it does not move an expired open
// state to half-open).
func (e *engine) current() State {
	switch e.mode {
	case modeForcedOpen:
		return StateOpen
	case modeForcedClosed:
		return StateClosed
	}
	return State(e.state.Load())
}

// enqueue queues a transition of engine e, unless e has been replaced.
func (b *Breaker) enqueue(e *engine, t transition) {
	b.pendMu.Lock()
	if b.eng.Load() == e {
		b.queue = append(b.queue, t)
		b.pending.Store(true)
	}
	b.pendMu.Unlock()
}

// flush delivers queued transitions unless another goroutine is delivering (it then
// delivers ours too: see deliver).
func (b *Breaker) flush() {
	for b.pending.Load() {
		if !b.deliverMu.TryLock() {
			return
		}
		b.deliver()
	}
}

// deliver runs the hooks for queued transitions until the queue is empty. It is
// called with deliverMu held and releases it.
func (b *Breaker) deliver() {
	defer b.deliverMu.Unlock()
	for {
		b.pendMu.Lock()
		q := b.queue
		b.queue = nil
		b.pending.Store(false)
		b.pendMu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, t := range q {
			b.tel.transition(b.name, t.from, t.to, t.forced)
			if b.onStateChange != nil {
				b.onStateChange(b.name, t.from, t.to)
			}
		}
	}
}

// swap replaces the engine and reports the change of state.
func (b *Breaker) swap(m mode) {
	ne := b.newEngine(m)
	b.pendMu.Lock()
	old := b.eng.Swap(ne)
	if from, to := old.current(), ne.current(); from != to {
		b.queue = append(b.queue, transition{from: from, to: to, forced: m != modeNormal})
		b.pending.Store(true)
	}
	b.pendMu.Unlock()
	b.flush()
}

// ForceOpen opens the breaker until ForceClosed or Reset: every call is rejected with
// an [*OpenError] whose Forced field is true and whose RetryAfter is zero. Calls
// already running finish without effect on the breaker.
func (b *Breaker) ForceOpen() { b.swap(modeForcedOpen) }

// ForceClosed closes the breaker until ForceOpen or Reset: every call runs and the
// trip rules are suspended (outcomes still reach the telemetry).
func (b *Breaker) ForceClosed() { b.swap(modeForcedClosed) }

// Reset returns the breaker to a fresh closed state with empty counts, ending a
// forced state. Calls already running finish without effect on the breaker.
func (b *Breaker) Reset() { b.swap(modeNormal) }

// State returns a snapshot of the breaker. An open breaker whose open duration has
// passed moves to half-open here, as it would on the next call.
func (b *Breaker) State() Snapshot {
	e := b.eng.Load()
	snap := Snapshot{Name: b.name, State: e.current(), Forced: e.mode != modeNormal}
	if e.cb != nil {
		snap.State = State(e.cb.State())
		c := e.cb.Counts()
		snap.Counts = Counts{
			Requests:             c.Requests,
			Successes:            c.TotalSuccesses,
			Failures:             c.TotalFailures,
			Excluded:             c.TotalExclusions,
			ConsecutiveSuccesses: c.ConsecutiveSuccesses,
			ConsecutiveFailures:  c.ConsecutiveFailures,
		}
		if oe := e.openErr.Load(); snap.State == StateOpen && oe != nil {
			snap.OpenUntil = oe.Until
		}
		if e.win != nil && snap.State == StateClosed {
			e.mu.Lock()
			if e.win.buckets != nil {
				e.win.roll(time.Now())
			}
			snap.Counts.WindowCalls, snap.Counts.WindowFailures, snap.Counts.WindowSlow = e.win.calls, e.win.failures, e.win.slow
			e.mu.Unlock()
		}
	}
	b.flush()
	return snap
}

// observe reports the state to the gauge and the call counts to the counter.
func (b *Breaker) observe(o metric.Observer) {
	o.ObserveInt64(b.tel.inst.state, int64(b.State().State), b.tel.nameSet)
	b.tel.observeCalls(o)
}
