package docker

import (
	"context"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

// Event is something the engine or Swarm did by itself, for the agent's event log:
// Swarm restarted a task, a container became unhealthy, a rolling update rolled back.
type Event struct {
	Time     time.Time
	Kind     string // see the Event kinds
	Service  string // the service's name, if any
	Instance string // the task id, if any
	Node     string // the node's hostname or id, if any
	Message  string // human-readable detail: exit code, update state, ...
}

// Event kinds.
const (
	EventInstanceStarted   = "instance.started"   // a task's container started
	EventInstanceExited    = "instance.exited"    // a task's container exited (Message: exit code)
	EventInstanceUnhealthy = "instance.unhealthy" // Docker's HEALTHCHECK failed
	EventInstanceHealthy   = "instance.healthy"   // Docker's HEALTHCHECK passed
	EventServiceCreated    = "service.created"
	EventServiceUpdated    = "service.updated" // Message: the rollout state, if it changed
	EventServiceRemoved    = "service.removed"
	EventNodeUpdated       = "node.updated"
	EventEngineLost        = "engine.lost" // the event stream broke; Watch reconnects
	EventEngineRestored    = "engine.reconnected"
)

// Watch reports engine and Swarm events about the driver's services, their
// containers and the nodes to fn, in order, on Watch's goroutine, until ctx is done;
// then it returns ctx.Err(). When the engine goes away (a restart), Watch reports
// EventEngineLost, reconnects with backoff (100 ms doubling to 5 s) and reports
// EventEngineRestored; events while the engine was away are lost with it.
func (d *Driver) Watch(ctx context.Context, fn func(Event)) error {
	backoff := 100 * time.Millisecond
	lost := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.mu.Lock()
		closed := d.closed
		d.mu.Unlock()
		if closed {
			return driver.ErrClosed
		}
		sctx, cancel := context.WithCancel(ctx)
		msgs, errs := d.cli.Events(sctx, events.ListOptions{
			Filters: filters.NewArgs(
				filters.Arg("type", string(events.ServiceEventType)),
				filters.Arg("type", string(events.NodeEventType)),
				filters.Arg("type", string(events.ContainerEventType)),
			),
		})
		connected := false
		err := func() error {
			for {
				select {
				case m := <-msgs:
					if !connected {
						connected = true
						backoff = 100 * time.Millisecond
					}
					if lost {
						lost = false
						fn(Event{Time: time.Now(), Kind: EventEngineRestored, Message: d.host})
					}
					if ev, ok := translate(m); ok {
						fn(ev)
					}
				case err := <-errs:
					return err
				}
			}
		}()
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !lost {
			lost = true
			msg := d.host
			if err != nil {
				msg += ": " + err.Error()
			}
			fn(Event{Time: time.Now(), Kind: EventEngineLost, Message: msg})
		}
		if err := sleepCtx(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, 5*time.Second)
		// The stream opens silently, so a restored engine is noticed by a ping; while
		// the ping fails, keep backing off.
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		_, perr := d.cli.Ping(pctx)
		pcancel()
		if perr != nil {
			continue
		}
		lost = false
		fn(Event{Time: time.Now(), Kind: EventEngineRestored, Message: d.host})
	}
}

// translate maps an engine event to an Event; ok is false for events that are not
// about the driver's services.
func translate(m events.Message) (Event, bool) {
	at := m.Actor.Attributes
	ev := Event{Time: time.Unix(0, m.TimeNano)}
	if m.TimeNano == 0 {
		ev.Time = time.Unix(m.Time, 0)
	}
	switch m.Type {
	case events.ContainerEventType:
		if at[LabelManaged] != "true" {
			return ev, false
		}
		ev.Service = at["com.docker.swarm.service.name"]
		ev.Instance = at["com.docker.swarm.task.id"]
		ev.Node = at["com.docker.swarm.node.id"]
		switch {
		case m.Action == events.ActionStart:
			ev.Kind = EventInstanceStarted
		case m.Action == events.ActionDie:
			ev.Kind = EventInstanceExited
			ev.Message = "exit code " + at["exitCode"]
		case m.Action == events.ActionHealthStatusUnhealthy:
			ev.Kind = EventInstanceUnhealthy
		case m.Action == events.ActionHealthStatusHealthy:
			ev.Kind = EventInstanceHealthy
		default:
			return ev, false
		}
	case events.ServiceEventType:
		ev.Service = at["name"]
		switch m.Action {
		case events.ActionCreate:
			ev.Kind = EventServiceCreated
		case events.ActionUpdate:
			ev.Kind = EventServiceUpdated
			if s := at["updatestate.new"]; s != "" {
				ev.Message = "rollout " + s
				if old := at["updatestate.old"]; old != "" {
					ev.Message = "rollout " + old + " -> " + s
				}
			}
			if r := at["replicas.new"]; r != "" {
				ev.Message = strings.TrimSpace(ev.Message + " replicas " + at["replicas.old"] + " -> " + r)
			}
		case events.ActionRemove:
			ev.Kind = EventServiceRemoved
		default:
			return ev, false
		}
	case events.NodeEventType:
		ev.Node = at["name"]
		if ev.Node == "" {
			ev.Node = m.Actor.ID
		}
		ev.Kind = EventNodeUpdated
		var parts []string
		for _, k := range []string{"availability", "state"} {
			if v := at[k+".new"]; v != "" {
				parts = append(parts, k+" "+at[k+".old"]+" -> "+v)
			}
		}
		ev.Message = strings.Join(parts, ", ")
	default:
		return ev, false
	}
	return ev, true
}
