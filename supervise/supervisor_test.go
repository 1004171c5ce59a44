package supervise_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/supervise"
)

func TestOneForOneRestartsAfterError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		s, err := supervise.New(supervise.Config{Name: "root", Hook: rec.hook})
		require.NoError(t, err)
		runs := 0
		_, err = s.Add(supervise.Func(func(ctx context.Context) error {
			runs++
			if runs <= 2 {
				return errors.New("boom")
			}
			return blocker(ctx)
		}), supervise.ChildConfig{Name: "worker"})
		require.NoError(t, err)
		stop := serve(s)
		time.Sleep(time.Second) // in the bubble: past the backoff
		synctest.Wait()
		st := s.Snapshot()
		require.Len(t, st.Children, 1)
		c := st.Children[0]
		assert.Equal(t, "worker", c.Name)
		assert.Equal(t, "root/worker", c.Path)
		assert.Equal(t, supervise.StateRunning, c.State)
		assert.Equal(t, 2, c.Restarts)
		assert.Equal(t, "boom", c.LastError)
		assert.Equal(t, supervise.StateRunning, st.State)
		require.NoError(t, stop())
		assert.Equal(t, 3, runs)
		assert.Equal(t, supervise.StateStopped, s.Snapshot().Children[0].State)
		assert.Equal(t, supervise.StateStopped, s.Snapshot().State)
		// The second restart waited the default backoff (100ms ± 50%).
		var delays []time.Duration
		for _, e := range rec.all() {
			if e.Kind == supervise.EventRestarting {
				delays = append(delays, e.Delay)
			}
		}
		require.Len(t, delays, 2)
		assert.Zero(t, delays[0])
		assert.InDelta(t, 100*time.Millisecond, delays[1], float64(50*time.Millisecond))
	})
}

func TestStopOrderIsReverse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		s, err := supervise.New(supervise.Config{Name: "root", Hook: rec.hook})
		require.NoError(t, err)
		for _, n := range []string{"a", "b", "c", "d"} {
			_, err := s.Add(supervise.Func(blocker), supervise.ChildConfig{Name: n})
			require.NoError(t, err)
		}
		stop := serve(s)
		synctest.Wait()
		require.NoError(t, stop())
		assert.Equal(t, []string{
			"started:a", "started:b", "started:c", "started:d",
			"stopped:d", "stopped:c", "stopped:b", "stopped:a",
		}, rec.trace(supervise.EventStarted, supervise.EventStopped))
	})
}
