package heal

import (
	"bufio"
	"context"
	"fmt"
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
)

// MiddlewareConfig configures a [Middleware]. The zero value recovers panics and
// records latency and load, and sheds nothing.
type MiddlewareConfig struct {
	// MaxConcurrent is how many requests may be served at once; beyond it a
	// request is shed with 503 Service Unavailable and a Retry-After header.
	// Default 0: no fixed bound.
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
	// Timeout bounds each request: the handler's context expires after it, and a
	// handler that returns without having written anything after its context
	// expired gets a 503. Default 0: no timeout.
	Timeout time.Duration
	// RetryAfter is the Retry-After of a 503, rounded up to whole seconds.
	// Default 1s.
	RetryAfter time.Duration
	// Window is the recorder's window. Default 30s.
	Window time.Duration
	// Exempt reports requests that are never shed, timed or recorded (health
	// probes, say). Default nil: none.
	Exempt func(*http.Request) bool
	// Logger receives recovered panics with their stack. Nil means slog.Default():
	// unlike elsewhere in selfheal, a swallowed panic must never go unreported.
	Logger *slog.Logger
	// MeterProvider receives the middleware's metrics. Nil means the global
	// provider.
	MeterProvider metric.MeterProvider
}

// Middleware guards an HTTP server and measures it. For each request it:
//
//  1. recovers a panic in the handler: logs it with its stack, answers 500 if
//     nothing was written yet, and keeps serving (http.ErrAbortHandler passes
//     through, as net/http expects);
//  2. sheds load it cannot take: 429 with Retry-After over the rate, 503 with
//     Retry-After over the concurrency bound, before the handler runs;
//  3. bounds the request's time through its context;
//  4. records latency, in-flight and shed requests in a [Recorder], which
//     [Middleware.Snapshot] and the health wiring publish so that an agent can
//     decide to scale.
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

	writers sync.Pool
}

// NewMiddleware returns a middleware configured by cfg, or an error naming the invalid
// field.
func NewMiddleware(cfg MiddlewareConfig) (*Middleware, error) {
	switch {
	case cfg.MaxConcurrent < 0:
		return nil, fmt.Errorf("heal: MiddlewareConfig.MaxConcurrent %d is negative", cfg.MaxConcurrent)
	case cfg.Rate < 0:
		return nil, fmt.Errorf("heal: MiddlewareConfig.Rate %v is negative", cfg.Rate)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("heal: MiddlewareConfig.Timeout %v is negative", cfg.Timeout)
	case cfg.RetryAfter < 0:
		return nil, fmt.Errorf("heal: MiddlewareConfig.RetryAfter %v is negative", cfg.RetryAfter)
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	rec, err := NewRecorder(RecorderConfig{Window: cfg.Window})
	if err != nil {
		return nil, fmt.Errorf("heal: MiddlewareConfig.Window %v is negative", cfg.Window)
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
		rc := RateLimitConfig{Name: "server", Rate: cfg.Rate, Burst: cfg.Burst, MeterProvider: cfg.MeterProvider}
		if cfg.RateKey != nil {
			if m.rlGroup, err = NewRateLimitGroup(RateLimitGroupConfig{RateLimit: rc}); err != nil {
				return nil, err
			}
		} else if m.rl, err = NewRateLimit(rc); err != nil {
			return nil, err
		}
	}
	meter := meterFor(cfg.MeterProvider)
	base := []attribute.KeyValue{attrPolicy.String("server")}
	m.shedConc = newCounter(meter, "server.shed", "Requests the server middleware shed.", "{request}", append(base, attrReason.String("concurrency"))...)
	m.shedRate = newCounter(meter, "server.shed", "Requests the server middleware shed.", "{request}", append(base, attrReason.String("rate"))...)
	m.initTelemetry(meter, base)
	m.shedEv = newEvent("selfheal.server.shed", base...)
	m.writers.New = func() any { return new(respWriter) }
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
			m.shed(ctx, w, http.StatusTooManyRequests, retryAfterHeader(rl.nextToken(start)), "too many requests", m.shedRate)
			return
		}
	}
	n := m.inFlight.Add(1)
	defer m.inFlight.Add(-1)
	if m.maxConc > 0 && n > m.maxConc {
		m.shed(ctx, w, http.StatusServiceUnavailable, m.retryAfter, "overloaded", m.shedConc)
		return
	}
	var tok LimitToken
	if m.limit != nil {
		var ok bool
		if tok, ok = m.limit.Acquire(ctx); !ok {
			m.shed(ctx, w, http.StatusServiceUnavailable, m.retryAfter, "overloaded", m.shedConc)
			return
		}
	}
	rw := m.writers.Get().(*respWriter)
	rw.ResponseWriter, rw.status, rw.wrote = w, 0, false
	var cancel context.CancelFunc
	if m.timeout > 0 {
		var tctx context.Context
		tctx, cancel = context.WithTimeout(ctx, m.timeout)
		r = r.WithContext(tctx)
	}
	defer func() {
		v := recover()
		timedOut := cancel != nil && r.Context().Err() == context.DeadlineExceeded && ctx.Err() == nil
		if v != nil && v != http.ErrAbortHandler {
			m.panics.Add(1)
			m.panicCount.add(ctx, 1)
			m.log.ErrorContext(ctx, "heal: handler panicked", "panic", v, "method", r.Method, "path", r.URL.Path,
				"stack", string(debug.Stack()))
			if !rw.wrote {
				http.Error(w, "internal server error", http.StatusInternalServerError)
			}
		} else if v == nil && timedOut && !rw.wrote {
			m.timeouts.add(ctx, 1)
			http.Error(w, "request timed out", http.StatusServiceUnavailable)
		}
		if cancel != nil {
			cancel()
		}
		now := time.Now()
		d := now.Sub(start)
		m.rec.ObserveAt(now, d)
		if m.duration != nil {
			m.duration.Record(ctx, d.Seconds(), m.durOpts...)
		}
		if m.limit != nil {
			tok.Release(ctx, timedOut || v != nil)
		}
		rw.ResponseWriter = nil
		m.writers.Put(rw)
		if v == http.ErrAbortHandler {
			panic(v)
		}
	}()
	next.ServeHTTP(rw, r)
}

func (m *Middleware) shed(ctx context.Context, w http.ResponseWriter, code int, retryAfter, msg string, c counter) {
	m.shedTot.Add(1)
	m.rec.Shed()
	c.add(ctx, 1)
	m.shedEv.add(ctx)
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

// respWriter notes whether the response has started, so that a panic or a timeout
// answers only when nothing was written. It passes Flush, Hijack and ReadFrom
// through, and unwraps for http.ResponseController.
type respWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *respWriter) WriteHeader(code int) {
	if !w.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.wrote, w.status = true, code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.wrote, w.status = true, http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *respWriter) Flush() {
	if !w.wrote {
		w.wrote, w.status = true, http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.wrote = true
	}
	return c, rw, err
}

func (w *respWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.wrote {
		w.wrote, w.status = true, http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}
