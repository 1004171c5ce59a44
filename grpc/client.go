package healgrpc

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/retry"
)

// DefaultClientName is the name of a [Client] whose Config has none.
const DefaultClientName = "grpc"

// DefaultMaxTargets is the bound on the targets a [Client] keeps state for when
// ClientConfig.MaxTargets is zero.
const DefaultMaxTargets = 256

// maxCachedMethods bounds the breaker keys a Client caches per target; beyond it a
// call builds its key (one small allocation) instead of caching it.
const maxCachedMethods = 1024

// ClientConfig configures a [Client]. The zero value guards every call with a
// default breaker per target and method and retries UNAVAILABLE calls of idempotent
// methods (none, until Idempotent says so) and calls a server pushed back, with the
// retry package's defaults and a default budget per target.
type ClientConfig struct {
	// Name names the breaker group: a breaker is named "<Name>/<target><method>",
	// for example "grpc/dns:///users:443/users.v1.Users/Get". Default "grpc".
	Name string
	// Breaker configures the breaker of each target and method. Zero: the breaker
	// package's defaults, with at most 1024 live breakers. Its Name is not used
	// (see Name); its Breaker.Classify must be nil: the breakers judge calls by
	// Classify.
	Breaker breaker.GroupConfig
	// Retry configures the retries. MaxAttempts 1 disables them. Its Classify must
	// be nil: which calls are retried is decided by RetryCodes, Idempotent and the
	// server's pushback (see the package documentation). AttemptTimeout applies to
	// unary calls only (a stream outlives its opening). Retry.Budget, when set, is
	// shared by every target instead of the per-target budgets of Budget.
	Retry retry.Config
	// Budget configures the retry budget of each target (each ClientConn target
	// gets its own, shared by all its methods). Zero: the retry package's
	// defaults (20% of the calls of the last 10s, plus 10 retries a second).
	Budget retry.BudgetConfig
	// RetryCodes are the status codes retried for an idempotent method, and, with
	// a pushback from the server, for any method. Nil means [codes.Unavailable]
	// alone. RESOURCE_EXHAUSTED is retried only with a pushback, whatever this
	// says.
	RetryCodes []codes.Code
	// Idempotent reports whether a method (its full name, "/pkg.Service/Method")
	// may be sent again after the server has seen it. Nil means no method is
	// idempotent: only calls the server pushed back are retried. See
	// [IdempotentMethods].
	Idempotent func(fullMethod string) bool
	// MeterProvider and TracerProvider are given to the breakers (Breaker.Breaker)
	// and the retry policy (Retry) whose own are nil, so that one setting places
	// all of the Client's metrics, spans and events (see TELEMETRY.md). Nil means
	// the global providers.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// MaxTargets bounds the ClientConn targets the Client keeps state for (a retry
	// budget and a cache of breaker keys each). Beyond it, the target used least
	// recently is forgotten (its budget starts afresh if it comes back), so that
	// many or hostile targets cannot grow the Client without bound. The breakers
	// are bounded by Breaker.MaxKeys. Zero means 256; [Off] means no bound. Other
	// negative values are invalid.
	MaxTargets int
	// Classify judges each call (or stream) for its breaker, from its error (the
	// result is always nil). Nil means [DefaultClassify]. It is called on the
	// calling goroutine (for a stream, on the goroutine that sees it end) and may
	// be called concurrently.
	Classify selfheal.Classifier
}

// IdempotentMethods returns an Idempotent function for [ClientConfig] that accepts
// exactly the given full method names ("/pkg.Service/Method").
func IdempotentMethods(fullMethods ...string) func(string) bool {
	set := make(map[string]struct{}, len(fullMethods))
	for _, m := range fullMethods {
		set[m] = struct{}{}
	}
	return func(m string) bool { _, ok := set[m]; return ok }
}

