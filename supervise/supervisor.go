package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ChildID identifies a child of one supervisor: [Supervisor.Add] returns it,
// and [Supervisor.Remove], [Supervisor.StopChild] and
// [Supervisor.RestartChild] take it. An ID belongs to the supervisor that
// returned it: any other supervisor answers [ErrUnknownChild]. IDs are never
// reused; the zero ChildID is no child's.
type ChildID struct {
	sup uint64 // the supervisor's serial number
	n   uint64 // the child's, within it
}

var supervisorSerial atomic.Uint64

// Supervisor runs children ([Service] values), restarts them when they end
// according to its [Strategy] and their [RestartType], and gives up when they
// end too often (the restart intensity), stopping them all and reporting the
// failure to its own parent. See the package documentation for the model.
//
// Make one with [New]; the zero Supervisor is not usable (its methods return
// [ErrNotCreated]). A *Supervisor is a [Service]: add it to another supervisor
// to build a tree, or call [Supervisor.Serve] on the root. All methods are safe
// for concurrent use.
type Supervisor struct {
	serial  uint64
	name    string
	cfg     Config
	metrics *metrics
	parent  atomic.Pointer[Supervisor]
	wake    chan struct{} // cap 1: a runner asks the Serve loop to look at the queue

	running   atomic.Int64 // children in StateRunning, for the metric
	abandoned atomic.Int64 // abandoned runners whose goroutine has not ended; changed under mu

	mu         sync.Mutex
	children   []*child // in start order
	lastID     uint64
	serving    bool
	stopping   bool
	gaveUp     bool
	base       context.Context // the children's parent context while serving; never cancelled
	escalation *EscalationError
	autoStop   string // the significant child whose end shuts the supervisor down
	groupReqs  []groupReq
	epoch      time.Time // when serving started
	ring       []int64   // times (since epoch) of the restarts within Period, oldest first from ringStart
	ringStart  int
	ringLen    int
	sess       *session             // of the current or last Serve
	live       map[*runner]struct{} // runners whose goroutine has not ended, except abandoned ones
}

// session is what one call of Serve resolved when it started. It never
// changes, so runners read it without the lock, even one abandoned by an
// earlier Serve.
type session struct {
	hook   func(Event)
	logger *slog.Logger
	path   string
	base   context.Context // Serve's context without its cancellation: the parent of the session's spans
}

func (ss *session) observed() bool { return ss.hook != nil || ss.logger != nil }

// emit delivers e to the hook and the logger. It must be called without s.mu.
func (ss *session) emit(e Event) {
	if ss.hook != nil {
		ss.hook(e)
	}
	if ss.logger != nil {
		e.log(ss.logger)
	}
}

type groupReq struct {
	c     *child
	delay time.Duration
}

// New returns a supervisor configured by cfg (see [Config] for the defaults of
// its zero fields). It starts nothing: children run while [Supervisor.Serve]
// does. An invalid field makes it return a *[ConfigError] ([ErrInvalidConfig]).
func New(cfg Config) (*Supervisor, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	name := cfg.Name
	return &Supervisor{
		serial:  supervisorSerial.Add(1),
		name:    name,
		cfg:     cfg,
		metrics: newMetrics(cfg.MeterProvider, cfg.TracerProvider),
		wake:    make(chan struct{}, 1),
		live:    make(map[*runner]struct{}),
		sess:    &session{path: name},
	}, nil
}

// Name returns the supervisor's name.
func (s *Supervisor) Name() string { return s.name }

// String returns the supervisor's name, which is also its default child name.
func (s *Supervisor) String() string { return s.name }

// Path returns the names of the supervisor's ancestors and its own, joined by
// "/": "root/db" for a supervisor "db" added to "root".
func (s *Supervisor) Path() string {
	if p := s.parent.Load(); p != nil {
		return p.Path() + "/" + s.name
	}
	return s.name
}

func (s *Supervisor) resolveHook() func(Event) {
	for t := s; t != nil; t = t.parent.Load() {
		if t.cfg.Hook != nil {
			return t.cfg.Hook
		}
	}
	return nil
}

