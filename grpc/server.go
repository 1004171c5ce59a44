package healgrpc

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/heal"
)

// DefaultMaxConcurrent is the concurrency limit of a [Server] whose
// ServerConfig.MaxConcurrent is zero.
const DefaultMaxConcurrent = 1000

// ServerConfig configures a [Server]. The zero value recovers panics, records the
// latency of unary calls and sheds only beyond 1000 calls at once.
type ServerConfig struct {
	// MaxConcurrent is how many calls (unary calls and open streams) may be served
	// at once; beyond it a call is shed with RESOURCE_EXHAUSTED and a pushback of
	// Pushback. Zero means 1000; [Off] means no bound. Other negative values are
	// invalid.
	MaxConcurrent int
	// Rate is how many calls a second are admitted; beyond it a call is shed with
	// RESOURCE_EXHAUSTED and a pushback saying when a token arrives. Zero (the
	// default) means no rate limit. Negative, NaN and infinite values are invalid.
	Rate float64
	// Burst is the rate limit's bucket size. Zero means Rate rounded up. Negative is
	// invalid.
	Burst int
	// RateLimit, when set, is the rate limit instead of Rate and Burst (which must
	// then be zero): a limiter shared with other servers or HTTP middleware, or one
	// whose rate is changed while serving. In its RateLimitWait mode a call waits
	// for a token (within its deadline and the limiter's MaxWait) instead of being
	// shed at once.
	RateLimit *heal.RateLimit
	// Limit, when set, bounds concurrency adaptively (see heal.AdaptiveLimit): a
	// call over its current limit is shed with RESOURCE_EXHAUSTED and a pushback of
	// Pushback. Each unary call served feeds its latency to the limit; a call that
	// ends in DEADLINE_EXCEEDED (or whose deadline passed) or RESOURCE_EXHAUSTED is a
	// drop, which brings the limit down; a call cancelled by its client is not
	// sampled. An open stream holds a slot and is not sampled. It applies beside
	// MaxConcurrent: set MaxConcurrent to Off to leave the bound to the limit alone.
	Limit *heal.AdaptiveLimit
	// Pushback is the delay a call shed for concurrency asks its client to wait
	// before retrying, sent in the grpc-retry-pushback-ms trailer. Zero means 1s.
	// Negative is invalid.
	Pushback time.Duration
	// Recorder receives the latency of every unary call served, and a count of
	// every call shed. Nil means a recorder of the Server's own, with Window; give
	// the heal.Middleware's recorder (Middleware.Recorder) to have the http:*
	// components of the health document count gRPC calls too.
	Recorder *heal.Recorder
	// Window is the window of the Server's own recorder (when Recorder is nil).
	// Zero means 30s. Negative is invalid.
	Window time.Duration
	// Exempt reports the methods (full names, "/pkg.Service/Method") that are never
	// shed or recorded. Nil means [DefaultExempt]: grpc.health.v1 and server
	// reflection, so that an overloaded server still answers its probes.
	Exempt func(fullMethod string) bool
	// MeterProvider receives the Server's metrics (selfheal.grpc.server.shed and
	// .panics, see TELEMETRY.md) and those of the rate limit it builds from Rate.
	// Nil means the global provider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the tracer of the shed and panic events' own spans,
	// for calls that have no span (with one, they are events on it when it is
	// recording). Nil means the global provider.
	TracerProvider trace.TracerProvider
	// Logger receives recovered panics with their stack. Nil means no logging, as
	// everywhere in selfheal (a recovered panic is still counted in
	// selfheal.grpc.server.panics and recorded on the call's span).
	Logger *slog.Logger
}