// DefaultClassify is the default Classify of a [ClientConfig]: nil is a success;
// CANCELED is ignored (the caller gave up); UNAVAILABLE, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED, INTERNAL, UNKNOWN, DATA_LOSS and errors without a status are
// failures of the server; every other code (NOT_FOUND, INVALID_ARGUMENT, ...) is an
// answer, a success as far as the breaker is concerned.
func DefaultClassify(_ any, err error) selfheal.Outcome {
	if err == nil {
		return selfheal.Success
	}
	switch status.Code(err) {
	case codes.Canceled:
		return selfheal.Ignored
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted,
		codes.Internal, codes.Unknown, codes.DataLoss:
		return selfheal.Failure
	}
	return selfheal.Success
}

// Client holds the client-side policies of gRPC calls: a breaker group keyed by
// target and method, and a retry policy with a budget per target. Its interceptors
// ([Client.UnaryClientInterceptor], [Client.StreamClientInterceptor]) may serve any
// number of ClientConns. A Client is safe for concurrent use and starts no
// goroutines. Create it with [NewClient]; the zero Client is not usable.
type Client struct {
	name       string
	group      *breaker.Group
	rcfg       retry.Config
	bcfg       retry.BudgetConfig
	retryCodes []codes.Code
	idempotent func(string) bool
	classify   selfheal.Classifier
	maxTargets int // 0: no bound

	tick    atomic.Int64 // a logical clock for the targets' last use
	mu      sync.RWMutex
	targets map[string]*target
}

// target is the state a Client keeps per ClientConn target.
type target struct {
	name   string
	policy *retry.Policy
	used   atomic.Int64 // the Client's tick at its last use
	mu     sync.RWMutex
	keys   map[string]string // method -> breaker key
}

// NewClient returns a Client configured by cfg. An invalid cfg gives an error that
// matches [ErrInvalidConfig] and is a *[ConfigError] naming the field (or one of
// the breaker and retry packages' own configuration errors, wrapped).
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultClientName
	}
	if cfg.Breaker.Breaker.Classify != nil {
		return nil, invalid("ClientConfig.Breaker.Breaker.Classify", "must be nil: set ClientConfig.Classify")
	}
	if cfg.Retry.Classify != nil {
		return nil, invalid("ClientConfig.Retry.Classify", "must be nil: retries follow RetryCodes, Idempotent and pushback")
	}
	if cfg.Classify == nil {
		cfg.Classify = DefaultClassify
	}
	if cfg.RetryCodes == nil {
		cfg.RetryCodes = []codes.Code{codes.Unavailable}
	}
	for _, c := range cfg.RetryCodes {
		if c == codes.OK {
			return nil, invalid("ClientConfig.RetryCodes", "OK is not an error")
		}
	}
	switch {
	case cfg.MaxTargets == 0:
		cfg.MaxTargets = DefaultMaxTargets
	case cfg.MaxTargets == Off:
		cfg.MaxTargets = 0
	case cfg.MaxTargets < 0:
		return nil, invalid("ClientConfig.MaxTargets", "%d is negative", cfg.MaxTargets)
	}
	c := &Client{
		maxTargets: cfg.MaxTargets,
		name:       cfg.Name,
		rcfg:       cfg.Retry,
		bcfg:       cfg.Budget,
		retryCodes: append([]codes.Code(nil), cfg.RetryCodes...),
		idempotent: cfg.Idempotent,
		classify:   cfg.Classify,
		targets:    map[string]*target{},
	}
	gcfg := cfg.Breaker
	gcfg.Name = cfg.Name
	if gcfg.Breaker.MeterProvider == nil {
		gcfg.Breaker.MeterProvider = cfg.MeterProvider
	}
	if gcfg.Breaker.TracerProvider == nil {
		gcfg.Breaker.TracerProvider = cfg.TracerProvider
	}
	if c.rcfg.MeterProvider == nil {
		c.rcfg.MeterProvider = cfg.MeterProvider
	}
	if c.rcfg.TracerProvider == nil {
		c.rcfg.TracerProvider = cfg.TracerProvider
	}
	classify := cfg.Classify
	gcfg.Breaker.Classify = func(result any, err error) selfheal.Outcome { return classify(result, err) }
	g, err := breaker.NewGroup(gcfg)
	if err != nil {
		return nil, err
	}
	c.group = g
	c.rcfg.Classify = retryClassify
	if c.rcfg.Name == "" {
		c.rcfg.Name = cfg.Name
	}
	// Check the retry and budget settings now, not at the first call.
	if _, err := c.newTarget(""); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) newTarget(name string) (*target, error) {
	rcfg := c.rcfg
	if rcfg.Budget == nil {
		b, err := retry.NewBudget(c.bcfg)
		if err != nil {
			return nil, err
		}
		rcfg.Budget = b
	}
	p, err := retry.New(rcfg)
	if err != nil {
		return nil, err
	}
	return &target{name: name, policy: p, keys: map[string]string{}}, nil
}

