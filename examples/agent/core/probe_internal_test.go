package core

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal/health"

	"github.com/selfheal-go/selfheal/examples/agent/config"
)

// clockProber records when each probe started (the bubble's clock) and how many run
// at once, and takes a probe's time to answer.
type clockProber struct {
	mu      sync.Mutex
	started map[string][]time.Duration // since the test's start
	begin   time.Time
	took    time.Duration
	now     atomic.Int64
	most    atomic.Int64
}

func (p *clockProber) probe(ctx context.Context, _ *config.Service, t target) probeResult {
	n := p.now.Add(1)
	for m := p.most.Load(); n > m && !p.most.CompareAndSwap(m, n); m = p.most.Load() {
	}
	p.mu.Lock()
	p.started[t.id] = append(p.started[t.id], time.Since(p.begin))
	p.mu.Unlock()
	time.Sleep(p.took)
	p.now.Add(-1)
	return probeResult{id: t.id, live: true, ready: true}
}

func probeTargets(n int) []target {
	ts := make([]target, n)
	for i := range ts {
		ts[i] = target{id: "web-" + strconv.Itoa(i), addr: "x"}
	}
	return ts
}

// The probes of a round are spread over half the interval, each instance at the same
// phase every round, never all at once; a handful of instances is probed at once.
func TestProbeAllSpreadsProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 1000
		iv := time.Second
		c := &config.Service{Health: config.Health{Interval: config.Duration(iv)}}
		p := &clockProber{started: map[string][]time.Duration{}, begin: time.Now(), took: 5 * time.Millisecond}
		targets := probeTargets(n)
		for round := range 3 {
			roundStart := time.Since(p.begin)
			res := probeAll(t.Context(), p, c, targets)
			took := time.Since(p.begin) - roundStart
			for i, r := range res {
				require.Equal(t, targets[i].id, r.id, "results in the order of the targets")
				require.True(t, r.live)
			}
			assert.LessOrEqual(t, took, iv/2+p.took, "round %d: the last result is in by half an interval and a probe", round)
			time.Sleep(iv - took) // the next tick
		}
		// At 5 ms a probe and 2 probes a ms on average, a herd would have had all
		// 1000 in flight at once; spread, a few dozen at most.
		assert.Less(t, p.most.Load(), int64(60), "probes in flight at once")

		// Each instance at its own phase, the same every round: one interval apart.
		var firsts []time.Duration
		for _, id := range targets {
			s := p.started[id.id]
			require.Len(t, s, 3)
			assert.Equal(t, iv, s[1]-s[0], id.id)
			assert.Equal(t, iv, s[2]-s[1], id.id)
			firsts = append(firsts, s[0])
		}
		// Phases cover the window evenly: every tenth of it holds 5-15% of them.
		slices.Sort(firsts)
		assert.Less(t, firsts[n-1], iv/2)
		for k := range 10 {
			lo, hi := time.Duration(k)*iv/20, time.Duration(k+1)*iv/20
			in := 0
			for _, f := range firsts {
				if f >= lo && f < hi {
					in++
				}
			}
			assert.InDelta(t, n/10, in, n/20, "probes starting in [%v, %v)", lo, hi)
		}
	})
}

func TestProbeAllFewAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &config.Service{Health: config.Health{Interval: config.Duration(100 * time.Millisecond)}}
		p := &clockProber{started: map[string][]time.Duration{}, begin: time.Now()}
		probeAll(t.Context(), p, c, probeTargets(3))
		assert.Less(t, time.Since(p.begin), 6*time.Millisecond, "3 instances: spread over 6 ms at most")
	})
}

func TestProbeAllStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &config.Service{Health: config.Health{Interval: config.Duration(time.Second)}}
		p := &clockProber{started: map[string][]time.Duration{}, begin: time.Now()}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		res := probeAll(ctx, p, c, probeTargets(1000))
		assert.Equal(t, 100*time.Millisecond, time.Since(p.begin), "returns when the context ends")
		assert.Less(t, len(p.started), 1000)
		assert.Greater(t, len(p.started), 0)
		for _, r := range res {
			if _, ok := p.started[r.id]; !ok {
				assert.Contains(t, r.err, "not probed")
			}
		}
	})
}

// starved is how many connections more than one per instance the tests of kept-alive
// connections allow: Go's HTTP/1.1 transport does not reuse a connection whose
// request it has not seen written within 50 ms of the answer
// (maxWriteWaitBeforeConnReuse), which happens now and then on a starved machine
// (load average 47 on 2 cores: 21 connections for 20 instances, 1 run in 3). A
// connection per request, what the tests guard against, is hundreds.
const starved = 2

