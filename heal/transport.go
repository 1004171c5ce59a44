package heal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/internal/telemetry"
	"github.com/selfheal-go/selfheal/retry"
)

// DefaultTransportClassify is the default classification of a [Transport]'s
// attempts, given the *http.Response as result (nil when there is none) and the
// error of the round trip:
//
//   - a response of 5xx or 429 Too Many Requests is a [selfheal.Failure] (retried,
//     counted by the host's breaker), except 501 Not Implemented and 505 HTTP
//     Version Not Supported, which say the same on every attempt: they are
//     [selfheal.Ignored] (not retried, counted neither way);
//   - any other response is a [selfheal.Success];
//   - an error is a Failure, except [context.Canceled], Ignored.
func DefaultTransportClassify(result any, err error) selfheal.Outcome {
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return selfheal.Ignored
		}
		return selfheal.Failure
	}
	resp, _ := result.(*http.Response)
	if resp == nil {
		return selfheal.Success
	}
	switch code := resp.StatusCode; {
	case code == http.StatusNotImplemented, code == http.StatusHTTPVersionNotSupported:
		return selfheal.Ignored
	case code >= 500, code == http.StatusTooManyRequests:
		return selfheal.Failure
	}
	return selfheal.Success
}

// DefaultIdempotent is the default rule of a [Transport] for which requests may be
// retried: those with an idempotent method (GET, HEAD, OPTIONS, TRACE, PUT, DELETE,
// RFC 9110 section 9.2.2), and any request carrying an Idempotency-Key or
// X-Idempotency-Key header.
func DefaultIdempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := req.Header["X-Idempotency-Key"]
	return ok
}

// StatusError is the error of an attempt whose response had a failure status. A
// [Transport] never returns it: when the last attempt fails that way, the caller gets
// the response itself. It is what breakers and retry policies see, and what their
// Classify hooks receive.
type StatusError struct {
	// StatusCode is the response's status code (503, say).
	StatusCode int
	// Status is the response's status line ("503 Service Unavailable").
	Status string
	// Delay is the delay the response's Retry-After header asked for; 0 without one.
	Delay time.Duration
}

func (e *StatusError) Error() string { return "heal: HTTP " + e.Status }

// RetryAfter returns Delay: a retry policy waits that long (up to its
// MaxServerDelay) instead of its backoff.
func (e *StatusError) RetryAfter() time.Duration { return e.Delay }

// TransportConfig configures a [Transport]. The zero value wraps
// http.DefaultTransport with a default breaker per host and the default retry
// policy for idempotent requests.
type TransportConfig struct {
	// Name names the breaker group (breakers are named "<name>/<host>").
	// Default "http".
	Name string
	// Base sends the requests. Default http.DefaultTransport.
	Base http.RoundTripper
	// Breaker configures the breaker of each host. Zero: the breaker package's
	// defaults, with at most 1024 hosts. Its Breaker.Classify must be nil: the
	// breakers judge each attempt by the transport's Classify.
	Breaker breaker.GroupConfig
	// Retry configures the retries of idempotent requests. MaxAttempts 1 disables
	// them. Its Classify must be nil: an attempt is retried when the transport's
	// Classify judges it a [selfheal.Failure], except that a request whose host's
	// breaker is open is not retried. AttemptTimeout must be zero: a per-attempt
	// context would end before the response body is read; bound the whole request
	// with its context or http.Client.Timeout. A Retry-After header (seconds or an
	// HTTP-date) on a failed response replaces the backoff, up to MaxServerDelay.
	Retry retry.Config
	// Idempotent reports whether a request may be sent more than once.
	// Default DefaultIdempotent. A request with a body is retried only if it has
	// GetBody (http.NewRequest sets it for the usual body types).
	Idempotent func(*http.Request) bool
	// Classify judges each attempt from its *http.Response (the result; nil when
	// the round trip failed) and its error, for the host's breaker and the retries:
	// [selfheal.Failure] is retried and counted as a failure, [selfheal.Ignored] is
	// neither retried nor counted, [selfheal.Success] ends the request. A response
	// judged a Failure or Ignored that is the last to come is returned to the
	// caller as it is. Nil means [DefaultTransportClassify]. It is called on the
	// calling goroutine and may be called concurrently.
	Classify selfheal.Classifier
	// HostKey returns the breaker key of a request. Default: req.URL.Host.
	HostKey func(*http.Request) string
	// MaxDrain bounds how much of a failed attempt's body is read before it is
	// closed, so that the connection can be reused. Zero means 64 KiB; [Off] means
	// the body is closed without being read. Other negative values are invalid.
	MaxDrain int64
	// DrainTimeout bounds how long the draining of a failed attempt's body may take:
	// a slow body is closed when it runs out, so that it never holds up the retry or
	// the caller. Zero means 100ms; [Off] means no bound (MaxDrain still applies).
	// Other negative values are invalid.
	DrainTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a response's headers after the
	// request was written, for the default Base only (a clone of
	// http.DefaultTransport, with its own connection pool): a Base of your own keeps
	// its own settings. Zero means 30s; [Off] means no bound. Other negative values
	// are invalid.
	ResponseHeaderTimeout time.Duration
	// Logger serves the breakers and the retry policy when their own configs have
	// none (a breaker logs its state changes, the retry policy its retries). Nil
	// means no logging.
	Logger *slog.Logger
	// MeterProvider serves the breakers and the retry policy when their own
	// configs have none. Nil means the global provider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the tracer of the attempts' spans: when the span in
	// the request's context is recording, each attempt runs in a client span
	// "selfheal.heal.transport.attempt" of its own, a child of that span (for a
	// retry, of the retry policy's attempt span, itself a child of the caller's),
	// with the HTTP semantic conventions' attributes, and its span context is
	// injected into the attempt's headers by the global propagator
	// (otel.GetTextMapPropagator, a no-op until the application sets one), so that
	// the server's spans are its children. It also serves the breakers and the
	// retry policy when their own configs have none. Nil means the global provider.
	TracerProvider trace.TracerProvider
}

