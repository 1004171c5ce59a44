package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromiumPath is Debian's chromium (.ci/services.d/chromium.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// chromium returns the browser to drive. In CI (CI=true, or the CI services
// started: SELFHEAL_CHROMIUM, SELFHEAL_DOCKER_HOST) a missing browser fails the test:
// the browser test must not pass by not running.
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("SELFHEAL_CHROMIUM") != "" || os.Getenv("SELFHEAL_DOCKER_HOST") != "" {
			t.Fatalf("%s is missing but this is CI: the status page's browser test needs Debian's chromium (.ci/services.d/chromium.sh installs it: apt-get install -y chromium)", chromiumPath)
		}
		t.Skipf("%s is missing: no browser test (apt-get install -y chromium)", chromiumPath)
	}
	return chromiumPath
}

// statusServer serves the agent's handler on a fixed loopback address and can be
// stopped and started again there, as an agent's HTTP server restarts.
type statusServer struct {
	addr string
	h    http.Handler
	srv  *http.Server
	done chan struct{}
}

func (s *statusServer) start(t *testing.T) {
	t.Helper()
	var l net.Listener
	require.Eventually(t, func() bool {
		var err error
		l, err = net.Listen("tcp", s.addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	s.addr = l.Addr().String()
	s.srv = &http.Server{Handler: s.h, ReadHeaderTimeout: 5 * time.Second}
	s.done = make(chan struct{})
	go func() { defer close(s.done); _ = s.srv.Serve(l) }()
}

// stop closes the server and every connection, live streams included.
func (s *statusServer) stop() {
	_ = s.srv.Close()
	<-s.done
}

// TestStatusPageInABrowser drives a real headless Chromium against a running agent
// with real processes: the page loads without console errors, the charts have
// data, an instance killed with SIGKILL shows up as an incident with its times to
// detect and heal without a reload, the page reconnects after the agent's HTTP
// server restarts, and a screenshot is written.
func TestStatusPageInABrowser(t *testing.T) {
	exe := chromium(t)
	r, _ := dashRun(t)
	srv := &statusServer{addr: "127.0.0.1:0", h: r.a.Handler()}
	srv.start(t)
	defer func() { srv.stop() }()
	base := "http://" + srv.addr

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 1100), chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()

	var mu sync.Mutex
	var problems []string
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			problems = append(problems, fmt.Sprintf("exception: %s at %s:%d", text, d.URL, d.LineNumber))
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}))
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
	waitFor := func(what, js string, within time.Duration) time.Duration {
		t.Helper()
		t0 := time.Now()
		for {
			if evalJS[bool](t, ctx, js) {
				return time.Since(t0)
			}
			if time.Since(t0) > within {
				conn := evalJS[string](t, ctx, `document.getElementById("conn").textContent`)
				t.Fatalf("%s: not within %v (connection: %q; console: %v)", what, within, conn, seen())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	_, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, runtime.Enable, cdp.Empty{})
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/?window=5")))
	waitFor("the page goes live", `document.getElementById("conn").dataset.state === "live" && +document.getElementById("dash").dataset.updates >= 2`, 20*time.Second)
	// A mark on the page's window: gone if the page reloaded.
	evalJS[bool](t, ctx, `window.selfhealMark = 42; true`)

	// Charts with data: the replicas chart has drawn its lines.
	points := evalJS[int](t, ctx, `+document.querySelector('[data-service="web"] svg[data-points]').dataset.points`)
	paths := evalJS[int](t, ctx, `document.querySelectorAll('[data-service="web"] svg path').length`)
	assert.Greater(t, points, 0, "the charts have points")
	assert.GreaterOrEqual(t, paths, 3, "ready, running and wanted")
	verdict := evalJS[string](t, ctx, `document.querySelector(".summary").dataset.verdict`)
	assert.Equal(t, "healthy", verdict)

	// Kill an instance: the page shows a new incident for it, healed, with its
	// times to detect and heal.
	before := evalJS[[]string](t, ctx, `[...document.querySelectorAll("details.incident")].map(d => d.dataset.incident)`)
	victim := kill9(t, r.a)
	find := fmt.Sprintf(`[...document.querySelectorAll("details.incident")].find(d => !%s.includes(d.dataset.incident) &&
		d.querySelector("summary").textContent.includes("instance %s"))`, jsList(before), victim.ID)
	took := waitFor("the killed instance's incident on the page", fmt.Sprintf(`!!%s`, find), 10*time.Second)
	id := evalJS[string](t, ctx, find+`.dataset.incident`)
	inc := fmt.Sprintf(`document.getElementById(%q)`, "inc-"+id)
	healed := waitFor("healed, with its times", inc+`.dataset.outcome === "healed" && `+inc+`.querySelector(".detect").textContent !== "–" && `+
		inc+`.querySelector(".heal").textContent !== "–"`, 15*time.Second)
	detect := evalJS[string](t, ctx, inc+`.querySelector(".detect").textContent`)
	heal := evalJS[string](t, ctx, inc+`.querySelector(".heal").textContent`)
	observed := evalJS[string](t, ctx, inc+`.querySelector("summary").textContent`)
	t.Logf("killed %s (pid %d): incident %s on the page %v later, healed %v after that; time to detect %s, time to heal %s",
		victim.ID, victim.PID, id, took.Round(time.Millisecond), healed.Round(time.Millisecond), detect, heal)
	assert.Contains(t, observed, "crash")
	mark := evalJS[int](t, ctx, `window.selfhealMark || 0`)
	assert.Equal(t, 42, mark, "no reload: the page was updated in place")
	assert.Empty(t, seen(), "no console errors or exceptions")

	// An expanded incident stays expanded across updates.
	evalJS[bool](t, ctx, inc+`.open = true`)
	updates := evalJS[int](t, ctx, `+document.getElementById("dash").dataset.updates`)
	waitFor("two more updates", fmt.Sprintf(`+document.getElementById("dash").dataset.updates >= %d`, updates+2), 10*time.Second)
	assert.True(t, evalJS[bool](t, ctx, inc+`.open`), "the reader's expanded incident stays open")

	shot := artifact(t, "dashboard.png")
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(shot, png, 0o644))
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	// The agent's HTTP server restarts: the page says so and comes back live.
	srv.stop()
	waitFor("the page notices the agent is gone", `document.getElementById("conn").dataset.state === "reconnecting"`, 10*time.Second)
	srv.start(t)
	updates = evalJS[int](t, ctx, `+document.getElementById("dash").dataset.updates`)
	back := waitFor("the page reconnects", fmt.Sprintf(`document.getElementById("conn").dataset.state === "live" && +document.getElementById("dash").dataset.updates > %d`, updates), 15*time.Second)
	t.Logf("reconnected %v after the server came back", back.Round(time.Millisecond))
	mark = evalJS[int](t, ctx, `window.selfhealMark || 0`)
	assert.Equal(t, 42, mark, "reconnected without a reload")
	for _, p := range seen() {
		// While the server is down the browser reports its refused connections;
		// nothing else may appear.
		if !strings.Contains(p, "ERR_CONNECTION_REFUSED") && !strings.Contains(p, "/live") {
			t.Errorf("after the restart: %s", p)
		}
	}
	cancel()
	cancelBrowser()
	if err := chromedp.Cancel(bctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Log(err)
	}
}

// jsList is ids as a JavaScript array.
func jsList(ids []string) string {
	b, _ := json.Marshal(ids)
	if ids == nil {
		return "[]"
	}
	return string(b)
}

// evalJS evaluates js in the page.
func evalJS[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(t, err, js)
	return v
}

// artifact returns where a test writes an artifact: $SELFHEAL_ARTIFACTS, or the
// test's temporary directory.
func artifact(t *testing.T, name string) string {
	dir := os.Getenv("SELFHEAL_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return filepath.Join(dir, name)
}