// Rounds of probes reuse their connections: each instance accepts one connection,
// however many rounds probe it.
func TestProbesKeepConnectionsAlive(t *testing.T) {
	const n = 20
	var accepted atomic.Int64
	var targets []target
	for i := range n {
		reg := health.New(health.Config{})
		srv := httptest.NewUnstartedServer(reg.Handler(health.HandlerConfig{}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepted.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		targets = append(targets, target{id: "web-" + strconv.Itoa(i), addr: srv.Listener.Addr().String()})
	}
	a := newTestAgent(t)
	t.Cleanup(a.tr.CloseIdleConnections)
	c := a.fleet.Services[0]
	c.Health.Interval = config.Duration(100 * time.Millisecond)
	c.Health.Liveness, c.Health.Readiness, c.Health.Document = "/livez", "/readyz", "/health"
	for range 5 {
		for _, r := range probeAll(t.Context(), httpProber{a.client}, &c, targets) {
			require.True(t, r.live && r.ready, "%s: %s", r.id, r.err)
		}
	}
	assert.LessOrEqual(t, accepted.Load(), int64(n+starved), "connections accepted over 5 rounds of %d instances", n)
}

// Probes that time out do not cost connections: a fleet whose instances answer
// slower than the probe timeout for a few rounds, then in time again, is probed on
// the connections it accepted first, and nothing is left running afterwards.
func TestProbeTimeoutsKeepConnections(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const n = 10
	var accepted atomic.Int64
	var delay atomic.Int64 // of every answer
	var targets []target
	var servers []*httptest.Server
	for i := range n {
		reg := health.New(health.Config{})
		h := reg.Handler(health.HandlerConfig{})
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Duration(delay.Load()))
			h.ServeHTTP(w, r)
		}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepted.Add(1)
			}
		}
		srv.Start()
		servers = append(servers, srv)
		targets = append(targets, target{id: "web-" + strconv.Itoa(i), addr: srv.Listener.Addr().String()})
	}
	a := newTestAgent(t)
	defer func() {
		a.tr.CloseIdleConnections()
		for _, srv := range servers {
			srv.Close()
		}
	}()
	c := a.fleet.Services[0]
	c.Health.Interval = config.Duration(100 * time.Millisecond)
	c.Health.Liveness, c.Health.Readiness, c.Health.Document = "/livez", "/readyz", "/health"
	round := func() []probeResult { return probeAll(t.Context(), httpProber{a.client}, &c, targets) }

	// Warm: a connection each.
	for _, r := range round() {
		require.True(t, r.live && r.ready, "%s: %s", r.id, r.err)
	}
	require.Equal(t, int64(n), accepted.Load())

	// Slower than the timeout for 4 rounds: every probe times out (the ones that
	// find the previous probe's request unanswered say so).
	c.Health.Timeout = config.Duration(100 * time.Millisecond)
	delay.Store(int64(250 * time.Millisecond))
	busy := 0
	for range 4 {
		for _, r := range round() {
			require.False(t, r.live, r.id)
			require.Contains(t, r.err, "probe timed out after 100ms", r.id)
			if strings.Contains(r.err, errBusy.Error()) {
				busy++
			}
		}
	}
	assert.Positive(t, busy, "probes that found the previous request in flight")

	// In time again: the late answers were read, the connections kept.
	c.Health.Timeout = config.Duration(10 * time.Second)
	delay.Store(0)
	for range 2 {
		for _, r := range round() {
			require.True(t, r.live && r.ready, "%s: %s", r.id, r.err)
		}
	}
	assert.LessOrEqual(t, accepted.Load(), int64(n+starved), "connections accepted, over 7 rounds of %d instances with 4 timing out", n)
}

// A request that outlives its probe is given up after lateLimit, or when the run
// ends; until then the instance's next probes wait for it rather than send another.
func TestLateRequestBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := &http.Client{}
		var calls atomic.Int64
		hang := func(ctx context.Context) (int, error) {
			calls.Add(1)
			<-ctx.Done()
			return 0, ctx.Err()
		}
		probe := func(run context.Context) error {
			wait, cancel := context.WithTimeout(run, time.Second)
			defer cancel()
			_, err := call(run, wait, client, "10.0.0.1:80", hang)
			return err
		}
		begin := time.Now()
		require.ErrorIs(t, probe(t.Context()), context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(begin), "the probe returns at its timeout")
		for range 5 {
			require.ErrorIs(t, probe(t.Context()), errBusy)
		}
		assert.Equal(t, int64(1), calls.Load(), "one request in flight per instance")
		time.Sleep(lateLimit - time.Since(begin))
		synctest.Wait()
		require.ErrorIs(t, probe(t.Context()), context.DeadlineExceeded)
		assert.Equal(t, int64(2), calls.Load(), "given up after lateLimit: the next probe sends its request")

		// The run's end gives the late request up at once.
		run, cancel := context.WithCancel(t.Context())
		time.Sleep(lateLimit)
		require.ErrorIs(t, probe(run), context.DeadlineExceeded)
		cancel()
		synctest.Wait()
		flights.Lock()
		assert.Empty(t, flights.m, "nothing in flight")
		flights.Unlock()
	})
}

