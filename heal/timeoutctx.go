package heal

import (
	"context"
	"sync"
	"time"
)

// deadlineCtx is the context a [Middleware] with a Timeout gives its handler: the
// request's context with a deadline, as context.WithTimeout makes, but allocated
// inside the request's own state and with no timer of its own. The goroutine that
// serves the request waits for the handler, the deadline (on a pooled timer) and the
// request's context, and calls expire with the reason; the handler's context then
// reports it. context.WithTimeout costs five allocations a request (the context,
// its cancel function, its timer and the timer's function, the Done channel);
// this, none, unless the handler asks for Done or derives contexts from it.
//
// It behaves as a context from context.WithTimeout does: Deadline is the earlier of
// its own and its parent's; Err is nil, then [context.DeadlineExceeded] at the
// deadline or the parent's error when the parent ends first, or
// [context.Canceled] once the request is over; Value is the parent's; a context
// derived from it (context.WithCancel, AfterFunc) ends with it, through its
// AfterFunc method, without a goroutine of its own; context.Cause gives its Err.
type deadlineCtx struct {
	parent   context.Context
	deadline time.Time

	mu    sync.Mutex
	done  chan struct{} // made by the first Done, or closedDone once ended
	err   error
	funcs []*afterFunc // registered by AfterFunc, run once it ends
}

type afterFunc struct{ f func() }

var closedDone = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// cancelCtxKey is the key with which the context package asks a context for its
// own cancelable context (context.Cause and the children's propagation do). The
// deadline context answers it with nil rather than its parent's, so that Cause
// reports its own Err and its children hang on its AfterFunc rather than on the
// parent. It is learnt from context.Cause itself: if a later Go asks differently,
// it is nil and nothing changes but Cause.
var cancelCtxKey = func() any {
	var p keyProbe
	p.Context = context.Background()
	_ = context.Cause(&p)
	return p.key
}()

type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	p.key = key
	return nil
}

func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *deadlineCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *deadlineCtx) Value(key any) any {
	if key == cancelCtxKey && key != nil {
		return nil
	}
	return c.parent.Value(key)
}

// AfterFunc arranges for f to run on a goroutine of its own once c ends (at once if
// it has); stop keeps it from running and reports whether it did. The context
// package uses it for the contexts derived from c.
func (c *deadlineCtx) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	c.funcs = append(c.funcs, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, g := range c.funcs {
			if g == a {
				c.funcs = append(c.funcs[:i], c.funcs[i+1:]...)
				return true
			}
		}
		return false
	}
}

// expire ends c with err (the first call only).
func (c *deadlineCtx) expire(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done == nil {
		c.done = closedDone
	} else {
		close(c.done)
	}
	funcs := c.funcs
	c.funcs = nil
	c.mu.Unlock()
	for _, a := range funcs {
		go a.f()
	}
}

func (c *deadlineCtx) String() string { return "heal.Middleware deadline context" }
