//go:build linux

package fleetbench_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/selfheal-go/selfheal/health"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/core"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// helperEnv, when set to N, makes the test binary the helper process: N instances.
const helperEnv = "FLEETBENCH_HELPER"

func TestMain(m *testing.M) {
	if v := os.Getenv(helperEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(helper(n, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// countingListener counts the connections it accepted.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

var errInjected = errors.New("fault injected")

// helper serves n instances on loopback, each with a health registry of its own
// whose liveness check fails once told to. It prints one address a line, then
// "ready", and answers the commands read from in: "fail I" (instance I's liveness
// starts failing; answers "ok") and "stats" (answers "<accepted connections>
// <requests> <health document requests>"). It returns when in ends.
func helper(n int, in io.Reader, out io.Writer) int {
	var conns, reqs, docs atomic.Int64
	fail := make([]atomic.Bool, n)
	var servers []*http.Server
	w := bufio.NewWriter(out)
	for i := range n {
		reg := health.New(health.Config{ServiceID: "web-" + strconv.Itoa(i), Version: "v1"})
		if err := reg.Register(health.Check{Name: "fault:injected", Kinds: health.Liveness, CacheTTL: health.Off,
			Func: func(context.Context) error {
				if fail[i].Load() {
					return errInjected
				}
				return nil
			}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		h := reg.Handler(health.HandlerConfig{Authorize: health.LoopbackOnly})
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqs.Add(1)
			if r.URL.Path == "/health" {
				docs.Add(1) // one a probe
			}
			h.ServeHTTP(w, r)
		}), ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(countingListener{l, &conns}) }()
		fmt.Fprintln(w, l.Addr().String())
	}
	fmt.Fprintln(w, "ready")
	w.Flush()
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "fail":
			i, err := strconv.Atoi(f[1])
			if err == nil && i >= 0 && i < n {
				fail[i].Store(true)
			}
			fmt.Fprintln(w, "ok")
		case len(f) == 1 && f[0] == "stats":
			fmt.Fprintln(w, conns.Load(), reqs.Load(), docs.Load())
		default:
			fmt.Fprintln(w, "?")
		}
		w.Flush()
	}
	for _, srv := range servers {
		srv.Close()
	}
	return 0
}

// fleet is the helper process seen from the benchmark.
type fleet struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	addrs []string
}

func startFleet(b *testing.B, n int) *fleet {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	f := &fleet{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	b.Cleanup(func() {
		in.Close() // the helper exits when its input ends
		_ = cmd.Wait()
	})
	for f.out.Scan() && f.out.Text() != "ready" {
		f.addrs = append(f.addrs, f.out.Text())
	}
	if len(f.addrs) != n {
		b.Fatalf("helper started %d instances, want %d", len(f.addrs), n)
	}
	return f
}

func (f *fleet) command(b *testing.B, c string) string {
	b.Helper()
	if _, err := fmt.Fprintln(f.in, c); err != nil {
		b.Fatal(err)
	}
	if !f.out.Scan() {
		b.Fatalf("helper: no answer to %q", c)
	}
	return f.out.Text()
}

// stats returns the connections the instances accepted, the requests they served
// and, of those, the health document requests (one a probe).
func (f *fleet) stats(b *testing.B) (conns, reqs, docs int64) {
	b.Helper()
	if _, err := fmt.Sscan(f.command(b, "stats"), &conns, &reqs, &docs); err != nil {
		b.Fatal(err)
	}
	return conns, reqs, docs
}

// fleetDriver presents the helper's instances to the agent as running instances of
// service "web" on one node. It starts nothing: a replacement fails to start.
type fleetDriver struct{ insts []driver.Instance }

var errNoStarts = errors.New("fleetbench: the fleet is fixed")

func (d *fleetDriver) Name() string { return "fleetbench" }
func (d *fleetDriver) Nodes(context.Context) ([]driver.Node, error) {
	return []driver.Node{{Name: "node-1", State: driver.NodeReady}}, nil
}
func (d *fleetDriver) Instances(_ context.Context, service string) ([]driver.Instance, error) {
	return slices.Clone(d.insts), nil
}
func (d *fleetDriver) Stop(context.Context, string, time.Duration) error { return nil }
func (d *fleetDriver) Close() error                                      { return nil }
func (d *fleetDriver) Start(context.Context, driver.InstanceSpec) (driver.Instance, error) {
	return driver.Instance{}, errNoStarts
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func steadyWindow(b *testing.B) time.Duration {
	if v := os.Getenv("FLEETBENCH_STEADY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	return 10 * time.Second
}

// statusSamples is how many times the status page and the JSON are fetched.
const statusSamples = 100

// loadavg is the machine's load average over 1, 5 and 15 minutes.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func load1() float64 {
	v, _ := strconv.ParseFloat(strings.Fields(loadavg())[0], 64)
	return v
}

func BenchmarkFleet(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run("N="+strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				runFleet(b, n, steadyWindow(b))
			}
		})
	}
}

