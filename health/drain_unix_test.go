//go:build unix

package health_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/health"
)

func TestDrainOnSignal(t *testing.T) {
	reg := newRegistry(t, health.Check{Name: "self", Kinds: health.AllKinds, Func: pass})
	srv, base, served := startServer(t, reg.Handler(health.HandlerConfig{}))

	// Keep SIGUSR1 from killing the test process whatever the timing.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGUSR1)
	defer signal.Stop(guard)

	drained := make(chan error, 1)
	go func() {
		drained <- reg.DrainOnSignal(context.Background(), srv, health.DrainConfig{Delay: 10 * time.Millisecond, Signals: []os.Signal{syscall.SIGUSR1}})
	}()
	require.True(t, waitFor(func() bool {
		_ = syscall.Kill(syscall.Getpid(), syscall.SIGUSR1)
		time.Sleep(20 * time.Millisecond)
		return reg.Draining()
	}))
	require.NoError(t, <-drained)
	assert.ErrorIs(t, <-served, http.ErrServerClosed)
	_, err := noKeepAlive.Get(base + "/livez")
	assert.Error(t, err)

	// Without a signal, the context ends it without draining.
	reg2 := newRegistry(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = reg2.DrainOnSignal(ctx, nil, health.DrainConfig{})
	assert.True(t, errors.Is(err, context.Canceled))
	assert.False(t, reg2.Draining())
}
