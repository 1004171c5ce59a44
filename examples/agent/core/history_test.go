package core

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

func TestRingIsBounded(t *testing.T) {
	r := ring[int]{buf: make([]int, 5)}
	assert.Equal(t, 0, r.len())
	for i := range 3 {
		r.add(i)
	}
	assert.Equal(t, 3, r.len())
	assert.Equal(t, 0, r.at(0))
	for i := 3; i < 12; i++ {
		r.add(i)
	}
	require.Equal(t, 5, r.len())
	for i := range 5 {
		assert.Equal(t, 7+i, r.at(i), "oldest first")
	}
}

// Thousands of events, incidents and samples: the history keeps at most its
// bounds, and its memory stays put however many more come.
func TestHistoryIsBounded(t *testing.T) {
	a := newDashAgent(t)
	t0 := time.Now().Add(-time.Hour)
	fill := func(from, n int) {
		for i := from; i < from+n; i++ {
			at := t0.Add(time.Duration(i) * time.Millisecond)
			inc := fmt.Sprintf("web#%d", i)
			a.hist.record(eventlog.Event{Time: at, Kind: eventlog.Observed, What: "crash", Service: "web", Instance: "web-1", Incident: inc, Why: strings.Repeat("x", 100)})
			a.hist.record(eventlog.Event{Time: at, Kind: eventlog.Healed, What: "restart", Service: "web", Incident: inc})
			a.sample(at)
		}
	}
	fill(0, 2*HistorySamples)
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	fill(2*HistorySamples, 3*HistorySamples)
	runtime.GC()
	var m2 runtime.MemStats
	runtime.ReadMemStats(&m2)

	a.hist.mu.Lock()
	assert.Equal(t, HistoryEvents, a.hist.events.len())
	assert.Len(t, a.hist.incs, HistoryIncidents)
	assert.Len(t, a.hist.incOrder, HistoryIncidents)
	assert.Equal(t, HistorySamples, a.hist.samples["web"].len())
	assert.Len(t, a.hist.samples["web"].buf, HistorySamples, "the ring never grows")
	a.hist.mu.Unlock()
	// 3*HistorySamples more incidents with 100-byte reasons would be more than
	// 10 MB kept; bounded, the heap stays within 2 MB of where it was.
	assert.Less(t, int64(m2.HeapAlloc)-int64(m1.HeapAlloc), int64(2<<20), "heap %d -> %d", m1.HeapAlloc, m2.HeapAlloc)

	evs, total := a.HistoryEvents(EventFilter{}, 1, 3)
	assert.Equal(t, HistoryEvents, total)
	require.Len(t, evs, 3)
	assert.Equal(t, eventlog.Healed, evs[0].Kind, "newest first")
	assert.Equal(t, fmt.Sprintf("web#%d", 5*HistorySamples-1), evs[0].Incident)
}

// An incident's events are bounded too: its first half and its latest ones.
func TestIncidentEventsAreBounded(t *testing.T) {
	a := newDashAgent(t)
	for i := range 1000 {
		a.hist.record(eventlog.Event{Time: time.Now(), Kind: eventlog.Observed, What: "unhealthy", Why: fmt.Sprint(i), Service: "web", Instance: "web-1", Incident: "web#1"})
	}
	incs, _ := a.Incidents(EventFilter{}, 1, 10)
	require.Len(t, incs, 1)
	inc := incs[0]
	assert.Len(t, inc.Events, IncidentEvents)
	assert.Equal(t, 1000-IncidentEvents, inc.Dropped)
	assert.Equal(t, "0", inc.Events[0].Why)
	assert.Equal(t, fmt.Sprint(IncidentEvents/2-1), inc.Events[IncidentEvents/2-1].Why)
	assert.Equal(t, "999", inc.Events[IncidentEvents-1].Why)
	assert.Len(t, inc.Observed, 16, "what was observed is bounded")
}

