package heal_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/heal"
)

func TestRecorderPercentiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, err := heal.NewRecorder(heal.RecorderConfig{Window: -1})
		require.Error(t, err)
		r, err := heal.NewRecorder(heal.RecorderConfig{Window: 10 * time.Second})
		require.NoError(t, err)
		assert.Equal(t, heal.RecorderSnapshot{Window: 10 * time.Second}, r.Snapshot())

		// 1..1000 ms, evenly: p50 ~ 500ms, p99 ~ 990ms.
		for i := 1; i <= 1000; i++ {
			r.Observe(time.Duration(i) * time.Millisecond)
		}
		r.Shed()
		time.Sleep(2 * time.Second)
		s := r.Snapshot()
		assert.InEpsilon(t, float64(500*time.Millisecond), float64(s.P50), 0.04)
		assert.InEpsilon(t, float64(990*time.Millisecond), float64(s.P99), 0.04)
		assert.EqualValues(t, 1000, s.Served)
		assert.EqualValues(t, 1, s.Shed)
		assert.InDelta(t, 500, s.Throughput, 1) // 1000 over the 2s since start

		// The window slides: after 10s more, all of it is gone.
		time.Sleep(10 * time.Second)
		s = r.Snapshot()
		assert.Zero(t, s.Served)
		assert.Zero(t, s.P99)
		assert.Zero(t, s.Throughput)
	})
}

func TestRecorderSmallAndHuge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := heal.NewRecorder(heal.RecorderConfig{})
		require.NoError(t, err)
		assert.Equal(t, 30*time.Second, r.Window())
		r.Observe(3 * time.Microsecond)
		r.Observe(-time.Second)
		s := r.Snapshot()
		assert.Equal(t, 3*time.Microsecond+time.Microsecond/2, s.P99)
		r.Observe(1000 * time.Hour)
		assert.Greater(t, r.Snapshot().P99, 100*time.Hour)
	})
}