// A selfheal health document carries the probes' verdicts (health.ProbesHeader): a
// probe of such an instance is one request, and judges liveness and readiness as the
// endpoints would; an instance whose document does not carry them (another library,
// or a header that does not parse) is asked at its liveness and readiness endpoints.
func TestProbeReadsTheDocumentsProbesHeader(t *testing.T) {
	var liveFails, readyFails atomic.Bool
	reg := health.New(health.Config{})
	check := func(b *atomic.Bool) health.CheckFunc {
		return func(context.Context) error {
			if b.Load() {
				return errInjectedForTest
			}
			return nil
		}
	}
	require.NoError(t, reg.Register(health.Check{Name: "self", Kinds: health.Liveness, CacheTTL: health.Off, Func: check(&liveFails)}))
	require.NoError(t, reg.Register(health.Check{Name: "db:ping", Kinds: health.Readiness, CacheTTL: health.Off, Func: check(&readyFails)}))
	h := reg.Handler(health.HandlerConfig{})
	var header atomic.Value // what the instance sends as its ProbesHeader: "" as the registry does, "-" none
	header.Store("")
	var requests sync.Map // path -> *atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := requests.LoadOrStore(r.URL.Path, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		switch v := header.Load().(string); v {
		case "":
			h.ServeHTTP(w, r)
		default:
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			for k, vs := range rec.Header() {
				w.Header()[k] = vs
			}
			if v == "-" {
				w.Header().Del(health.ProbesHeader)
			} else {
				w.Header().Set(health.ProbesHeader, v)
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		}
	}))
	t.Cleanup(srv.Close)
	a := newTestAgent(t)
	t.Cleanup(a.tr.CloseIdleConnections)
	c := a.fleet.Services[0]
	c.Health.Liveness, c.Health.Readiness, c.Health.Document = "/livez", "/readyz", "/health"
	probe := func() (probeResult, map[string]int64) {
		requests.Clear()
		r := httpProber{a.client}.probe(t.Context(), &c, target{"web-1", srv.Listener.Addr().String()})
		got := map[string]int64{}
		requests.Range(func(k, v any) bool { got[k.(string)] = v.(*atomic.Int64).Load(); return true })
		return r, got
	}
	for _, tc := range []struct {
		name              string
		header            string
		live, ready       bool
		wantLive, wantRdy bool
		wantWhy           string
		want              map[string]int64
	}{
		{"healthy", "", false, false, true, true, "", map[string]int64{"/health": 1}},
		{"not ready", "", false, true, true, false, "", map[string]int64{"/health": 1}},
		{"not live", "", true, false, false, false, "liveness fails", map[string]int64{"/health": 1}},
		{"no header: the endpoints", "-", false, true, true, false, "", map[string]int64{"/health": 1, "/livez": 1, "/readyz": 1}},
		{"no header, not live", "-", true, false, false, false, "liveness answered 503", map[string]int64{"/health": 1, "/livez": 1}},
		{"a header that does not parse", "liveness=fine, readiness=pass", true, false, false, false, "liveness answered 503", map[string]int64{"/health": 1, "/livez": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header.Store(tc.header)
			liveFails.Store(tc.live)
			readyFails.Store(tc.ready)
			r, got := probe()
			assert.Equal(t, tc.want, got, "requests by path")
			assert.Equal(t, tc.wantLive, r.live, "live: %s", r.err)
			assert.Equal(t, tc.wantRdy, r.ready, "ready: %s", r.notReady)
			if tc.wantWhy != "" {
				assert.Contains(t, r.err+r.notReady, tc.wantWhy)
			}
			if tc.wantLive {
				assert.NotNil(t, r.doc, "the document is sampled")
			}
		})
	}
}

var errInjectedForTest = errorString("injected")

type errorString string

func (e errorString) Error() string { return string(e) }