// Incidents: open ones first, then newest first; what was observed, decided and
// done; detect and heal times; outcome; the filters; copies, not the history's own.
func TestIncidents(t *testing.T) {
	a := newDashAgent(t)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ev := func(sec int, kind, what, inc, inst string, f func(*eventlog.Event)) {
		e := eventlog.Event{Time: t0.Add(time.Duration(sec) * time.Second), Kind: kind, What: what, Service: "web", Instance: inst, Node: "node-1", Incident: inc}
		if f != nil {
			f(&e)
		}
		a.hist.record(e)
	}
	// #1: a crash, restarted, healed.
	ev(0, eventlog.Observed, "crash", "web#1", "web-1", func(e *eventlog.Event) { e.Why = "exit status 1" })
	ev(1, eventlog.Decided, "restart", "web#1", "web-1", func(e *eventlog.Event) { e.DetectMs = 120 })
	ev(1, eventlog.Acted, "start", "web#1", "web-4", nil)
	ev(3, eventlog.Healed, "restart", "web#1", "web-4", func(e *eventlog.Event) { e.HealMs = 2100 })
	// #2: unhealthy, still open.
	ev(10, eventlog.Observed, "unhealthy", "web#2", "web-2", nil)
	// #3: held by the budget.
	ev(20, eventlog.Observed, "unhealthy", "web#3", "web-3", nil)
	ev(21, eventlog.Held, "budget", "web#3", "web-3", nil)
	// #4: healed, the newest.
	ev(30, eventlog.Observed, "crash", "web#4", "web-5", func(e *eventlog.Event) { e.DetectMs = 80 }) // an exit: detected as observed
	ev(31, eventlog.Healed, "restart", "web#4", "web-5", nil)
	// #5: an action failed.
	ev(40, eventlog.Observed, "crash", "web#5", "web-6", nil)
	ev(41, eventlog.Failed, "start", "web#5", "web-6", nil)

	incs, total := a.Incidents(EventFilter{}, 1, 10)
	require.Equal(t, 5, total)
	var ids []string
	for _, inc := range incs {
		ids = append(ids, inc.ID+" "+inc.Outcome)
	}
	assert.Equal(t, []string{"web#5 failed", "web#3 held", "web#2 open", "web#4 healed", "web#1 healed"}, ids, "open first, newest first")

	one := incs[4]
	assert.Equal(t, "web-1", one.Instance, "the instance that failed, not its replacement")
	assert.Equal(t, "node-1", one.Node)
	assert.Equal(t, []string{"crash: exit status 1"}, one.Observed)
	assert.Equal(t, []string{"restart"}, one.Decided)
	assert.Equal(t, []string{"start", "restart"}, one.Done)
	assert.Equal(t, 120.0, one.DetectMs)
	assert.Equal(t, 2100.0, one.HealMs)
	assert.Equal(t, t0.Add(3*time.Second), one.Closed)
	assert.Len(t, one.Events, 4)
	assert.Equal(t, []string{"held: budget"}, incs[1].Decided)
	assert.Equal(t, 80.0, incs[3].DetectMs)
	assert.Equal(t, []string{"failed: start"}, incs[0].Done)
	assert.Equal(t, 1, a.restartCount("web-4"), "the replacement counts one restart of its slot")

	// Pages and filters.
	page, total := a.Incidents(EventFilter{}, 2, 2)
	assert.Equal(t, 5, total)
	require.Len(t, page, 2)
	assert.Equal(t, "web#2", page[0].ID)
	page, total = a.Incidents(EventFilter{}, 9, 2)
	assert.Equal(t, 5, total)
	assert.Empty(t, page)
	open, n := a.Incidents(EventFilter{Kind: "open"}, 1, 10)
	assert.Equal(t, 3, n, "open means not healed: open, held, failed")
	assert.Len(t, open, 3)
	_, n = a.Incidents(EventFilter{Kind: "healed"}, 1, 10)
	assert.Equal(t, 2, n)
	byInst, n := a.Incidents(EventFilter{Instance: "web-4"}, 1, 10)
	assert.Equal(t, 1, n, "an instance matches the incidents it took part in")
	assert.Equal(t, "web#1", byInst[0].ID)
	_, n = a.Incidents(EventFilter{Service: "db"}, 1, 10)
	assert.Zero(t, n)

	// Copies: changing one changes nothing kept.
	incs[4].Observed[0] = "changed"
	incs[4].Events[0].What = "changed"
	again, _ := a.Incidents(EventFilter{Kind: "healed"}, 1, 10)
	assert.Equal(t, "crash: exit status 1", again[1].Observed[0])
	assert.Equal(t, "crash", again[1].Events[0].What)

	evs, n := a.HistoryEvents(EventFilter{Kind: eventlog.Observed, Instance: "web-2"}, 1, 10)
	assert.Equal(t, 1, n)
	assert.Equal(t, "web#2", evs[0].Incident)
}

