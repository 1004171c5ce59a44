package heal

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// MiddlewareConfig configures a [Middleware]. The zero value recovers panics,
// records latency and load, and sheds only beyond 1000 requests at once.
type MiddlewareConfig struct {
	// MaxConcurrent is how many requests may be served at once; beyond it a
	// request is shed with 503 Service Unavailable and a Retry-After header. A
	// request counts until its handler returns, even when a Timeout has answered
	// for it. Zero means 1000; [Off] means no fixed bound. Other negative values
	// are invalid.
	MaxConcurrent int
	// Limit, when set, is an adaptive concurrency limit that requests must also
	// pass; a request over it is shed with 503 as above.
	Limit *AdaptiveLimit
	// Rate is how many requests a second are admitted; beyond it a request is shed
	// with 429 Too Many Requests and a Retry-After header saying when a token
	// arrives. Default 0: no rate limit.
	Rate float64
	// Burst is the rate limit's bucket size. Default: Rate rounded up.
	Burst int
	// RateKey, when set, applies Rate to each key it returns (a client address, an
	// API key) instead of to the whole server, holding at most 10000 keys (least
	// recently used evicted first).
	RateKey func(*http.Request) string
	// Timeout bounds each request, as [http.TimeoutHandler] does: the handler's
	// context expires after it, and at that moment the client gets 503 Service
	// Unavailable if nothing was written yet, whether or not the handler watches its
	// context. The handler then runs on its own goroutine; what it writes after
	// the deadline goes nowhere (its writes return [http.ErrHandlerTimeout]). A
	// handler that has started its response and is still running when the deadline
	// passes has its connection aborted ([http.ErrAbortHandler]), so that the
	// client sees the response is incomplete. Zero means no timeout (the handler runs on the
	// serving goroutine); negative is invalid.
	Timeout time.Duration
	// RetryAfter is the Retry-After of a 503, rounded up to whole seconds.
	// Default 1s.
	RetryAfter time.Duration
	// Window is the recorder's window. Default 30s.
	Window time.Duration
	// Exempt reports requests that are never shed, timed or recorded (health
	// probes, say). Default nil: none.
	Exempt func(*http.Request) bool
	// Logger receives recovered panics with their stack (an Error record) and shed
	// requests (a Debug record, "heal: request shed", with selfheal.reason). Nil means
	// no logging, as everywhere in selfheal: a recovered panic is still counted
	// (selfheal.heal.server.panics, [ServerSnapshot].Panics) and answered with 500.
	Logger *slog.Logger
	// MeterProvider receives the middleware's metrics. Nil means the global
	// provider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the tracer of the span that records a shed request
	// when the request has no span of its own (with one, it is an event on the
	// request's span when that span is recording). Nil means the global provider.
	TracerProvider trace.TracerProvider
}

// defaultServerConcurrency is MiddlewareConfig.MaxConcurrent's default.
const defaultServerConcurrency = 1000

// Middleware guards an HTTP server and measures it. For each request it:
//
//  1. recovers a panic in the handler: logs it with its stack, answers 500 if
//     nothing was written yet, and keeps serving (http.ErrAbortHandler passes
//     through, as net/http expects);
//  2. sheds load it cannot take: 429 with Retry-After over the rate, 503 with
//     Retry-After over the concurrency bound, before the handler runs;
//  3. bounds the request's time: through its context, and with a 503 at the
//     deadline for a handler that ignores it;
//  4. records latency, in-flight and shed requests in a [Recorder], which
//     [Middleware.Snapshot] and the health wiring publish so that an agent can
//     decide to scale.
//
// Whatever the handler does, every request gets a writer of its own, never reused:
// once the handler has returned (or the Timeout has answered), what a goroutine it
// left behind writes goes nowhere (the write returns [ErrResponseDone], or
// [http.ErrHandlerTimeout] after a timeout), never into another request's response,
// and cannot crash the server.
//
// A Middleware is safe for concurrent use and may wrap several handlers, which then
// share its bounds and recorder. Create it with [NewMiddleware]; the zero value is not usable.
type Middleware struct {
	maxConc    int64
	limit      *AdaptiveLimit
	rl         *RateLimit
	rlGroup    *RateLimitGroup
	rateKey    func(*http.Request) string
	timeout    time.Duration
	retryAfter string
	exempt     func(*http.Request) bool
	log        *slog.Logger
	rec        *Recorder

	inFlight atomic.Int64
	panics   atomic.Int64
	shedTot  atomic.Int64

	shedConc, shedRate, panicCount, timeouts counter
	duration                                 metric.Float64Histogram
	durOpts                                  []metric.RecordOption
	shedEv                                   event

	// With a Timeout: stopped timers and empty done channels, reused from request
	// to request (see timed). The pools are the middleware's own, not global, so
	// that a middleware made inside a testing/synctest bubble keeps its timers
	// and channels inside it.
	timers, dones sync.Pool
}

