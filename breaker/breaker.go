package breaker

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// Breaker is a circuit breaker: it watches the outcomes of the calls it runs and, when
// they go bad, rejects calls for a while instead of running them, so that a failing
// downstream gets room to recover and callers fail fast. See the package
// documentation for the model and [Config] for the rules.
//
// A Breaker is safe for concurrent use. It starts no goroutines: it changes state only
// when a call (or a done function of [Breaker.Allow]) finds that a rule was met or a
// wait has passed, and when ForceOpen, ForceClosed or Reset is called. Create it with
// [New]; the zero Breaker is not usable.
type Breaker struct {
	name          string
	s             settings
	tel           breakerTelemetry
	onStateChange func(name string, from, to State)

	// openErr is non-nil while the breaker is open (or forced open): the error of the
	// open period, which the fast path of a rejection reads without the lock.
	openErr atomic.Pointer[OpenError]
	tooMany *OpenError // the error for a saturated half-open state

	mu    sync.Mutex // guards the fields below
	state State
	mode  mode
	gen   uint64    // changes at every state change: outcomes of older permits are dropped
	win   window    // counts of the closed state
	half  Counts    // counts of the half-open state
	until time.Time // open: end of the wait; half-open: end of MaxHalfOpenWait (zero: none)
	opens int       // open periods in a row since the breaker last closed

	// Transitions wait in queue (guarded by mu) until a caller delivers them to the
	// hooks, one deliverer at a time (deliverMu), outside mu.
	queue     []transition
	pending   atomic.Bool
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

// New returns a breaker configured by cfg. It returns a [*ConfigError] matching
// [ErrInvalidConfig] when cfg cannot be honoured, or an error from the meter provider
// when the instruments cannot be created.
//
// The breaker registers a callback for the selfheal.breaker.state gauge and the
// selfheal.breaker.calls counter with the meter; the callback holds the breaker
// weakly and is unregistered once the breaker is garbage.
func New(cfg Config) (*Breaker, error) {
	s, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	inst, err := newInstruments(cfg.MeterProvider, cfg.TracerProvider)
	if err != nil {
		return nil, err
	}
	b := newBreaker(cmp.Or(cfg.Name, DefaultName), s, inst, &cfg)
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
		tooMany:       &OpenError{Name: name, State: StateHalfOpen},
		gen:           1,
	}
	b.win = newWindow(&b.s, time.Now())
	newBreakerTelemetry(&b.tel, inst, name, cfg.Logger)
	return b
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// Do runs fn with ctx if the breaker lets the call through, and returns fn's error
// unchanged. If the breaker rejects the call, Do returns an [*OpenError] matching
// [ErrOpen] (the circuit is open) or [ErrTooManyRequests] (it is half-open and every
// probe slot is taken) without calling fn.
//
// The call's outcome is the caller's own cancellation (ctx is done and the error
// matches context.Canceled), which counts neither way, or else what
// [Config.Classify] says of (nil, err). If fn panics, the call counts as a failure and
// Do panics again with the same value after the breaker has recorded it.
func (b *Breaker) Do(ctx context.Context, fn func(context.Context) error) error {
	return b.run(ctx, fn, nil)
}

// Call runs fn through b like [Breaker.Do] and returns fn's value with its error, or
// the zero T with the rejection error when b rejects the call. [Config.Classify], if
// set, sees the value (boxed in an interface; without a Classify nothing is boxed).
func Call[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error)) (T, error) {
	var v T
	call := func(ctx context.Context) error {
		var err error
		v, err = fn(ctx)
		return err
	}
	if b.s.classify == nil {
		return v, b.run(ctx, call, nil)
	}
	return v, b.run(ctx, call, func() any { return v })
}

// run is Do, with the result of the call for Classify when result is not nil.
func (b *Breaker) run(ctx context.Context, fn func(context.Context) error, result func() any) error {
	if oe := b.openErr.Load(); oe != nil && (oe.Forced || time.Until(oe.Until) > 0) {
		// Open: reject without taking the lock.
		return b.reject(ctx, oe)
	}
	gen, oe := b.acquire()
	if b.pending.Load() {
		b.flush() // a move to half-open: tell the hooks before the probe runs
	}
	if oe != nil {
		return b.reject(ctx, oe)
	}
	var start time.Time
	if b.s.slowDuration > 0 {
		start = time.Now()
	}
	// ran stays false if fn panics (or calls runtime.Goexit): the deferred function
	// records a failure and delivers the transitions before the panic goes on.
	ran := false
	defer func() {
		if !ran {
			b.finish(gen, selfheal.Failure, start)
		}
	}()
	err := fn(ctx)
	ran = true
	var r any
	if result != nil {
		r = result()
	}
	b.finish(gen, b.judge(ctx, r, err), start)
	return err
}

