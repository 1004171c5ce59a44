package health_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/health"
)

func TestRegisterErrors(t *testing.T) {
	reg := newRegistry(t, health.Check{Name: "a", Func: pass})
	obs := func(context.Context) ([]health.Observation, error) { return nil, nil }
	tests := []struct {
		name      string
		give      health.Check
		wantField string
		wantErr   error
	}{
		{name: "empty name", give: health.Check{Func: pass}, wantField: "Check.Name"},
		{name: "slash", give: health.Check{Name: "a/b", Func: pass}, wantField: "Check.Name"},
		{name: "space", give: health.Check{Name: "a b", Func: pass}, wantField: "Check.Name"},
		{name: "no func", give: health.Check{Name: "x"}, wantField: "Check.Func"},
		{name: "both funcs", give: health.Check{Name: "x", Func: pass, Observe: obs}, wantField: "Check.Func"},
		{name: "bad kind", give: health.Check{Name: "x", Func: pass, Kinds: 1 << 5}, wantField: "Check.Kinds"},
		{name: "negative interval", give: health.Check{Name: "x", Func: pass, Interval: -1}, wantField: "Check.Interval"},
		{name: "negative initial delay", give: health.Check{Name: "x", Func: pass, InitialDelay: -1}, wantField: "Check.InitialDelay"},
		{name: "negative jitter", give: health.Check{Name: "x", Func: pass, Jitter: -1}, wantField: "Check.Jitter"},
		{name: "negative timeout other than Off", give: health.Check{Name: "x", Func: pass, Timeout: -2}, wantField: "Check.Timeout"},
		{name: "negative cache TTL other than Off", give: health.Check{Name: "x", Func: pass, CacheTTL: -time.Second}, wantField: "Check.CacheTTL"},
		{name: "negative threshold", give: health.Check{Name: "x", Func: pass, FailureThreshold: -1}, wantField: "Check.FailureThreshold"},
		{name: "negative success threshold", give: health.Check{Name: "x", Func: pass, SuccessThreshold: -1}, wantField: "Check.SuccessThreshold"},
		{name: "duplicate", give: health.Check{Name: "a", Func: pass}, wantErr: health.ErrDuplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := reg.Register(tt.give)
			require.Error(t, err)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			assert.ErrorIs(t, err, health.ErrInvalidConfig)
			var ce *health.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.wantField, ce.Field)
			assert.Equal(t, health.ErrInvalidConfig, errors.Unwrap(err))
			assert.True(t, strings.HasPrefix(err.Error(), "health: invalid configuration: "+tt.wantField+": "), err.Error())
		})
	}
	assert.Equal(t, []string{"a"}, reg.Names())
	assert.False(t, reg.Remove("nope"))
	assert.True(t, reg.Remove("a"))
	assert.Empty(t, reg.Names())
}

func TestKindString(t *testing.T) {
	assert.Equal(t, "liveness|readiness", (health.Liveness | health.Readiness).String())
	assert.Equal(t, "startup", health.Startup.String())
	assert.Equal(t, "none", health.Kind(0).String())
}

// Four concurrent probes of one 100 ms check share one run: each finishes after
// 100 ms, and the check runs once.
func TestConcurrentProbesShareOneRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		reg := newRegistry(t, health.Check{Name: "slow", CacheTTL: health.Off, Func: func(ctx context.Context) error {
			runs.Add(1)
			time.Sleep(100 * time.Millisecond)
			return nil
		}})
		h := reg.Handler(health.HandlerConfig{})
		start := time.Now()
		var wg sync.WaitGroup
		took := make([]time.Duration, 4)
		for i := range took {
			wg.Go(func() {
				code, _, _ := get(t, h, "/readyz", false)
				assert.Equal(t, 200, code)
				took[i] = time.Since(start)
			})
		}
		wg.Wait()
		for _, d := range took {
			assert.Equal(t, 100*time.Millisecond, d)
		}
		assert.Equal(t, int32(1), runs.Load())

		// Without caching, the next probe runs the check again.
		assert.Equal(t, health.StatusPass, reg.Evaluate(context.Background(), health.Readiness))
		assert.Equal(t, int32(2), runs.Load())
	})
}

func TestOnDemandCacheTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		reg := newRegistry(t, health.Check{Name: "c", CacheTTL: 2 * time.Second, Func: func(context.Context) error {
			runs.Add(1)
			return nil
		}})
		ctx := context.Background()
		reg.Evaluate(ctx, 0)
		reg.Evaluate(ctx, 0)
		time.Sleep(1999 * time.Millisecond)
		reg.Evaluate(ctx, 0)
		assert.Equal(t, int32(1), runs.Load())
		time.Sleep(time.Millisecond)
		reg.Evaluate(ctx, 0)
		assert.Equal(t, int32(2), runs.Load())
	})
}

func TestPeriodicChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		reg := newRegistry(t, health.Check{
			Name: "p", Interval: 10 * time.Second, InitialDelay: 5 * time.Second,
			Func: func(context.Context) error { runs.Add(1); return nil },
		})
		bg := context.Background()
		// Before the first run the check fails: the service is not ready yet.
		assert.Equal(t, health.StatusFail, reg.Evaluate(bg, 0))
		doc := reg.Document(bg)
		assert.Equal(t, "health: check has not run yet", doc.Checks["p"][0].Output)

		ctx, cancel := context.WithCancel(bg)
		done := make(chan error)
		go func() { done <- reg.Run(ctx) }()
		synctest.Wait()
		assert.ErrorIs(t, reg.Run(ctx), health.ErrRunning)

		time.Sleep(5*time.Second - time.Nanosecond)
		synctest.Wait()
		assert.Equal(t, int32(0), runs.Load())
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		assert.Equal(t, int32(1), runs.Load())
		assert.Equal(t, health.StatusPass, reg.Evaluate(bg, 0))
		// Probes read the cache; they never run a periodic check.
		for range 10 {
			reg.Evaluate(bg, 0)
		}
		assert.Equal(t, int32(1), runs.Load())
		time.Sleep(10 * time.Second)
		synctest.Wait()
		assert.Equal(t, int32(2), runs.Load())

		// A check registered while Run runs starts at once; a removed one stops.
		var late atomic.Int32
		require.NoError(t, reg.Register(health.Check{Name: "late", Interval: time.Second, Func: func(context.Context) error { late.Add(1); return nil }}))
		synctest.Wait()
		assert.Equal(t, int32(1), late.Load())
		time.Sleep(3 * time.Second)
		synctest.Wait()
		assert.Equal(t, int32(4), late.Load())
		require.True(t, reg.Remove("late"))
		synctest.Wait()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		assert.Equal(t, int32(4), late.Load())

		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		// Run can run again after it returned.
		ctx2, cancel2 := context.WithCancel(bg)
		go func() { done <- reg.Run(ctx2) }()
		synctest.Wait()
		cancel2()
		assert.ErrorIs(t, <-done, context.Canceled)
	})
}

// Jitter spreads the runs of periodic checks: eight replicas of one check started
// at the same instant do not run in step, and each period lasts Interval plus a
// random part of Jitter. Without jitter every first run would be at 0 and every gap
// exactly 10 s, and this test fails.
func TestPeriodicJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const replicas = 8
		const interval, jitter = 10 * time.Second, 5 * time.Second
		var mu sync.Mutex
		times := make([][]time.Duration, replicas)
		start := time.Now()
		reg := newRegistry(t)
		for i := range replicas {
			require.NoError(t, reg.Register(health.Check{
				Name: "dep" + strconv.Itoa(i), Interval: interval, Jitter: jitter,
				Func: func(context.Context) error {
					mu.Lock()
					times[i] = append(times[i], time.Since(start))
					mu.Unlock()
					return nil
				},
			}))
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- reg.Run(ctx) }()
		time.Sleep(100 * time.Second)
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()

		firsts := map[time.Duration]bool{}
		spread := 0
		for i, ts := range times {
			require.GreaterOrEqual(t, len(ts), int(100*time.Second/(interval+jitter)), "replica %d", i)
			assert.Less(t, ts[0], jitter, "replica %d: first run", i)
			firsts[ts[0]] = true
			for k := 1; k < len(ts); k++ {
				gap := ts[k] - ts[k-1]
				assert.GreaterOrEqual(t, gap, interval)
				assert.Less(t, gap, interval+jitter)
				if gap != interval {
					spread++
				}
			}
		}
		assert.Len(t, firsts, replicas, "replicas started together run in step: %v", times)
		assert.Positive(t, spread, "every period lasted exactly Interval: no jitter")
	})
}

