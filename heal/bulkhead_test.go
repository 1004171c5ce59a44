package heal_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/heal"
)

func TestNewBulkheadErrors(t *testing.T) {
	tests := []struct {
		give heal.BulkheadConfig
		want string
	}{
		{heal.BulkheadConfig{MaxQueued: -1}, "MaxQueued"},
		{heal.BulkheadConfig{MaxWait: -1}, "MaxWait"},
	}
	for _, tt := range tests {
		_, err := heal.NewBulkhead(tt.give)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
	}
	b, err := heal.NewBulkhead(heal.BulkheadConfig{})
	require.NoError(t, err)
	assert.Equal(t, "bulkhead", b.Name())
	assert.Equal(t, 25, b.Snapshot().MaxConcurrent)
}

// block starts n calls through p that block until release is closed, and waits
// until they are all inside (synctest.Wait).
func blockIn(t *testing.T, p heal.Policy, n int, release chan struct{}, wg *sync.WaitGroup) {
	t.Helper()
	for range n {
		wg.Go(func() {
			_ = p.Do(context.Background(), func(context.Context) error { <-release; return nil })
		})
	}
	synctest.Wait()
}

func TestBulkheadRejectsWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := heal.NewBulkhead(heal.BulkheadConfig{Name: "db", MaxConcurrent: 2})
		require.NoError(t, err)
		release := make(chan struct{})
		var wg sync.WaitGroup
		blockIn(t, b, 2, release, &wg)
		assert.Equal(t, heal.BulkheadSnapshot{Name: "db", InFlight: 2, MaxConcurrent: 2}, b.Snapshot())
		assert.Equal(t, 1.0, b.Snapshot().Saturation())

		called := false
		err = b.Do(context.Background(), func(context.Context) error { called = true; return nil })
		assert.False(t, called)
		assert.ErrorIs(t, err, heal.ErrBulkheadFull)
		var rej *heal.RejectedError
		require.ErrorAs(t, err, &rej)
		assert.Equal(t, "db", rej.Name)
		assert.False(t, b.TryAcquire())
		assert.EqualValues(t, 1, b.Snapshot().Rejected)

		close(release)
		wg.Wait()
		assert.Equal(t, 0, b.Snapshot().InFlight)
		require.NoError(t, b.Do(context.Background(), func(context.Context) error { return nil }))
	})
}

func TestBulkheadQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := heal.NewBulkhead(heal.BulkheadConfig{MaxConcurrent: 1, MaxQueued: 1, MaxWait: time.Second})
		require.NoError(t, err)
		release := make(chan struct{})
		var wg sync.WaitGroup
		blockIn(t, b, 1, release, &wg)

		// One call waits in the queue; a second finds the queue full.
		queuedErr := make(chan error, 1)
		go func() { queuedErr <- b.Do(context.Background(), func(context.Context) error { return nil }) }()
		synctest.Wait()
		assert.Equal(t, 1, b.Snapshot().Queued)
		assert.ErrorIs(t, b.Do(context.Background(), func(context.Context) error { return nil }), heal.ErrBulkheadFull)

		// The slot frees before MaxWait: the queued call runs.
		time.Sleep(500 * time.Millisecond)
		close(release)
		require.NoError(t, <-queuedErr)
		wg.Wait()
		assert.Equal(t, 0, b.Snapshot().Queued)
	})
}

func TestBulkheadMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := heal.NewBulkhead(heal.BulkheadConfig{MaxConcurrent: 1, MaxQueued: 5, MaxWait: time.Second})
		require.NoError(t, err)
		release := make(chan struct{})
		var wg sync.WaitGroup
		blockIn(t, b, 1, release, &wg)
		start := time.Now()
		err = b.Do(context.Background(), func(context.Context) error { return nil })
		assert.ErrorIs(t, err, heal.ErrBulkheadFull)
		assert.Equal(t, time.Second, time.Since(start))
		close(release)
		wg.Wait()
	})
}

func TestBulkheadContextWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := heal.NewBulkhead(heal.BulkheadConfig{MaxConcurrent: 1, MaxQueued: 1})
		require.NoError(t, err)
		release := make(chan struct{})
		var wg sync.WaitGroup
		blockIn(t, b, 1, release, &wg)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = b.Do(ctx, func(context.Context) error { return nil })
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.False(t, heal.IsRejected(err))
		assert.Equal(t, 0, b.Snapshot().Queued)
		close(release)
		wg.Wait()
	})
}

func TestBulkheadReleasesOnPanic(t *testing.T) {
	b, err := heal.NewBulkhead(heal.BulkheadConfig{MaxConcurrent: 1})
	require.NoError(t, err)
	assert.PanicsWithValue(t, "boom", func() {
		_ = b.Do(context.Background(), func(context.Context) error { panic("boom") })
	})
	assert.Equal(t, 0, b.Snapshot().InFlight)
	boom := errors.New("boom")
	assert.ErrorIs(t, b.Do(context.Background(), func(context.Context) error { return boom }), boom)
	assert.Panics(t, b.Release)
}