// Allow asks the breaker for a permit to make one call, for callers that cannot wrap
// the call in a function (a stream, a call that ends in another goroutine). If the
// breaker rejects the call, Allow returns a nil done and an [*OpenError], as
// [Breaker.Do] does. Otherwise the caller makes the call and reports its outcome with
// done(result, err), which [Config.Classify] judges as it judges a call through
// [Call] (result may be nil); the caller's own cancellation, ctx done and err matching
// context.Canceled, counts neither way. The slow-call rule measures from Allow to
// done.
//
// Calling done more than once is harmless: only the first call counts. A permit whose
// done is never called counts neither way; in the half-open state it holds its probe
// slot until [Config.MaxHalfOpenWait] reopens the breaker. done is safe for concurrent
// use and may be called on any goroutine.
func (b *Breaker) Allow(ctx context.Context) (done func(result any, err error), err error) {
	if oe := b.openErr.Load(); oe != nil && (oe.Forced || time.Until(oe.Until) > 0) {
		return nil, b.reject(ctx, oe)
	}
	gen, oe := b.acquire()
	if b.pending.Load() {
		b.flush()
	}
	if oe != nil {
		return nil, b.reject(ctx, oe)
	}
	var start time.Time
	if b.s.slowDuration > 0 {
		start = time.Now()
	}
	var used atomic.Bool
	return func(result any, err error) {
		if !used.Swap(true) {
			b.finish(gen, b.judge(ctx, result, err), start)
		}
	}, nil
}

// judge classifies a call that returned.
func (b *Breaker) judge(ctx context.Context, result any, err error) selfheal.Outcome {
	if err != nil && callerCanceled(ctx, err) {
		return selfheal.Ignored
	}
	if b.s.classify == nil {
		if err == nil {
			return selfheal.Success
		}
		return selfheal.Failure
	}
	return b.s.classify(result, err)
}

// finish records the outcome of a call made with the permit of generation gen.
func (b *Breaker) finish(gen uint64, out selfheal.Outcome, start time.Time) {
	switch out {
	case selfheal.Success:
		b.tel.count(outSuccess)
		b.release(gen, b.slow(start), false)
	case selfheal.Ignored:
		b.tel.count(outExcluded)
		b.release(gen, 0, true)
	default: // Failure, or a Classify's value out of range
		b.tel.count(outFailure)
		b.release(gen, outcomeFailed|b.slow(start), false)
	}
	if b.pending.Load() {
		b.flush()
	}
}

func (b *Breaker) slow(start time.Time) uint8 {
	if !start.IsZero() && time.Since(start) >= b.s.slowDuration {
		return outcomeSlow
	}
	return 0
}

func (b *Breaker) reject(ctx context.Context, oe *OpenError) error {
	b.tel.count(outRejected)
	rejectedEvent(ctx, oe)
	return oe
}

// acquire lets a call through, returning the generation of its permit (0 for a
// breaker forced closed, whose calls only reach the telemetry), or rejects it.
func (b *Breaker) acquire() (uint64, *OpenError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.mode {
	case modeForcedOpen:
		return 0, b.openErr.Load()
	case modeForcedClosed:
		return 0, nil
	}
	var now time.Time
	switch b.state {
	case StateClosed:
		if b.win.timed() {
			now = time.Now()
		}
		b.win.request(now)
		return b.gen, nil
	case StateOpen:
		now = time.Now()
		if !now.After(b.until) {
			return 0, b.openErr.Load()
		}
		b.setState(StateHalfOpen, now)
	}
	// Half-open.
	if b.s.halfOpenWait > 0 {
		if now.IsZero() {
			now = time.Now()
		}
		if now.After(b.until) {
			b.setState(StateOpen, now) // the probes did not answer in time
			return 0, b.openErr.Load()
		}
	}
	if b.half.Requests-b.half.Excluded >= b.s.probes {
		return 0, b.tooMany
	}
	b.half.Requests++
	return b.gen, nil
}

// release records the outcome o of a call (or that it counts neither way) made with
// the permit of generation gen; the outcome of an older generation is dropped.
func (b *Breaker) release(gen uint64, o uint8, excluded bool) {
	if gen == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen != b.gen {
		return
	}
	var now time.Time
	if b.state == StateClosed {
		if b.win.timed() {
			now = time.Now()
		}
		if excluded {
			b.win.exclude(now)
			return
		}
		b.win.add(o, now)
		if o != 0 && b.win.trips(&b.s, o) {
			b.setState(StateOpen, now)
		}
		return
	}
	// Half-open (an open state has a newer generation).
	if b.s.halfOpenWait > 0 {
		now = time.Now()
		if now.After(b.until) {
			b.setState(StateOpen, now)
			return
		}
	}
	switch {
	case excluded:
		b.half.Excluded++
	case o == 0:
		b.half.Successes++
		b.half.ConsecutiveSuccesses++
		if b.half.ConsecutiveSuccesses >= b.s.probes {
			b.setState(StateClosed, now)
		}
	default:
		b.setState(StateOpen, now)
	}
}

