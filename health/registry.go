package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// Config configures a [Registry]. The zero value is valid: no service metadata, no
// listener, no logging, the global MeterProvider. No setting can be invalid.
type Config struct {
	// Version, ReleaseID, ServiceID and Description fill the fields of the same names
	// in the health document (shown to authorized callers only). Empty: left out.
	Version     string
	ReleaseID   string
	ServiceID   string
	Description string
	// Notes go into the document's notes. Nil: none.
	Notes []string

	// OnStatusChange, when set, is called whenever a check's status changes, on the
	// goroutine that finished the run, after the new status is visible to probes and
	// before the probes that waited for the run return. The changes of one check
	// arrive in order. It must not block, and must not run checks (through
	// [Registry.Evaluate] or [Registry.Document]; [Registry.Snapshot] is fine): that
	// would wait for itself. More listeners can be added with
	// [Registry.OnStatusChange]. Nil (the default): no listener.
	OnStatusChange func(StatusChange)

	// Logger, when set, receives a record for every status change (Info for pass,
	// Warn otherwise). Nil: no logging.
	Logger *slog.Logger
	// MeterProvider provides the instruments "selfheal.health.check.status" (gauge,
	// per check: 0 pass, 1 warn, 2 fail) and "selfheal.health.check.duration"
	// (histogram, seconds, per check and status). Nil: the global provider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the tracer of the "selfheal.health.check" span that
	// every run of a check records (a child of the span in the context of Run, or of
	// the probe that started the run). Nil: the global provider.
	TracerProvider trace.TracerProvider
}

// Registry holds named checks, runs them, caches their results and serves them as
// probes and as the health document.
//
// Periodic checks run in the background inside [Registry.Run]; on-demand checks run
// when a probe finds their cached result stale. Either way one check never runs twice
// at once: concurrent probes share the run in flight.
//
// A Registry is safe for concurrent use. Create one with [New]; the zero value is not
// usable. New starts no goroutine.
type Registry struct {
	cfg    Config
	logger *slog.Logger

	mu        sync.Mutex // serializes changes of set and listeners
	set       atomic.Pointer[checkSet]
	listeners atomic.Pointer[[]*listener]

	gen   atomic.Uint64 // bumped by every change the document shows
	docMu sync.Mutex    // serializes rebuilds of doc
	doc   atomic.Pointer[encodedDoc]

	draining atomic.Bool
	drainMu  sync.Mutex // orders SetDraining's switches and their notifications
	running  atomic.Bool
	wake     chan struct{} // tells Run that the set changed

	duration metric.Float64Histogram
	tracer   trace.Tracer
}

type checkSet struct {
	list   []*entry // sorted by name
	byName map[string]*entry
}

type listener struct{ fn func(StatusChange) }

// encodedDoc is the health document encoded once per change.
type encodedDoc struct {
	gen    uint64
	status Status
	full   []byte // for authorized callers
	anon   []byte // the status alone
}

// New returns a Registry with no checks. Every Config is valid (each field's zero
// value is its default), so New cannot fail. It starts no goroutine.
func New(cfg Config) *Registry {
	r := &Registry{
		cfg:    cfg,
		logger: cfg.Logger,
		wake:   make(chan struct{}, 1),
		tracer: telemetry.Tracer(cfg.TracerProvider, "health"),
	}
	r.cfg.Notes = slices.Clone(cfg.Notes)
	r.set.Store(&checkSet{byName: map[string]*entry{}})

	meter := telemetry.Meter(cfg.MeterProvider, "health")
	var err error
	r.duration, err = meter.Float64Histogram("selfheal.health.check.duration",
		metric.WithDescription("Duration of one run of a health check."),
		metric.WithUnit("s"))
	if err != nil {
		otel.Handle(err)
	}
	gauge, err := meter.Int64ObservableGauge("selfheal.health.check.status",
		metric.WithDescription("Status of a health check: 0 pass, 1 warn, 2 fail."),
		metric.WithUnit("{status}"))
	if err != nil {
		otel.Handle(err)
	}
	observe := func(r *Registry, o metric.Observer) {
		for _, e := range r.set.Load().list {
			o.ObserveInt64(gauge, int64(e.cur.Load().status.severity()), e.gaugeOpt)
		}
	}
	if err := telemetry.RegisterWeak(meter, r, observe, gauge); err != nil {
		otel.Handle(err)
	}
	return r
}