// Transport is an [http.RoundTripper] that heals the client side of HTTP: a
// circuit breaker per host ([breaker.Group]) fails fast while a host is down;
// idempotent requests are retried with backoff (their bodies replayed through
// GetBody), honouring Retry-After (seconds or HTTP-date); the responses its Classify
// judges failures (by default 5xx but 501 and 505, and 429) count as failures for
// both; and the body of every failed attempt is drained, within DrainTimeout and
// MaxDrain, and closed, so that no connection leaks and no slow body holds the
// caller. When the last attempt fails with a status, the caller gets that response,
// as from any transport; errors are returned only when no response is to be had
// (the breaker was open, the network failed, the context ended).
//
// A Transport is safe for concurrent use. Create it with [NewTransport]; the zero value is not usable.
type Transport struct {
	base         http.RoundTripper
	group        *breaker.Group
	retry        *retry.Policy // nil: no retries
	idempotent   func(*http.Request) bool
	classify     selfheal.Classifier
	hostKey      func(*http.Request) string
	maxDrain     int64         // 0: no draining
	drainTimeout time.Duration // 0: no bound
	tracer       trace.Tracer
	nameAttr     attribute.KeyValue
}

// Defaults of [TransportConfig].
const (
	defaultMaxDrain              = 64 << 10
	defaultDrainTimeout          = 100 * time.Millisecond
	defaultResponseHeaderTimeout = 30 * time.Second
)