// NewMiddleware returns a middleware configured by cfg, or an error naming the invalid
// field.
func NewMiddleware(cfg MiddlewareConfig) (*Middleware, error) {
	switch {
	case cfg.MaxConcurrent < 0 && cfg.MaxConcurrent != Off:
		return nil, invalid("MiddlewareConfig.MaxConcurrent", "%d is negative; want >= 0 (0 means %d) or Off", cfg.MaxConcurrent, defaultServerConcurrency)
	case cfg.Rate < 0:
		return nil, invalid("MiddlewareConfig.Rate", "%v is negative", cfg.Rate)
	case cfg.Timeout < 0:
		return nil, invalid("MiddlewareConfig.Timeout", "%v is negative", cfg.Timeout)
	case cfg.RetryAfter < 0:
		return nil, invalid("MiddlewareConfig.RetryAfter", "%v is negative", cfg.RetryAfter)
	case cfg.Window < 0:
		return nil, invalid("MiddlewareConfig.Window", "%v is negative", cfg.Window)
	}
	switch cfg.MaxConcurrent {
	case 0:
		cfg.MaxConcurrent = defaultServerConcurrency
	case Off:
		cfg.MaxConcurrent = 0
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = time.Second
	}
	rec, err := NewRecorder(RecorderConfig{Window: cfg.Window})
	if err != nil {
		return nil, err
	}
	m := &Middleware{
		maxConc:    int64(cfg.MaxConcurrent),
		limit:      cfg.Limit,
		rateKey:    cfg.RateKey,
		timeout:    cfg.Timeout,
		retryAfter: strconv.FormatInt(int64(math.Ceil(cfg.RetryAfter.Seconds())), 10),
		exempt:     cfg.Exempt,
		log:        cfg.Logger,
		rec:        rec,
	}
	if cfg.Rate > 0 {
		rc := RateLimitConfig{Name: "server", Rate: cfg.Rate, Burst: cfg.Burst, MeterProvider: cfg.MeterProvider, TracerProvider: cfg.TracerProvider}
		if cfg.RateKey != nil {
			if m.rlGroup, err = NewRateLimitGroup(RateLimitGroupConfig{RateLimit: rc}); err != nil {
				return nil, err
			}
		} else if m.rl, err = NewRateLimit(rc); err != nil {
			return nil, err
		}
	}
	meter := meterFor(cfg.MeterProvider)
	base := []attribute.KeyValue{attrName.String("server")}
	m.shedConc = newCounter(meter, "server.shed", "Requests the server middleware shed.", "{request}", append(base, attrReason.String("concurrency"))...)
	m.shedRate = newCounter(meter, "server.shed", "Requests the server middleware shed.", "{request}", append(base, attrReason.String("rate"))...)
	m.initTelemetry(meter, base)
	m.shedEv = newEvent(cfg.TracerProvider, "selfheal.heal.server.shed", base...)
	return m, nil
}

func (m *Middleware) initTelemetry(meter metric.Meter, base []attribute.KeyValue) {
	m.panicCount = newCounter(meter, "server.panics", "Handler panics the server middleware recovered.", "{panic}", base...)
	m.timeouts = newCounter(meter, "server.timeouts", "Requests that ran past the middleware's timeout.", "{request}", base...)
	h, err := meter.Float64Histogram("selfheal.heal.server.duration",
		metric.WithDescription("Duration of the requests the server middleware served."), metric.WithUnit("s"))
	if err == nil && h != nil {
		m.duration = h
		m.durOpts = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(base...))}
	}
}

// Recorder returns the middleware's recorder.
func (m *Middleware) Recorder() *Recorder { return m.rec }

// Wrap returns next guarded and measured by the middleware.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, next) })
}

