package supervise_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/internal/oteltest"
	"github.com/selfheal-go/selfheal/supervise"
)

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := oteltest.NewMeterProvider()
		s, err := supervise.New(supervise.Config{Name: "root", MeterProvider: m, Backoff: supervise.NoBackoff})
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"selfheal.supervise.restarts", "selfheal.supervise.children.running", "selfheal.supervise.children.abandoned"}, m.InstrumentNames())

		runs := 0
		_, err = s.Add(supervise.Func(func(ctx context.Context) error {
			runs++
			switch runs {
			case 1:
				return errBoom
			case 2:
				panic("p")
			case 3:
				return nil
			}
			return blocker(ctx)
		}), supervise.ChildConfig{Name: "w"})
		require.NoError(t, err)
		_, err = s.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "idle"})
		require.NoError(t, err)
		_, err = s.Add(supervise.Func(func(context.Context) error { return nil }), supervise.ChildConfig{Name: "once", Restart: supervise.Transient})
		require.NoError(t, err)

		stop := serve(s)
		synctest.Wait()
		assert.Equal(t, map[string]int64{"root w error": 1, "root w panic": 1, "root w exit": 1},
			m.Int64SumBy("selfheal.supervise.restarts", "selfheal.supervisor.name", "selfheal.child.name", "selfheal.restart.cause"))
		assert.Equal(t, map[string]int64{"root": 2}, m.Observe(t).Int64By("selfheal.supervise.children.running", "selfheal.supervisor.name"))
		assert.Equal(t, map[string]int64{"root": 0}, m.Observe(t).Int64By("selfheal.supervise.children.abandoned", "selfheal.supervisor.name"))
		require.NoError(t, stop())
		assert.Empty(t, m.Observe(t).Int64By("selfheal.supervise.children.running", "selfheal.supervisor.name"), "the callback is unregistered when Serve returns")
		require.NotEmpty(t, m.Registrations())
		for _, r := range m.Registrations() {
			assert.True(t, r.Unregistered())
		}
	})
}