// setState moves the breaker to state to, at now (zero: read the clock), and queues
// the transition for the hooks. It is called with mu held.
func (b *Breaker) setState(to State, now time.Time) {
	if now.IsZero() {
		now = time.Now()
	}
	from := b.state
	b.state = to
	b.gen++
	switch to {
	case StateClosed:
		b.opens = 0
		b.win.reset(now)
		b.until = time.Time{}
		b.openErr.Store(nil)
	case StateOpen:
		b.until = now.Add(b.openWait())
		b.opens++
		b.openErr.Store(&OpenError{Name: b.name, State: StateOpen, Until: b.until})
	case StateHalfOpen:
		b.half = Counts{}
		b.until = time.Time{}
		if b.s.halfOpenWait > 0 {
			b.until = now.Add(b.s.halfOpenWait)
		}
		b.openErr.Store(nil)
	}
	b.queue = append(b.queue, transition{from: from, to: to})
	b.pending.Store(true)
}

// openWait returns the wait of the next open period: OpenDuration grown by
// OpenBackoff for each open period in a row before it, at most MaxOpenDuration, less
// the jitter.
func (b *Breaker) openWait() time.Duration {
	d := b.s.openDuration
	if b.s.maxOpen > d && b.opens > 0 {
		if f := float64(d) * math.Pow(b.s.backoff, float64(b.opens)); f < float64(b.s.maxOpen) {
			d = time.Duration(f)
		} else {
			d = b.s.maxOpen
		}
	}
	if b.s.jitter > 0 {
		d -= time.Duration(rand.Float64() * b.s.jitter * float64(d))
	}
	return d
}

// current returns the state as the breaker reports it: a forced state, or the state
// of its rules (an open state whose wait has passed stays open until a call moves it).
// It is called with mu held.
func (b *Breaker) current() State {
	switch b.mode {
	case modeForcedOpen:
		return StateOpen
	case modeForcedClosed:
		return StateClosed
	}
	return b.state
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
		b.mu.Lock()
		q := b.queue
		b.queue = nil
		b.pending.Store(false)
		b.mu.Unlock()
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

// swap replaces the breaker's state with a fresh closed one in mode m and reports the
// change of state. Calls already running finish without effect on the breaker.
func (b *Breaker) swap(m mode) {
	now := time.Now()
	b.mu.Lock()
	from := b.current()
	b.mode = m
	b.state = StateClosed
	b.gen++
	b.opens = 0
	b.win.reset(now)
	b.half = Counts{}
	b.until = time.Time{}
	if m == modeForcedOpen {
		b.openErr.Store(&OpenError{Name: b.name, State: StateOpen, Forced: true})
	} else {
		b.openErr.Store(nil)
	}
	if to := b.current(); from != to {
		b.queue = append(b.queue, transition{from: from, to: to, forced: m != modeNormal})
		b.pending.Store(true)
	}
	b.mu.Unlock()
	b.flush()
}

// ForceOpen opens the breaker until ForceClosed or Reset: every call is rejected with
// an [*OpenError] whose Forced field is true and whose RetryAfter is zero. Calls
// already running finish without effect on the breaker.
func (b *Breaker) ForceOpen() { b.swap(modeForcedOpen) }

// ForceClosed closes the breaker until ForceOpen or Reset: every call runs and the
// trip rules are suspended (outcomes still reach the telemetry).
func (b *Breaker) ForceClosed() { b.swap(modeForcedClosed) }

// Reset returns the breaker to a fresh closed state with empty counts and the first
// open wait, ending a forced state. Calls already running finish without effect on
// the breaker.
func (b *Breaker) Reset() { b.swap(modeNormal) }

// Snapshot returns the state of the breaker at this instant. It has no side effects:
// an open breaker whose wait has passed still reports [StateOpen] (with OpenUntil in
// the past) until a call moves it to half-open, a half-open breaker past
// [Config.MaxHalfOpenWait] still reports [StateHalfOpen] until a call or a probe's
// outcome reopens it, and no hook runs. It is safe for concurrent use.
func (b *Breaker) Snapshot() Snapshot {
	var now time.Time
	if b.win.timed() {
		now = time.Now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	snap := Snapshot{Name: b.name, State: b.current(), Forced: b.mode != modeNormal}
	if b.mode != modeNormal {
		return snap
	}
	switch b.state {
	case StateOpen:
		snap.OpenUntil = b.until
	case StateHalfOpen:
		snap.Counts = b.half
	case StateClosed:
		c, calls, failures, slow := b.win.view(now)
		snap.Counts = c
		if b.s.rateRules() {
			snap.Counts.WindowCalls, snap.Counts.WindowFailures, snap.Counts.WindowSlow = calls, failures, slow
		}
	}
	return snap
}

// readState returns the state as Snapshot reports it, without the counts.
func (b *Breaker) readState() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.current()
}

// observe reports the state to the gauge and the call counts to the counter, without
// side effects.
func (b *Breaker) observe(o metric.Observer) {
	o.ObserveInt64(b.tel.inst.state, int64(b.readState()), b.tel.nameSet)
	b.tel.observeCalls(o)
}
