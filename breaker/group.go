package breaker

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// GroupConfig configures a [Group]. The zero value is valid: every key gets a breaker
// built from the zero [Config], at most 1024 keys are live, and a breaker idle for 10
// minutes is evicted.
type GroupConfig struct {
	// Breaker configures every breaker of the group. Its OnStateChange, Logger and
	// MeterProvider serve all of them; a member is named group name + "/" + key.
	Breaker Config

	// MaxKeys bounds the number of live breakers. When a new key would exceed it, the
	// group evicts the least recently used breakers (approximately: recency is
	// tracked in coarse generations), an eighth of MaxKeys at a time so that the cost
	// is amortized. Zero means 1024. Negative is invalid.
	MaxKeys int

	// IdleTimeout evicts breakers that have not been looked up for a while: at most
	// once per IdleTimeout, while the group adds a key or reports its States (never
	// on the lookup of an existing key), the group sweeps, and a sweep evicts the
	// breakers not looked up since the previous sweep. A breaker is thus idle for at
	// least IdleTimeout when it is evicted, and for about twice that when sweeps are
	// frequent (a health check that reports States every few seconds makes them so).
	// Zero means 10 minutes. Negative is invalid.
	IdleTimeout time.Duration
}

const (
	defaultMaxKeys     = 1024
	defaultIdleTimeout = 10 * time.Minute
)

// Group holds one [Breaker] per key, for example per downstream host, created on first
// use. It is bounded in size (see [GroupConfig]). Looking up an existing key takes no
// lock and allocates nothing; adding a key, eviction and [Group.States] take a mutex.
//
// An evicted breaker keeps working for callers that still hold it, but the group
// forgets it: the next lookup of its key creates a fresh, closed breaker.
//
// A Group is safe for concurrent use. It starts no goroutines. Create it with
// [NewGroup]; the zero Group is not usable.
type Group struct {
	name     string
	cfg      Config
	s        settings
	inst     *instruments
	maxKeys  int
	idle     time.Duration
	epoch    atomic.Uint64                     // recency generation
	snapshot atomic.Pointer[map[string]*entry] // read-only copy of all, for lookups

	mu        sync.Mutex // guards the fields below
	all       map[string]*entry
	misses    int       // lookups that missed the snapshot since it was built
	epochFrom time.Time // when the idle sweep's period began
	sweepBase uint64    // the epoch at epochFrom
}

type entry struct {
	b     *Breaker
	epoch atomic.Uint64 // the latest epoch in which the key was looked up
}

// NewGroup returns a group named name whose breakers are configured by cfg.Breaker.
// It returns an error matching [ErrInvalidConfig] that names the field when cfg
// cannot be honoured.
//
// The group registers one callback for the selfheal.breaker.state gauge, observing
// every live breaker; it holds the group weakly and is unregistered once the group
// is garbage.
func NewGroup(name string, cfg GroupConfig) (*Group, error) {
	if name == "" {
		return nil, invalid("empty group name")
	}
	s, err := cfg.Breaker.normalize()
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.MaxKeys < 0:
		return nil, invalid("MaxKeys is %d, want >= 0", cfg.MaxKeys)
	case cfg.IdleTimeout < 0:
		return nil, invalid("IdleTimeout is %v, want >= 0", cfg.IdleTimeout)
	}
	inst, err := newInstruments(cfg.Breaker.MeterProvider)
	if err != nil {
		return nil, err
	}
	g := &Group{
		name:      name,
		cfg:       cfg.Breaker,
		s:         s,
		inst:      inst,
		maxKeys:   cmp.Or(cfg.MaxKeys, defaultMaxKeys),
		idle:      cmp.Or(cfg.IdleTimeout, defaultIdleTimeout),
		all:       make(map[string]*entry),
		epochFrom: time.Now(),
	}
	g.snapshot.Store(&map[string]*entry{})
	observe := func(g *Group, o metric.Observer) {
		for _, b := range g.breakers() {
			b.observe(o)
		}
	}
	if err := telemetry.RegisterWeak(inst.meter, g, observe, inst.state, inst.calls); err != nil {
		return nil, err
	}
	return g, nil
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Get returns the breaker of key, creating it if the group has none.
func (g *Group) Get(key string) *Breaker {
	if e := (*g.snapshot.Load())[key]; e != nil {
		if ep := g.epoch.Load(); e.epoch.Load() != ep {
			e.epoch.Store(ep)
		}
		return e.b
	}
	return g.getSlow(key)
}

// Do runs fn through the breaker of key, as [Breaker.Do].
func (g *Group) Do(ctx context.Context, key string, fn func(context.Context) error) error {
	return g.Get(key).Do(ctx, fn)
}

func (g *Group) getSlow(key string) *Breaker {
	g.mu.Lock()
	defer g.mu.Unlock()
	changed := g.sweepLocked(time.Now())
	e := g.all[key]
	if e == nil {
		if len(g.all) >= g.maxKeys {
			g.evictLocked(len(g.all) - g.maxKeys + max(g.maxKeys/8, 1))
			changed = true
		}
		e = &entry{b: newBreaker(g.name+"/"+key, g.s, g.inst, &g.cfg)}
		g.all[key] = e
	}
	e.epoch.Store(g.epoch.Load())
	g.misses++
	if changed || g.misses > len(g.all)/8 {
		g.publishLocked()
	}
	return e.b
}

// sweepLocked evicts the breakers idle for IdleTimeout, once IdleTimeout has passed
// since the last sweep: an entry whose epoch is older than sweepBase has not been
// looked up since then. It reports whether it evicted any.
func (g *Group) sweepLocked(now time.Time) bool {
	if now.Sub(g.epochFrom) < g.idle {
		return false
	}
	n := len(g.all)
	for k, e := range g.all {
		if e.epoch.Load() < g.sweepBase {
			delete(g.all, k)
		}
	}
	g.sweepBase = g.epoch.Add(1)
	g.epochFrom = now
	return len(g.all) != n
}

// evictLocked evicts n breakers, least recently used first, and starts a new epoch so
// that recency keeps being told apart.
func (g *Group) evictLocked(n int) {
	type aged struct {
		key   string
		epoch uint64
	}
	all := make([]aged, 0, len(g.all))
	for k, e := range g.all {
		all = append(all, aged{k, e.epoch.Load()})
	}
	slices.SortFunc(all, func(a, b aged) int { return cmp.Compare(a.epoch, b.epoch) })
	for _, a := range all[:min(n, len(all))] {
		delete(g.all, a.key)
	}
	g.epoch.Add(1)
}

func (g *Group) publishLocked() {
	m := make(map[string]*entry, len(g.all))
	for k, e := range g.all {
		m[k] = e
	}
	g.snapshot.Store(&m)
	g.misses = 0
}

// breakers returns the live breakers, sorted by name, after evicting idle ones.
func (g *Group) breakers() []*Breaker {
	g.mu.Lock()
	if g.sweepLocked(time.Now()) {
		g.publishLocked()
	}
	bs := make([]*Breaker, 0, len(g.all))
	for _, e := range g.all {
		bs = append(bs, e.b)
	}
	g.mu.Unlock()
	slices.SortFunc(bs, func(a, b *Breaker) int { return cmp.Compare(a.name, b.name) })
	return bs
}

// States returns a snapshot of every live breaker, sorted by name (group name, "/",
// key). It evicts idle breakers first.
func (g *Group) States() []Snapshot {
	bs := g.breakers()
	snaps := make([]Snapshot, len(bs))
	for i, b := range bs {
		snaps[i] = b.State()
	}
	return snaps
}

// Len returns the number of live breakers.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.all)
}
