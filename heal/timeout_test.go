package heal_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal"
	"github.com/selfheal-go/selfheal/heal"
)

func TestTimeout(t *testing.T) {
	_, err := heal.NewTimeout(heal.TimeoutConfig{})
	require.ErrorContains(t, err, "Timeout")

	slow := func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Hour):
			return nil
		}
	}
	boom := errors.New("boom")
	tests := []struct {
		name     string
		parent   time.Duration // caller's deadline; 0 none
		fn       func(context.Context) error
		wantErr  error
		timedOut bool
		elapsed  time.Duration
	}{
		{"fast success", 0, ok, nil, false, 0},
		{"fast failure", 0, func(context.Context) error { return boom }, boom, false, 0},
		{"slow", 0, slow, heal.ErrTimeout, true, time.Second},
		{"caller's deadline first", 500 * time.Millisecond, slow, context.DeadlineExceeded, false, 500 * time.Millisecond},
		{"late success", 0, func(ctx context.Context) error { <-ctx.Done(); return nil }, nil, false, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				to, err := heal.NewTimeout(heal.TimeoutConfig{Name: "db", Timeout: time.Second})
				require.NoError(t, err)
				assert.Equal(t, time.Second, to.Duration())
				ctx := context.Background()
				if tt.parent > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.parent)
					defer cancel()
				}
				start := time.Now()
				err = to.Do(ctx, tt.fn)
				assert.Equal(t, tt.elapsed, time.Since(start))
				if tt.wantErr == nil {
					require.NoError(t, err)
					return
				}
				assert.ErrorIs(t, err, tt.wantErr)
				var te *heal.TimeoutError
				assert.Equal(t, tt.timedOut, errors.As(err, &te))
				if tt.timedOut {
					assert.ErrorIs(t, err, context.DeadlineExceeded)
					assert.Equal(t, "db", te.Name)
				}
			})
		})
	}
}

func TestFallback(t *testing.T) {
	_, err := heal.NewFallback(heal.FallbackConfig{})
	require.ErrorContains(t, err, "Func")

	boom := errors.New("boom")
	sub := errors.New("substitute")
	f, err := heal.NewFallback(heal.FallbackConfig{Func: func(_ context.Context, err error) error {
		if errors.Is(err, heal.ErrBulkheadFull) {
			return nil
		}
		return sub
	}})
	require.NoError(t, err)
	assert.Equal(t, "fallback", f.Name())
	assert.NoError(t, f.Do(context.Background(), ok))
	assert.ErrorIs(t, f.Do(context.Background(), func(context.Context) error { return boom }), sub)
	assert.NoError(t, f.Do(context.Background(), func(context.Context) error { return heal.ErrBulkheadFull }))
	// Cancellation by the caller is not handled by default.
	assert.ErrorIs(t, f.Do(context.Background(), func(context.Context) error { return context.Canceled }), context.Canceled)

	only, err := heal.NewFallback(heal.FallbackConfig{
		Classify: func(_ any, err error) selfheal.Outcome {
			if errors.Is(err, boom) {
				return selfheal.Failure
			}
			return selfheal.Ignored
		},
		Func: func(context.Context, error) error { return nil },
	})
	require.NoError(t, err)
	assert.NoError(t, only.Do(context.Background(), func(context.Context) error { return boom }))
	assert.ErrorIs(t, only.Do(context.Background(), func(context.Context) error { return sub }), sub)
}

func TestCallWithFallback(t *testing.T) {
	boom := errors.New("boom")
	v, err := heal.CallWithFallback(context.Background(), nil,
		func(context.Context) (string, error) { return "", boom }, nil, heal.Value("cached"))
	require.NoError(t, err)
	assert.Equal(t, "cached", v)

	v, err = heal.CallWithFallback(context.Background(), nil,
		func(context.Context) (string, error) { return "fresh", nil }, nil, heal.Value("cached"))
	require.NoError(t, err)
	assert.Equal(t, "fresh", v)

	_, err = heal.CallWithFallback(context.Background(), nil,
		func(context.Context) (string, error) { return "", boom },
		func(any, error) selfheal.Outcome { return selfheal.Ignored }, heal.Value("cached"))
	assert.ErrorIs(t, err, boom)

	// The classifier sees the value: a result can be replaced too.
	v, err = heal.CallWithFallback(context.Background(), nil,
		func(context.Context) (string, error) { return "stale", nil },
		func(result any, err error) selfheal.Outcome {
			if result == "stale" {
				return selfheal.Failure
			}
			return heal.DefaultFallbackClassify(result, err)
		}, heal.Value("cached"))
	require.NoError(t, err)
	assert.Equal(t, "cached", v)
}