func (s *Supervisor) resolveLogger() *slog.Logger {
	for t := s; t != nil; t = t.parent.Load() {
		if t.cfg.Logger != nil {
			return t.cfg.Logger
		}
	}
	return nil
}

// Add adds svc as a child configured by cfg (see [ChildConfig] for the
// defaults of its zero fields) and returns its ID. If the supervisor is
// serving, the child starts at once; otherwise it starts, in the order added,
// when Serve is called.
//
// Add returns a *[ConfigError] ([ErrInvalidConfig]) for an invalid field of
// cfg, [ErrDuplicateName] if a child of that name exists, [ErrAlreadyServing]
// if svc is a *Supervisor that already has a parent, and an error naming the
// problem for a nil svc or a supervisor added to itself or its own descendant.
func (s *Supervisor) Add(svc Service, cfg ChildConfig) (ChildID, error) {
	if s == nil || s.wake == nil {
		return ChildID{}, ErrNotCreated
	}
	if svc == nil {
		return ChildID{}, errors.New("supervise: Add: service is nil")
	}
	if err := cfg.validate(s.cfg.AutoShutdown); err != nil {
		return ChildID{}, err
	}
	sub, _ := svc.(*Supervisor)
	if sub != nil {
		if sub.wake == nil {
			return ChildID{}, ErrNotCreated
		}
		for t := s; t != nil; t = t.parent.Load() {
			if t == sub {
				return ChildID{}, fmt.Errorf("supervise: Add: supervisor %q cannot be its own descendant", sub.name)
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.lastID + 1
	name := cfg.Name
	if name == "" {
		if st, ok := svc.(fmt.Stringer); ok {
			name = st.String()
		}
		if name == "" || strings.Contains(name, "/") {
			name = "child-" + strconv.FormatUint(n, 10)
		}
	}
	for _, c := range s.children {
		if c.name == name {
			return ChildID{}, fmt.Errorf("supervise: Add: %q: %w", name, ErrDuplicateName)
		}
	}
	if sub != nil && !sub.parent.CompareAndSwap(nil, s) {
		return ChildID{}, fmt.Errorf("supervise: Add: supervisor %q already has a parent: %w", sub.name, ErrAlreadyServing)
	}
	s.lastID = n
	id := ChildID{sup: s.serial, n: n}
	c := &child{
		id:          id,
		name:        name,
		svc:         svc,
		sub:         sub,
		restart:     cfg.Restart,
		shutdown:    cfg.ShutdownTimeout,
		significant: cfg.Significant,
		state:       StateStopped,
	}
	s.children = append(s.children, c)
	if s.serving && !s.stopping {
		r := s.startLocked(c)
		// Launching needs the lock released (it emits an event); the runner
		// checks its context before the first run, so a stop in between is safe.
		s.mu.Unlock()
		s.launch(c, r)
		s.mu.Lock()
	}
	return id, nil
}

// Remove stops the child id (cancelling its context and waiting up to its
// shutdown timeout, or until ctx is done) and forgets it. It returns nil once
// the child has returned, [ErrUnknownChild] for an ID that is not one of this
// supervisor's children, a *StopTimeoutError ([ErrStopTimeout]) if the child
// did not return in time (it is then abandoned, and reported), or ctx's error.
// The child is removed in every case but ErrUnknownChild; the supervisor keeps
// no reference to it, except from an abandoned copy until that returns.
func (s *Supervisor) Remove(ctx context.Context, id ChildID) error {
	if s == nil || s.wake == nil {
		return ErrNotCreated
	}
	s.mu.Lock()
	c, i, err := s.lookupLocked("Remove", id)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	// slices.Delete clears the vacated slot, so that a removed last child is
	// not kept reachable by the backing array.
	s.children = slices.Delete(s.children, i, i+1)
	c.removed = true
	c.pending = false
	c.waitFree = false
	s.mu.Unlock()
	if c.sub != nil {
		defer c.sub.parent.CompareAndSwap(s, nil)
	}
	return s.stopChild(ctx, c, time.Time{})
}

// lookupLocked finds the child id. s.mu must be held.
func (s *Supervisor) lookupLocked(op string, id ChildID) (*child, int, error) {
	if id.sup != s.serial {
		return nil, -1, fmt.Errorf("supervise: %s: the ID is not of a child of %q: %w", op, s.name, ErrUnknownChild)
	}
	for i, c := range s.children {
		if c.id == id {
			return c, i, nil
		}
	}
	return nil, -1, fmt.Errorf("supervise: %s: %w", op, ErrUnknownChild)
}

// StopChild stops the child id without removing it, as OTP's terminate_child:
// it cancels the child's context and waits up to its shutdown timeout, or
// until ctx is done. The child stays listed, stopped, and is not restarted
// (not even by a group restart) until [Supervisor.RestartChild] or the next
// Serve. It returns nil once the child has returned (or if it was not
// running), [ErrUnknownChild], a *StopTimeoutError ([ErrStopTimeout]) if the
// child did not return in time (it is then abandoned, and reported), or ctx's
// error.
func (s *Supervisor) StopChild(ctx context.Context, id ChildID) error {
	if s == nil || s.wake == nil {
		return ErrNotCreated
	}
	s.mu.Lock()
	c, _, err := s.lookupLocked("StopChild", id)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	c.held = true
	c.pending = false
	c.waitFree = false
	s.mu.Unlock()
	return s.stopChild(ctx, c, time.Time{})
}

// RestartChild starts again the child id that is not running (stopped by
// StopChild, finished, or failed and not restarted), as OTP's restart_child.
// The start does not count towards the restart intensity. If the supervisor
// is not serving, the child starts with the next Serve, like all children. It
// returns [ErrUnknownChild], or [ErrRunning] if the child is running, waits for
// a restart, or has an abandoned copy that has not returned yet (a child never
// runs twice at once).
func (s *Supervisor) RestartChild(id ChildID) error {
	if s == nil || s.wake == nil {
		return ErrNotCreated
	}
	s.mu.Lock()
	c, _, err := s.lookupLocked("RestartChild", id)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	switch {
	case c.zombie != nil:
		s.mu.Unlock()
		return fmt.Errorf("supervise: RestartChild: %q: an abandoned copy has not returned: %w", c.name, ErrRunning)
	case c.run != nil || c.pending:
		s.mu.Unlock()
		return fmt.Errorf("supervise: RestartChild: %q: %w", c.name, ErrRunning)
	}
	c.held = false
	if !s.serving || s.stopping {
		s.mu.Unlock()
		return nil
	}
	r := s.startLocked(c)
	s.mu.Unlock()
	s.launch(c, r)
	return nil
}

// Serve runs the supervisor: it starts the children in the order added, then
// supervises them until ctx is cancelled or it gives up, and returns only after
// every child has returned or been abandoned. Children added while it serves
// start at once.
//
// When ctx is cancelled, Serve stops the children one at a time in reverse
// start order (each gets its shutdown timeout) and returns nil, or, if some
// children had to be abandoned, their *StopTimeoutErrors joined. When the
// restart intensity is exceeded it stops them the same way and returns an
// *EscalationError ([ErrGaveUp]). A supervisor nested in another is restarted
// by its parent according to its own restart type, like any child.
//
// The children's contexts derive from ctx (they carry its values) but are
// cancelled only by the supervisor, one by one, so that stop order holds.
//
// Serve returns [ErrAlreadyServing] if it is already running. It may be called
// again after it returned; all children listed then are started afresh.
func (s *Supervisor) Serve(ctx context.Context) error {
	defer signalLaunched(ctx)
	if s == nil || s.wake == nil {
		return ErrNotCreated
	}
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return ErrAlreadyServing
	}
	s.serving, s.stopping, s.gaveUp = true, false, false
	s.escalation, s.groupReqs, s.autoStop = nil, nil, ""
	s.ringStart, s.ringLen = 0, 0
	s.epoch = time.Now()
	s.base = context.WithoutCancel(ctx)
	if l, _ := ctx.Value(launchedKey{}).(*launchSignal); l != nil {
		// The signal is this supervisor's, not its children's to fire.
		s.base = context.WithValue(s.base, launchedKey{}, (*launchSignal)(nil))
	}
	sess := &session{hook: s.resolveHook(), logger: s.resolveLogger(), path: s.Path(), base: s.base}
	s.sess = sess
	select {
	case <-s.wake:
	default:
	}
	list := make([]*child, 0, len(s.children))
	runners := make([]*runner, 0, len(s.children))
	for _, c := range s.children {
		c.pending, c.held = false, false
		c.quick = 0 // a fresh start: no backoff carried over from the last Serve
		if c.zombie != nil {
			// A child never runs twice at once: it starts when its
			// abandoned copy returns.
			c.waitFree = true
			s.setState(c, StateBackingOff)
			continue
		}
		list = append(list, c)
		runners = append(runners, s.startLocked(c))
	}
	s.mu.Unlock()

	unregister := s.metrics.register(s, sess.path)
	defer unregister()
	for i, c := range list {
		s.launch(c, runners[i])
	}
	signalLaunched(ctx)

	var timer *time.Timer
	var timerC <-chan time.Time
	var groupAt time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return s.shutdown(nil)
		case <-s.wake:
			s.mu.Lock()
			esc, reqs, auto := s.escalation, s.groupReqs, s.autoStop
			s.groupReqs = nil
			s.mu.Unlock()
			if esc == nil && auto == "" {
				for _, q := range reqs {
					if at, ok := s.stopGroup(sess, q); ok && at.After(groupAt) {
						groupAt = at
					}
				}
				s.mu.Lock()
				esc = s.escalation // a child that could not be stopped
				s.mu.Unlock()
			}
			if esc != nil {
				s.metrics.gaveUp(sess, esc)
				if sess.observed() {
					sess.emit(Event{Kind: EventGaveUp, Time: time.Now(), Supervisor: sess.path, Err: esc})
				}
				return s.shutdown(esc)
			}
			if auto != "" {
				if sess.observed() {
					sess.emit(Event{Kind: EventAutoShutdown, Time: time.Now(), Supervisor: sess.path, Child: auto})
				}
				return s.shutdown(nil)
			}
			if !groupAt.IsZero() {
				d := time.Until(groupAt)
				if d <= 0 {
					groupAt = time.Time{}
					s.startPending()
					break
				}
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				timerC = timer.C
			}
		case <-timerC:
			timerC = nil
			groupAt = time.Time{}
			s.startPending()
		}
	}
}

