package health

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Default settings of [DrainConfig].
const (
	DefaultDrainDelay      = 5 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
)

// DrainConfig configures [Registry.Drain] and [Registry.DrainOnSignal]. The zero
// value means the defaults below.
type DrainConfig struct {
	// Delay is how long readiness fails before the server stops accepting
	// connections, so that load balancers and endpoint controllers notice and stop
	// sending traffic. Zero means DefaultDrainDelay (5 s); keep it above the readiness
	// probe's period times its failure threshold, and below the orchestrator's grace
	// period minus ShutdownTimeout.
	Delay time.Duration
	// ShutdownTimeout bounds http.Server.Shutdown (in-flight requests finishing).
	// When it expires, the remaining connections are closed. Zero means
	// DefaultShutdownTimeout (10 s).
	ShutdownTimeout time.Duration
	// Signals that start draining in DrainOnSignal. Nil means SIGTERM and os.Interrupt.
	Signals []os.Signal
}

func (c DrainConfig) normalize() DrainConfig {
	if c.Delay <= 0 {
		c.Delay = DefaultDrainDelay
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if len(c.Signals) == 0 {
		c.Signals = []os.Signal{syscall.SIGTERM, os.Interrupt}
	}
	return c
}

// Drain shuts srv down gracefully: readiness fails at once (liveness keeps passing, so
// the orchestrator does not restart a process that is merely leaving), then Drain
// waits cfg.Delay for load balancers to notice, then calls srv.Shutdown bounded by
// cfg.ShutdownTimeout, and closes the connections left when it expires. srv may be
// nil: then Drain only flips readiness and waits. When ctx ends during the delay,
// Drain skips the rest of it and shuts down at once.
//
// Errors: nil when srv shut down cleanly (http.ErrServerClosed is not an error
// here); otherwise the error of Shutdown (context.DeadlineExceeded after the
// timeout) joined with that of Close.
func (r *Registry) Drain(ctx context.Context, srv *http.Server, cfg DrainConfig) error {
	cfg = cfg.normalize()
	r.SetDraining(true)
	t := time.NewTimer(cfg.Delay)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	if srv == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return errors.Join(err, srv.Close())
}

// DrainOnSignal waits for one of cfg.Signals (SIGTERM and os.Interrupt by default),
// then drains as [Registry.Drain] does. It returns ctx.Err() when ctx ends first,
// without draining. It stops listening for the signals when it returns, so a second
// signal during the drain has the default effect (for SIGTERM: exit at once).
func (r *Registry) DrainOnSignal(ctx context.Context, srv *http.Server, cfg DrainConfig) error {
	cfg = cfg.normalize()
	c := make(chan os.Signal, 1)
	signal.Notify(c, cfg.Signals...)
	select {
	case <-c:
		signal.Stop(c)
		return r.Drain(ctx, srv, cfg)
	case <-ctx.Done():
		signal.Stop(c)
		return ctx.Err()
	}
}
