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
	// period minus ShutdownTimeout. [Off] means no delay: the server shuts down as
	// soon as readiness fails (for servers no load balancer watches). Other negative
	// values are invalid.
	Delay time.Duration
	// ShutdownTimeout bounds http.Server.Shutdown (in-flight requests finishing).
	// When it expires, the remaining connections are closed. Zero means
	// DefaultShutdownTimeout (10 s). [Off] means no bound: Shutdown waits for every
	// request in flight. Other negative values are invalid.
	ShutdownTimeout time.Duration
	// Signals that start draining in DrainOnSignal. Nil (the default) means SIGTERM
	// and os.Interrupt.
	Signals []os.Signal
}

// normalize validates c and fills in the defaults; Off becomes zero.
func (c DrainConfig) normalize() (DrainConfig, error) {
	switch {
	case c.Delay < 0 && c.Delay != Off:
		return c, &ConfigError{Field: "DrainConfig.Delay", Reason: c.Delay.String() + " is negative; want >= 0, or Off for no delay"}
	case c.ShutdownTimeout < 0 && c.ShutdownTimeout != Off:
		return c, &ConfigError{Field: "DrainConfig.ShutdownTimeout", Reason: c.ShutdownTimeout.String() + " is negative; want >= 0, or Off for no bound"}
	}
	switch c.Delay {
	case 0:
		c.Delay = DefaultDrainDelay
	case Off:
		c.Delay = 0
	}
	switch c.ShutdownTimeout {
	case 0:
		c.ShutdownTimeout = DefaultShutdownTimeout
	case Off:
		c.ShutdownTimeout = 0
	}
	if len(c.Signals) == 0 {
		c.Signals = []os.Signal{syscall.SIGTERM, os.Interrupt}
	}
	return c, nil
}

// Drain shuts srv down gracefully: readiness fails at once (liveness keeps passing, so
// the orchestrator does not restart a process that is merely leaving), then Drain
// waits cfg.Delay for load balancers to notice, then calls srv.Shutdown bounded by
// cfg.ShutdownTimeout, and closes the connections left when it expires. srv may be
// nil: then Drain only flips readiness and waits. When ctx ends during the delay,
// Drain skips the rest of it and shuts down at once.
//
// Errors: a *[ConfigError] (matching [ErrInvalidConfig]) at once, before anything
// changes, when cfg is invalid; nil when srv shut down cleanly
// (http.ErrServerClosed is not an error here); otherwise the error of Shutdown
// (context.DeadlineExceeded after the timeout) joined with that of Close.
func (r *Registry) Drain(ctx context.Context, srv *http.Server, cfg DrainConfig) error {
	cfg, err := cfg.normalize()
	if err != nil {
		return err
	}
	return r.drain(ctx, srv, cfg)
}

func (r *Registry) drain(ctx context.Context, srv *http.Server, cfg DrainConfig) error {
	r.SetDraining(true)
	if cfg.Delay > 0 {
		t := time.NewTimer(cfg.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if srv == nil {
		return nil
	}
	sctx := context.WithoutCancel(ctx)
	if cfg.ShutdownTimeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(sctx, cfg.ShutdownTimeout)
		defer cancel()
	}
	err := srv.Shutdown(sctx)
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return errors.Join(err, srv.Close())
}

// DrainOnSignal waits for one of cfg.Signals (SIGTERM and os.Interrupt by default),
// then drains as [Registry.Drain] does. It returns ctx.Err() when ctx ends first,
// without draining, and a *[ConfigError] at once when cfg is invalid. It stops
// listening for the signals when it returns, so a second signal during the drain has
// the default effect (for SIGTERM: exit at once).
func (r *Registry) DrainOnSignal(ctx context.Context, srv *http.Server, cfg DrainConfig) error {
	cfg, err := cfg.normalize()
	if err != nil {
		return err
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, cfg.Signals...)
	select {
	case <-c:
		signal.Stop(c)
		return r.drain(ctx, srv, cfg)
	case <-ctx.Done():
		signal.Stop(c)
		return ctx.Err()
	}
}
