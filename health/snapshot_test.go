package health_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/health"
)

// Snapshot runs nothing and calls no listener: a stale on-demand check keeps its old
// result in the Snapshot until Evaluate (or a probe) runs it.
func TestSnapshotHasNoSideEffects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs, heard atomic.Int32
		var failing atomic.Bool
		reg := newRegistry(t,
			health.Check{Name: "db", CacheTTL: time.Second, Func: func(context.Context) error {
				runs.Add(1)
				if failing.Load() {
					return errors.New("refused")
				}
				return nil
			}},
			health.Check{Name: "self", Kinds: health.Liveness, Func: pass},
		)
		reg.OnStatusChange(func(health.StatusChange) { heard.Add(1) })

		s := reg.Snapshot()
		assert.Equal(t, int32(0), runs.Load(), "Snapshot ran a check")
		assert.Equal(t, health.StatusFail, s.Status)
		require.Len(t, s.Checks, 2)
		assert.Equal(t, "db", s.Checks[0].Name)
		assert.True(t, s.Checks[0].Pending)
		assert.True(t, s.Checks[0].Time.IsZero())
		assert.Equal(t, health.StatusPass, s.StatusFor(health.Liveness), "a pending check passes liveness alone")
		assert.Equal(t, health.StatusFail, s.StatusFor(health.Readiness))

		assert.Equal(t, health.StatusPass, reg.Evaluate(context.Background(), 0))
		assert.Equal(t, int32(1), runs.Load())
		s = reg.Snapshot()
		assert.Equal(t, health.StatusPass, s.Status)
		assert.False(t, s.Checks[0].Pending)
		assert.Equal(t, time.Now(), s.Checks[0].Time)
		require.Len(t, s.Checks[0].Results, 1)

		// The result goes stale and the dependency fails: Snapshot still shows the
		// last result and runs nothing.
		failing.Store(true)
		time.Sleep(time.Minute)
		for range 5 {
			s = reg.Snapshot()
		}
		assert.Equal(t, int32(1), runs.Load(), "Snapshot ran a stale check")
		assert.Equal(t, int32(0), heard.Load(), "Snapshot called a listener")
		assert.Equal(t, health.StatusPass, s.StatusFor(health.Readiness))

		assert.Equal(t, health.StatusFail, reg.Evaluate(context.Background(), health.Readiness))
		assert.Equal(t, int32(2), runs.Load())
		assert.Equal(t, int32(1), heard.Load())
		s = reg.Snapshot()
		assert.Equal(t, health.StatusFail, s.Status)
		assert.Equal(t, "refused", s.Checks[0].Output)
		assert.Equal(t, health.StatusPass, s.StatusFor(health.Liveness))

		reg.SetDraining(true)
		s = reg.Snapshot()
		assert.True(t, s.Draining)
		assert.Equal(t, health.StatusFail, s.StatusFor(health.Readiness))
		assert.Equal(t, health.StatusPass, s.StatusFor(health.Liveness))
		assert.Equal(t, int32(2), runs.Load())
	})
}

// Snapshot is safe from a listener, where Evaluate would wait for itself.
func TestSnapshotFromListener(t *testing.T) {
	reg := newRegistry(t, health.Check{Name: "db", Func: failWith("down")})
	var seen health.Status
	reg.OnStatusChange(func(c health.StatusChange) { seen = reg.Snapshot().Status })
	reg.Evaluate(context.Background(), 0)
	assert.Equal(t, health.StatusFail, seen)
}

// Timeout: Off lets a run last as long as the function; the default cuts it at 5 s.
func TestTimeoutOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := func(ctx context.Context) error {
			select {
			case <-time.After(time.Minute):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		reg := newRegistry(t,
			health.Check{Name: "off", Timeout: health.Off, Func: slow},
			health.Check{Name: "default", Func: slow},
		)
		start := time.Now()
		doc := reg.Document(context.Background())
		assert.Equal(t, time.Minute, time.Since(start))
		assert.Equal(t, health.StatusPass, doc.Checks["off"][0].Status)
		assert.Equal(t, health.StatusFail, doc.Checks["default"][0].Status)
		assert.Contains(t, doc.Checks["default"][0].Output, "timed out after 5s")
	})
}

// CacheTTL: Off runs the check at every probe.
func TestCacheTTLOff(t *testing.T) {
	var runs atomic.Int32
	reg := newRegistry(t, health.Check{Name: "c", CacheTTL: health.Off, Func: func(context.Context) error { runs.Add(1); return nil }})
	for range 3 {
		reg.Evaluate(context.Background(), 0)
	}
	assert.Equal(t, int32(3), runs.Load())
}