// DefaultExempt is the default Exempt of a [ServerConfig]: the methods of
// grpc.health.v1.Health and of server reflection.
func DefaultExempt(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

// Server holds the server-side policies of gRPC calls: panic recovery, load
// shedding by concurrency and rate, and a latency recorder. Its interceptors
// ([Server.UnaryServerInterceptor], [Server.StreamServerInterceptor]) may serve
// any number of grpc.Servers. A Server is safe for concurrent use and starts no
// goroutines. Create it with [NewServer]; the zero Server is not usable.
type Server struct {
	max      int64 // 0: no bound
	limiter  *heal.RateLimit
	limit    *heal.AdaptiveLimit
	pushback time.Duration
	rec      *heal.Recorder
	exempt   func(string) bool
	logger   *slog.Logger
	tel      serverTelemetry

	inFlight atomic.Int64
	panics   atomic.Int64
}

// NewServer returns a Server configured by cfg. An invalid cfg gives an error that
// matches [ErrInvalidConfig] and is a *[ConfigError] naming the field.
func NewServer(cfg ServerConfig) (*Server, error) {
	s := &Server{pushback: cfg.Pushback, rec: cfg.Recorder, exempt: cfg.Exempt, logger: cfg.Logger}
	switch {
	case cfg.MaxConcurrent == 0:
		s.max = DefaultMaxConcurrent
	case cfg.MaxConcurrent == Off:
	case cfg.MaxConcurrent < 0:
		return nil, invalid("ServerConfig.MaxConcurrent", "%d is negative", cfg.MaxConcurrent)
	default:
		s.max = int64(cfg.MaxConcurrent)
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) {
		return nil, invalid("ServerConfig.Rate", "%v is not a finite non-negative number", cfg.Rate)
	}
	if cfg.Burst < 0 {
		return nil, invalid("ServerConfig.Burst", "%d is negative", cfg.Burst)
	}
	s.limiter, s.limit = cfg.RateLimit, cfg.Limit
	if cfg.RateLimit != nil && (cfg.Rate != 0 || cfg.Burst != 0) {
		return nil, invalid("ServerConfig.Rate", "must be zero with ServerConfig.RateLimit")
	}
	if cfg.Rate > 0 {
		l, err := heal.NewRateLimit(heal.RateLimitConfig{Name: "grpc.server", Rate: cfg.Rate, Burst: cfg.Burst,
			MeterProvider: cfg.MeterProvider, TracerProvider: cfg.TracerProvider})
		if err != nil {
			return nil, err
		}
		s.limiter = l
	}
	if cfg.Pushback < 0 {
		return nil, invalid("ServerConfig.Pushback", "%v is negative", cfg.Pushback)
	}
	if s.pushback == 0 {
		s.pushback = time.Second
	}
	if s.rec == nil {
		if cfg.Window < 0 {
			return nil, invalid("ServerConfig.Window", "%v is negative", cfg.Window)
		}
		rec, err := heal.NewRecorder(heal.RecorderConfig{Window: cfg.Window})
		if err != nil {
			return nil, err
		}
		s.rec = rec
	}
	if s.exempt == nil {
		s.exempt = DefaultExempt
	}
	s.tel = newServerTelemetry(cfg.MeterProvider, cfg.TracerProvider)
	return s, nil
}

// Recorder returns the recorder the Server feeds.
func (s *Server) Recorder() *heal.Recorder { return s.rec }

// ServerOptions returns the options that install both interceptors on a
// grpc.Server.
func (s *Server) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(s.StreamServerInterceptor()),
	}
}

// ServerSnapshot is what a [Server] reports: its recorder's figures and its load.
type ServerSnapshot struct {
	heal.RecorderSnapshot
	InFlight      int64 // calls being served (open streams included)
	MaxConcurrent int64 // the concurrency bound; 0 when there is none
	Panics        int64 // panics recovered since the Server was created
}

// Snapshot reads the Server's figures. It has no side effects.
func (s *Server) Snapshot() ServerSnapshot {
	return ServerSnapshot{
		RecorderSnapshot: s.rec.Snapshot(),
		InFlight:         s.inFlight.Load(),
		MaxConcurrent:    s.max,
		Panics:           s.panics.Load(),
	}
}

// admit takes a concurrency slot, a slot of the adaptive limit and a token, or
// returns the error of a shed call and the pushback to send with it. On success the
// caller must call release with the call's error.
func (s *Server) admit(ctx context.Context) (tok heal.LimitToken, pushback time.Duration, reason string, err error) {
	if n := s.inFlight.Add(1); s.max > 0 && n > s.max {
		s.inFlight.Add(-1)
		return tok, s.pushback, reasonConcurrency, status.Error(codes.ResourceExhausted, "healgrpc: server at its concurrency limit")
	}
	if s.limit != nil {
		var ok bool
		if tok, ok = s.limit.Acquire(ctx); !ok {
			s.inFlight.Add(-1)
			return tok, s.pushback, reasonLimit, status.Error(codes.ResourceExhausted, "healgrpc: server at its adaptive concurrency limit")
		}
	}
	if s.limiter != nil {
		if err := s.limiter.Take(ctx); err != nil {
			giveBack(tok)
			s.inFlight.Add(-1)
			if ctx.Err() != nil {
				return tok, 0, reasonRateLimit, status.FromContextError(ctx.Err()).Err()
			}
			d, ok := heal.RetryAfter(err)
			if !ok {
				d = s.pushback
			}
			return tok, d, reasonRateLimit, status.Error(codes.ResourceExhausted, "healgrpc: server over its rate limit")
		}
	}
	return tok, 0, "", nil
}

