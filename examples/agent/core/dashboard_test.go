package core_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
)

// dashRun is an agent with two real instances of web, its handler served on a real
// HTTP server.
func dashRun(t *testing.T) (*run, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	f := fleetFile(t, dir, 2, "")
	// The page's verdict must not see false alarms: a loaded machine turned
	// 100 ms probes into timeouts (both instances unhealthy, the page "down").
	f.Services[0].Health.Timeout = config.Duration(time.Second)
	r := start(t, f, true)
	t.Cleanup(func() { r.stop(t); noLeftovers(t, dir) })
	require.Eventually(t, ready(r.a, 2), 15*time.Second, 20*time.Millisecond)
	srv := httptest.NewServer(r.a.Handler())
	t.Cleanup(srv.Close)
	return r, srv
}

// kill9 kills a ready instance of web with SIGKILL and returns it.
func kill9(t *testing.T, a *core.Agent) core.InstanceStatus {
	t.Helper()
	for _, s := range a.Status(context.Background(), 0).Services {
		for _, in := range s.Instances {
			if in.Ready && in.PID > 0 {
				require.NoError(t, syscall.Kill(in.PID, syscall.SIGKILL))
				return in
			}
		}
	}
	t.Fatal("no ready instance to kill")
	return core.InstanceStatus{}
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

// The page, the history pages and their JSON, on a running agent, and a crash that
// shows up in all of them.
func TestDashboardEndpoints(t *testing.T) {
	r, srv := dashRun(t)
	victim := kill9(t, r.a)
	require.Eventually(t, func() bool {
		incs, _ := r.a.Incidents(core.EventFilter{Kind: "healed"}, 1, 10)
		return len(incs) > 0 && ready(r.a, 2)()
	}, 15*time.Second, 20*time.Millisecond)

	res, page := get(t, srv.URL+"/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
	csp := res.Header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "default-src 'self'")
	assert.Contains(t, csp, "frame-ancestors 'none'")
	assert.NotContains(t, csp, "unsafe-inline")
	for _, want := range []string{`data-verdict="`, `data-service="web"`, "replicas: ready, running, wanted", `<path class="line-a"`,
		`data-outcome="healed"`, "time to detect", `<script src="/static/app.js" defer></script>`, "instance " + victim.ID} {
		assert.Contains(t, page, want)
	}
	assert.NotContains(t, page, "<script>", "no inline script: the CSP forbids it")

	res, _ = get(t, srv.URL+"/?window=5")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	res, js := get(t, srv.URL+"/static/app.js")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, js, "EventSource")

	// Incidents as JSON: the crash, healed, with its times.
	res, body := get(t, srv.URL+"/incidents.json?service=web")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	assert.Empty(t, res.Header.Get("Access-Control-Allow-Origin"))
	var incs struct {
		Total, Page, Per, Pages int
		Incidents               []core.Incident
	}
	require.NoError(t, json.Unmarshal([]byte(body), &incs))
	require.GreaterOrEqual(t, incs.Total, 1)
	assert.Equal(t, 1, incs.Page)
	assert.Equal(t, core.DefaultPerPage, incs.Per)
	var crash *core.Incident
	for i, inc := range incs.Incidents {
		if inc.Instance == victim.ID {
			crash = &incs.Incidents[i]
		}
	}
	require.NotNil(t, crash, "an incident names the killed instance: %s", body)
	assert.Equal(t, "healed", crash.Outcome)
	assert.Greater(t, crash.DetectMs, 0.0)
	assert.Greater(t, crash.HealMs, 0.0)
	assert.Less(t, crash.HealMs, 15000.0)
	assert.NotEmpty(t, crash.Observed)
	assert.NotEmpty(t, crash.Events)
	for _, key := range []string{`"id"`, `"service"`, `"opened"`, `"closed"`, `"observed"`, `"decided"`, `"done"`, `"detectMs"`, `"healMs"`, `"outcome"`, `"events"`} {
		assert.Contains(t, body, key)
	}

	// Events as JSON, filtered and paged.
	res, body = get(t, srv.URL+"/history.json?kind=observed&per=1")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var evs struct {
		Total, Page, Per, Pages int
		Events                  []map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(body), &evs))
	require.Len(t, evs.Events, 1)
	assert.Equal(t, "observed", evs.Events[0]["kind"])
	assert.Equal(t, evs.Total, evs.Pages)
	res, body = get(t, srv.URL+"/history.json?service=nosuch")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.JSONEq(t, `{"total":0,"page":1,"per":50,"pages":1,"events":[]}`, body)

	// The HTML history: a pager whose links parse.
	res, body = get(t, srv.URL+"/history?per=1")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, `rel="next" href="/history?page=2&amp;per=1"`)
	res, _ = get(t, srv.URL+"/history?page=2&per=1")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	res, body = get(t, srv.URL+"/incidents?kind=healed")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, `data-outcome="healed"`)
	assert.NotContains(t, body, `data-outcome="open"`)

	// The series: a sample a second with the replicas.
	res, body = get(t, srv.URL+"/series.json?window=5&service=web")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var series map[string][]core.Sample
	require.NoError(t, json.Unmarshal([]byte(body), &series))
	require.NotEmpty(t, series["web"])
	last := series["web"][len(series["web"])-1]
	assert.Equal(t, 2, last.Wanted)
	assert.LessOrEqual(t, last.Ready, 2)
	res, body = get(t, srv.URL+"/series.json?window=5&service=nosuch")
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "an unknown service is not an empty chart")
	assert.Contains(t, body, `no service "nosuch"`)
}