// Register adds a check. A periodic check starts running at once if [Registry.Run]
// is running, and reports fail ("has not run yet") until its first run ends (except
// to a liveness probe alone, which passes it meanwhile); an on-demand check runs at
// the next probe.
//
// Errors: a *[ConfigError] (matching [ErrInvalidConfig]) naming the invalid field,
// or [ErrDuplicate] when the name is taken.
func (r *Registry) Register(c Check) error {
	c, err := c.normalize()
	if err != nil {
		return err
	}
	e := newEntry(r, c)
	r.mu.Lock()
	old := r.set.Load()
	if _, ok := old.byName[c.Name]; ok {
		r.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrDuplicate, c.Name)
	}
	list := make([]*entry, 0, len(old.list)+1)
	byName := make(map[string]*entry, len(old.list)+1)
	for _, o := range old.list {
		list = append(list, o)
		byName[o.c.Name] = o
	}
	i, _ := slices.BinarySearchFunc(list, c.Name, func(a *entry, name string) int {
		switch {
		case a.c.Name < name:
			return -1
		case a.c.Name > name:
			return 1
		}
		return 0
	})
	list = slices.Insert(list, i, e)
	byName[c.Name] = e
	r.set.Store(&checkSet{list: list, byName: byName})
	r.gen.Add(1)
	r.mu.Unlock()
	r.notifyRun()
	return nil
}

// Remove removes the check called name and reports whether there was one. A run in
// flight finishes, but its result is no longer shown.
func (r *Registry) Remove(name string) bool {
	r.mu.Lock()
	old := r.set.Load()
	e, ok := old.byName[name]
	if !ok {
		r.mu.Unlock()
		return false
	}
	list := make([]*entry, 0, len(old.list)-1)
	byName := make(map[string]*entry, len(old.list)-1)
	for _, o := range old.list {
		if o != e {
			list = append(list, o)
			byName[o.c.Name] = o
		}
	}
	r.set.Store(&checkSet{list: list, byName: byName})
	r.gen.Add(1)
	r.mu.Unlock()
	r.notifyRun()
	return true
}

// Names returns the names of the registered checks, sorted.
func (r *Registry) Names() []string {
	list := r.set.Load().list
	names := make([]string, len(list))
	for i, e := range list {
		names[i] = e.c.Name
	}
	return names
}

func (r *Registry) notifyRun() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// OnStatusChange adds a listener that is called whenever a check's status changes
// (see [Config.OnStatusChange] for when and where) and returns a function that
// removes it.
func (r *Registry) OnStatusChange(fn func(StatusChange)) (remove func()) {
	l := &listener{fn: fn}
	r.mu.Lock()
	var ls []*listener
	if p := r.listeners.Load(); p != nil {
		ls = slices.Clone(*p)
	}
	ls = append(ls, l)
	r.listeners.Store(&ls)
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		p := r.listeners.Load()
		if p == nil {
			return
		}
		ls := slices.DeleteFunc(slices.Clone(*p), func(x *listener) bool { return x == l })
		r.listeners.Store(&ls)
	}
}

// SetDraining switches draining on or off. While draining, readiness (and the health
// document) fail whatever the checks say, and liveness and startup are unchanged.
// [Registry.Drain] calls it.
//
// A switch is a status change: the logger and every status-change listener hear of
// it at once, on the goroutine that called SetDraining, as a [StatusChange] named
// [DrainingName] of kind [Readiness], from pass to fail when draining starts and
// from fail to pass when it stops. Setting the current value again tells no one.
func (r *Registry) SetDraining(on bool) {
	r.drainMu.Lock()
	defer r.drainMu.Unlock()
	if r.draining.Swap(on) == on {
		return
	}
	r.gen.Add(1)
	c := StatusChange{Name: DrainingName, Kinds: Readiness, From: StatusPass, To: StatusFail, Output: "shutting down", Time: time.Now()}
	if !on {
		c.From, c.To, c.Output = StatusFail, StatusPass, ""
	}
	r.statusChanged(c)
}

