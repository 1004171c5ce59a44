package heal_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/heal"
	"github.com/selfheal-go/selfheal/health"
	"github.com/selfheal-go/selfheal/supervise"
)

// entries returns the document's entries under key by componentId.
func entries(t *testing.T, doc *health.Document, key string) map[string]health.CheckResult {
	t.Helper()
	out := map[string]health.CheckResult{}
	rs, ok := doc.Checks[key]
	require.True(t, ok, "no %s in the document", key)
	for _, r := range rs {
		out[r.ComponentID] = r
	}
	return out
}

func TestRegisterHealthServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := heal.NewMiddleware(heal.MiddlewareConfig{MaxConcurrent: 4, Window: 10 * time.Second})
		require.NoError(t, err)
		release := make(chan struct{})
		h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/block" {
				<-release
				return
			}
			time.Sleep(20 * time.Millisecond)
		}))
		for range 10 {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		}
		for range 5 {
			go h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/block", nil))
		}
		synctest.Wait() // 4 in flight, 1 shed

		reg := health.New(health.Config{})
		require.NoError(t, heal.RegisterHealth(reg, heal.HealthSources{Server: m}))
		doc := reg.Document(context.Background())

		rt := entries(t, doc, heal.CheckResponseTime)
		p50, _ := rt["p50"].Float()
		assert.InEpsilon(t, 20, p50, 0.04)
		assert.Equal(t, "ms", rt["p99"].ObservedUnit)
		util := entries(t, doc, heal.CheckUtilization)[""]
		assert.Equal(t, 100.0, util.ObservedValue)
		assert.Equal(t, "%", util.ObservedUnit)
		assert.Equal(t, 4, entries(t, doc, heal.CheckInFlight)[""].ObservedValue)
		assert.Equal(t, "requests", entries(t, doc, heal.CheckInFlight)[""].ObservedUnit)
		assert.EqualValues(t, 1, entries(t, doc, heal.CheckShed)[""].ObservedValue)
		tp := entries(t, doc, heal.CheckThroughput)[""]
		assert.Equal(t, "req/s", tp.ObservedUnit)
		v, _ := tp.Float()
		assert.Greater(t, v, 0.0)
		assert.Equal(t, health.StatusPass, reg.Evaluate(context.Background(), health.Readiness))
		close(release)
		synctest.Wait()
	})
}

func TestRegisterHealthBreakersBulkheads(t *testing.T) {
	reg := health.New(health.Config{})
	b1, err := breaker.New(breaker.Config{Name: "payments"})
	require.NoError(t, err)
	b2, err := breaker.New(breaker.Config{Name: "search"})
	require.NoError(t, err)
	g, err := breaker.NewGroup(breaker.GroupConfig{Name: "hosts"})
	require.NoError(t, err)
	_ = g.Get("a.example")
	bh, err := heal.NewBulkhead(heal.BulkheadConfig{Name: "db", MaxConcurrent: 1})
	require.NoError(t, err)
	require.NoError(t, heal.RegisterHealth(reg, heal.HealthSources{
		Breakers:  []heal.BreakerStates{heal.Breakers(b1, b2), g},
		Bulkheads: []*heal.Bulkhead{bh},
	}))
	ctx := context.Background()
	assert.Equal(t, health.StatusPass, reg.Evaluate(ctx, health.Readiness))

	b1.ForceOpen()
	require.True(t, bh.TryAcquire())
	defer bh.Release()
	doc := reg.Document(ctx)
	bs := entries(t, doc, heal.CheckBreakerState)
	assert.Equal(t, "open", bs["payments"].ObservedValue)
	assert.Equal(t, health.StatusWarn, bs["payments"].Status)
	assert.Equal(t, "forced open", bs["payments"].Output)
	assert.Equal(t, "closed", bs["search"].ObservedValue)
	assert.Equal(t, "closed", bs["hosts/a.example"].ObservedValue)
	bk := entries(t, doc, heal.CheckBulkhead)["db"]
	assert.Equal(t, 100.0, bk.ObservedValue)
	assert.Equal(t, health.StatusWarn, bk.Status)

	// An open breaker makes readiness warn, never fail, and liveness is untouched.
	assert.Equal(t, health.StatusWarn, reg.Evaluate(ctx, health.Readiness))
	assert.Equal(t, health.StatusPass, reg.Evaluate(ctx, health.Liveness))

	// Registering twice reports the duplicates.
	err = heal.RegisterHealth(reg, heal.HealthSources{Bulkheads: []*heal.Bulkhead{bh}})
	assert.ErrorIs(t, err, health.ErrDuplicate)
}

func TestRegisterHealthSupervisor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sup, err := supervise.New(supervise.Config{Name: "root"})
		require.NoError(t, err)
		_, err = sup.Add(supervise.Func(func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		}), supervise.ChildConfig{Name: "worker"})
		require.NoError(t, err)
		_, err = sup.Add(supervise.Func(func(ctx context.Context) error {
			return errors.New("connection refused")
		}), supervise.ChildConfig{Name: "flaky"})
		require.NoError(t, err)
		reg := health.New(health.Config{})
		require.NoError(t, heal.RegisterHealth(reg, heal.HealthSources{Supervisors: []*supervise.Supervisor{sup}}))

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- sup.Serve(ctx) }()
		synctest.Wait()

		doc := reg.Document(context.Background())
		ss := entries(t, doc, heal.CheckSupervisor)
		assert.Equal(t, "running", ss["root"].ObservedValue)
		assert.Equal(t, "running", ss["root/worker"].ObservedValue)
		assert.Equal(t, health.StatusPass, ss["root/worker"].Status)
		assert.Equal(t, "backing-off", ss["root/flaky"].ObservedValue)
		assert.Equal(t, health.StatusWarn, ss["root/flaky"].Status)
		assert.Equal(t, "connection refused", ss["root/flaky"].Output)
		assert.Equal(t, health.StatusPass, reg.Evaluate(context.Background(), health.Liveness))
		cancel()
		<-done
	})
}

func TestServerChecksWithoutLimit(t *testing.T) {
	m, err := heal.NewMiddleware(heal.MiddlewareConfig{MaxConcurrent: heal.Off})
	require.NoError(t, err)
	var names []string
	for _, c := range heal.ServerChecks(m) {
		names = append(names, c.Name)
	}
	// Without a concurrency limit there is no utilization to report.
	assert.ElementsMatch(t, []string{heal.CheckResponseTime, heal.CheckInFlight, heal.CheckShed, heal.CheckThroughput}, names)
}
