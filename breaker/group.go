package breaker

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// GroupConfig configures a [Group]. The zero value is valid: a group named "breaker"
// gives every key a breaker built from the zero [Config], keeps at most 1024 keys live,
// and evicts a breaker idle for 10 minutes.
type GroupConfig struct {
	// Name names the group; a member is named Name + "/" + key. Empty means
	// DefaultName ("breaker"). Breaker.Name is not used.
	Name string

	// Breaker configures every breaker of the group. Its OnStateChange, Logger and
	// MeterProvider serve all of them.
	Breaker Config

	// MaxKeys bounds the number of live breakers. When a new key would exceed it, the
	// group evicts an eighth of MaxKeys at a time (so that the cost is amortized):
	// closed breakers first, least recently used first (approximately: recency is
	// tracked in coarse generations), then half-open ones, open ones last: an open
	// breaker is evicted only when fewer than an eighth of MaxKeys live breakers are
	// closed or half-open. So a flood of new keys, whose breakers are closed, cannot
	// evict an open breaker and so close it by the back door. Zero means 1024;
	// Off means no bound. Other negative values are invalid.
	MaxKeys int

	// IdleTimeout evicts breakers that have not been looked up for a while: at most
	// once per IdleTimeout, while the group adds a key (never on the lookup of an
	// existing key, nor on Snapshot), the group sweeps, and a sweep evicts the breakers
	// not looked up since the previous sweep. A breaker is thus idle for at least
	// IdleTimeout when it is evicted, and for at most about twice that while keys are
	// added. Zero means 10 minutes; Off means never. Other negative values are
	// invalid.
	IdleTimeout time.Duration
}

const (
	defaultMaxKeys     = 1024
	defaultIdleTimeout = 10 * time.Minute
)

// Group holds one [Breaker] per key, for example per downstream host, created on first
// use. It is bounded in size (see [GroupConfig]); eviction prefers idle, closed
// breakers and never evicts an open one to make room for a closed one. Looking up an
// existing key takes no lock and allocates nothing; adding a key, eviction and
// [Group.Snapshot] take a mutex.
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

// NewGroup returns a group whose breakers are configured by cfg.Breaker. It returns a
// [*ConfigError] matching [ErrInvalidConfig] when cfg cannot be honoured (a field of
// cfg.Breaker is named as in [New]).
//
// The group registers one callback for the selfheal.breaker.state gauge, observing
// every live breaker; it holds the group weakly and is unregistered once the group
// is garbage.
func NewGroup(cfg GroupConfig) (*Group, error) {
	s, err := cfg.Breaker.normalize()
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.MaxKeys < 0 && cfg.MaxKeys != Off:
		return nil, invalid("GroupConfig.MaxKeys", "is %d, want >= 0 or Off", cfg.MaxKeys)
	case cfg.IdleTimeout < 0 && cfg.IdleTimeout != Off:
		return nil, invalid("GroupConfig.IdleTimeout", "is %v, want >= 0 or Off", cfg.IdleTimeout)
	}
	maxKeys := cmp.Or(cfg.MaxKeys, defaultMaxKeys)
	if maxKeys == Off {
		maxKeys = math.MaxInt
	}
	idle := cmp.Or(cfg.IdleTimeout, defaultIdleTimeout)
	if idle == Off {
		idle = math.MaxInt64
	}
	inst, err := newInstruments(cfg.Breaker.MeterProvider, cfg.Breaker.TracerProvider)
	if err != nil {
		return nil, err
	}
	g := &Group{
		name:      cmp.Or(cfg.Name, DefaultName),
		cfg:       cfg.Breaker,
		s:         s,
		inst:      inst,
		maxKeys:   maxKeys,
		idle:      idle,
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

// evictLocked evicts n breakers, closed ones first, then half-open ones, then open
// ones, least recently used first within each state, and starts a new epoch so that
// recency keeps being told apart.
func (g *Group) evictLocked(n int) {
	type aged struct {
		key   string
		rank  int // 0 closed, 1 half-open, 2 open
		epoch uint64
	}
	all := make([]aged, 0, len(g.all))
	for k, e := range g.all {
		all = append(all, aged{k, evictionRank(e.b.readState()), e.epoch.Load()})
	}
	slices.SortFunc(all, func(a, b aged) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.epoch, b.epoch))
	})
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

func evictionRank(s State) int {
	switch s {
	case StateClosed:
		return 0
	case StateHalfOpen:
		return 1
	}
	return 2
}

// breakers returns the live breakers, sorted by name.
func (g *Group) breakers() []*Breaker {
	g.mu.Lock()
	bs := make([]*Breaker, 0, len(g.all))
	for _, e := range g.all {
		bs = append(bs, e.b)
	}
	g.mu.Unlock()
	slices.SortFunc(bs, func(a, b *Breaker) int { return cmp.Compare(a.name, b.name) })
	return bs
}

// Snapshot returns a [Breaker.Snapshot] of every live breaker, sorted by name (group
// name, "/", key). Like [Breaker.Snapshot] it has no side effects: it changes no breaker's
// state and evicts nothing.
func (g *Group) Snapshot() []Snapshot {
	bs := g.breakers()
	snaps := make([]Snapshot, len(bs))
	for i, b := range bs {
		snaps[i] = b.Snapshot()
	}
	return snaps
}

// Len returns the number of live breakers.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.all)
}