// Hostile queries: a 400 that says what is wrong, never a panic or a 500.
func TestDashboardRejectsBadQueries(t *testing.T) {
	_, srv := dashRun(t)
	for _, tt := range []struct{ path, want string }{
		{"/?window=7", "window: want one of [5 15 60]"},
		{"/?window=-1", "window: want one of"},
		{"/?page=2", `unknown parameter "page"`},
		{"/live?window=abc", "window: want one of"},
		{"/history?page=0", "page: want a whole number from 1 to 100000"},
		{"/history?page=1e9", "page: want a whole number"},
		{"/history.json?per=-1", "per: want a whole number from 1 to 500"},
		{"/history.json?per=100000000000000000000", "per: want a whole number"},
		{"/history?kind=exploded", "kind: want one of [observed decided held acted healed failed]"},
		{"/incidents.json?kind=observed", "kind: want one of [open healed held failed]"},
		{"/incidents?instance=" + url.QueryEscape("<script>alert(1)</script>"), "instance: want 1 to 63 letters"},
		{"/incidents?service=" + strings.Repeat("s", 64), "service: want 1 to 63"},
		{"/history?service=" + strings.Repeat("s", 5000), "longer than 2048 bytes"},
		{"/history?per=1&per=2", "per: give it once"},
		{"/series.json?window=61", "window: want one of"},
		{"/series.json?kind=acted", `unknown parameter "kind"`},
		{"/history?%zz", "invalid URL escape"},
	} {
		res, body := get(t, srv.URL+tt.path)
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, tt.path)
		assert.Contains(t, body, tt.want, tt.path)
		assert.NotContains(t, body, "<script>", tt.path)
		assert.Equal(t, "text/plain; charset=utf-8", res.Header.Get("Content-Type"), tt.path)
	}
}

// Other origins may not steer the agent through the page: its endpoints take no
// writes, commands from another site are refused, and a foreign Host (DNS
// rebinding) is refused whatever the method.
func TestDashboardCrossOrigin(t *testing.T) {
	r, srv := dashRun(t)
	for _, path := range []string{"/", "/live", "/incidents", "/incidents.json", "/history", "/history.json", "/series.json"} {
		res, err := http.Post(srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader("service=web&replicas=0"))
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, path)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/scale?service=web&replicas=0", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode)

	req, _ = http.NewRequest("GET", srv.URL+"/incidents.json", nil)
	req.Host = "evil.example"
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "a page that rebinds a name to the agent reads nothing")

	req, _ = http.NewRequest("GET", srv.URL+"/incidents.json", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode, "a GET is fine")
	assert.Empty(t, res.Header.Get("Access-Control-Allow-Origin"), "but no CORS: the other page cannot read it")
	assert.Equal(t, 2, len(r.a.Backends("web")), "nothing changed")
}

// sseReader reads Server-Sent Events.
type sseReader struct {
	res *http.Response
	br  *bufio.Reader
}

func openLive(t *testing.T, c *http.Client, u string) *sseReader {
	t.Helper()
	res, err := c.Get(u + "/live")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	return &sseReader{res: res, br: bufio.NewReader(res.Body)}
}

// next returns the next event's name and data (its data lines joined by \n).
func (s *sseReader) next() (name, data string, err error) {
	var lines []string
	for {
		l, err := s.br.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		l = strings.TrimSuffix(l, "\n")
		switch {
		case l == "":
			if name != "" || lines != nil {
				return name, strings.Join(lines, "\n"), nil
			}
		case strings.HasPrefix(l, "event: "):
			name = l[len("event: "):]
		case strings.HasPrefix(l, "data: "):
			lines = append(lines, l[len("data: "):])
		case strings.HasPrefix(l, "retry: "):
			name = "retry"
		default:
			return "", "", io.ErrUnexpectedEOF
		}
	}
}

