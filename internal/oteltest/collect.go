package oteltest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
)

// Registration is a callback registered with a meter of a [MeterProvider]. Its
// methods are safe for concurrent use.
type Registration struct {
	embedded.Registration

	p            *MeterProvider
	f            metric.Callback
	allowed      map[string]bool // the names of the instruments it was registered for
	unregistered bool            // guarded by p.mu
}

// Unregister stops [MeterProvider.Collect] from running the callback. It may be
// called more than once.
func (r *Registration) Unregister() error {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	r.unregistered = true
	return nil
}

// Unregistered reports whether Unregister was called.
func (r *Registration) Unregistered() bool {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	return r.unregistered
}

// AwaitUnregistered collects garbage until every registration in regs is
// unregistered or timeout passes (cleanups, which unregister the callbacks of
// collected owners, run on a runtime goroutine after a collection), and reports how
// many were unregistered.
func AwaitUnregistered(timeout time.Duration, regs ...*Registration) int {
	deadline := time.Now().Add(timeout)
	for {
		runtime.GC()
		n := 0
		for _, r := range regs {
			if r.Unregistered() {
				n++
			}
		}
		if n == len(regs) || time.Now().After(deadline) {
			return n
		}
		runtime.Gosched()
	}
}

// Collect runs the callback, even when it is unregistered (as an SDK may when a
// collection overlaps Unregister), and returns its observations and its error.
func (r *Registration) Collect(ctx context.Context) (*Observations, error) {
	c := newCollector()
	c.run(ctx, r)
	return c.result()
}

// Registrations returns every callback registration made with p's meters, in order,
// the unregistered ones included.
func (p *MeterProvider) Registrations() []*Registration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.regs)
}

// Collect runs the callbacks of the registrations that are not unregistered, then
// those given to observable instruments, and returns what they observed. The error
// joins the callbacks' errors and reports observations of instruments a callback
// was not registered for (which are dropped).
func (p *MeterProvider) Collect(ctx context.Context) (*Observations, error) {
	p.mu.Lock()
	var regs []*Registration
	for _, r := range p.regs {
		if !r.unregistered {
			regs = append(regs, r)
		}
	}
	instCbs := slices.Clone(p.instCbs)
	p.mu.Unlock()

	c := newCollector()
	for _, r := range regs {
		c.run(ctx, r)
	}
	for _, cb := range instCbs {
		c.fail(cb(ctx, c))
	}
	return c.result()
}

// Observe is [MeterProvider.Collect] with t's context for the tests: it fails t with
// the error of the collection, if any.
func (p *MeterProvider) Observe(t testing.TB) *Observations {
	t.Helper()
	obs, err := p.Collect(t.Context())
	if err != nil {
		t.Fatalf("oteltest: collect: %v", err)
	}
	return obs
}

// Observations are what one collection observed: the last value observed for each
// instrument name and attribute set. Its methods are safe for concurrent use.
type Observations struct {
	mu  sync.Mutex
	pts points
}

// Len returns the number of instrument and attribute set pairs observed.
func (o *Observations) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pts)
}

// Int64 returns the value observed for the int64 instrument name with exactly the
// attributes kvs, and whether there is one.
func (o *Observations) Int64(name string, kvs ...attribute.KeyValue) (int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return get[int64](o.pts, name, kvs)
}

// Float64 is [Observations.Int64] for float64 instruments.
func (o *Observations) Float64(name string, kvs ...attribute.KeyValue) (float64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return get[float64](o.pts, name, kvs)
}

// Int64By returns the values observed for the int64 instrument name by the [Key] of
// their attribute sets (of sets that share a key, one value is kept).
func (o *Observations) Int64By(name string, keys ...attribute.Key) map[string]int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return by[int64](o.pts, name, keys, false)
}

// Float64By is [Observations.Int64By] for float64 instruments.
func (o *Observations) Float64By(name string, keys ...attribute.Key) map[string]float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return by[float64](o.pts, name, keys, false)
}

// collector gathers the observations and errors of one collection.
type collector struct {
	obs  *Observations
	mu   sync.Mutex
	errs []error
}

func newCollector() *collector { return &collector{obs: &Observations{pts: points{}}} }

func (c *collector) fail(err error) {
	if err != nil {
		c.mu.Lock()
		c.errs = append(c.errs, err)
		c.mu.Unlock()
	}
}

func (c *collector) run(ctx context.Context, r *Registration) {
	c.fail(r.f(ctx, observer{c: c, allowed: r.allowed}))
}

func (c *collector) result() (*Observations, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.obs, errors.Join(c.errs...)
}

func observe[N number](c *collector, name string, v N, opts []metric.ObserveOption) {
	set := metric.NewObserveConfig(opts).Attributes()
	c.obs.mu.Lock()
	defer c.obs.mu.Unlock()
	update(c.obs.pts.at(name, set), v, false)
}

// observer is the metric.Observer a registered callback gets.
type observer struct {
	embedded.Observer
	c       *collector
	allowed map[string]bool
}

func (o observer) check(inst metric.Observable) (string, bool) {
	if i, ok := inst.(interface{ instrumentName() string }); ok && o.allowed[i.instrumentName()] {
		return i.instrumentName(), true
	}
	o.c.fail(fmt.Errorf("oteltest: observation of %T %v, an instrument the callback was not registered for", inst, inst))
	return "", false
}

func (o observer) ObserveInt64(inst metric.Int64Observable, v int64, opts ...metric.ObserveOption) {
	if name, ok := o.check(inst); ok {
		observe(o.c, name, v, opts)
	}
}

func (o observer) ObserveFloat64(inst metric.Float64Observable, v float64, opts ...metric.ObserveOption) {
	if name, ok := o.check(inst); ok {
		observe(o.c, name, v, opts)
	}
}

// int64Observer and float64Observer are what the callbacks given to an observable
// instrument get.
type int64Observer struct {
	embedded.Int64Observer
	c    *collector
	name string
}

func (o int64Observer) Observe(v int64, opts ...metric.ObserveOption) { observe(o.c, o.name, v, opts) }

func bindInt64(c *collector, name string) metric.Int64Observer {
	return int64Observer{c: c, name: name}
}

type float64Observer struct {
	embedded.Float64Observer
	c    *collector
	name string
}

func (o float64Observer) Observe(v float64, opts ...metric.ObserveOption) {
	observe(o.c, o.name, v, opts)
}

func bindFloat64(c *collector, name string) metric.Float64Observer {
	return float64Observer{c: c, name: name}
}