// startLocked prepares a runner for c and marks c running; launch starts it.
// s.mu must be held.
func (s *Supervisor) startLocked(c *child) *runner {
	r := &runner{c: c, sess: s.sess, done: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(s.base)
	if c.sub != nil {
		r.launched = &launchSignal{ch: make(chan struct{})}
		r.ctx = context.WithValue(r.ctx, launchedKey{}, r.launched)
	}
	s.live[r] = struct{}{}
	c.run = r
	c.pending, c.finished = false, false
	c.startedAt = time.Now()
	s.setState(c, StateRunning)
	return r
}

// launch emits c's Started event and starts its goroutine. It is called
// without s.mu, in start order, so that Started events come in start order.
//
// A nested supervisor counts as started once it has launched its own
// children, as in OTP, so launch waits for that before returning: the
// siblings started after it start after its whole subtree.
func (s *Supervisor) launch(c *child, r *runner) {
	if r.sess.observed() {
		r.sess.emit(Event{Kind: EventStarted, Time: time.Now(), Supervisor: r.sess.path, Child: c.name, Restarts: c.restartsSnapshot(s)})
	}
	go s.runChild(c, r, actStart, 0)
	if r.launched != nil {
		select {
		case <-r.launched.ch:
		case <-r.done:
		}
	}
}

// launchedKey is the context key of a *launchSignal: the runner of a nested
// supervisor passes one to its Serve, which fires it once its children are
// launched (or when it returns early).
type launchedKey struct{}

type launchSignal struct {
	once sync.Once
	ch   chan struct{}
}

func signalLaunched(ctx context.Context) {
	if l, _ := ctx.Value(launchedKey{}).(*launchSignal); l != nil {
		l.once.Do(func() { close(l.ch) })
	}
}

// setState sets c's state and keeps the running count. s.mu must be held.
func (s *Supervisor) setState(c *child, st ChildState) {
	if c.state == StateRunning && st != StateRunning {
		s.running.Add(-1)
	} else if c.state != StateRunning && st == StateRunning {
		s.running.Add(1)
	}
	c.state = st
}

// allowRestartLocked records a restart at now and reports whether it stays
// within the restart intensity: at most MaxRestarts restarts within Period.
// The times kept are those of the restarts within the last Period, so memory
// grows with the restarts actually seen, not with MaxRestarts. s.mu must be
// held, and now read under it, so that the times are in order.
func (s *Supervisor) allowRestartLocked(now time.Time) bool {
	if s.cfg.MaxRestarts < 0 { // Off
		return true
	}
	t := int64(now.Sub(s.epoch))
	for s.ringLen > 0 && t-s.ring[s.ringStart] >= int64(s.cfg.Period) {
		s.ringStart = (s.ringStart + 1) % len(s.ring)
		s.ringLen--
	}
	if s.ringLen >= s.cfg.MaxRestarts {
		return false
	}
	if s.ringLen == len(s.ring) {
		grown := make([]int64, min(max(2*len(s.ring), 8), s.cfg.MaxRestarts))
		for i := range s.ringLen {
			grown[i] = s.ring[(s.ringStart+i)%len(s.ring)]
		}
		s.ring, s.ringStart = grown, 0
	}
	s.ring[(s.ringStart+s.ringLen)%len(s.ring)] = t
	s.ringLen++
	return true
}

// giveUpLocked makes the Serve loop give up. s.mu must be held.
func (s *Supervisor) giveUpLocked(c *child, err error, backoffStop bool) {
	if s.escalation == nil {
		s.escalation = &EscalationError{
			Supervisor:  s.sess.path,
			Child:       c.name,
			Restarts:    s.cfg.MaxRestarts,
			Period:      s.cfg.Period,
			Err:         err,
			BackoffStop: backoffStop,
		}
		s.gaveUp = true
	}
	s.signal()
}

// significantEndedLocked shuts the supervisor down if the end of the
// significant child c calls for it under AutoShutdown. s.mu must be held.
func (s *Supervisor) significantEndedLocked(c *child) {
	if s.cfg.AutoShutdown == AllSignificant {
		for _, x := range s.children {
			if x.significant && !x.finished {
				return
			}
		}
	}
	if s.autoStop == "" && s.escalation == nil {
		s.autoStop = c.name
		s.signal()
	}
}

func (s *Supervisor) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// stopGroup handles a group restart request from a OneForAll or RestForOne
// supervisor: it stops the affected siblings in reverse start order and marks
// those to restart as pending. It returns when they are to be started.
func (s *Supervisor) stopGroup(sess *session, q groupReq) (time.Time, bool) {
	s.mu.Lock()
	idx := -1
	for i, c := range s.children {
		if c == q.c {
			idx = i
			break
		}
	}
	if idx < 0 || !q.c.pending || s.stopping {
		s.mu.Unlock()
		return time.Time{}, false
	}
	from := 0
	if s.cfg.Strategy == RestForOne {
		from = idx
	}
	group := append([]*child(nil), s.children[from:]...)
	s.mu.Unlock()

	for i := len(group) - 1; i >= 0; i-- {
		c := group[i]
		if c == q.c {
			continue
		}
		s.mu.Lock()
		active := c.run != nil // not finished, failed, or already waiting for a restart
		s.mu.Unlock()
		if !active {
			continue
		}
		if err := s.stopChild(context.Background(), c, time.Time{}); err != nil {
			// It was abandoned (and reported). Starting it again would run two
			// copies of it at once, so give up instead.
			s.mu.Lock()
			s.giveUpLocked(c, err, false)
			s.mu.Unlock()
			return time.Time{}, false
		}
		s.mu.Lock()
		if c.removed || s.stopping || c.restart == Temporary {
			s.mu.Unlock()
			continue
		}
		c.pending = true
		s.setState(c, StateBackingOff)
		c.restarts++
		n := c.restarts
		opts := c.restartOpts(sess.path, causeSibling)
		s.mu.Unlock()
		s.metrics.restarted(sess, opts, c, causeSibling, q.delay, nil)
		if sess.observed() {
			sess.emit(Event{Kind: EventRestarting, Time: time.Now(), Supervisor: sess.path, Child: c.name, Delay: q.delay, Cause: causeSibling.String(), Restarts: n})
		}
	}
	return time.Now().Add(q.delay), true
}

// startPending starts, in start order, the children waiting for a group
// restart.
func (s *Supervisor) startPending() {
	s.mu.Lock()
	if s.stopping || s.escalation != nil || s.autoStop != "" {
		s.mu.Unlock()
		return
	}
	var cs []*child
	var rs []*runner
	for _, c := range s.children {
		if c.pending && c.run == nil && c.zombie == nil {
			cs = append(cs, c)
			rs = append(rs, s.startLocked(c))
		}
	}
	s.mu.Unlock()
	for i, c := range cs {
		s.launch(c, rs[i])
	}
}

// shutdown stops all children in reverse start order and ends serving.
func (s *Supervisor) shutdown(esc *EscalationError) error {
	s.mu.Lock()
	s.stopping = true
	list := append([]*child(nil), s.children...)
	for _, c := range list {
		c.pending, c.waitFree = false, false
	}
	s.mu.Unlock()

	var deadline time.Time
	if s.cfg.StopTimeout > 0 {
		deadline = time.Now().Add(s.cfg.StopTimeout)
	}
	var errs []error
	for i := len(list) - 1; i >= 0; i-- {
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			// Out of time: cancel the rest at once; each is then abandoned
			// unless it has returned.
			s.cancelAll(list[:i+1])
		}
		if err := s.stopChild(context.Background(), list[i], deadline); err != nil {
			errs = append(errs, err)
		}
	}
	// Wait for the goroutines still ending: runners that left their child on
	// their own (to give up, or for a group restart), and removed children.
	for {
		var r *runner
		s.mu.Lock()
		for x := range s.live {
			r = x
			break
		}
		s.mu.Unlock()
		if r == nil {
			break
		}
		if err := s.stopRunner(context.Background(), r, deadline); err != nil {
			errs = append(errs, err)
		}
	}

	s.mu.Lock()
	for _, c := range list {
		if c.state == StateBackingOff {
			s.setState(c, StateStopped)
		}
	}
	s.serving, s.stopping = false, false
	s.base = nil
	s.mu.Unlock()
	if esc != nil {
		return esc
	}
	return errors.Join(errs...)
}