// Too many incidents: the oldest closed ones go first, open ones stay.
func TestIncidentsTrimClosedFirst(t *testing.T) {
	a := newDashAgent(t)
	a.hist.record(eventlog.Event{Time: time.Now(), Kind: eventlog.Observed, What: "crash", Service: "web", Incident: "web#open"})
	for i := range HistoryIncidents + 10 {
		id := fmt.Sprint("web#", i)
		a.hist.record(eventlog.Event{Time: time.Now(), Kind: eventlog.Observed, What: "crash", Service: "web", Incident: id})
		a.hist.record(eventlog.Event{Time: time.Now(), Kind: eventlog.Healed, What: "restart", Service: "web", Incident: id})
	}
	incs, total := a.Incidents(EventFilter{}, 1, 1)
	assert.Equal(t, HistoryIncidents, total)
	assert.Equal(t, "web#open", incs[0].ID, "the oldest incident is kept: it is open")
	_, n := a.Incidents(EventFilter{Kind: "healed"}, 1, 1)
	assert.Equal(t, HistoryIncidents-1, n)
}

// Series returns the samples since a time, oldest first; markers name the
// agent's actions.
func TestSeriesAndMarkers(t *testing.T) {
	a := newDashAgent(t)
	t0 := time.Now().Add(-time.Minute)
	for i := range 60 {
		a.sample(t0.Add(time.Duration(i) * time.Second))
	}
	s := a.Series("web", t0.Add(30*time.Second))
	require.Len(t, s, 30)
	assert.Equal(t, t0.Add(30*time.Second), s[0].Time)
	assert.Equal(t, 2, s[0].Wanted)
	assert.Equal(t, -1.0, s[0].P50Ms, "no latency known")
	assert.Equal(t, -1.0, s[0].Success, "no front door")
	assert.Nil(t, a.Series("db", t0))

	a.hist.record(eventlog.Event{Time: t0.Add(40 * time.Second), Kind: eventlog.Decided, What: "restart", Service: "web", Instance: "web-1"})
	a.hist.record(eventlog.Event{Time: t0.Add(41 * time.Second), Kind: eventlog.Decided, What: "scale-out", Service: "web"})
	a.hist.record(eventlog.Event{Time: t0.Add(42 * time.Second), Kind: eventlog.Acted, What: "rolling-batch", Service: "web"})
	a.hist.record(eventlog.Event{Time: t0.Add(43 * time.Second), Kind: eventlog.Observed, What: "crash", Service: "web"})
	var labels []string
	for _, m := range a.markers("web", t0) {
		labels = append(labels, m.Label)
	}
	assert.Equal(t, []string{"rollout batch", "scale", "restart"}, labels)
}

func TestRenderChart(t *testing.T) {
	now := time.Now()
	from := now.Add(-5 * time.Minute)
	var ss []Sample
	for i := range 600 { // two samples per pixel column and more
		ss = append(ss, Sample{Time: from.Add(time.Duration(i) * 500 * time.Millisecond), Ready: 2, Running: 3, Wanted: 3, P50Ms: 5, P99Ms: float64(i % 7 * 10), Success: -1})
	}
	ss[101].P99Ms = 950 // a spike that shares its column with a lower sample
	out := string(renderChart(latencyChart, ss, []marker{{Time: now.Add(-time.Minute), Label: "restart", Why: `web-1 <script>alert(1)</script>`}}, from, now))
	assert.Contains(t, out, `<svg`)
	assert.Contains(t, out, `>1000ms</text>`, "the spike sets the y axis")
	assert.Contains(t, out, `<path class="line-a"`)
	assert.Contains(t, out, `<path class="line-b"`)
	assert.Contains(t, out, `data-points="`)
	assert.NotContains(t, out, "<script>")
	assert.Contains(t, out, "&lt;script&gt;")
	assert.Contains(t, out, `>R</text>`)
	empty := string(renderChart(successChart, ss, nil, from, now))
	assert.Contains(t, empty, `data-points="0"`)
	assert.Contains(t, empty, "no client requests")
	assert.NotContains(t, empty, "<svg")
}

// Strings the agent did not make (an event's reason, a node's reason, an
// instance's address) are escaped wherever the page shows them.
func TestDashboardEscapes(t *testing.T) {
	a := newDashAgent(t)
	const evil = `<script>alert("x")</script><img src=x onerror=alert(1)>`
	addMembers(a, 3, time.Now())
	for _, m := range a.svcs["web"].members {
		m.inst.Addr = evil
		m.inst.Version = evil
	}
	a.hist.record(eventlog.Event{Time: time.Now(), Kind: eventlog.Observed, What: evil, Why: evil, Service: "web", Instance: evil, Node: evil, Incident: "web#1"})
	a.hist.record(eventlog.Event{Time: time.Now(), Kind: eventlog.Decided, What: "restart", Why: evil, Service: "web", Instance: "web-1", Incident: "web#1"})
	a.sample(time.Now())
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	for _, path := range []string{"/", "/incidents", "/history", "/history?kind=observed"} {
		res, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		body := string(b)
		assert.NotContains(t, body, "<script>", path)
		assert.NotContains(t, body, "<img", path)
		assert.Contains(t, body, "&lt;script&gt;", path)
	}
	var v dashboard
	var b strings.Builder
	v = a.dashboardView(context.Background(), 5*time.Minute)
	require.NoError(t, tmpl.ExecuteTemplate(&b, "live", v))
	assert.NotContains(t, b.String(), "<script>")
	assert.Contains(t, b.String(), "&lt;script&gt;")
}

