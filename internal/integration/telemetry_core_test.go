package integration_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/health"
	"github.com/selfheal-go/selfheal/retry"
	"github.com/selfheal-go/selfheal/supervise"
)

func init() {
	scenarios = append(scenarios, breakerScenario, retryScenario, healthScenario, superviseScenario)
}

func ok(context.Context) error   { return nil }
func fail(context.Context) error { return errBoom }

// breakerScenario: success, failure, excluded, rejected; closed -> open (by
// failures), open -> closed (forced, by Reset).
func breakerScenario(t *testing.T, s *sdk) {
	b, err := breaker.New(breaker.Config{Name: "db", ConsecutiveFailures: 1, MeterProvider: s.mp, TracerProvider: s.tp, Logger: s.log})
	require.NoError(t, err)
	ctx, end := s.caller(t.Context())
	defer end()
	require.NoError(t, b.Do(ctx, ok))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.Error(t, b.Do(cctx, func(ctx context.Context) error { return ctx.Err() }))
	require.Error(t, b.Do(ctx, fail))
	require.ErrorIs(t, b.Do(ctx, ok), breaker.ErrOpen)
	b.Reset()
	s.collect(t) // the observable instruments hold b weakly: read them while it lives
	runtime.KeepAlive(b)
}

// retryScenario: a named policy that retries, succeeds, gives up, and meets a
// permanent error, a panic and a cancellation, inside a recording trace.
func retryScenario(t *testing.T, s *sdk) {
	p, err := retry.New(retry.Config{Name: "api", MaxAttempts: 2, Backoff: retry.Constant(time.Microsecond),
		MeterProvider: s.mp, TracerProvider: s.tp, Logger: s.log})
	require.NoError(t, err)
	ctx, end := s.caller(t.Context())
	defer end()
	n := 0
	require.NoError(t, p.Do(ctx, func(context.Context) error {
		if n++; n == 1 {
			return errBoom
		}
		return nil
	}))
	var ex *retry.ExhaustedError
	require.ErrorAs(t, p.Do(ctx, fail), &ex)
	require.Error(t, p.Do(ctx, func(context.Context) error { return retry.Permanent(errBoom) }))
	assert.Panics(t, func() { _ = p.Do(ctx, func(context.Context) error { panic("boom") }) })
	cctx, cancel := context.WithCancel(ctx)
	require.Error(t, p.Do(cctx, func(context.Context) error { cancel(); return errBoom }))
	s.collect(t) // while p lives (its counter is observed through a weak pointer)
	runtime.KeepAlive(p)
}

// healthScenario: a check that passes, then fails (a status change), run by probes
// inside a recording trace.
func healthScenario(t *testing.T, s *sdk) {
	r := health.New(health.Config{MeterProvider: s.mp, TracerProvider: s.tp, Logger: s.log})
	failing := false
	require.NoError(t, r.Register(health.Check{Name: "db", CacheTTL: health.Off, Func: func(context.Context) error {
		if failing {
			return errBoom
		}
		return nil
	}}))
	ctx, end := s.caller(t.Context())
	defer end()
	assert.Equal(t, health.StatusPass, r.Evaluate(ctx, health.Readiness))
	failing = true
	assert.Equal(t, health.StatusFail, r.Evaluate(ctx, health.Readiness))
	failing = false
	assert.Equal(t, health.StatusPass, r.Evaluate(ctx, health.Readiness))
	s.collect(t) // while r lives
	runtime.KeepAlive(r)
}

// superviseScenario: a child that fails and is restarted, one that keeps failing
// until the supervisor gives up, one that is abandoned and returns later, and a
// significant child whose end shuts its supervisor down.
func superviseScenario(t *testing.T, s *sdk) {
	ctx, end := s.caller(t.Context())
	defer end()

	// Restarts, then giving up.
	sup, err := supervise.New(supervise.Config{Name: "root", MaxRestarts: 1, Backoff: supervise.NoBackoff,
		MeterProvider: s.mp, TracerProvider: s.tp, Logger: s.log})
	require.NoError(t, err)
	_, err = sup.Add(supervise.Func(fail), supervise.ChildConfig{Name: "w"})
	require.NoError(t, err)
	require.ErrorIs(t, sup.Serve(ctx), supervise.ErrGaveUp)

	// A child that ignores its context is abandoned, and returns later; a
	// significant Transient child that ends shuts the supervisor down.
	release := make(chan struct{})
	returned := make(chan struct{})
	started := make(chan struct{})
	sup, err = supervise.New(supervise.Config{Name: "auto", AutoShutdown: supervise.AnySignificant, ShutdownTimeout: time.Millisecond,
		MeterProvider: s.mp, TracerProvider: s.tp, Logger: s.log})
	require.NoError(t, err)
	_, err = sup.Add(supervise.Func(func(context.Context) error {
		defer close(returned)
		close(started)
		<-release
		return nil
	}), supervise.ChildConfig{Name: "stuck"})
	require.NoError(t, err)
	_, err = sup.Add(supervise.Func(func(context.Context) error {
		<-started
		return nil
	}), supervise.ChildConfig{Name: "job", Restart: supervise.Transient, Significant: true})
	require.NoError(t, err)
	err = sup.Serve(ctx) // the stuck child's abandonment is the error of the shutdown
	var ab *supervise.StopTimeoutError
	require.ErrorAs(t, err, &ab)
	close(release)
	<-returned
	// A child that panics once, a Temporary child that fails (and stops), and a
	// child that collects the metrics while the supervisor serves.
	pAgain, tmpStopped := make(chan struct{}), make(chan struct{})
	sup, err = supervise.New(supervise.Config{Name: "more", MeterProvider: s.mp, TracerProvider: s.tp, Logger: s.log,
		Hook: func(e supervise.Event) {
			if e.Kind == supervise.EventStopped && e.Child == "tmp" {
				close(tmpStopped)
			}
		}})
	require.NoError(t, err)
	panicked := false
	_, err = sup.Add(supervise.Func(func(ctx context.Context) error {
		if !panicked {
			panicked = true
			panic("boom")
		}
		close(pAgain)
		<-ctx.Done()
		return nil
	}), supervise.ChildConfig{Name: "p"})
	require.NoError(t, err)
	_, err = sup.Add(supervise.Func(fail), supervise.ChildConfig{Name: "tmp", Restart: supervise.Temporary})
	require.NoError(t, err)
	sctx, stop := context.WithCancel(ctx)
	_, err = sup.Add(supervise.Func(func(context.Context) error {
		<-pAgain
		<-tmpStopped
		s.collect(t)
		stop()
		return nil
	}), supervise.ChildConfig{Name: "collector", Restart: supervise.Temporary})
	require.NoError(t, err)
	require.NoError(t, sup.Serve(sctx))

	// The abandoned copy's return is reported on its own goroutine.
	require.Eventually(t, func() bool {
		s.logs.mu.Lock()
		defer s.logs.mu.Unlock()
		_, ok := s.logs.keys["supervise: returned"]
		return ok
	}, 5*time.Second, time.Millisecond)
}