// target returns the state of a ClientConn target, creating it on first use (and
// forgetting the least recently used one when the Client keeps MaxTargets).
func (c *Client) target(name string) *target {
	c.mu.RLock()
	t := c.targets[name]
	c.mu.RUnlock()
	if t == nil {
		c.mu.Lock()
		if t = c.targets[name]; t == nil {
			if c.maxTargets > 0 && len(c.targets) >= c.maxTargets {
				c.evictLocked()
			}
			t, _ = c.newTarget(name) // the settings were checked by NewClient
			c.targets[name] = t
		}
		c.mu.Unlock()
	}
	if c.maxTargets > 0 {
		t.used.Store(c.tick.Add(1))
	}
	return t
}

// evictLocked forgets the least recently used target. A scan, but only when a new
// target arrives at a full Client.
func (c *Client) evictLocked() {
	var oldest *target
	for _, t := range c.targets {
		if oldest == nil || t.used.Load() < oldest.used.Load() {
			oldest = t
		}
	}
	if oldest != nil {
		delete(c.targets, oldest.name)
	}
}

// Targets returns how many targets the Client keeps state for now.
func (c *Client) Targets() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.targets)
}

// breaker returns the breaker of method on t.
func (c *Client) breaker(t *target, method string) *breaker.Breaker {
	t.mu.RLock()
	key, ok := t.keys[method]
	t.mu.RUnlock()
	if !ok {
		key = t.name + method
		t.mu.Lock()
		if len(t.keys) < maxCachedMethods {
			t.keys[method] = key
		}
		t.mu.Unlock()
	}
	return c.group.Get(key)
}

// Snapshot reports the state of every live breaker, for heal.BreakerCheck.
func (c *Client) Snapshot() []breaker.Snapshot { return c.group.Snapshot() }

// DialOptions returns the options that install both interceptors on a ClientConn.
func (c *Client) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(c.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(c.StreamClientInterceptor()),
	}
}

// attemptError is the error of one failed attempt as the retry policy sees it:
// whether it may be retried, and after what delay the server asked for.
type attemptError struct {
	err   error
	retry bool
	delay time.Duration
}

func (e *attemptError) Error() string              { return e.err.Error() }
func (e *attemptError) Unwrap() error              { return e.err }
func (e *attemptError) RetryAfter() time.Duration  { return e.delay }
func (e *attemptError) GRPCStatus() *status.Status { return status.Convert(e.err) }

func retryClassify(_ any, err error) selfheal.Outcome {
	var ae *attemptError
	if errors.As(err, &ae) && ae.retry {
		return selfheal.Failure
	}
	return selfheal.Ignored
}

func (c *Client) retryable(code codes.Code) bool {
	for _, rc := range c.retryCodes {
		if rc == code {
			return true
		}
	}
	return false
}