// release gives back what admit took; err is the call's error (for a stream, nil:
// a stream is not sampled).
func (s *Server) release(ctx context.Context, tok heal.LimitToken, err error, sample bool) {
	if s.limit != nil {
		if !sample {
			giveBack(tok)
		} else {
			tok.Release(ctx, dropped(ctx, err))
		}
	}
	s.inFlight.Add(-1)
}

// canceled is a context cancelled once and for all: a token released with it gives
// its slot back without a sample (the limit ignores calls their caller cancelled).
var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// giveBack returns the slot of tok without sampling a latency.
func giveBack(tok heal.LimitToken) { tok.Release(canceled, false) }

// dropped reports whether a call served ended as a drop for the adaptive limit: it
// ran out of time, or said the server was exhausted.
func dropped(ctx context.Context, err error) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	}
	return false
}

// shed counts a shed unary call and sends its pushback (none when the call's own
// deadline ended it while it waited for a token).
func (s *Server) shed(ctx context.Context, method, reason string, d time.Duration) {
	s.rec.Shed()
	s.tel.recordShed(ctx, method, reason, d)
	if d > 0 {
		_ = grpc.SetTrailer(ctx, pushbackMD(d))
	}
}

// recoverPanic turns a panic of a handler into INTERNAL, logged with its stack.
func (s *Server) recoverPanic(ctx context.Context, method string, err *error) {
	if v := recover(); v != nil {
		s.panics.Add(1)
		s.tel.recordPanic(ctx, method)
		svc, m := splitMethod(method)
		if s.logger != nil {
			s.logger.ErrorContext(ctx, "healgrpc: panic in handler", "rpc.system", "grpc", "rpc.service", svc, "rpc.method", m, "panic", v, "stack", string(debug.Stack()))
		}
		*err = status.Error(codes.Internal, "internal error")
	}
}

// UnaryServerInterceptor returns the server interceptor of unary calls: it sheds
// a call over the concurrency limit or the rate with RESOURCE_EXHAUSTED and a
// grpc-retry-pushback-ms trailer (before the handler runs, so that the call may be
// retried whatever its method), turns a panic of the handler into INTERNAL (logged
// with the stack), and records the latency of the calls it served.
func (s *Server) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		if s.exempt(info.FullMethod) {
			defer s.recoverPanic(ctx, info.FullMethod, &err)
			return handler(ctx, req)
		}
		tok, d, reason, err := s.admit(ctx)
		if err != nil {
			s.shed(ctx, info.FullMethod, reason, d)
			return nil, err
		}
		start := time.Now()
		defer func() {
			s.release(ctx, tok, err, true)
			s.rec.Observe(time.Since(start))
		}()
		defer s.recoverPanic(ctx, info.FullMethod, &err)
		return handler(ctx, req)
	}
}

// StreamServerInterceptor returns the server interceptor of streams: shedding and
// panic recovery as for unary calls. An open stream holds a concurrency slot until
// its handler returns; its duration is not recorded as latency (a stream lasts as
// long as its peers want).
func (s *Server) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		ctx := ss.Context()
		if s.exempt(info.FullMethod) {
			defer s.recoverPanic(ctx, info.FullMethod, &err)
			return handler(srv, ss)
		}
		tok, d, reason, err := s.admit(ss.Context())
		if err != nil {
			s.rec.Shed()
			s.tel.recordShed(ss.Context(), info.FullMethod, reason, d)
			if d > 0 {
				ss.SetTrailer(pushbackMD(d))
			}
			return err
		}
		defer func() { s.release(ss.Context(), tok, nil, false) }()
		defer s.recoverPanic(ctx, info.FullMethod, &err)
		return handler(srv, ss)
	}
}
