package peerbench

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/thejerf/suture/v4"

	"github.com/selfheal-go/selfheal/supervise"
)

// The supervise benchmarks restart a child that fails at once, under
// supervise and under thejerf/suture v4, measured the same way:
//
//   - The child's Serve signals its start on a buffered channel and returns an
//     error (or panics); the benchmark loop receives one start per iteration,
//     so ns/op, B/op and allocs/op are per restart, harness included.
//   - The child also records the time from its return (or panic) to its next
//     Serve call; p50-ns is the median of those restart latencies.
//
// Both supervisors are set up so that nothing but the restart is measured:
// suture with a no-op EventHook and a failure threshold it never reaches (its
// "backoff" pause disabled), supervise with NoBackoff and a restart intensity
// it never reaches (more than 1000 restarts within 1µs). With defaults, both
// would rightly pause a child that fails thousands of times a second.

var errBench = errors.New("bench: failing on purpose")

const latencySamples = 1 << 15

// flaky fails every time it is served, after signalling its start.
type flaky struct {
	panics  bool
	started chan struct{}
	quit    chan struct{}
	// latency bookkeeping; only used with a single child (Serve is never
	// concurrent with itself, and runs happen one after another).
	record  bool
	epoch   time.Time
	lastRet time.Duration
	samples []time.Duration
	n       int
}

func newFlaky(panics, record bool, started chan struct{}, quit chan struct{}) *flaky {
	f := &flaky{panics: panics, started: started, quit: quit, record: record, epoch: time.Now()}
	if record {
		f.samples = make([]time.Duration, latencySamples)
	}
	return f
}

func (f *flaky) Serve(ctx context.Context) error {
	if f.record {
		now := time.Since(f.epoch)
		if f.lastRet != 0 {
			f.samples[f.n%latencySamples] = now - f.lastRet
			f.n++
		}
	}
	select {
	case f.started <- struct{}{}:
	case <-f.quit:
		<-ctx.Done()
		return nil
	}
	if f.record {
		f.lastRet = time.Since(f.epoch)
	}
	if f.panics {
		panic(errBench)
	}
	return errBench
}

func (f *flaky) p50() float64 {
	n := min(f.n, latencySamples)
	if n == 0 {
		return 0
	}
	s := slices.Clone(f.samples[:n])
	slices.Sort(s)
	return float64(s[n/2])
}

// running is a supervisor being served: done receives what Serve returned.
type running struct {
	cancel context.CancelFunc
	done   <-chan error
}

// next waits for the next start; a supervisor that returned early fails the
// benchmark instead of hanging it.
func (r running) next(b *testing.B, started <-chan struct{}) {
	select {
	case <-started:
	case err := <-r.done:
		b.Fatalf("supervisor returned early: %v", err)
	}
}

// runner starts a supervisor of the given services.
type runner func(b *testing.B, svcs []*flaky) running