func TestThresholdsAndListeners(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var failing atomic.Bool
		var changes []health.StatusChange
		var mu sync.Mutex
		reg := health.New(health.Config{OnStatusChange: func(c health.StatusChange) {
			mu.Lock()
			changes = append(changes, c)
			mu.Unlock()
		}})
		var second atomic.Int32
		remove := reg.OnStatusChange(func(health.StatusChange) { second.Add(1) })
		require.NoError(t, reg.Register(health.Check{
			Name: "dep", CacheTTL: health.Off, FailureThreshold: 3, SuccessThreshold: 2,
			Func: func(context.Context) error {
				if failing.Load() {
					return errors.New("down")
				}
				return nil
			},
		}))
		ctx := context.Background()
		step := func(fail bool) health.Status {
			failing.Store(fail)
			return reg.Evaluate(ctx, health.Readiness)
		}
		want := []struct {
			fail bool
			want health.Status
		}{
			{false, health.StatusPass},
			{true, health.StatusWarn},
			{true, health.StatusWarn},
			{true, health.StatusFail},
			{false, health.StatusFail},
			{true, health.StatusFail},
			{false, health.StatusFail},
			{false, health.StatusPass},
			{true, health.StatusWarn},
			{false, health.StatusPass},
		}
		for i, w := range want {
			assert.Equal(t, w.want, step(w.fail), "step %d", i)
		}
		mu.Lock()
		var got []string
		for _, c := range changes {
			got = append(got, string(c.From)+">"+string(c.To))
			assert.Equal(t, "dep", c.Name)
			assert.Equal(t, health.Readiness, c.Kinds)
		}
		mu.Unlock()
		assert.Equal(t, []string{"pass>warn", "warn>fail", "fail>pass", "pass>warn", "warn>pass"}, got)
		assert.Equal(t, int32(5), second.Load())
		remove()
		step(true)
		assert.Equal(t, int32(5), second.Load())
	})
}

func TestFirstResultCountsAsItIs(t *testing.T) {
	reg := newRegistry(t, health.Check{Name: "dep", FailureThreshold: 5, Func: failWith("down")})
	assert.Equal(t, health.StatusFail, reg.Evaluate(context.Background(), 0))
}

func TestNonCriticalDegradesToWarn(t *testing.T) {
	reg := newRegistry(t,
		health.Check{Name: "optional", NonCritical: true, Func: failWith("down")},
		health.Check{Name: "obs", NonCritical: true, Observe: func(context.Context) ([]health.Observation, error) {
			return []health.Observation{{ComponentID: "a", Status: health.StatusFail, Output: "bad"}, {ComponentID: "b"}}, nil
		}},
	)
	assert.Equal(t, health.StatusWarn, reg.Evaluate(context.Background(), 0))
	doc := reg.Document(context.Background())
	assert.Equal(t, health.StatusWarn, doc.Status)
	a, _ := doc.Find("obs", "a")
	b, _ := doc.Find("obs", "b")
	assert.Equal(t, health.StatusWarn, a.Status)
	assert.Equal(t, "bad", a.Output)
	assert.Equal(t, health.StatusPass, b.Status)
}

