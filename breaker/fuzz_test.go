package breaker_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/selfheal-go/selfheal/breaker"
)

// FuzzStateMachine drives a breaker with random calls (success, failure, the caller's
// cancellation, panic), waits and manual controls, and checks after every step that
// it agrees with a reference model of the state machine: the state, the forced flag,
// the open deadline, the consecutive-failure count, which calls run, what rejections
// say, and the exact sequence of state changes the hook sees.
//
// The first byte chooses ConsecutiveFailures (1-4) and HalfOpenProbes (1-3); every
// further byte is one step.
func FuzzStateMachine(f *testing.F) {
	f.Add([]byte{0, 2, 0, 5 | 11<<3, 0})
	f.Add([]byte{3, 2, 2, 2, 2, 5 | 15<<3, 0, 0, 2, 5 | 31<<3, 4, 0, 0, 0})
	f.Add([]byte{9, 2, 2, 7, 15, 0, 23, 2, 2, 2, 5 | 20<<3, 6, 5 | 20<<3, 0, 1, 0})
	f.Add([]byte{1, 6, 6, 5 | 10<<3, 5, 4, 0, 5 | 1<<3, 2, 5 | 9<<3, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		synctest.Test(t, func(t *testing.T) { runModel(t, data) })
	})
}

type modelState struct {
	n, p   int           // ConsecutiveFailures, HalfOpenProbes
	d, max time.Duration // OpenDuration, MaxOpenDuration
	opens  int           // open periods in a row: the next wait is min(d*2^opens, max)
	state  breaker.State
	forced int // 0 none, 1 open, 2 closed
	cf, cs int
	until  time.Time
	log    []string
}

func (m *modelState) effective() breaker.State {
	switch m.forced {
	case 1:
		return breaker.StateOpen
	case 2:
		return breaker.StateClosed
	}
	return m.state
}

func (m *modelState) move(to breaker.State) {
	if from := m.effective(); from != to {
		m.log = append(m.log, from.String()+">"+to.String())
	}
	m.state = to
}

// open moves the model to open at now, for a wait that doubles with every open
// period in a row, up to max.
func (m *modelState) open(now time.Time) {
	m.move(breaker.StateOpen)
	m.until = now.Add(min(m.d<<m.opens, m.max))
	m.opens = min(m.opens+1, 8)
}

// observe applies the lazy move from open to half-open that a call makes.
func (m *modelState) observe(now time.Time) {
	if m.forced == 0 && m.state == breaker.StateOpen && m.until.Before(now) {
		m.move(breaker.StateHalfOpen)
		m.cs = 0
	}
}