func runFleet(b *testing.B, n int, steady time.Duration) {
	const interval = time.Second
	fl := startFleet(b, n)
	d := &fleetDriver{}
	born := time.Now().Add(-time.Minute)
	for i, addr := range fl.addrs {
		d.insts = append(d.insts, driver.Instance{ID: "web-" + strconv.Itoa(i), Service: "web", Version: "v1", Node: "node-1",
			Addr: addr, State: driver.StateRunning, StartedAt: born})
	}
	y := fmt.Sprintf(`nodes: [node-1]
services:
  - name: web
    command: ["true"]
    replicas: %d
    health: {interval: 1s, timeout: 1s, failureThreshold: 1, startupGrace: 1s}
`, n)
	fc, err := config.Parse("fleet.yaml", []byte(y))
	if err != nil {
		b.Fatal(err)
	}
	ev := eventlog.New(nil, 0)
	a, err := core.New(core.Config{Fleet: fc, Driver: d, Events: ev})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	status := httptest.NewServer(a.Handler())
	defer status.Close()

	// Warm up: every instance probed and ready, connections made.
	deadline := time.Now().Add(30 * time.Second)
	for len(a.Backends("web")) < n {
		if time.Now().After(deadline) {
			for _, e := range ev.Recent(10) {
				b.Logf("  %s %s %s %s: %s", e.Kind, e.What, e.Service, e.Instance, e.Why)
			}
			b.Fatalf("%d of %d instances ready after 30s", len(a.Backends("web")), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * interval)

	// Instances the agent finds unhealthy in the window: probes that failed on a
	// healthy fleet (timeouts under load).
	sub, unsub := ev.Subscribe(4096)
	defer unsub()
	b.ResetTimer()
	runtime.GC()
	g0 := runtime.NumGoroutine()
	conns0, reqs0, docs0 := fl.stats(b)
	cpu0, t0 := cpuTime(), time.Now()
	// The curve over the window: goroutines, connections and heap at its start and
	// every minute (every quarter of a shorter window).
	every := min(time.Minute, steady/4)
	point := func(at time.Duration, cpuFrom time.Duration, from time.Time) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		conns, _, _ := fl.stats(b)
		cpu := "-"
		if at > 0 {
			cpu = fmt.Sprintf("%.1f%%", 100*(cpuTime()-cpuFrom).Seconds()/time.Since(from).Seconds())
		}
		b.Logf("N=%d t=%-6s goroutines %5d  conns %5d (+%d)  heap %5.1f MB  cpu %6s of a core  load %s",
			n, at.Round(time.Second), runtime.NumGoroutine(), conns, conns-conns0, float64(ms.HeapInuse)/(1<<20), cpu, loadavg())
	}
	point(0, cpu0, t0)
	for at := every; at <= steady; at += every {
		cpuFrom, from := cpuTime(), time.Now()
		time.Sleep(time.Until(t0.Add(at)))
		point(at, cpuFrom, from)
	}
	if rest := time.Until(t0.Add(steady)); rest > 0 {
		time.Sleep(rest)
	}
	cpu1, t1 := cpuTime(), time.Now()
	conns1, reqs1, docs1 := fl.stats(b)
	falseAlarms := 0
	for drained := false; !drained; {
		select {
		case e := <-sub:
			if e.Kind == eventlog.Observed && e.What == "unhealthy" {
				falseAlarms++
			}
		default:
			drained = true
		}
	}
	g1 := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	wall := t1.Sub(t0)
	// A probe asks for the health document, and for the liveness and readiness
	// endpoints only when the document does not carry their verdicts (these
	// instances' documents do: one request a probe).
	probes := float64(docs1 - docs0)
	b.ReportMetric(float64(reqs1-reqs0)/probes, "req/probe")
	cpu := cpu1 - cpu0
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%core")
	b.ReportMetric(float64(cpu.Microseconds())/probes, "cpu-us/probe")
	b.ReportMetric(probes/wall.Seconds(), "probes/s")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(float64(g1-g0), "goroutines+")
	b.ReportMetric(float64(conns1), "conns")
	b.ReportMetric(float64(conns1-conns0), "conns+")
	b.ReportMetric(float64(falseAlarms), "false-unhealthy")
	b.ReportMetric(load1(), "load1")

	// Status page and JSON, over loopback, while the agent probes: statusSamples
	// requests each, alternating, one at a time.
	times := map[string][]time.Duration{}
	pages := []struct{ path, unit string }{{"/", "status"}, {"/status", "statusjson"}}
	for range statusSamples {
		for _, p := range pages {
			t := time.Now()
			resp, err := http.Get(status.URL + p.path)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("GET %s: %s", p.path, resp.Status)
			}
			times[p.unit] = append(times[p.unit], time.Since(t))
		}
	}
	for _, p := range pages {
		ds := times[p.unit]
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, p.unit+"-p50-ms")
		b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, p.unit+"-p99-ms")
	}

	// A fault in one instance, to the agent's observation.
	// The victim: an instance the agent routes to (not one a false alarm took out).
	backends := a.Backends("web")
	if len(backends) == 0 {
		b.Fatal("no instance is ready")
	}
	id := backends[len(backends)/2].ID
	victim, _ := strconv.Atoi(strings.TrimPrefix(id, "web-"))
	tf := time.Now()
	fl.command(b, "fail "+strconv.Itoa(victim))
	timeout := time.After(10 * interval)
	for detected := false; !detected; {
		select {
		case e := <-sub:
			// The observation, or the decision when the instance was reported
			// before (a false alarm is reported once): either naming the fault.
			detected = e.Instance == id && (e.Kind == eventlog.Observed || e.Kind == eventlog.Decided) &&
				(strings.Contains(e.Why, "liveness answered 503") || strings.Contains(e.Why, "liveness fails"))
		case <-timeout:
			// Reported, not failed: on an overloaded machine the figures say more
			// than a failure would.
			b.Logf("the fault in %s was not observed within %s; last events:", id, 10*interval)
			for _, e := range ev.Recent(10) {
				b.Logf("  %s %s %s %s: %s", e.Kind, e.What, e.Service, e.Instance, e.Why)
			}
			b.ReportMetric(1, "undetected")
			return
		}
	}
	b.ReportMetric(float64(time.Since(tf).Microseconds())/1000, "detect-ms")
	b.StopTimer()
}
