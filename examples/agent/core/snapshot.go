package core

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"
)

// Snapshots of the status page and the status JSON. Rendering either costs time
// linear in the fleet and takes the agent's lock, which the loop holds while it
// judges and acts: at 1000 instances, 8 ms (the page) and 3 ms (the JSON) of CPU,
// which a machine loaded by other work stretched to 30-880 ms a request, and more
// when every request rendered its own. So each is rendered once and served from
// memory to every request while it is younger than snapshotMaxAge; a request that
// finds it older than snapshotRefresh, or an event since it was rendered, starts the
// next rendering in the background (one at a time) and is served the one in memory,
// so that a page or a script that keeps reading never waits for a rendering. A
// request that finds none young enough renders it, and requests that come meanwhile
// wait for that rendering rather than render their own. A command (POST /scale,
// /update, /node) drops the renderings: the next read shows it. The status is so at
// most snapshotMaxAge old, and on a machine that is not starved about
// snapshotRefresh: it is never fresher than the probes (an interval apart) anyway.
const (
	snapshotMaxAge  = 3 * time.Second
	snapshotRefresh = 500 * time.Millisecond
)

type snapshots struct {
	mu  sync.Mutex
	m   map[string]*snapshot
	gen int // bumped by invalidate
}

type snapshot struct {
	b      []byte // shared: read only
	at     time.Time
	gen    int
	events eventMark
	busy   chan struct{} // a rendering under way; closed when it ends
}

// eventMark is where the history's event ring was: a new event moves it.
type eventMark struct {
	next int
	full bool
}

func (h *history) eventMark() eventMark {
	h.mu.Lock()
	defer h.mu.Unlock()
	return eventMark{h.events.next, h.events.full}
}

// invalidate drops every rendering: the next request renders anew.
func (c *snapshots) invalidate() {
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
}

// rendered returns the rendering key, young enough (see snapshotMaxAge), made by
// render when there is none. ctx bounds the wait for a rendering under way.
func (a *Agent) rendered(ctx context.Context, key string, render func() ([]byte, error)) ([]byte, error) {
	c := &a.snaps
	for {
		mark := a.hist.eventMark()
		c.mu.Lock()
		if c.m == nil {
			c.m = map[string]*snapshot{}
		}
		s := c.m[key]
		if s == nil {
			s = &snapshot{}
			c.m[key] = s
		}
		age := time.Since(s.at)
		if s.b != nil && s.gen == c.gen && age < snapshotMaxAge {
			b := s.b
			if (age >= snapshotRefresh || s.events != mark) && s.busy == nil {
				s.busy = make(chan struct{})
				go a.rerender(s, render)
			}
			c.mu.Unlock()
			return b, nil
		}
		if busy := s.busy; busy != nil {
			c.mu.Unlock()
			select {
			case <-busy:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		s.busy = make(chan struct{})
		c.mu.Unlock()
		return a.rerender(s, render)
	}
}

// rerender renders s, whose busy channel the caller made, and ends its busy time.
func (a *Agent) rerender(s *snapshot, render func() ([]byte, error)) ([]byte, error) {
	c := &a.snaps
	// Taken before: what happens during the rendering makes it old.
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	mark, at := a.hist.eventMark(), time.Now()
	b, err := render()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		s.b, s.at, s.gen, s.events = b, at, gen, mark
	}
	close(s.busy)
	s.busy = nil
	return b, err
}

// statusJSON renders the Status, with the last 100 events, as indented JSON.
func (a *Agent) statusJSON(ctx context.Context) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(a.Status(ctx, 100)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
