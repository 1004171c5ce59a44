package core

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// Limits of the live page.
const (
	// MaxLiveClients is how many pages may follow the agent live (GET /live) at
	// once; one more is answered 503 with Retry-After.
	MaxLiveClients = 32
	// LiveInterval is how often a live page gets a new rendering.
	LiveInterval = time.Second
	// liveLifetime ends a live stream after a while (the page reconnects at
	// once), so that no stream outlives a forgotten tab by long.
	liveLifetime = 10 * time.Minute
	// liveWriteTimeout drops a live client that does not read.
	liveWriteTimeout = 10 * time.Second
	// dashIncidents is how many incidents the dashboard lists.
	dashIncidents = 20
)

//go:embed web
var webFS embed.FS

var eventKinds = []string{eventlog.Observed, eventlog.Decided, eventlog.Held, eventlog.Acted, eventlog.Healed, eventlog.Failed}

var outcomes = []string{"open", "healed", "held", "failed"}

// The parameters each page takes.
var (
	dashParams    = []string{"window"}
	historyParams = []string{"page", "per", "service", "instance", "kind"}
)

// dashboard is what the live part of the page shows.
type dashboard struct {
	Now       time.Time
	Window    time.Duration
	Status    Status
	Services  []serviceView
	ByNode    []nodeView
	Incidents []Incident
	Open      int // open incidents in all
	Total     int // incidents kept
	Verdict   string
}

type serviceView struct {
	ServiceStatus
	Verdict string
	Open    int
	Charts  []template.HTML
}

// dashboardView gathers what the page shows for a window of w.
func (a *Agent) dashboardView(ctx context.Context, w time.Duration) dashboard {
	st := a.Status(ctx, 0)
	st.Events = nil
	now := st.Time
	from := now.Add(-w)
	d := dashboard{Now: now, Window: w, Status: st}
	d.Incidents, d.Total = a.Incidents(EventFilter{}, 1, dashIncidents)
	_, d.Open = a.Incidents(EventFilter{Kind: "open"}, 1, 1)
	openBy := map[string]int{}
	if d.Open > 0 {
		open, _ := a.Incidents(EventFilter{Kind: "open"}, 1, HistoryIncidents)
		for _, inc := range open {
			openBy[inc.Service]++
		}
	}
	d.Verdict = "healthy"
	for _, s := range st.Services {
		sv := serviceView{ServiceStatus: s, Open: openBy[s.Name]}
		switch {
		case s.Desired > 0 && s.Ready == 0:
			sv.Verdict = "down"
		case s.Ready < s.Desired:
			sv.Verdict = "degraded"
		case sv.Open > 0:
			sv.Verdict = "healing"
		default:
			sv.Verdict = "healthy"
		}
		if rank(sv.Verdict) > rank(d.Verdict) {
			d.Verdict = sv.Verdict
		}
		samples := a.Series(s.Name, from)
		marks := a.markers(s.Name, from)
		sv.Charts = []template.HTML{
			renderChart(replicaChart, samples, marks, from, now),
			renderChart(latencyChart, samples, marks, from, now),
		}
		if s.FrontDoor == "" && a.doors[s.Name] == nil {
			sv.Charts = append(sv.Charts, template.HTML(`<figure class="chart"><figcaption>client success rate at the front door</figcaption><p class="nodata" data-points="0">no front door for this service: the agent sees no client traffic</p></figure>`))
		} else {
			sv.Charts = append(sv.Charts, renderChart(successChart, samples, marks, from, now))
		}
		d.Services = append(d.Services, sv)
	}
	d.ByNode = view(st).ByNode
	return d
}

func rank(verdict string) int {
	return slices.Index([]string{"healthy", "healing", "degraded", "down"}, verdict)
}

// instanceLabel names an instance's state in words.
func instanceLabel(in InstanceStatus) string {
	switch {
	case in.Stopping:
		return "retiring"
	case in.State != string(driver.StateRunning):
		return in.State
	case in.Ready:
		return "ready"
	case in.Health == "healthy":
		return "not ready (live, failing readiness)"
	}
	return "not ready (" + in.Health + ")"
}