// DrainingName is the name of the [StatusChange] that [Registry.SetDraining] sends
// to the listeners, and of the failing entry that readiness shows while draining.
const DrainingName = "draining"

// Draining reports whether the registry is draining.
func (r *Registry) Draining() bool { return r.draining.Load() }

// Run runs the periodic checks, each on its own schedule, until ctx ends, then
// returns ctx.Err() once all its goroutines have exited (a check that ignores its
// context may still be running: see the package documentation). Checks registered
// while Run runs start at once; removed ones stop. On-demand checks need no Run.
//
// Errors: ctx.Err(), or [ErrRunning] at once when Run is already running.
func (r *Registry) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)
	loops := map[*entry]context.CancelFunc{}
	var wg sync.WaitGroup
	defer func() {
		for _, cancel := range loops {
			cancel()
		}
		wg.Wait()
	}()
	for {
		set := r.set.Load()
		for _, e := range set.list {
			if e.c.Interval > 0 && loops[e] == nil {
				lctx, cancel := context.WithCancel(ctx)
				loops[e] = cancel
				wg.Go(func() { e.loop(lctx) })
			}
		}
		for e, cancel := range loops {
			if set.byName[e.c.Name] != e {
				cancel()
				delete(loops, e)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.wake:
		}
	}
}

// Evaluate answers as a probe of the given kinds would: it runs the stale on-demand
// checks of those kinds (sharing runs in flight, as probes do) and returns the worst
// status among them; zero kinds means every check. Readiness fails while draining. A
// registry without checks passes. When ctx ends first, the stale results count.
//
// Evaluate may run checks (and so call listeners); [Registry.Snapshot] reads the
// last results without running anything.
func (r *Registry) Evaluate(ctx context.Context, kinds Kind) Status {
	if kinds == 0 {
		kinds = AllKinds
	}
	var buf [32]*result
	_, rs := r.collect(ctx, r.set.Load(), kinds, nil, buf[:0])
	st := StatusPass
	for _, res := range rs {
		st = worse(st, res.statusFor(kinds))
	}
	if kinds&Readiness != 0 && r.draining.Load() {
		st = StatusFail
	}
	return st
}

// Document answers as /health does for an authorized caller: it runs the stale
// on-demand checks (sharing runs in flight) and returns the full health document.
// [Registry.Snapshot] reads the last results without running anything.
func (r *Registry) Document(ctx context.Context) *Document {
	r.collect(ctx, r.set.Load(), AllKinds, nil, nil)
	return r.document()
}

// collect returns the entries of set of the given kinds (minus the skipped ones) and
// their results, running stale on-demand checks concurrently and sharing runs in
// flight. When ctx ends first, the stale results stand.
func (r *Registry) collect(ctx context.Context, set *checkSet, kinds Kind, skip func(string) bool, rs []*result) ([]*entry, []*result) {
	es := set.list
	filtered := false
	var now time.Time
	var flights []*flight
	for i, e := range es {
		if e.c.Kinds&kinds == 0 || (skip != nil && skip(e.c.Name)) {
			if !filtered {
				es = slices.Clone(es[:i])
				filtered = true
			}
			continue
		}
		if filtered {
			es = append(es, e)
		}
		res := e.cur.Load()
		if e.c.Interval == 0 {
			if now.IsZero() {
				now = time.Now()
			}
			if !res.fresh(now) {
				if flights == nil {
					flights = make([]*flight, len(set.list))
				}
				flights[len(rs)] = e.join(context.WithoutCancel(ctx))
			}
		}
		rs = append(rs, res)
	}
	for i, f := range flights {
		if f == nil {
			continue
		}
		select {
		case <-f.done:
			rs[i] = f.res
		case <-ctx.Done():
		}
	}
	return es, rs
}

