package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ChildID identifies a child of one supervisor; [Supervisor.Add] returns it and
// [Supervisor.Remove] takes it. IDs are never reused by a supervisor.
type ChildID uint64

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
	name    string
	cfg     Config
	metrics *metrics
	parent  atomic.Pointer[Supervisor]
	wake    chan struct{} // cap 1: a runner asks the Serve loop to look at the queue

	running atomic.Int64 // children in StateRunning, for the metric

	mu         sync.Mutex
	children   []*child // in start order
	lastID     ChildID
	serving    bool
	stopping   bool
	gaveUp     bool
	base       context.Context // the children's parent context while serving; never cancelled
	escalation *EscalationError
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

// New returns a supervisor named name, configured by cfg (see [Config] for the
// defaults of its zero fields). It starts nothing: children run while
// [Supervisor.Serve] does. It returns an error if name is empty or contains
// "/", or if cfg.Strategy is unknown.
func New(name string, cfg Config) (*Supervisor, error) {
	if name == "" {
		return nil, errors.New("supervise: New: name is empty")
	}
	if strings.Contains(name, "/") {
		return nil, fmt.Errorf("supervise: New: name %q contains \"/\"", name)
	}
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	return &Supervisor{
		name:    name,
		cfg:     cfg,
		metrics: newMetrics(cfg.MeterProvider),
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

// Add adds svc as a child and returns its ID. If the supervisor is serving, the
// child starts at once; otherwise it starts, in the order added, when Serve is
// called. Options set its name ([WithName]), restart type ([WithRestart]) and
// shutdown timeout ([WithShutdownTimeout]).
//
// Add returns [ErrDuplicateName] if a child of that name exists,
// [ErrAlreadyServing] if svc is a *Supervisor that already has a parent, and an
// error naming the problem for a nil svc, an invalid name or restart type, or a
// supervisor added to itself or its own descendant.
func (s *Supervisor) Add(svc Service, opts ...ChildOption) (ChildID, error) {
	if s == nil || s.wake == nil {
		return 0, ErrNotCreated
	}
	if svc == nil {
		return 0, errors.New("supervise: Add: service is nil")
	}
	spec := childSpec{restart: Permanent}
	for _, o := range opts {
		o(&spec)
	}
	if spec.restart < Permanent || spec.restart > Temporary {
		return 0, fmt.Errorf("supervise: Add: WithRestart: unknown restart type %d", int(spec.restart))
	}
	if spec.name != "" && strings.Contains(spec.name, "/") {
		return 0, fmt.Errorf("supervise: Add: WithName: name %q contains \"/\"", spec.name)
	}
	sub, _ := svc.(*Supervisor)
	if sub != nil {
		if sub.wake == nil {
			return 0, ErrNotCreated
		}
		for t := s; t != nil; t = t.parent.Load() {
			if t == sub {
				return 0, fmt.Errorf("supervise: Add: supervisor %q cannot be its own descendant", sub.name)
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.lastID + 1
	name := spec.name
	if name == "" {
		if st, ok := svc.(fmt.Stringer); ok {
			name = st.String()
		}
		if name == "" || strings.Contains(name, "/") {
			name = "child-" + strconv.FormatUint(uint64(id), 10)
		}
	}
	for _, c := range s.children {
		if c.name == name {
			return 0, fmt.Errorf("supervise: Add: %q: %w", name, ErrDuplicateName)
		}
	}
	if sub != nil && !sub.parent.CompareAndSwap(nil, s) {
		return 0, fmt.Errorf("supervise: Add: supervisor %q already has a parent: %w", sub.name, ErrAlreadyServing)
	}
	s.lastID = id
	c := &child{
		id:       id,
		name:     name,
		svc:      svc,
		sub:      sub,
		restart:  spec.restart,
		shutdown: spec.shutdown,
		backoff:  s.cfg.Backoff(),
		state:    StateStopped,
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
// the child has returned, [ErrNotFound] for an unknown child, a
// *StopTimeoutError ([ErrStopTimeout]) if the child did not return in time (it
// is then abandoned, and reported), or ctx's error. The child is removed in
// every case but ErrNotFound.
func (s *Supervisor) Remove(ctx context.Context, id ChildID) error {
	if s == nil || s.wake == nil {
		return ErrNotCreated
	}
	s.mu.Lock()
	var c *child
	for i, x := range s.children {
		if x.id == id {
			c = x
			s.children = append(s.children[:i:i], s.children[i+1:]...)
			break
		}
	}
	if c == nil {
		s.mu.Unlock()
		return ErrNotFound
	}
	c.removed = true
	c.pending = false
	s.mu.Unlock()
	if c.sub != nil {
		defer c.sub.parent.CompareAndSwap(s, nil)
	}
	return s.stopChild(ctx, c)
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
	s.escalation, s.groupReqs = nil, nil
	s.ringStart, s.ringLen = 0, 0
	s.epoch = time.Now()
	s.base = context.WithoutCancel(ctx)
	if l, _ := ctx.Value(launchedKey{}).(*launchSignal); l != nil {
		// The signal is this supervisor's, not its children's to fire.
		s.base = context.WithValue(s.base, launchedKey{}, (*launchSignal)(nil))
	}
	sess := &session{hook: s.resolveHook(), logger: s.resolveLogger(), path: s.Path()}
	s.sess = sess
	select {
	case <-s.wake:
	default:
	}
	list := append([]*child(nil), s.children...)
	runners := make([]*runner, len(list))
	for i, c := range list {
		c.pending = false
		c.quick = 0 // a fresh start: no backoff carried over from the last Serve
		c.backoff.Reset()
		runners[i] = s.startLocked(c)
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
			esc, reqs := s.escalation, s.groupReqs
			s.groupReqs = nil
			s.mu.Unlock()
			if esc != nil {
				if sess.observed() {
					sess.emit(Event{Kind: EventGaveUp, Time: time.Now(), Supervisor: sess.path, Err: esc})
				}
				return s.shutdown(esc)
			}
			for _, q := range reqs {
				if at, ok := s.stopGroup(sess, q); ok && at.After(groupAt) {
					groupAt = at
				}
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
	c.pending = false
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
		_ = s.stopChild(context.Background(), c) // an abandoned child is reported by stopChild
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
		s.metrics.restarts.Add(context.Background(), 1, opts...)
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
	if s.stopping {
		s.mu.Unlock()
		return
	}
	var cs []*child
	var rs []*runner
	for _, c := range s.children {
		if c.pending && c.run == nil {
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
		c.pending = false
	}
	s.mu.Unlock()

	var errs []error
	for i := len(list) - 1; i >= 0; i-- {
		if err := s.stopChild(context.Background(), list[i]); err != nil {
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
		if err := s.stopRunner(context.Background(), r); err != nil {
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

// stopChild cancels c's runner and waits for it to return, up to c's shutdown
// timeout or until ctx is done. A child that does not return in time is
// reported and abandoned.
func (s *Supervisor) stopChild(ctx context.Context, c *child) error {
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
	return s.stopRunner(ctx, r)
}

// stopRunner cancels r and waits for its goroutine to end, up to its child's
// shutdown timeout or until ctx is done, abandoning it after the timeout.
func (s *Supervisor) stopRunner(ctx context.Context, r *runner) error {
	c := r.c
	s.mu.Lock()
	r.stopping = true
	timeout := s.timeoutLocked(c)
	s.mu.Unlock()

	r.cancel()
	select {
	case <-r.done:
		return nil
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	stack := goroutineStack(r.goid.Load())
	err := &StopTimeoutError{Supervisor: r.sess.path, Child: c.name, Timeout: timeout, Stack: stack}
	s.mu.Lock()
	delete(s.live, r)
	if c.run == r {
		c.run = nil
		c.lastErr = err
		s.setState(c, StateFailed)
	}
	s.mu.Unlock()
	if r.sess.observed() {
		r.sess.emit(Event{Kind: EventAbandoned, Time: time.Now(), Supervisor: r.sess.path, Child: c.name, Err: err, Stack: stack, Delay: timeout})
	}
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

// stopBound is the longest s takes to stop all its children.
func (s *Supervisor) stopBound() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	for _, c := range s.children {
		d += s.timeoutLocked(c)
	}
	return d
}

// Status returns a snapshot of the supervisor and, recursively, its nested
// supervisors. It never blocks on children and is safe to call from a Hook.
func (s *Supervisor) Status() TreeStatus {
	if s == nil || s.wake == nil {
		return TreeStatus{}
	}
	path := s.Path()
	now := time.Now()
	s.mu.Lock()
	t := TreeStatus{Name: s.name, Path: path, Strategy: s.cfg.Strategy, State: StateStopped}
	switch {
	case s.serving && !s.gaveUp:
		t.State = StateRunning
	case s.gaveUp:
		t.State = StateFailed
	}
	t.Children = make([]ChildStatus, len(s.children))
	type nested struct {
		i   int
		sub *Supervisor
	}
	var subs []nested
	for i, c := range s.children {
		cs := ChildStatus{
			Name:     c.name,
			Path:     c.pathUnder(path),
			State:    c.state,
			Restart:  c.restart,
			Restarts: c.restarts,
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
		t.Children[n.i].Children = n.sub.Status().Children
	}
	return t
}