func TestObserveErrorFailsAllEntries(t *testing.T) {
	reg := newRegistry(t, health.Check{Name: "lat", ComponentType: "component", Observe: func(context.Context) ([]health.Observation, error) {
		return []health.Observation{{ComponentID: "p50", ObservedValue: 3}, {ComponentID: "p99", ObservedValue: 900, Output: "slow"}}, errors.New("p99 above target")
	}})
	doc := reg.Document(context.Background())
	require.Len(t, doc.Checks["lat"], 2)
	for _, c := range doc.Checks["lat"] {
		assert.Equal(t, health.StatusFail, c.Status)
		assert.Equal(t, "component", c.ComponentType)
	}
	assert.Equal(t, "p99 above target", doc.Checks["lat"][0].Output)
	assert.Equal(t, "slow", doc.Checks["lat"][1].Output)
}

func TestPanickingCheckFails(t *testing.T) {
	reg := newRegistry(t, health.Check{Name: "p", Func: func(context.Context) error { panic("oops") }})
	doc := reg.Document(context.Background())
	assert.Equal(t, health.StatusFail, doc.Status)
	assert.Equal(t, "health: check panicked: oops", doc.Checks["p"][0].Output)
}

// A check that ignores its context is reported as timed out at its timeout; its
// goroutine ends when it returns, and meanwhile it is never started twice.
func TestTimeoutWithCheckIgnoringContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var runs atomic.Int32
		reg := newRegistry(t, health.Check{Name: "stuck", Timeout: time.Second, CacheTTL: health.Off, Func: func(context.Context) error {
			runs.Add(1)
			<-release // ignores its context
			return nil
		}})
		h := reg.Handler(health.HandlerConfig{Authorize: allow})
		start := time.Now()
		code, body, _ := get(t, h, "/readyz?verbose", true)
		assert.Equal(t, time.Second, time.Since(start))
		assert.Equal(t, 503, code)
		assert.Equal(t, "[-]stuck failed: health: check timed out after 1s\nreadyz check failed", body)

		// The stuck run still holds its goroutine: the next probe fails at once
		// without starting another.
		start = time.Now()
		code, body, _ = get(t, h, "/readyz?verbose", true)
		assert.Equal(t, time.Duration(0), time.Since(start))
		assert.Equal(t, 503, code)
		assert.Contains(t, body, health.ErrStillRunning.Error())
		assert.Equal(t, int32(1), runs.Load())

		close(release)
		synctest.Wait()
		code, _, _ = get(t, h, "/readyz", false)
		assert.Equal(t, 200, code)
		assert.Equal(t, int32(2), runs.Load())
	})
}

func TestTimeoutWithCheckHonouringContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := newRegistry(t, health.Check{Name: "slow", Timeout: 2 * time.Second, Func: func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}})
		start := time.Now()
		doc := reg.Document(context.Background())
		assert.Equal(t, 2*time.Second, time.Since(start))
		assert.Equal(t, health.StatusFail, doc.Status)
		assert.Contains(t, doc.Checks["slow"][0].Output, "timed out after 2s")
		synctest.Wait()
	})
}

// A probe whose caller goes away returns at once with the stale result; the run it
// started goes on for the others.
func TestProbeContextCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := newRegistry(t, health.Check{Name: "slow", Func: func(context.Context) error {
			time.Sleep(time.Second)
			return nil
		}})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		assert.Equal(t, health.StatusFail, reg.Evaluate(ctx, 0)) // not run yet
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
		time.Sleep(time.Second)
		assert.Equal(t, health.StatusPass, reg.Evaluate(context.Background(), 0))
	})
}

func TestChecksRunConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := func(context.Context) error { time.Sleep(time.Second); return nil }
		reg := newRegistry(t,
			health.Check{Name: "a", Func: slow},
			health.Check{Name: "b", Func: slow},
			health.Check{Name: "c", Func: slow},
		)
		start := time.Now()
		code, _, _ := get(t, reg.Handler(health.HandlerConfig{}), "/health", false)
		assert.Equal(t, 200, code)
		assert.Equal(t, time.Second, time.Since(start))
	})
}