// NewTransport returns a Transport configured by cfg. An invalid cfg gives an error
// that matches [ErrInvalidConfig] and is a *[ConfigError] naming the field.
func NewTransport(cfg TransportConfig) (*Transport, error) {
	switch {
	case cfg.MaxDrain < 0 && cfg.MaxDrain != Off:
		return nil, invalid("TransportConfig.MaxDrain", "%d is negative; want >= 0 (0 means %d) or Off", cfg.MaxDrain, defaultMaxDrain)
	case cfg.DrainTimeout < 0 && cfg.DrainTimeout != Off:
		return nil, invalid("TransportConfig.DrainTimeout", "%v is negative; want >= 0 (0 means %v) or Off", cfg.DrainTimeout, defaultDrainTimeout)
	case cfg.ResponseHeaderTimeout < 0 && cfg.ResponseHeaderTimeout != Off:
		return nil, invalid("TransportConfig.ResponseHeaderTimeout", "%v is negative; want >= 0 (0 means %v) or Off", cfg.ResponseHeaderTimeout, defaultResponseHeaderTimeout)
	case cfg.Retry.AttemptTimeout != 0:
		return nil, invalid("TransportConfig.Retry.AttemptTimeout", "must be zero; bound requests with their context")
	case cfg.Retry.Classify != nil:
		return nil, invalid("TransportConfig.Retry.Classify", "must be nil; set TransportConfig.Classify")
	case cfg.Breaker.Breaker.Classify != nil:
		return nil, invalid("TransportConfig.Breaker.Breaker.Classify", "must be nil; set TransportConfig.Classify")
	}
	if cfg.Name == "" {
		cfg.Name = "http"
	}
	if cfg.Base == nil {
		cfg.Base = defaultBase(cfg.ResponseHeaderTimeout)
	}
	if cfg.Idempotent == nil {
		cfg.Idempotent = DefaultIdempotent
	}
	if cfg.Classify == nil {
		cfg.Classify = DefaultTransportClassify
	}
	if cfg.HostKey == nil {
		cfg.HostKey = func(r *http.Request) string { return r.URL.Host }
	}
	switch cfg.MaxDrain {
	case 0:
		cfg.MaxDrain = defaultMaxDrain
	case Off:
		cfg.MaxDrain = 0
	}
	switch cfg.DrainTimeout {
	case 0:
		cfg.DrainTimeout = defaultDrainTimeout
	case Off:
		cfg.DrainTimeout = 0
	}
	t := &Transport{base: cfg.Base, idempotent: cfg.Idempotent, classify: cfg.Classify,
		hostKey: cfg.HostKey, maxDrain: cfg.MaxDrain, drainTimeout: cfg.DrainTimeout,
		tracer: telemetry.Tracer(cfg.TracerProvider, "heal"), nameAttr: attrName.String(cfg.Name)}
	gc := cfg.Breaker
	if gc.Name == "" {
		gc.Name = cfg.Name
	}
	if gc.Breaker.Logger == nil {
		gc.Breaker.Logger = cfg.Logger
	}
	if gc.Breaker.MeterProvider == nil {
		gc.Breaker.MeterProvider = cfg.MeterProvider
	}
	if gc.Breaker.TracerProvider == nil {
		gc.Breaker.TracerProvider = cfg.TracerProvider
	}
	gc.Breaker.Classify = t.breakerClassify
	var err error
	if t.group, err = breaker.NewGroup(gc); err != nil {
		return nil, invalidSub("TransportConfig.Breaker", err)
	}
	if cfg.Retry.MaxAttempts != 1 {
		rc := cfg.Retry
		if rc.Name == "" {
			rc.Name = cfg.Name
		}
		if rc.Logger == nil {
			rc.Logger = cfg.Logger
		}
		if rc.MeterProvider == nil {
			rc.MeterProvider = cfg.MeterProvider
		}
		if rc.TracerProvider == nil {
			rc.TracerProvider = cfg.TracerProvider
		}
		rc.Classify = t.retryClassify
		if t.retry, err = retry.New(rc); err != nil {
			return nil, invalidSub("TransportConfig.Retry", err)
		}
	}
	return t, nil
}

// defaultBase is the Base of a TransportConfig that has none: a clone of
// http.DefaultTransport with a response-header timeout.
func defaultBase(headerTimeout time.Duration) http.RoundTripper {
	dt, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport // replaced by the program: its settings stand
	}
	b := dt.Clone()
	switch headerTimeout {
	case 0:
		b.ResponseHeaderTimeout = defaultResponseHeaderTimeout
	case Off:
	default:
		b.ResponseHeaderTimeout = headerTimeout
	}
	return b
}

// ignoredResponse is the error of an attempt whose response the transport's Classify
// judged Ignored: the breaker counts it neither way, the retries stop, and the
// caller gets the response.
type ignoredResponse struct{}

func (ignoredResponse) Error() string { return "heal: response classified as ignored" }

var errIgnoredResponse error = ignoredResponse{}

// breakerClassify judges an attempt for the host's breaker: the attempt function has
// already applied the transport's Classify to a response.
func (t *Transport) breakerClassify(_ any, err error) selfheal.Outcome {
	var se *StatusError
	switch {
	case err == nil:
		return selfheal.Success
	case err == errIgnoredResponse:
		return selfheal.Ignored
	case errors.As(err, &se):
		return selfheal.Failure
	}
	return t.classify(nil, err)
}

