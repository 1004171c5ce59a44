package breaker_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal/breaker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

func fail(context.Context) error { return errBoom }
func ok(context.Context) error   { return nil }

func TestDefaultTripsAfterFiveFailures(t *testing.T) {
	b, err := breaker.New("x", breaker.Config{})
	require.NoError(t, err)
	for range 5 {
		require.ErrorIs(t, b.Do(t.Context(), fail), errBoom)
	}
	err = b.Do(t.Context(), ok)
	require.ErrorIs(t, err, breaker.ErrOpen)
	var oe *breaker.OpenError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "x", oe.Name)
	assert.Equal(t, breaker.StateOpen, b.State().State)
}
