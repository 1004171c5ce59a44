package core

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	assert.Equal(t, int64(n), accepted.Load(), "connections accepted over 5 rounds of %d instances", n)
}
