package eventlog

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Kinds of events, in the order of the agent's loop.
const (
	Observed = "observed" // something changed: a crash, an unhealthy instance, a trend
	Decided  = "decided"  // what the agent will do about it, and why
	Held     = "held"     // what it would do but does not (safety rule, budget, dry-run)
	Acted    = "acted"    // an action was carried out
	Healed   = "healed"   // the service is back to its designed state
	Failed   = "failed"   // an action failed, or the agent gave up
)

// Event is one line of the log.
type Event struct {
	Time     time.Time      `json:"time"`
	Kind     string         `json:"kind"`
	What     string         `json:"what"` // crash, unhealthy, restart, replace, scale, rollout, rollback, drain, ...
	Service  string         `json:"service,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Node     string         `json:"node,omitempty"`
	Incident string         `json:"incident,omitempty"` // ties observed, decided, acted and healed together
	Why      string         `json:"why,omitempty"`
	DryRun   bool           `json:"dryRun,omitempty"`
	Detail   map[string]any `json:"detail,omitempty"`
	// DetectMs is, on a decided event, how long the fault took to detect (from the
	// first failed probe or the exit); HealMs, on a healed event, how long from
	// detection to healed.
	DetectMs float64 `json:"detectMs,omitempty"`
	HealMs   float64 `json:"healMs,omitempty"`
}

// Log writes events. The zero value is not usable; create it with New. A Log is safe
// for concurrent use.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	enc    *json.Encoder
	ring   []Event
	next   int
	full   bool
	subs   map[int]chan Event
	nextID int
}

// New returns a log that writes JSON lines to w (nil: nowhere) and keeps the last
// keep events (<= 0 means 200).
func New(w io.Writer, keep int) *Log {
	if keep <= 0 {
		keep = 200
	}
	l := &Log{w: w, ring: make([]Event, keep), subs: map[int]chan Event{}}
	if w != nil {
		l.enc = json.NewEncoder(w)
	}
	return l
}

// Emit records e, stamping its time if it has none. Subscribers that are not keeping
// up lose the event rather than block the agent.
func (l *Log) Emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.enc != nil {
		_ = l.enc.Encode(e)
	}
	l.ring[l.next] = e
	l.next = (l.next + 1) % len(l.ring)
	if l.next == 0 {
		l.full = true
	}
	for _, c := range l.subs {
		select {
		case c <- e:
		default:
		}
	}
}

// Recent returns up to n of the latest events, oldest first (n <= 0: all kept).
func (l *Log) Recent(n int) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	if l.full {
		out = append(out, l.ring[l.next:]...)
	}
	out = append(out, l.ring[:l.next]...)
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// Subscribe returns a channel of every event from now on (buffered: buf <= 0 means
// 1024) and a function that ends the subscription and closes the channel.
func (l *Log) Subscribe(buf int) (<-chan Event, func()) {
	if buf <= 0 {
		buf = 1024
	}
	c := make(chan Event, buf)
	l.mu.Lock()
	id := l.nextID
	l.nextID++
	l.subs[id] = c
	l.mu.Unlock()
	var once sync.Once
	return c, func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.subs, id)
			l.mu.Unlock()
			close(c)
		})
	}
}