// document builds the full document from the current results.
func (r *Registry) document() *Document {
	d := &Document{
		Status:      StatusPass,
		Version:     r.cfg.Version,
		ReleaseID:   r.cfg.ReleaseID,
		ServiceID:   r.cfg.ServiceID,
		Description: r.cfg.Description,
		Notes:       slices.Clone(r.cfg.Notes),
	}
	list := r.set.Load().list
	if len(list) > 0 {
		d.Checks = make(map[string][]CheckResult, len(list))
	}
	var failing, warning []string
	for _, e := range list {
		res := e.cur.Load()
		d.Status = worse(d.Status, res.status)
		d.Checks[e.c.Name] = slices.Clone(res.entries)
		switch res.status {
		case StatusFail:
			failing = append(failing, e.c.Name)
		case StatusWarn:
			warning = append(warning, e.c.Name)
		}
	}
	// The draft's top-level output: what is wrong, in one line.
	var out []string
	if r.draining.Load() {
		d.Status = StatusFail
		d.Notes = append(d.Notes, "draining")
		out = append(out, "draining: shutting down")
	}
	if len(failing) > 0 {
		out = append(out, "failing: "+strings.Join(failing, ", "))
	}
	if len(warning) > 0 {
		out = append(out, "warning: "+strings.Join(warning, ", "))
	}
	d.Output = strings.Join(out, "; ")
	return d
}

// encoded returns the document encoded for the current generation.
func (r *Registry) encoded() *encodedDoc {
	gen := r.gen.Load()
	if d := r.doc.Load(); d != nil && d.gen == gen {
		return d
	}
	r.docMu.Lock()
	defer r.docMu.Unlock()
	gen = r.gen.Load()
	if d := r.doc.Load(); d != nil && d.gen == gen {
		return d
	}
	doc := r.document()
	d := &encodedDoc{gen: gen, status: doc.Status}
	d.full = doc.AppendJSON(make([]byte, 0, 512))
	d.anon = (&Document{Status: doc.Status}).AppendJSON(nil)
	r.doc.Store(d)
	return d
}

// entry is one registered check and its state.
type entry struct {
	c   Check
	reg *Registry
	cur atomic.Pointer[result] // never nil

	mu       sync.Mutex
	notifyMu sync.Mutex // held from recording a result until its listeners return
	flight   *flight    // the run in flight, shared by everyone who waits for it
	busy     bool       // a goroutine still runs the check (possibly past its timeout)
	level    Status     // status after thresholds, before NonCritical; "" before the first run
	fails    int        // consecutive failures
	oks      int        // consecutive successes

	gaugeOpt  metric.ObserveOption
	recordOpt [3]metric.RecordOption // by severity
	spanOpts  []trace.SpanStartOption
}

// result is the outcome of one run, as published.
type result struct {
	status  Status        // after thresholds and NonCritical
	entries []CheckResult // the document's entries for the check's key
	output  string        // error text; "" when it passed
	at      time.Time
	expires time.Time // when an on-demand result goes stale
	dur     time.Duration
	pending bool // no run has finished yet
}

// statusFor returns the status a probe of kinds sees. A check that has not run yet
// fails readiness and startup, but not a liveness probe alone: restarting a process
// because its checks have not run yet (a periodic liveness check with an
// InitialDelay, say) would kill every slow starter, and Kubernetes too counts a
// liveness probe as passing until its first run.
func (res *result) statusFor(kinds Kind) Status {
	if res.pending && kinds == Liveness {
		return StatusPass
	}
	return res.status
}

// fresh reports whether an on-demand result can be served at now.
func (res *result) fresh(now time.Time) bool {
	return !res.pending && now.Before(res.expires)
}

type flight struct {
	done chan struct{}
	res  *result    // set before done is closed
	span trace.Span // the run's span; nil for a flight that ran nothing
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

const notRunOutput = "health: check has not run yet"

// The span and span event names.
const (
	spanCheck         = "selfheal.health.check"
	eventStatusChange = "selfheal.health.status_change"
)

func newEntry(r *Registry, c Check) *entry {
	e := &entry{c: c, reg: r}
	name := telemetry.KeyCheckName.String(c.Name)
	e.gaugeOpt = metric.WithAttributeSet(attribute.NewSet(name))
	for i, st := range []Status{StatusPass, StatusWarn, StatusFail} {
		e.recordOpt[i] = metric.WithAttributeSet(attribute.NewSet(name, telemetry.KeyState.String(string(st))))
	}
	e.spanOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(name)}
	st := StatusFail
	if c.NonCritical {
		st = StatusWarn
	}
	e.cur.Store(&result{
		status:  st,
		entries: []CheckResult{{ComponentID: c.ComponentID, ComponentType: c.ComponentType, Status: st, AffectedEndpoints: c.AffectedEndpoints, Output: notRunOutput}},
		output:  notRunOutput,
		pending: true,
	})
	return e
}