// newDashAgent is newTestAgent for tests and benchmarks alike.
func newDashAgent(tb testing.TB) *Agent {
	tb.Helper()
	f, err := config.Parse("fleet.yaml", []byte(`nodes: [node-1]
services:
  - name: web
    command: [/bin/true]
    replicas: 2
`))
	require.NoError(tb, err)
	d, err := local.New(local.Config{Nodes: f.Nodes})
	require.NoError(tb, err)
	tb.Cleanup(func() { d.Close() })
	a, err := New(Config{Fleet: f, Driver: d})
	require.NoError(tb, err)
	return a
}

// addMembers adds n running, ready-looking members to web (a benchmark's fleet
// without processes).
func addMembers(a *Agent, n int, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.svcs["web"]
	for i := range n {
		in := driver.Instance{ID: fmt.Sprintf("web-%d", i+1), Service: "web", Node: "node-1", Addr: fmt.Sprintf("127.0.0.1:%d", 20000+i),
			Version: "v1", State: driver.StateRunning, PID: 1000 + i, StartedAt: now.Add(-time.Minute)}
		m := s.newMember(in, now)
		m.p50, m.p99 = 3, 40
		s.members[in.ID] = m
	}
	s.desired = n
}

// BenchmarkDashboard: the page, the live fragment, the status and history JSON
// with hundreds of instances, an hour of samples and thousands of events.
func BenchmarkDashboard(b *testing.B) {
	a := newDashAgent(b)
	now := time.Now()
	addMembers(a, 300, now)
	for i := range HistorySamples {
		a.sample(now.Add(time.Duration(i-HistorySamples) * time.Second))
	}
	for i := range HistoryEvents {
		inc := fmt.Sprintf("web#%d", i/5)
		kind := []string{eventlog.Observed, eventlog.Decided, eventlog.Acted, eventlog.Acted, eventlog.Healed}[i%5]
		what := []string{"crash", "restart", "start", "stop", "restart"}[i%5]
		a.hist.record(eventlog.Event{Time: now.Add(time.Duration(i-HistoryEvents) * 700 * time.Millisecond), Kind: kind, What: what,
			Service: "web", Instance: fmt.Sprintf("web-%d", i%300+1), Node: "node-1", Incident: inc, Why: "exit status 1", DetectMs: 50, HealMs: 900})
	}
	h := a.Handler()
	for _, bb := range []struct{ name, path string }{
		{"page", "/?window=60"},
		{"status.json", "/status"},
		{"incidents.json", "/incidents.json?per=500"},
		{"history.json", "/history.json?per=500"},
		{"history", "/history?per=500"},
		{"series.json", "/series.json?window=60"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				w := httptest.NewRecorder()
				req := httptest.NewRequest("GET", bb.path, nil)
				req.Host = "127.0.0.1" // the agent answers its own names only
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", bb.path, w.Code, w.Body)
				}
				n = w.Body.Len()
			}
			b.ReportMetric(float64(n), "bytes/response")
		})
	}
	b.Run("live-fragment", func(b *testing.B) {
		b.ReportAllocs()
		var buf strings.Builder
		for b.Loop() {
			buf.Reset()
			if err := tmpl.ExecuteTemplate(&buf, "live", a.dashboardView(context.Background(), 15*time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len()), "bytes/response")
	})
}

// The live pages share a rendering per window: MaxLiveClients pages render about
// as often as one.
func TestLiveFragmentShared(t *testing.T) {
	a := newDashAgent(t)
	ctx := context.Background()
	b1, err := a.liveFragment(ctx, 5*time.Minute)
	require.NoError(t, err)
	b2, err := a.liveFragment(ctx, 5*time.Minute)
	require.NoError(t, err)
	assert.Same(t, &b1[0], &b2[0], "one rendering for both")
	b3, err := a.liveFragment(ctx, 15*time.Minute)
	require.NoError(t, err)
	assert.NotSame(t, &b1[0], &b3[0], "a rendering per window")
	assert.Contains(t, string(b3), "last 15 minutes")
}