func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if m.exempt != nil && m.exempt(r) {
		next.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	start := time.Now() // the clock is slow on some machines: read it twice per request, no more
	if m.rl != nil || m.rlGroup != nil {
		rl := m.rl
		if rl == nil {
			rl = m.rlGroup.Get(m.rateKey(r))
		}
		if !rl.lim.AllowN(start, 1) {
			m.shed(r, w, http.StatusTooManyRequests, retryAfterHeader(rl.nextToken(start)), "too many requests", m.shedRate, "rate")
			return
		}
	}
	n := m.inFlight.Add(1)
	if m.maxConc > 0 && n > m.maxConc {
		m.inFlight.Add(-1)
		m.shed(r, w, http.StatusServiceUnavailable, m.retryAfter, "overloaded", m.shedConc, "concurrency")
		return
	}
	var tok LimitToken
	if m.limit != nil {
		var ok bool
		if tok, ok = m.limit.Acquire(ctx); !ok {
			m.inFlight.Add(-1)
			m.shed(r, w, http.StatusServiceUnavailable, m.retryAfter, "overloaded", m.shedConc, "concurrency")
			return
		}
	}
	// A new writer for every request, never pooled: a goroutine started by the
	// handler may hold it after the handler returned, and its late writes must reach
	// nothing (they return ErrResponseDone), never another request's response. The
	// request's state shares its allocation.
	if m.timeout > 0 {
		st := &timedWriter{servedWriter: servedWriter{rw: respWriter{w: w}, c: served{m: m, ctx: ctx, start: start, tok: tok}}}
		st.timed(r, next)
		return
	}
	st := &servedWriter{rw: respWriter{w: w}, c: served{m: m, ctx: ctx, start: start, tok: tok}}
	rw, c := &st.rw, &st.c
	defer c.inline(rw, r)
	next.ServeHTTP(rw, r)
}

// servedWriter is a request's writer and state, allocated together.
type servedWriter struct {
	rw respWriter
	c  served
}

// timedWriter is servedWriter with a Timeout, allocated together with the
// handler's context and request, and how the handler ended.
type timedWriter struct {
	servedWriter
	tctx  deadlineCtx
	req   http.Request  // the request the handler gets: with tctx
	panic *handlerPanic // the handler's, set before it says it ended
}

// served is one admitted request, from admission to the end of its handler (which,
// with a Timeout, may come after the response).
type served struct {
	m     *Middleware
	ctx   context.Context // the request's own context
	start time.Time
	tok   LimitToken
}

// handlerPanic is a panic of the handler, with its stack.
type handlerPanic struct {
	val   any
	stack []byte
}

// inline ends a request whose handler ran on the serving goroutine (no Timeout): it
// is deferred, so that it sees the handler's panic.
func (c *served) inline(rw *respWriter, r *http.Request) {
	var p *handlerPanic
	if v := recover(); v != nil {
		p = &handlerPanic{val: v, stack: debug.Stack()}
	}
	c.end(rw, p, false)
	c.record()
	c.handlerDone(r, p, false)
	if p != nil && p.val == http.ErrAbortHandler {
		panic(p.val)
	}
}

// timed runs the handler on its own goroutine, so that the Timeout bounds the
// response even when the handler ignores its context, as [http.TimeoutHandler] does.
// The handler's context is a deadlineCtx inside st, which this goroutine ends at the
// deadline (on a pooled timer), when the request's context ends, or when the
// handler returns: a timed request costs st and the goroutine, nothing more.
func (st *timedWriter) timed(r *http.Request, next http.Handler) {
	rw, c, tctx := &st.rw, &st.c, &st.tctx
	tctx.parent, tctx.deadline = c.ctx, c.start.Add(c.m.timeout)
	defer tctx.expire(context.Canceled)
	st.req = *r.WithContext(tctx)
	rw.timed = true // the handler's headers are copied out only when it writes
	m := c.m
	done, _ := m.dones.Get().(chan struct{})
	if done == nil {
		done = make(chan struct{}, 1)
	}
	go st.run(next, done)
	t, _ := m.timers.Get().(*time.Timer)
	if t == nil {
		t = time.NewTimer(m.timeout)
	} else {
		t.Reset(m.timeout) // since Go 1.23, a Stop leaves no stale value in t.C
	}
	defer func() {
		t.Stop()
		m.timers.Put(t)
	}()
	var p *handlerPanic
	select {
	case <-done:
		m.dones.Put(done) // only once its one value was received
		p = st.panic
	case <-t.C:
		tctx.expire(context.DeadlineExceeded)
		if st.expired(done) {
			return
		}
		p = st.panic
	case <-c.ctx.Done():
		tctx.expire(c.ctx.Err())
		if st.expired(done) {
			return
		}
		p = st.panic
	}
	c.record()
	if p != nil && p.val == http.ErrAbortHandler {
		panic(p.val)
	}
}

