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
	d      time.Duration // OpenDuration
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

// observe applies the lazy move from open to half-open that a call or State makes.
func (m *modelState) observe(now time.Time) {
	if m.forced == 0 && m.state == breaker.StateOpen && m.until.Before(now) {
		m.move(breaker.StateHalfOpen)
		m.cs = 0
	}
}

func runModel(t *testing.T, data []byte) {
	m := &modelState{n: 1 + int(data[0]%4), p: 1 + int(data[0]/4%3), d: 10 * time.Second}
	var got []string
	b, err := breaker.New("fuzz", breaker.Config{
		ConsecutiveFailures: m.n,
		HalfOpenProbes:      m.p,
		OpenDuration:        m.d,
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
				m.forced, m.state, m.cf, m.cs = 0, breaker.StateClosed, 0, 0
			}
		default:
			m.observe(now)
			call(t, i, b, m, kind, now)
		}
		m.observe(time.Now())
		check(t, i, b, m, &got)
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
		case m.forced == 0 && (!oe.Until.Equal(m.until) || oe.RetryAfter() != m.until.Sub(now) || oe.RetryAfter() > m.d):
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
			m.move(breaker.StateOpen)
			m.until, m.cf = now.Add(m.d), 0
		}
	case m.state == breaker.StateHalfOpen && outcome == "ok":
		if m.cs++; m.cs >= m.p {
			m.move(breaker.StateClosed)
			m.cf = 0
		}
	case m.state == breaker.StateHalfOpen && outcome == "fail":
		m.move(breaker.StateOpen)
		m.until = now.Add(m.d)
	}
}

// check compares the breaker's snapshot and hook log with the model.
func check(t *testing.T, i int, b *breaker.Breaker, m *modelState, log *[]string) {
	snap := b.State()
	got := *log // after State, which may have moved the breaker to half-open
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