func (e *entry) jitter() time.Duration {
	if e.c.Jitter <= 0 {
		return 0
	}
	return rand.N(e.c.Jitter)
}

// loop runs a periodic check until ctx ends. The next period starts when a run ends.
func (e *entry) loop(ctx context.Context) {
	t := time.NewTimer(e.c.InitialDelay + e.jitter())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f := e.join(ctx)
		select {
		case <-ctx.Done():
			return
		case <-f.done:
		}
		t.Reset(e.c.Interval + e.jitter())
	}
}

// join returns the run in flight, or starts one, or (when a run has just finished
// and its result is fresh) a finished flight with that result. parent bounds the
// run (it is canceled when Run stops; probes pass a context without cancellation so
// that a departing caller does not cut short a run that others share).
func (e *entry) join(parent context.Context) *flight {
	e.mu.Lock()
	if f := e.flight; f != nil {
		e.mu.Unlock()
		return f
	}
	if e.c.Interval == 0 {
		if res := e.cur.Load(); res.fresh(time.Now()) {
			e.mu.Unlock()
			return &flight{done: closedChan, res: res}
		}
	}
	f := &flight{done: make(chan struct{})}
	e.flight = f
	var sctx context.Context
	sctx, f.span = e.reg.tracer.Start(parent, spanCheck, e.spanOpts...)
	if e.busy {
		e.mu.Unlock()
		e.complete(f, parent, time.Now(), nil, ErrStillRunning)
		return f
	}
	e.busy = true
	e.mu.Unlock()

	if e.c.Inline {
		begin := time.Now()
		obs, err := e.call(sctx)
		e.mu.Lock()
		e.busy = false
		e.mu.Unlock()
		e.complete(f, parent, begin, obs, err)
		return f
	}

	var ctx context.Context
	var cancel context.CancelFunc
	if e.c.Timeout == Off {
		ctx, cancel = context.WithCancel(sctx)
	} else {
		ctx, cancel = context.WithTimeout(sctx, e.c.Timeout)
	}
	begin := time.Now()
	stop := context.AfterFunc(ctx, func() {
		err := ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w after %v", ErrTimeout, e.c.Timeout)
		}
		e.complete(f, parent, begin, nil, err)
	})
	go func() {
		defer cancel()
		obs, err := e.call(ctx)
		e.mu.Lock()
		e.busy = false
		e.mu.Unlock()
		if stop() {
			if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
				err = fmt.Errorf("%w after %v: %w", ErrTimeout, e.c.Timeout, err)
			}
			e.complete(f, parent, begin, obs, err)
		}
	}()
	return f
}

// call runs the check function; a panic becomes an error.
func (e *entry) call(ctx context.Context) (obs []Observation, err error) {
	defer func() {
		if v := recover(); v != nil {
			obs, err = nil, fmt.Errorf("health: check panicked: %v", v)
		}
	}()
	if e.c.Func != nil {
		return nil, e.c.Func(ctx)
	}
	return e.c.Observe(ctx)
}

// complete records the outcome of the run of f and releases everyone waiting for it.
// When parent has ended (Run is stopping), the outcome is not recorded.
func (e *entry) complete(f *flight, parent context.Context, begin time.Time, obs []Observation, err error) {
	if parent.Err() != nil {
		e.mu.Lock()
		if e.flight == f {
			e.flight = nil
		}
		e.mu.Unlock()
		f.res = e.cur.Load()
		f.span.End()
		close(f.done)
		return
	}
	now := time.Now()
	res, change := e.record(f, now, now.Sub(begin), obs, err)
	// record left notifyMu locked: listeners hear of the changes of one check in
	// order, and before the probes waiting for this run return.
	if change != nil {
		e.reg.statusChanged(*change)
	}
	e.notifyMu.Unlock()
	e.reg.duration.Record(context.Background(), res.dur.Seconds(), e.recordOpt[res.status.severity()])
	if f.span.IsRecording() {
		f.span.SetAttributes(telemetry.KeyState.String(string(res.status)))
		if change != nil {
			f.span.AddEvent(eventStatusChange, trace.WithAttributes(
				telemetry.KeyState.String(string(change.To)), telemetry.KeyStatePrevious.String(string(change.From))))
		}
	}
	telemetry.EndSpan(f.span, err)
	f.res = res
	close(f.done)
}