// The live stream: a retry line, then an event "dashboard" a second whose data is
// the page's live part; the verdict of the fleet in words.
func TestLiveStream(t *testing.T) {
	_, srv := dashRun(t)
	s := openLive(t, srv.Client(), srv.URL)
	defer s.res.Body.Close()
	name, _, err := s.next()
	require.NoError(t, err)
	assert.Equal(t, "retry", name)
	start := time.Now()
	var first string
	for i := range 3 {
		name, data, err := s.next()
		require.NoError(t, err)
		assert.Equal(t, "dashboard", name)
		assert.Contains(t, data, `<section class="summary verdict-`)
		assert.Contains(t, data, `data-verdict="healthy"`)
		assert.Contains(t, data, "Incidents")
		if i == 0 {
			first = data
		}
	}
	assert.NotEmpty(t, first)
	assert.Greater(t, time.Since(start), core.LiveInterval, "an event a second, not a busy loop")
	assert.Equal(t, "no-store", s.res.Header.Get("Cache-Control"))
}

// At most MaxLiveClients live pages: one more is refused with Retry-After, and a
// page that leaves frees its slot. CloseLive ends every stream, and the server's
// handlers all return.
func TestLiveClientsBoundedAndClosed(t *testing.T) {
	r, srv := dashRun(t)
	// The timeout ends a stream that CloseLive failed to end (the test fails
	// instead of hanging).
	c := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer c.CloseIdleConnections()
	var streams []*sseReader
	for range core.MaxLiveClients {
		streams = append(streams, openLive(t, c, srv.URL))
	}
	res, body := get(t, srv.URL+"/live")
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Equal(t, "5", res.Header.Get("Retry-After"))
	assert.Contains(t, body, "too many live pages")

	streams[0].res.Body.Close()
	require.Eventually(t, func() bool {
		res, err := c.Get(srv.URL + "/live")
		if err != nil {
			return false
		}
		if res.StatusCode != http.StatusOK {
			res.Body.Close()
			return false
		}
		streams[0] = &sseReader{res: res, br: bufio.NewReader(res.Body)}
		return true
	}, 5*time.Second, 50*time.Millisecond, "a closed page frees its slot")

	// CloseLive: every stream reads to its end within a moment.
	r.a.CloseLive()
	var wg sync.WaitGroup
	ended := make(chan error, len(streams))
	for _, s := range streams {
		wg.Go(func() {
			defer s.res.Body.Close()
			done := make(chan error, 1)
			go func() { _, err := io.Copy(io.Discard, s.res.Body); done <- err }()
			select {
			case err := <-done:
				ended <- err
			case <-time.After(5 * time.Second):
				ended <- io.ErrNoProgress
			}
		})
	}
	wg.Wait()
	close(ended)
	for err := range ended {
		assert.NoError(t, err, "a stream ends cleanly after CloseLive")
	}
	// A page that reconnects now gets one rendering and the end.
	s := openLive(t, c, srv.URL)
	b, err := io.ReadAll(s.res.Body)
	s.res.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(b), "event: dashboard\n"))
	// httptest's Close waits for every handler: none is left streaming.
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the server's handlers did not return after CloseLive")
	}
}

// A page that stops reading holds its own stream only: the agent goes on healing,
// other pages go on getting updates and the endpoints answer at once.
func TestLiveSlowClientBlocksNothing(t *testing.T) {
	r, srv := dashRun(t)
	u, _ := url.Parse(srv.URL)
	var stuck []net.Conn
	for range 4 {
		conn, err := net.Dial("tcp", u.Host)
		require.NoError(t, err)
		require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(1024))
		_, err = io.WriteString(conn, "GET /live HTTP/1.1\r\nHost: "+u.Host+"\r\n\r\n")
		require.NoError(t, err)
		stuck = append(stuck, conn) // never read
	}
	defer func() {
		for _, c := range stuck {
			c.Close()
		}
	}()
	s := openLive(t, srv.Client(), srv.URL)
	defer s.res.Body.Close()
	victim := kill9(t, r.a)
	deadline := time.Now().Add(15 * time.Second)
	healed := false
	for !healed && time.Now().Before(deadline) {
		name, data, err := s.next()
		require.NoError(t, err)
		if name == "dashboard" && strings.Contains(data, `data-outcome="healed"`) && strings.Contains(data, "instance "+victim.ID) {
			healed = true
		}
	}
	assert.True(t, healed, "the other page saw the crash healed")
	t0 := time.Now()
	res, _ := get(t, srv.URL+"/status")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Less(t, time.Since(t0), time.Second)
}
