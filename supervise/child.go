package supervise

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// child is one supervised service. Its fields below the line are guarded by
// the supervisor's mu.
type child struct {
	id          ChildID
	name        string
	svc         Service
	sub         *Supervisor // svc, if it is a supervisor
	restart     RestartType
	shutdown    time.Duration // 0: the supervisor's default
	significant bool

	state     ChildState
	run       *runner // the goroutine running the child, nil if none
	removed   bool
	pending   bool // waiting for a group restart
	restarts  int
	lastErr   error
	startedAt time.Time
	quick     int     // ends since the last stable run
	held      bool    // stopped by StopChild: not restarted until RestartChild or the next Serve
	zombie    *runner // an abandoned copy of the child that has not returned yet
	waitFree  bool    // to start as soon as zombie returns
	finished  bool    // ended on its own and not restarted (for AutoShutdown)
	opts      [numCauses][]metric.AddOption
	path      string // cached by pathUnder
	pathBase  string
}

// pathUnder returns base + "/" + c.name, cached, since Snapshot builds it for
// every child on every call. The supervisor's mu must be held.
func (c *child) pathUnder(base string) string {
	if c.path == "" || c.pathBase != base {
		c.path, c.pathBase = base+"/"+c.name, base
	}
	return c.path
}

func (c *child) restartsSnapshot(s *Supervisor) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.restarts
}

// runner is one goroutine running a child: it calls Serve, and restarts it in
// place as long as the child is restarted alone (OneForOne). Cancelling ctx
// stops it; done is closed when it has returned.
type runner struct {
	c        *child
	sess     *session
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	goid     atomic.Uint64
	launched *launchSignal // for a nested supervisor: fired once it launched its children
	// Guarded by the supervisor's mu:
	stopping  bool          // the supervisor cancelled it
	abandoned bool          // it did not return within its shutdown timeout
	reported  chan struct{} // closed once EventAbandoned was emitted
	exited    bool          // its goroutine has ended (done is closed just after)
}

// maxPanicFrames bounds the stack recorded for a panic.
const maxPanicFrames = 64

type action int

const (
	actExit action = iota
	actRestart
	actWait
	actStart
)

// runChild is the goroutine of runner r. act is actStart for the first run
// (whose Started event launch emitted), or, after runtime.Goexit ended the
// previous goroutine, what ended decided.
func (s *Supervisor) runChild(c *child, r *runner, act action, delay time.Duration) {
	r.goid.Store(curGoroutineID())
	inServe := false
	defer func() {
		if !inServe {
			s.exitRunner(r)
			return
		}
		// Serve called runtime.Goexit (a panic was recovered in call, or, with
		// NoRecover, is crashing the program). Record the failure and carry on
		// in a new goroutine, since this one is ending.
		if s.cfg.NoRecover {
			s.mu.Lock()
			if c.run == r {
				c.run = nil
				c.lastErr = ErrGoexit
				s.setState(c, StateFailed)
			}
			s.mu.Unlock()
			s.exitRunner(r)
			return
		}
		act, delay := s.ended(c, r, ErrGoexit, causeError)
		if act == actExit {
			s.exitRunner(r)
			return
		}
		go s.runChild(c, r, act, delay)
	}()
	switch act {
	case actStart:
		if r.ctx.Err() != nil { // stopped before it started
			s.ended(c, r, nil, causeExit)
			return
		}
	case actWait:
		if !s.wait(c, r, delay) {
			return
		}
		fallthrough
	default:
		if r.sess.observed() {
			r.sess.emit(Event{Kind: EventStarted, Time: time.Now(), Supervisor: r.sess.path, Child: c.name, Restarts: c.restartsSnapshot(s)})
		}
	}
	s.loop(c, r, &inServe)
}

// exitRunner records that r's goroutine is ending. If r had been abandoned,
// its child may run again: if it was waiting for that, it starts now.
func (s *Supervisor) exitRunner(r *runner) {
	c := r.c
	var start *runner
	s.mu.Lock()
	r.exited = true
	delete(s.live, r)
	reported := r.reported
	if r.abandoned {
		s.abandoned.Add(-1)
		if c.zombie == r {
			c.zombie = nil
			if c.waitFree {
				c.waitFree = false
				if s.serving && !s.stopping && !c.removed {
					start = s.startLocked(c)
				} else if c.state == StateBackingOff {
					s.setState(c, StateStopped)
				}
			}
		}
	}
	s.mu.Unlock()
	close(r.done)
	if r.abandoned && r.sess.observed() {
		<-reported // EventAbandoned first: the events of one child arrive in order
		r.sess.emit(Event{Kind: EventReturned, Time: time.Now(), Supervisor: r.sess.path, Child: c.name, Restarts: c.restartsSnapshot(s)})
	}
	if start != nil {
		s.launch(c, start)
	}
}

// loop runs c until its runner is to exit.
func (s *Supervisor) loop(c *child, r *runner, inServe *bool) {
	for {
		*inServe = true
		z, err := s.call(r.ctx, c)
		*inServe = false
		act, delay := s.ended(c, r, err, z)
		switch act {
		case actExit:
			return
		case actWait:
			if !s.wait(c, r, delay) {
				return
			}
		}
		if r.sess.observed() {
			r.sess.emit(Event{Kind: EventStarted, Time: time.Now(), Supervisor: r.sess.path, Child: c.name, Restarts: c.restartsSnapshot(s)})
		}
	}
}