// cancelAll cancels the runners of cs at once.
func (s *Supervisor) cancelAll(cs []*child) {
	s.mu.Lock()
	var rs []*runner
	for _, c := range cs {
		if c.run != nil {
			c.run.stopping = true
			rs = append(rs, c.run)
		}
	}
	s.mu.Unlock()
	for _, r := range rs {
		r.cancel()
	}
}

// stopChild cancels c's runner and waits for it to return, up to c's shutdown
// timeout, the deadline (if not zero), or until ctx is done. A child that
// does not return in time is reported and abandoned.
func (s *Supervisor) stopChild(ctx context.Context, c *child, deadline time.Time) error {
	s.mu.Lock()
	r := c.run
	if r == nil {
		if c.state == StateBackingOff {
			s.setState(c, StateStopped)
		}
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	return s.stopRunner(ctx, r, deadline)
}

// stopRunner cancels r and waits for its goroutine to end, up to its child's
// shutdown timeout, the deadline (if not zero), or until ctx is done,
// abandoning it after the timeout. An abandoned runner stays its child's
// zombie until it returns, and the child does not start again before.
func (s *Supervisor) stopRunner(ctx context.Context, r *runner, deadline time.Time) error {
	c := r.c
	s.mu.Lock()
	r.stopping = true
	timeout := s.timeoutLocked(c)
	s.mu.Unlock()
	if !deadline.IsZero() {
		timeout = max(min(timeout, time.Until(deadline)), 0)
	}

	r.cancel()
	select {
	case <-r.done:
		return nil
	default:
	}
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-r.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	stack := goroutineStack(r.goid.Load())
	err := &StopTimeoutError{Supervisor: r.sess.path, Child: c.name, Timeout: timeout, Stack: stack}
	s.mu.Lock()
	if r.exited { // it returned just now
		s.mu.Unlock()
		return nil
	}
	r.abandoned = true
	r.reported = make(chan struct{})
	s.abandoned.Add(1)
	delete(s.live, r)
	c.zombie = r
	if c.run == r {
		c.run = nil
		c.lastErr = err
		s.setState(c, StateFailed)
	}
	s.mu.Unlock()
	if r.sess.observed() {
		r.sess.emit(Event{Kind: EventAbandoned, Time: time.Now(), Supervisor: r.sess.path, Child: c.name, Err: err, Stack: stack, Delay: timeout})
	}
	close(r.reported)
	return err
}

// timeoutLocked returns how long c is given to stop. s.mu must be held.
func (s *Supervisor) timeoutLocked(c *child) time.Duration {
	if c.shutdown > 0 {
		return c.shutdown
	}
	if c.sub != nil {
		return c.sub.stopBound() + time.Second
	}
	return s.cfg.ShutdownTimeout
}

// stopBound is the longest s takes to stop all its children: the sum of
// their timeouts, bounded by its StopTimeout.
func (s *Supervisor) stopBound() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	for _, c := range s.children {
		d += s.timeoutLocked(c)
	}
	if s.cfg.StopTimeout > 0 {
		d = min(d, s.cfg.StopTimeout)
	}
	return d
}