func durText(ms float64) string {
	if ms <= 0 {
		return "–"
	}
	if ms < 1000 {
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	}
	return strconv.FormatFloat(ms/1000, 'f', 2, 64) + " s"
}

func uptime(now, since time.Time) string {
	if since.IsZero() {
		return "–"
	}
	return now.Sub(since).Truncate(time.Second).String()
}

var funcs = template.FuncMap{
	"clock":   func(t time.Time) string { return t.Format("15:04:05.000") },
	"dur":     durText,
	"uptime":  uptime,
	"label":   instanceLabel,
	"join":    strings.Join,
	"minutes": func(d time.Duration) int { return int(d / time.Minute) },
	"cls":     func(s string) string { return strings.Map(clsRune, s) },
	"windows": func() []int { return Windows },
	"add":     func(a, b int) int { return a + b },
}

func clsRune(r rune) rune {
	if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
		return r
	}
	return '-'
}

var tmpl = template.Must(template.New("").Funcs(funcs).ParseFS(webFS, "web/*.html"))

// render executes the template name into a buffer (a failed rendering sends
// nothing but a 500).
func render(w http.ResponseWriter, name string, data any) {
	var b bytes.Buffer
	err := tmpl.ExecuteTemplate(&b, name, data)
	writeHTML(w, b.Bytes(), err)
}

// writeHTML answers a rendering, or 500 when it failed.
func writeHTML(w http.ResponseWriter, b []byte, err error) {
	if err != nil {
		http.Error(w, "agent: render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	_, _ = w.Write(b)
}

func badQuery(w http.ResponseWriter, err error) {
	http.Error(w, err.Error(), http.StatusBadRequest)
}

// historyPage is the data of the paged history pages.
type historyPage struct {
	Q         pageQuery
	Total     int
	Pages     int
	Events    []eventlog.Event
	Incidents []Incident
	Kinds     []string
	Services  []string
	Prev      string
	Next      string
	Incs      bool
}

func (a *Agent) pager(path string, q pageQuery, total int) (prev, next string, pages int) {
	pages = max(1, (total+q.Per-1)/q.Per)
	if q.Page > 1 {
		p := q
		p.Page = min(q.Page-1, pages)
		prev = path + "?" + p.encode(historyParams...)
	}
	if q.Page < pages {
		p := q
		p.Page++
		next = path + "?" + p.encode(historyParams...)
	}
	return prev, next, pages
}

// routeDashboard adds the status page's routes to mux.
func (a *Agent) routeDashboard(mux *http.ServeMux) {
	static, _ := fs.Sub(webFS, "web")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r.URL.RawQuery, dashParams, nil)
		if err != nil {
			badQuery(w, err)
			return
		}
		// Served from memory while fresh (see snapshotMaxAge).
		ctx := context.WithoutCancel(r.Context())
		b, err := a.rendered(r.Context(), "page?window="+q.Window.String(), func() ([]byte, error) {
			var b bytes.Buffer
			err := tmpl.ExecuteTemplate(&b, "page", a.dashboardView(ctx, q.Window))
			return b.Bytes(), err
		})
		writeHTML(w, b, err)
	})
	mux.HandleFunc("GET /live", a.serveLive)
	history := func(incs, asJSON bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			kinds := eventKinds
			if incs {
				kinds = outcomes
			}
			q, err := parseQuery(r.URL.RawQuery, historyParams, kinds)
			if err != nil {
				badQuery(w, err)
				return
			}
			f := EventFilter{Service: q.Service, Instance: q.Instance, Kind: q.Kind}
			p := historyPage{Q: q, Kinds: kinds, Incs: incs, Services: a.order}
			path := "/history"
			if incs {
				path = "/incidents"
				p.Incidents, p.Total = a.Incidents(f, q.Page, q.Per)
			} else {
				p.Events, p.Total = a.HistoryEvents(f, q.Page, q.Per)
			}
			p.Prev, p.Next, p.Pages = a.pager(path, q, p.Total)
			if !asJSON {
				render(w, "history", p)
				return
			}
			out := map[string]any{"total": p.Total, "page": q.Page, "per": q.Per, "pages": p.Pages}
			if incs {
				out["incidents"] = nonNil(p.Incidents)
			} else {
				out["events"] = nonNil(p.Events)
			}
			writeJSON(w, out)
		}
	}
	mux.HandleFunc("GET /history", history(false, false))
	mux.HandleFunc("GET /history.json", history(false, true))
	mux.HandleFunc("GET /incidents", history(true, false))
	mux.HandleFunc("GET /incidents.json", history(true, true))
	mux.HandleFunc("GET /series.json", func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r.URL.RawQuery, []string{"window", "service"}, nil)
		if err != nil {
			badQuery(w, err)
			return
		}
		if q.Service != "" && !slices.Contains(a.order, q.Service) {
			http.Error(w, fmt.Sprintf("agent: no service %q", q.Service), http.StatusNotFound)
			return
		}
		from := time.Now().Add(-q.Window)
		out := map[string][]Sample{}
		for _, name := range a.order {
			if q.Service == "" || q.Service == name {
				out[name] = nonNil(a.Series(name, from))
			}
		}
		writeJSON(w, out)
	})
}