// call runs c's Serve once, with a context of its own that is cancelled when
// Serve returns (or calls runtime.Goexit), recovering a panic unless NoRecover
// is set.
func (s *Supervisor) call(parent context.Context, c *child) (z cause, err error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	if s.cfg.NoRecover {
		return causeError, c.svc.Serve(ctx)
	}
	defer func() {
		if p := recover(); p != nil {
			// Record where, not the text: see PanicError.Stack.
			var pcs [maxPanicFrames]uintptr
			n := runtime.Callers(2, pcs[:]) // from runtime.gopanic up
			z, err = causePanic, &PanicError{Value: p, pcs: append([]uintptr(nil), pcs[:n]...)}
		}
	}()
	return causeError, c.svc.Serve(ctx)
}

// wait waits out a backoff delay on the runner's own timer. It returns false
// if the runner was stopped meanwhile, after recording that.
func (s *Supervisor) wait(c *child, r *runner, d time.Duration) bool {
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-r.ctx.Done():
		t.Stop()
	}
	s.mu.Lock()
	if r.stopping || c.run != r || s.stopping {
		if c.run == r {
			c.run = nil
			s.setState(c, StateStopped)
		}
		s.mu.Unlock()
		if r.sess.observed() {
			r.sess.emit(Event{Kind: EventStopped, Time: time.Now(), Supervisor: r.sess.path, Child: c.name, Restarts: c.restartsSnapshot(s)})
		}
		return false
	}
	c.startedAt = time.Now()
	s.setState(c, StateRunning)
	s.mu.Unlock()
	return true
}

// ended decides what follows a run of c that ended with err (nil for a normal
// return) and reports it. It returns what runner r does next.
func (s *Supervisor) ended(c *child, r *runner, err error, z cause) (action, time.Duration) {
	var now time.Time
	failed := err != nil
	if !failed {
		z = causeExit
	}
	s.mu.Lock()
	now = time.Now() // under the lock, so that restart times are in order
	if r != c.run || r.stopping || s.stopping {
		// Stopped by the supervisor, or abandoned and since replaced.
		if c.run == r {
			c.run = nil
			if failed && r.ctx.Err() == nil {
				c.lastErr = err
			}
			s.setState(c, StateStopped)
		}
		n := c.restarts
		s.mu.Unlock()
		if r.sess.observed() {
			r.sess.emit(Event{Kind: EventStopped, Time: now, Supervisor: r.sess.path, Child: c.name, Err: err, Restarts: n})
		}
		return actExit, 0
	}
	if failed {
		c.lastErr = err
	}
	restart := c.restart == Permanent || (c.restart == Transient && failed)
	if !restart {
		c.run = nil
		c.finished = true
		if failed {
			s.setState(c, StateFailed)
		} else {
			s.setState(c, StateStopped)
		}
		if c.significant {
			s.significantEndedLocked(c)
		}
		n := c.restarts
		s.mu.Unlock()
		if r.sess.observed() {
			if failed {
				r.sess.emit(r.sess.failedEvent(c, err, now, n))
			}
			r.sess.emit(Event{Kind: EventStopped, Time: now, Supervisor: r.sess.path, Child: c.name, Err: err, Restarts: n})
		}
		return actExit, 0
	}

	// Restart, unless that exceeds the intensity or the backoff says stop.
	ranFor := now.Sub(c.startedAt)
	if ranFor >= s.cfg.BackoffReset {
		c.quick = 0
	}
	c.quick++
	var delay time.Duration
	if c.quick > 1 {
		delay = s.cfg.Backoff(c.quick - 1)
	}
	if stop := delay < 0; stop || !s.allowRestartLocked(now) {
		c.run = nil
		s.setState(c, StateFailed)
		s.giveUpLocked(c, err, stop)
		n := c.restarts
		s.mu.Unlock()
		if r.sess.observed() {
			r.sess.emit(r.sess.failedEvent(c, err, now, n))
		}
		return actExit, 0
	}
	c.restarts++
	n := c.restarts
	opts := c.restartOpts(r.sess.path, z)
	act := actRestart
	switch {
	case s.cfg.Strategy != OneForOne:
		// The Serve loop stops the group and restarts it.
		c.run = nil
		c.pending = true
		s.setState(c, StateBackingOff)
		s.groupReqs = append(s.groupReqs, groupReq{c: c, delay: delay})
		s.signal()
		act = actExit
	case delay > 0:
		s.setState(c, StateBackingOff)
		act = actWait
	default:
		c.startedAt = now
	}
	s.mu.Unlock()
	s.metrics.restarted(r.sess, opts, c, z, delay, err)
	if r.sess.observed() {
		if failed {
			r.sess.emit(r.sess.failedEvent(c, err, now, n-1))
		}
		r.sess.emit(Event{Kind: EventRestarting, Time: now, Supervisor: r.sess.path, Child: c.name, Delay: delay, Cause: z.String(), Restarts: n})
	}
	return act, delay
}

func (ss *session) failedEvent(c *child, err error, now time.Time, restarts int) Event {
	e := Event{Kind: EventFailed, Time: now, Supervisor: ss.path, Child: c.name, Err: err, Restarts: restarts}
	if pe, ok := err.(*PanicError); ok {
		e.Stack = pe.Stack()
	}
	return e
}
