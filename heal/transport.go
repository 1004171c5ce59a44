package heal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/retry"
)

// DefaultIsFailureStatus is the default classification of a [Transport]: a 5xx or
// a 429 Too Many Requests response is a failure of the attempt.
func DefaultIsFailureStatus(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests
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
	StatusCode int
	Status     string
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
	// Breaker configures the breaker of each host. Its Classify sees the error of
	// every failed attempt (a *StatusError for a failure status). Zero: the
	// breaker package's defaults, with at most 1024 hosts.
	Breaker breaker.GroupConfig
	// Retry configures the retries of idempotent requests. MaxAttempts 1 disables
	// them. Its Classify (default retry.DefaultClassify) is consulted after the
	// transport's own rules: a request whose host's breaker is open is not retried,
	// and a *StatusError is. AttemptTimeout must be zero: a per-attempt context
	// would end before the response body is read; bound the whole request with its
	// context or http.Client.Timeout.
	Retry retry.Config
	// Idempotent reports whether a request may be sent more than once.
	// Default DefaultIdempotent. A request with a body is retried only if it has
	// GetBody (http.NewRequest sets it for the usual body types).
	Idempotent func(*http.Request) bool
	// IsFailureStatus reports whether a response status is a failure of the
	// attempt. Default DefaultIsFailureStatus.
	IsFailureStatus func(code int) bool
	// HostKey returns the breaker key of a request. Default: req.URL.Host.
	HostKey func(*http.Request) string
	// MaxDrain bounds how much of a failed attempt's body is read before it is
	// closed, so that the connection can be reused. Default 64 KiB.
	MaxDrain int64
}

// Transport is an [http.RoundTripper] that heals the client side of HTTP: a
// circuit breaker per host ([breaker.Group]) fails fast while a host is down;
// idempotent requests are retried with backoff (their bodies replayed through
// GetBody), honouring Retry-After; 5xx and 429 responses count as failures for both;
// and the body of every failed attempt is drained and closed so that no connection
// leaks. When the last attempt fails with a status, the caller gets that response,
// as from any transport; errors are returned only when no response is to be had
// (the breaker was open, the network failed, the context ended).
//
// A Transport is safe for concurrent use. Create it with [NewTransport]; the zero value is not usable.
type Transport struct {
	base       http.RoundTripper
	group      *breaker.Group
	retry      *retry.Policy // nil: no retries
	idempotent func(*http.Request) bool
	isFailure  func(int) bool
	hostKey    func(*http.Request) string
	maxDrain   int64
}

// NewTransport returns a Transport configured by cfg, or an error naming the invalid
// field.
func NewTransport(cfg TransportConfig) (*Transport, error) {
	if cfg.Name == "" {
		cfg.Name = "http"
	}
	if cfg.Base == nil {
		cfg.Base = http.DefaultTransport
	}
	if cfg.Idempotent == nil {
		cfg.Idempotent = DefaultIdempotent
	}
	if cfg.IsFailureStatus == nil {
		cfg.IsFailureStatus = DefaultIsFailureStatus
	}
	if cfg.HostKey == nil {
		cfg.HostKey = func(r *http.Request) string { return r.URL.Host }
	}
	if cfg.MaxDrain <= 0 {
		cfg.MaxDrain = 64 << 10
	}
	if cfg.Retry.AttemptTimeout != 0 {
		return nil, fmt.Errorf("heal: TransportConfig.Retry.AttemptTimeout must be zero; bound requests with their context")
	}
	gc := cfg.Breaker
	if gc.Name == "" {
		gc.Name = cfg.Name
	}
	g, err := breaker.NewGroup(gc)
	if err != nil {
		return nil, fmt.Errorf("heal: TransportConfig.Breaker: %w", err)
	}
	t := &Transport{base: cfg.Base, group: g, idempotent: cfg.Idempotent, isFailure: cfg.IsFailureStatus,
		hostKey: cfg.HostKey, maxDrain: cfg.MaxDrain}
	if cfg.Retry.MaxAttempts != 1 {
		rc := cfg.Retry
		if rc.Name == "" {
			rc.Name = cfg.Name
		}
		rc.Classify = transportRetryClassify(rc.Classify)
		if t.retry, err = retry.New(rc); err != nil {
			return nil, fmt.Errorf("heal: TransportConfig.Retry: %w", err)
		}
	}
	return t, nil
}

func transportRetryClassify(user selfheal.Classifier) selfheal.Classifier {
	if user == nil {
		user = retry.DefaultClassify
	}
	return func(result any, err error) selfheal.Outcome {
		if errors.Is(err, breaker.ErrOpen) || errors.Is(err, breaker.ErrTooManyRequests) {
			return selfheal.Ignored
		}
		var se *StatusError
		if errors.As(err, &se) {
			return selfheal.Failure
		}
		return user(result, err)
	}
}

var (
	_ http.RoundTripper = (*Transport)(nil)
	_ BreakerStates     = (*Transport)(nil)
	_ BreakerStates     = (*breaker.Group)(nil)
)

// States returns the state of the breaker of every host in use: a [BreakerStates].
func (t *Transport) States() []breaker.Snapshot { return t.group.States() }

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
		// The last attempt got a failure status and nothing came after it: the
		// caller gets that response, unless it has given up.
		var se *StatusError
		if errors.As(err, &se) && se == c.failedErr && ctx.Err() == nil {
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
	failed    *http.Response // the last failed attempt's response, not yet discarded
	failedErr *StatusError
}

func (c *rtCall) attempt(ctx context.Context) error {
	c.discard()
	r := c.req
	if c.n > 0 && r.Body != nil && r.Body != http.NoBody {
		body, err := c.req.GetBody()
		if err != nil {
			return retry.Permanent(fmt.Errorf("heal: replaying the request body: %w", err))
		}
		r = c.req.WithContext(ctx)
		r.Body = body
	} else if ctx != c.req.Context() {
		r = c.req.WithContext(ctx)
	}
	c.n++
	c.sent = true
	resp, err := c.t.base.RoundTrip(r)
	if err != nil {
		return err
	}
	if !c.t.isFailure(resp.StatusCode) {
		c.resp = resp
		return nil
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

// discard drains and closes the body of the last failed attempt.
func (c *rtCall) discard() {
	if c.failed == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, c.failed.Body, c.t.maxDrain)
	_ = c.failed.Body.Close()
	c.failed, c.failedErr = nil, nil
}
