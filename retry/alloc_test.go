package retry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/selfheal-go/selfheal/retry"
)

// A failed attempt costs no allocation beyond the caller's own error: the error
// checks of the failure path (Permanent, AttemptTimeoutError, DelayHint) must not
// make their targets escape.
func TestFailedAttemptsDoNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("allocation counts differ under -cover")
	}
	errFlaky := errors.New("flaky")
	for _, tc := range []struct {
		name string
		cfg  retry.Config
	}{
		{"default classify", retry.Config{Backoff: retry.Constant(0)}},
		{"one attempt", retry.Config{Backoff: retry.Constant(0), MaxAttempts: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := retry.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			n := 0
			fn := func(context.Context) error {
				if n++; n%3 != 0 {
					return errFlaky
				}
				return nil
			}
			allocs := testing.AllocsPerRun(100, func() { _ = p.Do(ctx, fn) })
			if tc.cfg.MaxAttempts == 1 {
				// Gives up at once: the ExhaustedError is the one allocation.
				assert.LessOrEqual(t, allocs, 1.0)
				return
			}
			assert.Zero(t, allocs, "allocations per call of two failures then a success")
		})
	}
}