// judge decides whether the failed attempt err of method may be retried. seen
// reports whether the server may have seen the call's messages.
func (c *Client) judge(method string, err error, trailer metadata.MD, seen bool) error {
	code := status.Code(err)
	d, ok, present := pushback(trailer)
	ae := &attemptError{err: err, delay: d}
	switch {
	case present && !ok:
		// The server said: do not retry.
	case present:
		ae.retry = code == codes.ResourceExhausted || c.retryable(code)
	case !seen || (c.idempotent != nil && c.idempotent(method)):
		ae.retry = c.retryable(code)
	}
	return ae
}

// rejected is the error of a call its breaker refused: UNAVAILABLE, wrapping the
// breaker's *breaker.OpenError.
func rejected(err error) error {
	return &statusError{st: status.New(codes.Unavailable, err.Error()), err: err}
}

// result turns what the retry policy returned into the error a gRPC caller expects:
// a status error whose code is the last attempt's (or the context's, once the
// caller's context is done) and which still wraps the policy's error.
func result(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	ctxErr := ctx.Err()
	if dl, ok := ctx.Deadline(); ok && ctxErr == nil && !time.Now().Before(dl) {
		// The deadline has passed but ctx's timer has not fired yet (it runs on a
		// goroutine of its own, late on a loaded machine): the deadline still wins.
		ctxErr = context.DeadlineExceeded
	}
	if ctxErr != nil {
		return &statusError{st: status.FromContextError(ctxErr), err: errors.Join(err, ctxErr)}
	}
	var ae *attemptError
	if !errors.As(err, &ae) {
		return err // a rejection by the breaker, already a status error
	}
	if ae == err {
		return ae.err // not retried: the attempt's own error
	}
	return &statusError{st: status.Convert(ae.err), err: err}
}

// UnaryClientInterceptor returns the client interceptor of unary calls: each
// attempt passes the breaker of its target and method; failed attempts are
// retried as the package documentation says, after the server's pushback when it
// sent one, within the target's budget and never past ctx's deadline.
func (c *Client) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		t := c.target(cc.Target())
		b := c.breaker(t, method)
		var trailer metadata.MD
		opts = append(opts[:len(opts):len(opts)], grpc.Trailer(&trailer))
		err := t.policy.Do(ctx, func(ctx context.Context) error {
			done, err := b.Allow(ctx)
			if err != nil {
				return rejected(err)
			}
			trailer = nil
			err = invoker(ctx, method, req, reply, cc, opts...)
			done(nil, err)
			if err == nil {
				return nil
			}
			return c.judge(method, err, trailer, true)
		})
		return result(ctx, err)
	}
}

// StreamClientInterceptor returns the client interceptor of streams. A stream is
// guarded when it is opened: its breaker must let it through, and an opening that
// fails with one of RetryCodes (nothing has been sent yet) is retried as a unary
// call is. Once open, a stream is never replayed: its errors reach the caller as
// they are, and its end (io.EOF or an error from RecvMsg) is reported to the
// breaker.
func (c *Client) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		t := c.target(cc.Target())
		b := c.breaker(t, method)
		var cs grpc.ClientStream
		err := t.policy.Do(ctx, func(context.Context) error {
			done, err := b.Allow(ctx)
			if err != nil {
				return rejected(err)
			}
			// The caller's ctx, not the attempt's: the stream outlives this function.
			s, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil {
				done(nil, err)
				return c.judge(method, err, nil, false)
			}
			cs = &clientStream{ClientStream: s, done: done, serverStreams: desc.ServerStreams}
			return nil
		})
		if err != nil {
			return nil, result(ctx, err)
		}
		return cs, nil
	}
}

// clientStream reports the end of a stream to its breaker.
type clientStream struct {
	grpc.ClientStream
	done          func(any, error)
	serverStreams bool
}

func (s *clientStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	switch {
	case err == io.EOF:
		s.done(nil, nil)
	case err != nil:
		s.done(nil, err)
	case !s.serverStreams:
		s.done(nil, nil) // the one response of a unary-response stream
	}
	return err
}