// run runs the handler, on its own goroutine, and says on done when it ended.
func (st *timedWriter) run(next http.Handler, done chan<- struct{}) {
	rw, c, r := &st.rw, &st.c, &st.req
	var p *handlerPanic
	defer func() {
		if v := recover(); v != nil {
			p = &handlerPanic{val: v, stack: debug.Stack()}
		}
		timedOut := st.tctx.Err() == context.DeadlineExceeded && c.ctx.Err() == nil
		c.end(rw, p, timedOut) // at once: nothing may write between the return and the end
		c.handlerDone(r, p, timedOut)
		st.panic = p
		done <- struct{}{}
	}()
	next.ServeHTTP(rw, r)
}

// expired answers a request whose deadline passed or whose client went away while
// the handler ran. It reports whether the request is over (false: the handler had
// just ended the response itself, and has now said so on done).
func (st *timedWriter) expired(done chan struct{}) bool {
	rw, c := &st.rw, &st.c
	code, msg, err := http.StatusServiceUnavailable, "request timed out", http.ErrHandlerTimeout
	if c.ctx.Err() != nil {
		code, msg, err = 0, "", ErrResponseDone // the client is gone: nothing to answer
	}
	first, started := rw.finish(code, msg, err)
	if !first {
		<-done // the handler ended the response a moment ago, and is ending
		c.m.dones.Put(done)
		return false
	}
	c.record()
	if code != 0 {
		// The handler ignored its deadline: the client got its 503 now, unless
		// the response had started, and the handler's late writes go nowhere.
		c.m.timeouts.add(c.ctx, 1)
		if started {
			// Part of a response went out and the rest never will: abort the
			// connection so that the client sees the response is incomplete.
			panic(http.ErrAbortHandler)
		}
	}
	return true
}

// end finishes the response once the handler has returned: 500 after a panic, 503
// after a timeout, when nothing was written.
func (c *served) end(rw *respWriter, p *handlerPanic, timedOut bool) {
	switch {
	case p != nil && p.val != http.ErrAbortHandler:
		rw.finish(http.StatusInternalServerError, "internal server error", ErrResponseDone)
	case p == nil && timedOut:
		if first, started := rw.finish(http.StatusServiceUnavailable, "request timed out", ErrResponseDone); first && !started {
			c.m.timeouts.add(c.ctx, 1)
		}
	default:
		rw.finish(0, "", ErrResponseDone)
	}
}

// record records the request's latency.
func (c *served) record() {
	now := time.Now()
	d := now.Sub(c.start)
	c.m.rec.ObserveAt(now, d)
	if c.m.duration != nil {
		c.m.duration.Record(c.ctx, d.Seconds(), c.m.durOpts...)
	}
}

// handlerDone runs when the handler has returned (or panicked): it frees the request's
// slot, and reports a panic. It runs on the handler's goroutine.
func (c *served) handlerDone(r *http.Request, p *handlerPanic, timedOut bool) {
	m := c.m
	if p != nil && p.val != http.ErrAbortHandler {
		m.panics.Add(1)
		m.panicCount.add(c.ctx, 1)
		if m.log != nil {
			m.log.ErrorContext(c.ctx, "heal: handler panicked", "panic", p.val, "http.request.method", r.Method,
				"url.path", r.URL.Path, "stack", string(p.stack))
		}
	}
	if m.limit != nil {
		c.tok.Release(c.ctx, timedOut || p != nil)
	}
	m.inFlight.Add(-1)
}

func (m *Middleware) shed(r *http.Request, w http.ResponseWriter, code int, retryAfter, msg string, c counter, reason string) {
	ctx := r.Context()
	m.shedTot.Add(1)
	m.rec.Shed()
	c.add(ctx, 1)
	m.shedEv.add(ctx)
	if m.log != nil {
		logAt(ctx, m.log, slog.LevelDebug, msgRequestShed, "server", slog.String(string(attrReason), reason),
			slog.String("http.request.method", r.Method), slog.String("url.path", r.URL.Path))
	}
	w.Header().Set("Retry-After", retryAfter)
	http.Error(w, msg, code)
}

func retryAfterHeader(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}