// record applies thresholds, publishes the result and says whether the status
// changed.
func (e *entry) record(f *flight, now time.Time, dur time.Duration, obs []Observation, err error) (*result, *StatusChange) {
	raw := StatusPass
	for _, o := range obs {
		raw = worse(raw, o.Status)
	}
	var output string
	if err != nil {
		raw = StatusFail
		output = err.Error()
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	e.notifyMu.Lock() // unlocked by complete once the listeners have been called
	if e.flight == f {
		e.flight = nil
	}
	if raw == StatusFail {
		e.fails++
		e.oks = 0
	} else {
		e.oks++
		e.fails = 0
	}
	var level Status
	switch {
	case e.level == "":
		level = raw // the first result counts as it is
	case raw == StatusFail && (e.fails >= e.c.FailureThreshold || e.level == StatusFail):
		level = StatusFail
	case raw == StatusFail:
		level = StatusWarn // failing, not yet for long enough
	case e.level == StatusFail && e.oks < e.c.SuccessThreshold:
		level = StatusFail // recovering, not yet for long enough
	default:
		level = raw
	}
	e.level = level
	status := level
	if status == StatusFail && e.c.NonCritical {
		status = StatusWarn
	}

	entries := make([]CheckResult, 0, max(len(obs), 1))
	if len(obs) == 0 {
		entries = append(entries, CheckResult{
			ComponentID: e.c.ComponentID, ComponentType: e.c.ComponentType, Status: status,
			AffectedEndpoints: e.c.AffectedEndpoints, Time: now, Output: output,
		})
	}
	changeOutput := output
	for _, o := range obs {
		st := o.Status
		if st == "" {
			st = StatusPass
		}
		if err != nil || st.severity() > status.severity() {
			st = status
		}
		c := CheckResult{
			ComponentID: o.ComponentID, ComponentType: o.ComponentType, ObservedValue: o.ObservedValue,
			ObservedUnit: o.ObservedUnit, Status: st, AffectedEndpoints: e.c.AffectedEndpoints,
			Time: now, Output: o.Output,
		}
		if c.ComponentID == "" {
			c.ComponentID = e.c.ComponentID
		}
		if c.ComponentType == "" {
			c.ComponentType = e.c.ComponentType
		}
		if c.Output == "" {
			c.Output = output
		}
		if changeOutput == "" && o.Status.severity() > 0 {
			changeOutput = o.Output
		}
		entries = append(entries, c)
	}

	prev := e.cur.Load()
	res := &result{status: status, entries: entries, output: output, at: now, dur: dur}
	if e.c.CacheTTL > 0 {
		res.expires = now.Add(e.c.CacheTTL)
	}
	e.cur.Store(res)
	e.reg.gen.Add(1)

	from := prev.status
	if prev.pending {
		from = StatusPass // a check starts out as pass for the listeners
	}
	if from == status {
		return res, nil
	}
	return res, &StatusChange{Name: e.c.Name, Kinds: e.c.Kinds, From: from, To: status, Output: changeOutput, Time: now}
}

// statusChanged tells the logger and the listeners.
func (r *Registry) statusChanged(c StatusChange) {
	if r.logger != nil {
		level := slog.LevelWarn
		if c.To == StatusPass {
			level = slog.LevelInfo
		}
		r.logger.Log(context.Background(), level, "health: check status changed",
			slog.String(string(telemetry.KeyCheckName), c.Name), slog.String(string(telemetry.KeyStatePrevious), string(c.From)),
			slog.String(string(telemetry.KeyState), string(c.To)), slog.String("output", c.Output))
	}
	if r.cfg.OnStatusChange != nil {
		r.cfg.OnStatusChange(c)
	}
	if p := r.listeners.Load(); p != nil {
		for _, l := range *p {
			l.fn(c)
		}
	}
}