func runSupervise(b *testing.B, svcs []*flaky) running {
	s, err := supervise.New(supervise.Config{Name: "bench",
		Backoff:     supervise.NoBackoff,
		MaxRestarts: 1000,
		Period:      time.Microsecond,
	})
	if err != nil {
		b.Fatal(err)
	}
	for i, f := range svcs {
		if _, err := s.Add(f, supervise.ChildConfig{Name: "flaky-" + strconv.Itoa(i)}); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	return running{cancel, done}
}

func runSuture(b *testing.B, svcs []*flaky) running {
	s := suture.New("bench", suture.Spec{
		EventHook:        func(suture.Event) {},
		FailureThreshold: 1e18,
		FailureDecay:     1,
		FailureBackoff:   time.Millisecond,
		Timeout:          10 * time.Second,
	})
	for _, f := range svcs {
		s.Add(f)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return running{cancel, s.ServeBackground(ctx)}
}

// stop cancels the supervisor and waits for it.
func (r running) stop(b *testing.B, quit chan struct{}) {
	close(quit)
	r.cancel()
	if err := <-r.done; err != nil && !errors.Is(err, context.Canceled) {
		b.Error(err)
	}
}

var superviseRunners = []struct {
	name string
	run  runner
}{
	{"selfheal", runSupervise},
	{"suture", runSuture},
}

// BenchmarkSuperviseRestart: latency and cost of restarting one child after
// an error return or a panic.
func BenchmarkSuperviseRestart(b *testing.B) {
	for _, mode := range []string{"error", "panic"} {
		for _, r := range superviseRunners {
			b.Run(mode+"/"+r.name, func(b *testing.B) {
				started := make(chan struct{}, 1024)
				quit := make(chan struct{})
				f := newFlaky(mode == "panic", true, started, quit)
				sup := r.run(b, []*flaky{f})
				b.ReportAllocs()
				for b.Loop() {
					sup.next(b, started)
				}
				sup.stop(b, quit)
				b.ReportMetric(f.p50(), "p50-ns")
			})
		}
	}
}

// BenchmarkSuperviseThroughput: restarts per second with 1 and 64 children
// failing at once, all under one supervisor.
func BenchmarkSuperviseThroughput(b *testing.B) {
	for _, n := range []int{1, 64} {
		for _, r := range superviseRunners {
			b.Run("children="+strconv.Itoa(n)+"/"+r.name, func(b *testing.B) {
				started := make(chan struct{}, 1024)
				quit := make(chan struct{})
				svcs := make([]*flaky, n)
				for i := range svcs {
					svcs[i] = newFlaky(false, false, started, quit)
				}
				sup := r.run(b, svcs)
				b.ReportAllocs()
				for b.Loop() {
					sup.next(b, started)
				}
				elapsed := b.Elapsed()
				sup.stop(b, quit)
				if elapsed > 0 {
					b.ReportMetric(float64(b.N)/elapsed.Seconds(), "restarts/s")
				}
			})
		}
	}
}

// crashLooper fails at once, every time.
type crashLooper struct{}

func (crashLooper) Serve(context.Context) error { return errBench }

// kicked fails each time the benchmark kicks it, after signalling its start.
type kicked struct {
	started chan struct{}
	kick    chan struct{}
}

func (k *kicked) Serve(ctx context.Context) error {
	select {
	case k.started <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	select {
	case <-k.kick:
		return errBench
	case <-ctx.Done():
		return nil
	}
}

// BenchmarkSuperviseSiblingRestart: how long the restart of a healthy child
// (one that ran 6ms, longer than its backoff reset, before failing) takes
// while a sibling crash-loops. Both supervisors keep their backoff on, with
// 100ms delays: suture pauses the whole supervisor after 5 quick failures
// (FailureBackoff 100ms), so the healthy child waits for the pause to end;
// supervise backs off the crash-looping child alone (constant 100ms backoff,
// BackoffReset 5ms, an intensity it never reaches), so the healthy child
// restarts at once. p50-ns is the median from failure to restart; ns/op is
// dominated by the 6ms run.
func BenchmarkSuperviseSiblingRestart(b *testing.B) {
	for _, name := range []string{"selfheal", "suture"} {
		b.Run(name, func(b *testing.B) {
			k := &kicked{started: make(chan struct{}), kick: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			var done <-chan error
			switch name {
			case "selfheal":
				s, err := supervise.New(supervise.Config{Name: "bench",
					Backoff:      supervise.ConstantBackoff(100 * time.Millisecond),
					BackoffReset: 5 * time.Millisecond,
					MaxRestarts:  1000,
					Period:       time.Millisecond,
				})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Add(crashLooper{}, supervise.ChildConfig{Name: "crashloop"}); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Add(k, supervise.ChildConfig{Name: "healthy"}); err != nil {
					b.Fatal(err)
				}
				errc := make(chan error, 1)
				go func() { errc <- s.Serve(ctx) }()
				done = errc
			case "suture":
				s := suture.New("bench", suture.Spec{
					EventHook:      func(suture.Event) {},
					FailureBackoff: 100 * time.Millisecond,
				})
				s.Add(crashLooper{})
				s.Add(k)
				done = s.ServeBackground(ctx)
			}
			<-k.started
			samples := make([]time.Duration, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				time.Sleep(6 * time.Millisecond)
				begin := time.Now()
				k.kick <- struct{}{}
				select {
				case <-k.started:
				case err := <-done:
					b.Fatalf("supervisor returned early: %v", err)
				}
				if len(samples) < cap(samples) {
					samples = append(samples, time.Since(begin))
				}
			}
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				b.Error(err)
			}
			if len(samples) > 0 {
				slices.Sort(samples)
				b.ReportMetric(float64(samples[len(samples)/2]), "p50-ns")
			}
		})
	}
}