func TestDrainingFailsReadinessOnly(t *testing.T) {
	reg := newRegistry(t,
		health.Check{Name: "self", Kinds: health.AllKinds, Func: pass},
	)
	h := reg.Handler(health.HandlerConfig{Authorize: allow})
	code, _, _ := get(t, h, "/readyz", false)
	assert.Equal(t, 200, code)
	reg.SetDraining(true)
	assert.True(t, reg.Draining())
	for _, tt := range []struct {
		give string
		want int
	}{{"/readyz", 503}, {"/livez", 200}, {"/startupz", 200}, {"/health", 503}} {
		code, _, _ := get(t, h, tt.give, false)
		assert.Equal(t, tt.want, code, tt.give)
	}
	_, body, _ := get(t, h, "/readyz?verbose", true)
	assert.Equal(t, "[+]self ok\n[-]draining failed: shutting down\nreadyz check failed", body)
	assert.Equal(t, health.StatusFail, reg.Evaluate(context.Background(), health.Readiness))
	assert.Equal(t, health.StatusPass, reg.Evaluate(context.Background(), health.Liveness))
	reg.SetDraining(false)
	code, _, _ = get(t, h, "/health", false)
	assert.Equal(t, 200, code)
}

// A drain reaches the status-change listeners at once, on the caller's goroutine,
// so that anything subscribed (a gRPC Watch) sees it without polling.
func TestSetDrainingNotifiesListeners(t *testing.T) {
	var fromConfig []health.StatusChange
	reg := health.New(health.Config{OnStatusChange: func(c health.StatusChange) { fromConfig = append(fromConfig, c) }})
	require.NoError(t, reg.Register(health.Check{Name: "self", Kinds: health.AllKinds, Func: pass}))
	var got []health.StatusChange
	remove := reg.OnStatusChange(func(c health.StatusChange) {
		assert.Equal(t, c.To == health.StatusFail, reg.Snapshot().Draining, "the switch is visible to the listener")
		got = append(got, c)
	})
	defer remove()

	reg.SetDraining(true)
	reg.SetDraining(true) // no change: no one hears of it
	require.Len(t, got, 1, "told at once, by the time SetDraining returns")
	assert.Equal(t, health.DrainingName, got[0].Name)
	assert.Equal(t, health.Readiness, got[0].Kinds)
	assert.Equal(t, health.StatusPass, got[0].From)
	assert.Equal(t, health.StatusFail, got[0].To)
	assert.False(t, got[0].Time.IsZero())

	reg.SetDraining(false)
	require.Len(t, got, 2)
	assert.Equal(t, health.StatusFail, got[1].From)
	assert.Equal(t, health.StatusPass, got[1].To)
	assert.Equal(t, got, fromConfig, "Config.OnStatusChange hears the same")
}

// The document is encoded once per change and served from the cache otherwise.
func TestDocumentCacheFollowsChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var v atomic.Int64
		reg := newRegistry(t, health.Check{Name: "n", CacheTTL: time.Second, Observe: func(context.Context) ([]health.Observation, error) {
			return []health.Observation{{ObservedValue: v.Load()}}, nil
		}})
		h := reg.DocumentHandler(health.HandlerConfig{Authorize: allow})
		value := func() float64 {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
			d, err := health.ParseDocument(rec.Body.Bytes())
			require.NoError(t, err)
			f, _ := d.Checks["n"][0].Float()
			return f
		}
		assert.Equal(t, 0.0, value())
		v.Store(7)
		assert.Equal(t, 0.0, value()) // cached for a second
		time.Sleep(time.Second)
		assert.Equal(t, 7.0, value())
		require.NoError(t, reg.Register(health.Check{Name: "m", Func: pass}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
		d, err := health.ParseDocument(rec.Body.Bytes())
		require.NoError(t, err)
		assert.Len(t, d.Checks, 2)
	})
}

func TestInlineChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		gate := make(chan struct{})
		reg := newRegistry(t, health.Check{Name: "snap", CacheTTL: health.Off, Inline: true, Observe: func(context.Context) ([]health.Observation, error) {
			runs.Add(1)
			<-gate // blocks the first run until the test lets go
			return []health.Observation{{ObservedValue: 1}}, nil
		}})
		// Concurrent probes share the inline run of the first one.
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { assert.Equal(t, health.StatusPass, reg.Evaluate(context.Background(), 0)) })
		}
		synctest.Wait()
		close(gate)
		wg.Wait()
		assert.Equal(t, int32(1), runs.Load())
		doc := reg.Document(context.Background())
		assert.Equal(t, int32(2), runs.Load())
		v, _ := doc.Checks["snap"][0].Float()
		assert.Equal(t, 1.0, v)

		// Periodic inline checks run on Run's goroutines.
		require.NoError(t, reg.Register(health.Check{Name: "p", Inline: true, Interval: time.Second, Func: func(context.Context) error { return errors.New("no") }}))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- reg.Run(ctx) }()
		synctest.Wait()
		d := reg.Document(context.Background())
		assert.Equal(t, "no", d.Checks["p"][0].Output)
		cancel()
		<-done
	})
}

// Registering, removing, probing and running at once: for the race detector.
func TestConcurrentUse(t *testing.T) {
	reg := newRegistry(t, health.Check{Name: "base", Kinds: health.AllKinds, Func: pass})
	h := reg.Handler(health.HandlerConfig{Authorize: allow})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = reg.Run(ctx) })
	var changes atomic.Int32
	remove := reg.OnStatusChange(func(health.StatusChange) { changes.Add(1) })
	defer remove()
	for i := range 4 {
		wg.Go(func() {
			for j := range 100 {
				name := "c" + string(rune('a'+i)) + string(rune('a'+j%5))
				c := health.Check{Name: name, Kinds: health.AllKinds, CacheTTL: health.Off, Func: pass}
				if j%2 == 0 {
					c.Interval = time.Millisecond
				}
				if j%3 == 0 {
					c.Func = failWith("down")
				}
				_ = reg.Register(c)
				for _, p := range []string{"/livez", "/readyz?verbose", "/health", "/startupz/" + name} {
					code, _, _ := get(t, h, p, true)
					assert.Contains(t, []int{200, 503, 404}, code)
				}
				reg.Remove(name)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			reg.SetDraining(true)
			reg.SetDraining(false)
			_ = reg.Document(ctx)
		}
	})
	time.Sleep(10 * time.Millisecond)
	cancel()
	wg.Wait()
	assert.Equal(t, []string{"base"}, reg.Names())
}

// A periodic check that has not run yet fails readiness and startup but not liveness:
// a liveness probe that failed during a check's InitialDelay would have the
// orchestrator restart every slow starter.
func TestPendingCheckPassesLivenessOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := newRegistry(t, health.Check{
			Name: "loop", Kinds: health.AllKinds, Interval: time.Minute, InitialDelay: 30 * time.Second,
			Func: failWith("stuck"),
		})
		h := reg.Handler(health.HandlerConfig{Authorize: health.BearerToken("s3cret")})
		bg := context.Background()
		assert.Equal(t, health.StatusPass, reg.Evaluate(bg, health.Liveness))
		assert.Equal(t, health.StatusFail, reg.Evaluate(bg, health.Readiness))
		assert.Equal(t, health.StatusFail, reg.Evaluate(bg, health.Startup))
		assert.Equal(t, health.StatusFail, reg.Evaluate(bg, health.Liveness|health.Readiness))
		for _, tt := range []struct {
			target string
			code   int
			body   string
		}{
			{"/livez?verbose", 200, "[+]loop ok\nlivez check passed"},
			{"/livez/loop", 200, "ok"},
			{"/readyz?verbose", 503, "[-]loop failed: health: check has not run yet\nreadyz check failed"},
			{"/startupz", 503, "[-]loop failed: health: check has not run yet\nstartupz check failed"},
		} {
			code, body, _ := get(t, h, tt.target, true)
			assert.Equal(t, tt.code, code, tt.target)
			assert.Equal(t, tt.body, body, tt.target)
		}

		// Once the check has run and failed, liveness fails too.
		ctx, cancel := context.WithCancel(bg)
		done := make(chan error)
		go func() { done <- reg.Run(ctx) }()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		assert.Equal(t, health.StatusFail, reg.Evaluate(bg, health.Liveness))
		code, _, _ := get(t, h, "/livez", false)
		assert.Equal(t, 503, code)
		cancel()
		<-done
	})
}