// ServerSnapshot is the state of a [Middleware]: the recorder's view of its window,
// plus the instantaneous load.
type ServerSnapshot struct {
	RecorderSnapshot
	// InFlight is the number of requests being served now.
	InFlight int
	// Limit is the concurrency bound (MaxConcurrent, or the adaptive limit's
	// current value when lower); 0 when there is none.
	Limit int
	// Utilization is InFlight / Limit * 100, in percent; 0 when there is no
	// limit.
	Utilization float64
	// ShedTotal and Panics count since the middleware was created.
	ShedTotal, Panics int64
}

// Snapshot returns the middleware's current state.
func (m *Middleware) Snapshot() ServerSnapshot {
	s := ServerSnapshot{
		RecorderSnapshot: m.rec.Snapshot(),
		InFlight:         int(m.inFlight.Load()),
		Limit:            int(m.maxConc),
		ShedTotal:        m.shedTot.Load(),
		Panics:           m.panics.Load(),
	}
	if m.limit != nil {
		if l := m.limit.Limit(); s.Limit == 0 || l < s.Limit {
			s.Limit = l
		}
	}
	if s.Limit > 0 {
		s.Utilization = float64(s.InFlight) / float64(s.Limit) * 100
	}
	return s
}

// respWriter stands between a handler and net/http's writer. It notes whether the
// response has started, so that a panic or a timeout answers only when nothing was
// written, and once the response is finished (the handler returned, or the Timeout
// answered) it forwards nothing more: late writes from goroutines the handler started
// return an error and go nowhere. Its lock is held across every forwarded call, so
// that none is in progress when the response is finished. It passes Flush, Hijack and
// ReadFrom through, and unwraps for http.ResponseController.
type respWriter struct {
	mu    sync.Mutex
	w     http.ResponseWriter
	own   http.Header // with a Timeout: the handler's header map until it writes (made by Header)
	timed bool        // with a Timeout: the handler's headers go to own until it writes
	wrote bool
	// hijacked: the handler took the connection over; net/http no longer uses it.
	hijacked bool
	done     error // set when the response is finished: what late writes return
}

func (w *respWriter) Header() http.Header {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.done != nil:
		return make(http.Header) // net/http may be reading its own map now
	case w.timed && !w.wrote:
		if w.own == nil {
			w.own = make(http.Header)
		}
		return w.own
	}
	return w.w.Header()
}

// startLocked starts the response: it copies the handler's own headers out.
func (w *respWriter) startLocked() {
	w.wrote = true
	if w.own != nil {
		h := w.w.Header()
		for k, v := range w.own {
			h[k] = v
		}
	}
}

func (w *respWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		return
	}
	if !w.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.startLocked()
	} else if !w.wrote && w.own != nil {
		h := w.w.Header() // an informational response carries the headers set so far
		for k, v := range w.own {
			h[k] = v
		}
	}
	w.w.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		return 0, w.done
	}
	if !w.wrote {
		w.startLocked()
	}
	return w.w.Write(p)
}

// finish ends the response: when nothing was written and code is not 0, it answers
// code with msg; from then on every write returns err. It reports whether this call
// ended the response (false: it had ended already, and nothing changed), and whether
// the handler had started it (on a connection it did not hijack).
func (w *respWriter) finish(code int, msg string, err error) (first, started bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		return false, w.wrote && !w.hijacked
	}
	started = w.wrote
	switch {
	case started:
	case code != 0:
		http.Error(w.w, msg, code)
	case w.own != nil:
		// The handler returned without writing: net/http answers 200 with the
		// headers it set.
		h := w.w.Header()
		for k, v := range w.own {
			h[k] = v
		}
	}
	w.done = err
	return true, started && !w.hijacked
}

// Unwrap returns net/http's writer, for http.ResponseController; nil once the
// response is finished, so that nothing reaches it through the wrapper any more.
func (w *respWriter) Unwrap() http.ResponseWriter {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		return nil
	}
	return w.w
}

func (w *respWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		return
	}
	if !w.wrote {
		w.startLocked()
	}
	_ = http.NewResponseController(w.w).Flush()
}

func (w *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		return nil, nil, w.done
	}
	c, rw, err := http.NewResponseController(w.w).Hijack()
	if err == nil {
		w.wrote, w.hijacked = true, true
	}
	return c, rw, err
}

func (w *respWriter) ReadFrom(r io.Reader) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		return 0, w.done
	}
	if !w.wrote {
		w.startLocked()
	}
	if rf, ok := w.w.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.w}, r)
}