// retryClassify judges an attempt for the retries: as the breaker does, except that
// a rejection by an open or half-open breaker is not retried.
func (t *Transport) retryClassify(result any, err error) selfheal.Outcome {
	if errors.Is(err, breaker.ErrOpen) || errors.Is(err, breaker.ErrTooManyRequests) {
		return selfheal.Ignored
	}
	return t.breakerClassify(result, err)
}

var (
	_ http.RoundTripper = (*Transport)(nil)
	_ BreakerStates     = (*Transport)(nil)
	_ BreakerStates     = (*breaker.Group)(nil)
)

// Snapshot returns the state of the breaker of every host in use: a [BreakerStates].
func (t *Transport) Snapshot() []breaker.Snapshot { return t.group.Snapshot() }

// Breakers returns the transport's breaker group.
func (t *Transport) Breakers() *breaker.Group { return t.group }

// RoundTrip sends req through the host's breaker, retrying it when it is idempotent.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	c := &rtCall{t: t, req: req}
	cb := t.group.Get(t.hostKey(req))
	var err error
	if t.retry != nil && t.idempotent(req) && (req.Body == nil || req.Body == http.NoBody || req.GetBody != nil) {
		err = t.retry.Do(ctx, func(ctx context.Context) error { return cb.Do(ctx, c.attempt) })
	} else {
		err = cb.Do(ctx, c.attempt)
	}
	if !c.sent && req.Body != nil {
		req.Body.Close() // a RoundTripper always closes the body
	}
	if err == nil {
		return c.resp, nil
	}
	if c.failed != nil {
		// The last attempt got a response judged a failure (or ignored) and nothing
		// came after it: the caller gets that response, unless it has given up.
		var se *StatusError
		if ctx.Err() == nil && (errors.As(err, &se) && se == c.failedErr || errors.Is(err, errIgnoredResponse)) {
			return c.failed, nil
		}
		c.discard()
	}
	return nil, err
}

// rtCall is the state of one RoundTrip across its attempts; they run one at a time.
type rtCall struct {
	t         *Transport
	req       *http.Request
	n         int
	sent      bool
	resp      *http.Response
	failed    *http.Response // the last attempt's response judged a failure or ignored, not yet discarded
	failedErr *StatusError
}

func (c *rtCall) attempt(ctx context.Context) error {
	c.discard()
	var span trace.Span
	if trace.SpanFromContext(ctx).IsRecording() {
		ctx, span = c.t.startAttempt(ctx, c.req, c.n+1)
	}
	r := c.req
	if c.n > 0 && r.Body != nil && r.Body != http.NoBody {
		body, err := c.req.GetBody()
		if err != nil {
			err = retry.Permanent(fmt.Errorf("heal: replaying the request body: %w", err))
			if span != nil {
				endAttempt(span, nil, err)
			}
			return err
		}
		r = c.req.WithContext(ctx)
		r.Body = body
	} else if ctx != c.req.Context() {
		r = c.req.WithContext(ctx)
	}
	if span != nil {
		r = withTraceContext(ctx, r, c.req)
	}
	c.n++
	c.sent = true
	resp, err := c.t.base.RoundTrip(r)
	if span != nil {
		endAttempt(span, resp, err)
	}
	if err != nil {
		return err
	}
	switch c.t.classify(resp, nil) {
	case selfheal.Success:
		c.resp = resp
		return nil
	case selfheal.Ignored:
		c.failed = resp
		return errIgnoredResponse
	}
	se := &StatusError{StatusCode: resp.StatusCode, Status: resp.Status}
	if v := resp.Header.Get("Retry-After"); v != "" {
		if d, err := retry.ParseRetryAfter(v, time.Now()); err == nil {
			se.Delay = d
		}
	}
	c.failed, c.failedErr = resp, se
	return se
}

// discard drains and closes the body of the last failed attempt, reading at most
// maxDrain bytes for at most drainTimeout, so that a slow or endless body never holds
// up the next attempt or the caller (the connection is then closed, not reused).
func (c *rtCall) discard() {
	if c.failed == nil {
		return
	}
	body := c.failed.Body
	c.failed, c.failedErr = nil, nil
	if c.t.maxDrain > 0 {
		if c.t.drainTimeout > 0 {
			// Closing the body unblocks a read in progress (net/http closes the
			// connection under it).
			stop := time.AfterFunc(c.t.drainTimeout, func() { _ = body.Close() })
			defer stop.Stop()
		}
		_, _ = io.CopyN(io.Discard, body, c.t.maxDrain)
	}
	_ = body.Close()
}