// Snapshot returns the state of the supervisor and, recursively, its nested
// supervisors. It has no side effects, never blocks on children and is safe
// to call from a Hook.
func (s *Supervisor) Snapshot() Snapshot {
	if s == nil || s.wake == nil {
		return Snapshot{}
	}
	path := s.Path()
	now := time.Now()
	s.mu.Lock()
	t := Snapshot{Name: s.name, Path: path, Strategy: s.cfg.Strategy, State: StateStopped, Abandoned: int(s.abandoned.Load())}
	switch {
	case s.serving && !s.gaveUp:
		t.State = StateRunning
	case s.gaveUp:
		t.State = StateFailed
	}
	t.Children = make([]ChildSnapshot, len(s.children))
	type nested struct {
		i   int
		sub *Supervisor
	}
	var subs []nested
	for i, c := range s.children {
		cs := ChildSnapshot{
			ID:          c.id,
			Name:        c.name,
			Path:        c.pathUnder(path),
			State:       c.state,
			Restart:     c.restart,
			Significant: c.significant,
			Restarts:    c.restarts,
			Abandoned:   c.zombie != nil,
		}
		if c.lastErr != nil {
			cs.LastError = c.lastErr.Error()
		}
		if c.state == StateRunning {
			cs.Uptime = now.Sub(c.startedAt)
		}
		if c.sub != nil {
			subs = append(subs, nested{i, c.sub})
		}
		t.Children[i] = cs
	}
	s.mu.Unlock()
	for _, n := range subs {
		t.Children[n.i].Children = n.sub.Snapshot().Children
	}
	return t
}
