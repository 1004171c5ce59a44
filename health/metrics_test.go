package health_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/health"
	"github.com/selfheal-go/selfheal/internal/oteltest"
)

func TestMetrics(t *testing.T) {
	m := oteltest.NewMeterProvider()
	reg := health.New(health.Config{MeterProvider: m})
	assert.Equal(t, []string{"github.com/selfheal-go/selfheal/health"}, m.Scopes())
	assert.ElementsMatch(t, []string{"selfheal.health.check.duration", "selfheal.health.check.status"}, m.InstrumentNames())

	require.NoError(t, reg.Register(health.Check{Name: "ok", Func: pass}))
	require.NoError(t, reg.Register(health.Check{Name: "bad", Func: failWith("x")}))
	require.NoError(t, reg.Register(health.Check{Name: "meh", NonCritical: true, Func: failWith("x")}))
	reg.Evaluate(context.Background(), 0)

	var durations []string
	for _, r := range m.Records("selfheal.health.check.duration") {
		durations = append(durations, oteltest.Key(r.Attributes, "selfheal.check.name", "selfheal.state"))
	}
	assert.ElementsMatch(t, []string{"ok pass", "bad fail", "meh warn"}, durations)

	require.Len(t, m.Registrations(), 1)
	assert.Equal(t, map[string]int64{"ok": 0, "meh": 1, "bad": 2}, m.Observe(t).Int64By("selfheal.health.check.status", "selfheal.check.name"))
}

func TestLoggerRecordsStatusChanges(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	reg := health.New(health.Config{Logger: logger})
	require.NoError(t, reg.Register(health.Check{Name: "db", Func: failWith("refused")}))
	reg.Evaluate(context.Background(), 0)
	assert.Equal(t, "level=WARN msg=\"health: check status changed\" selfheal.check.name=db selfheal.state.previous=pass selfheal.state=fail output=refused\n", buf.String())
}

// The status gauge's callback holds its registry weakly: a registry that is garbage
// is not kept alive by a meter provider that outlives it, and its callback is
// unregistered.
func TestGaugeCallbackDoesNotKeepRegistriesAlive(t *testing.T) {
	m := oteltest.NewMeterProvider()
	func() {
		reg := health.New(health.Config{MeterProvider: m})
		require.NoError(t, reg.Register(health.Check{Name: "gone", Func: pass}))
		reg.Evaluate(context.Background(), 0)
		assert.Equal(t, map[string]int64{"gone": 0}, m.Observe(t).Int64By("selfheal.health.check.status", "selfheal.check.name"))
	}()
	regs := m.Registrations()
	require.Len(t, regs, 1)
	assert.Equal(t, 1, oteltest.AwaitUnregistered(10*time.Second, regs...), "callback unregistered")
	obs, err := regs[0].Collect(context.Background())
	require.NoError(t, err)
	assert.Zero(t, obs.Len(), "a collected registry observes nothing")
}