func runModel(t *testing.T, data []byte) {
	m := &modelState{n: 1 + int(data[0]%4), p: 1 + int(data[0]/4%3), d: 10 * time.Second, max: 40 * time.Second}
	var got []string
	b, err := breaker.New(breaker.Config{
		Name:                "fuzz",
		ConsecutiveFailures: m.n,
		HalfOpenProbes:      m.p,
		OpenDuration:        m.d,
		MaxOpenDuration:     m.max,
		OpenJitter:          breaker.Off,
		MaxHalfOpenWait:     breaker.Off,
		OnStateChange: func(name string, from, to breaker.State) {
			if name != "fuzz" {
				t.Errorf("hook name %q", name)
			}
			got = append(got, from.String()+">"+to.String())
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	for i, op := range data[1:] {
		now := time.Now()
		switch kind := op % 8; kind {
		case 5:
			time.Sleep(time.Duration(op>>3) * time.Second)
		case 7:
			switch op >> 3 % 3 {
			case 0:
				b.ForceOpen()
				m.move(breaker.StateOpen)
				m.forced = 1
			case 1:
				b.ForceClosed()
				to := breaker.StateClosed
				if from := m.effective(); from != to {
					m.log = append(m.log, from.String()+">"+to.String())
				}
				m.forced = 2
			case 2:
				b.Reset()
				if from := m.effective(); from != breaker.StateClosed {
					m.log = append(m.log, from.String()+">closed")
				}
				m.forced, m.state, m.cf, m.cs, m.opens = 0, breaker.StateClosed, 0, 0, 0
			}
		default:
			m.observe(now) // a call moves an open breaker whose wait has passed
			call(t, i, b, m, kind, now)
		}
		check(t, i, b, m, &got) // Snapshot moves nothing

	}
}

// call makes one call of the given kind and checks it against the model.
func call(t *testing.T, i int, b *breaker.Breaker, m *modelState, kind byte, now time.Time) {
	ctx := t.Context()
	var fn func(context.Context) error
	outcome := "ok"
	switch kind {
	case 0, 1:
		fn = ok
	case 2, 3:
		fn, outcome = fail, "fail"
	case 4:
		c, cancel := context.WithCancel(ctx)
		cancel()
		ctx, fn, outcome = c, func(ctx context.Context) error { return ctx.Err() }, "cancel"
	case 6:
		fn, outcome = func(context.Context) error { panic("fuzz") }, "fail"
	}
	ran := false
	var err error
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		err = b.Do(ctx, func(ctx context.Context) error { ran = true; return fn(ctx) })
		return false
	}()

	rejected := m.forced == 1 || (m.forced == 0 && m.state == breaker.StateOpen)
	if rejected {
		var oe *breaker.OpenError
		switch {
		case ran || panicked:
			t.Fatalf("step %d: call ran on an open breaker", i)
		case !errors.As(err, &oe) || !errors.Is(err, breaker.ErrOpen):
			t.Fatalf("step %d: rejection error %v", i, err)
		case oe.Forced != (m.forced == 1):
			t.Fatalf("step %d: Forced %v", i, oe.Forced)
		case m.forced == 0 && (!oe.Until.Equal(m.until) || oe.RetryAfter() != m.until.Sub(now) || oe.RetryAfter() > m.max):
			t.Fatalf("step %d: Until %v RetryAfter %v, want %v", i, oe.Until, oe.RetryAfter(), m.until)
		}
		return
	}
	if !ran {
		t.Fatalf("step %d: call rejected (%v), want it to run in state %v", i, err, m.effective())
	}
	if panicked != (kind == 6) {
		t.Fatalf("step %d: panicked %v", i, panicked)
	}
	if m.forced == 2 {
		return
	}
	switch {
	case m.state == breaker.StateClosed && outcome == "ok":
		m.cf = 0
	case m.state == breaker.StateClosed && outcome == "fail":
		if m.cf++; m.cf >= m.n {
			m.open(now)
			m.cf = 0
		}
	case m.state == breaker.StateHalfOpen && outcome == "ok":
		if m.cs++; m.cs >= m.p {
			m.move(breaker.StateClosed)
			m.cf, m.opens = 0, 0
		}
	case m.state == breaker.StateHalfOpen && outcome == "fail":
		m.open(now)
	}
}

// check compares the breaker's snapshot and hook log with the model.
func check(t *testing.T, i int, b *breaker.Breaker, m *modelState, log *[]string) {
	snap := b.Snapshot()
	got := *log
	switch {
	case snap.State != m.effective():
		t.Fatalf("step %d: state %v, want %v", i, snap.State, m.effective())
	case snap.Forced != (m.forced != 0):
		t.Fatalf("step %d: forced %v, want %v", i, snap.Forced, m.forced)
	case m.forced == 0 && snap.State == breaker.StateOpen && !snap.OpenUntil.Equal(m.until):
		t.Fatalf("step %d: OpenUntil %v, want %v", i, snap.OpenUntil, m.until)
	case snap.State != breaker.StateOpen && !snap.OpenUntil.IsZero():
		t.Fatalf("step %d: OpenUntil %v in state %v", i, snap.OpenUntil, snap.State)
	case m.forced == 0 && snap.State == breaker.StateClosed && int(snap.Counts.ConsecutiveFailures) != m.cf:
		t.Fatalf("step %d: ConsecutiveFailures %d, want %d", i, snap.Counts.ConsecutiveFailures, m.cf)
	case int(snap.Counts.ConsecutiveFailures) >= m.n:
		t.Fatalf("step %d: %d consecutive failures and not open", i, snap.Counts.ConsecutiveFailures)
	case len(got) != len(m.log):
		t.Fatalf("step %d: transitions %v, want %v", i, got, m.log)
	}
	for j := range got {
		if got[j] != m.log[j] {
			t.Fatalf("step %d: transitions %v, want %v", i, got, m.log)
		}
	}
}

// FuzzRateRules drives a breaker with a count-based window, a failure-rate rule and a
// slow-call rule through random outcomes (fast or slow, success or failure, the
// caller's cancellation) and waits, and checks after every step that the state and
// the window counts agree with a reference model: a ring of the last WindowSize
// outcomes, emptied at every state change; a failure may trip the failure-rate rule
// and a slow call the slow-call rule, once the window holds MinimumCalls calls.
//
// The first byte chooses WindowSize (1-8) and MinimumCalls (1-WindowSize), the second
// FailureRate (0.25-1) and SlowCallRate (0.5, 1, or no slow-call rule).
func FuzzRateRules(f *testing.F) {
	f.Add([]byte{3, 0, 0, 2, 0, 2, 7 | 11<<3, 0})
	f.Add([]byte{7, 5, 4, 4, 0, 5, 2, 2, 6, 6, 2, 7 | 15<<3, 4})
	f.Add([]byte{8 + 3, 2, 0, 0, 0, 2, 2, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		synctest.Test(t, func(t *testing.T) { runRateModel(t, data) })
	})
}

func runRateModel(t *testing.T, data []byte) {
	size := 1 + int(data[0]%8)
	minCalls := 1 + int(data[0]/8)%size
	failureRate := []float64{0.25, 0.5, 0.75, 1}[data[1]%4]
	slowRate := []float64{0, 0.5, 1}[data[1]/4%3]
	cfg := breaker.Config{
		FailureRate: failureRate, WindowSize: size, MinimumCalls: minCalls,
		OpenDuration: 10 * time.Second, MaxHalfOpenWait: breaker.Off,
	}
	if slowRate > 0 {
		cfg.SlowCallDuration, cfg.SlowCallRate = time.Second, slowRate
	}
	cfg.Name = "rates"
	b, err := breaker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}

	state := breaker.StateClosed
	var ring []uint8 // bit 0 failed, bit 1 slow
	var until time.Time
	count := func(bit uint8) (n int) {
		for _, o := range ring {
			if o&bit != 0 {
				n++
			}
		}
		return n
	}

	for i, op := range data[2:] {
		if op%8 == 7 {
			time.Sleep(time.Duration(op>>3) * time.Second)
		} else {
			now := time.Now()
			if state == breaker.StateOpen && until.Before(now) {
				state = breaker.StateHalfOpen
			}
			ctx, cancel := context.WithCancel(t.Context())
			var o uint8
			var fn func(context.Context) error
			switch op % 8 {
			case 0, 1:
				fn = ok
			case 2, 3:
				fn, o = fail, 1
			case 4:
				fn, o = func(context.Context) error { time.Sleep(time.Second); return nil }, 2
			case 5:
				fn, o = func(context.Context) error { time.Sleep(time.Second); return errBoom }, 3
			case 6:
				cancel()
				fn, o = func(ctx context.Context) error { return ctx.Err() }, 4
			}
			if slowRate == 0 {
				o &^= 2 // no slow-call rule: slowness is not watched
			}
			ran := false
			err := b.Do(ctx, func(ctx context.Context) error { ran = true; return fn(ctx) })
			cancel()
			end := time.Now()
			switch {
			case state == breaker.StateOpen:
				if ran || !errors.Is(err, breaker.ErrOpen) {
					t.Fatalf("step %d: open breaker ran the call or said %v", i, err)
				}
			case !ran:
				t.Fatalf("step %d: call rejected (%v) in state %v", i, err, state)
			case o == 4: // the caller's own cancellation counts neither way
			case state == breaker.StateHalfOpen:
				if o == 0 {
					state, ring = breaker.StateClosed, nil
				} else {
					state, until = breaker.StateOpen, end.Add(10*time.Second)
				}
			default:
				if ring = append(ring, o); len(ring) > size {
					ring = ring[1:]
				}
				calls := float64(len(ring))
				trip := len(ring) >= minCalls &&
					(o&1 != 0 && float64(count(1))/calls >= failureRate ||
						o&2 != 0 && float64(count(2))/calls >= slowRate)
				if trip {
					state, ring, until = breaker.StateOpen, nil, end.Add(10*time.Second)
				}
			}
		}
		snap := b.Snapshot()
		if snap.State != state {
			t.Fatalf("step %d (op %d): state %v, want %v (window %v)", i, op%8, snap.State, state, ring)
		}
		if state == breaker.StateClosed {
			c := snap.Counts
			if int(c.WindowCalls) != len(ring) || int(c.WindowFailures) != count(1) || int(c.WindowSlow) != count(2) {
				t.Fatalf("step %d: window %d/%d/%d, want %d/%d/%d", i,
					c.WindowCalls, c.WindowFailures, c.WindowSlow, len(ring), count(1), count(2))
			}
		}
	}
}

// FuzzTimeWindow drives a breaker with a time-based window (10s in 1 to 10 buckets)
// and every rule through random outcomes and waits that fall anywhere in a bucket,
// and checks after every step that the state and the counts agree with a reference
// model that keeps every call and decides, for each, whether it is still in the
// window: a call that ended in bucket a (the a-th WindowDuration/WindowBuckets since
// the window began) is in it while the current bucket is below a+WindowBuckets. The
// run of consecutive failures counts the failures in the window after the last
// success. When the model trips, the breaker must be open; both are then reset.
//
// The first byte chooses the buckets and ConsecutiveFailures, the second FailureRate,
// the slow-call rule and MinimumCalls.
func FuzzTimeWindow(f *testing.F) {
	f.Add([]byte{0, 0, 2, 2, 7, 2, 15, 2})
	f.Add([]byte{2, 5, 2, 4, 23, 0, 0, 1, 31, 5, 2})
	f.Add([]byte{19, 14, 0, 2, 4, 5, 39, 2, 2, 63, 3, 6, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		synctest.Test(t, func(t *testing.T) { runWindowModel(t, data) })
	})
}

type windowCall struct {
	req, end      time.Time
	kind          int // 0 success, 1 failure, 2 excluded
	failed, slowC bool
}

func runWindowModel(t *testing.T, data []byte) {
	const W = 10 * time.Second
	n := []int{1, 2, 3, 7, 10}[data[0]%5]
	consecutive := []int{breaker.Off, 1, 2, 4}[data[0]/5%4]
	failureRate := []float64{0, 0.5, 1}[data[1]%3]
	slowRate := []float64{0, 0.5, 1}[data[1]/3%3]
	minCalls := 1 + int(data[1]/9)%4
	if consecutive == breaker.Off && failureRate == 0 && slowRate == 0 {
		consecutive = 3
	}
	cfg := breaker.Config{
		Name: "window", WindowDuration: W, WindowBuckets: n, MinimumCalls: minCalls,
		ConsecutiveFailures: consecutive, FailureRate: failureRate, OpenDuration: time.Hour,
	}
	if slowRate > 0 {
		cfg.SlowCallDuration, cfg.SlowCallRate = time.Second, slowRate
	}
	b, err := breaker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rateRules := failureRate > 0 || slowRate > 0

	start := time.Now()
	var calls []windowCall
	age := func(at time.Time) int64 { return int64(at.Sub(start)) * int64(n) / int64(W) }
	in := func(at, now time.Time) bool { return age(now)-age(at) < int64(n) }

	for i, op := range data[2:] {
		if op%8 == 7 {
			time.Sleep(time.Duration(op>>3) * 700 * time.Millisecond)
		} else {
			c := windowCall{req: time.Now()}
			ctx, cancel := context.WithCancel(t.Context())
			var fn func(context.Context) error
			switch op % 8 {
			case 0, 1:
				fn = ok
			case 2, 3:
				fn, c.failed = fail, true
			case 4:
				fn, c.slowC = func(context.Context) error { time.Sleep(time.Second); return nil }, true
			case 5:
				fn, c.failed, c.slowC = func(context.Context) error { time.Sleep(time.Second); return errBoom }, true, true
			case 6:
				cancel()
				fn, c.kind = func(ctx context.Context) error { return ctx.Err() }, 2
			}
			if c.failed {
				c.kind = 1
			}
			if slowRate == 0 {
				c.slowC = false
			}
			if err := b.Do(ctx, fn); errors.Is(err, breaker.ErrOpen) {
				t.Fatalf("step %d: rejected in the closed state", i)
			}
			cancel()
			c.end = time.Now()
			calls = append(calls, c)
		}

		// The model's counts as of now.
		now := time.Now()
		var want breaker.Counts
		for _, c := range calls {
			if in(c.req, now) {
				want.Requests++
			}
			if !in(c.end, now) {
				continue
			}
			switch c.kind {
			case 0:
				want.Successes++
				want.ConsecutiveSuccesses++
				want.ConsecutiveFailures = 0
			case 1:
				want.Failures++
				want.ConsecutiveFailures++
				want.ConsecutiveSuccesses = 0
			case 2:
				want.Excluded++
			}
			if c.kind != 2 && c.slowC {
				want.WindowSlow++
			}
		}
		if rateRules {
			want.WindowCalls, want.WindowFailures = want.Successes+want.Failures, want.Failures
		} else {
			want.WindowSlow = 0
		}

		trip := false
		if op%8 != 7 && len(calls) > 0 {
			last := calls[len(calls)-1]
			calls := float64(want.Successes + want.Failures)
			trip = last.kind != 2 && (last.failed && consecutive > 0 && int(want.ConsecutiveFailures) >= consecutive ||
				calls >= float64(minCalls) && (last.failed && failureRate > 0 && float64(want.Failures)/calls >= failureRate ||
					last.slowC && float64(want.WindowSlow)/calls >= slowRate))
		}
		snap := b.Snapshot()
		if trip {
			if snap.State != breaker.StateOpen {
				t.Fatalf("step %d: state %v, want open (model %+v)", i, snap.State, want)
			}
			b.Reset()
			start, calls = time.Now(), nil
			continue
		}
		if snap.State != breaker.StateClosed {
			t.Fatalf("step %d: state %v, want closed (model %+v)", i, snap.State, want)
		}
		if snap.Counts != want {
			t.Fatalf("step %d: counts\n%+v, want\n%+v", i, snap.Counts, want)
		}
	}
}