// writeJSON answers v as JSON. Cross-origin pages cannot read it: the agent
// sends no CORS headers, and nosniff keeps it from being loaded as a script.
func writeJSON(w http.ResponseWriter, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// serveLive streams the dashboard's live part as Server-Sent Events: an event
// "dashboard" every LiveInterval whose data is the HTML to show.
func (a *Agent) serveLive(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery, dashParams, nil)
	if err != nil {
		badQuery(w, err)
		return
	}
	select {
	case a.live <- struct{}{}:
		defer func() { <-a.live }()
	default:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "agent: too many live pages open", http.StatusServiceUnavailable)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(liveWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if send([]byte("retry: 1000\n\n")) != nil {
		return
	}
	t := time.NewTicker(LiveInterval)
	defer t.Stop()
	end := time.NewTimer(liveLifetime)
	defer end.Stop()
	for {
		frag, err := a.liveFragment(r.Context(), q.Window)
		if err != nil {
			return
		}
		if send(sseEvent("dashboard", frag)) != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			return
		case <-a.liveStop:
			return
		case <-t.C:
		}
	}
}

// liveFragment returns the live part of the page for a window of w. Every live
// page shares one rendering per window for up to half a LiveInterval, so that
// MaxLiveClients pages cost about what one does. The bytes are shared: read only.
func (a *Agent) liveFragment(ctx context.Context, w time.Duration) ([]byte, error) {
	h := a.hist
	h.liveMu.Lock()
	defer h.liveMu.Unlock()
	if f, ok := h.frags[w]; ok && time.Since(f.at) < LiveInterval/2 {
		return f.b, nil
	}
	var b bytes.Buffer
	// Not the first page's context: a page that leaves must not spoil the
	// rendering the others share.
	if err := tmpl.ExecuteTemplate(&b, "live", a.dashboardView(context.WithoutCancel(ctx), w)); err != nil {
		return nil, err
	}
	h.frags[w] = liveFrag{at: time.Now(), b: b.Bytes()}
	return b.Bytes(), nil
}

type liveFrag struct {
	at time.Time
	b  []byte
}

// sseEvent frames data as one Server-Sent Event: a data line per line of data
// (a carriage return ends a line too).
func sseEvent(name string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("event: " + name + "\n")
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	data = bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// CloseLive ends every live stream (GET /live) now; later ones end at once too.
// Call it before shutting the HTTP server down: a live stream never goes idle by
// itself. The pages reconnect to whatever agent serves next.
func (a *Agent) CloseLive() {
	a.liveOnce.Do(func() { close(a.liveStop) })
}
