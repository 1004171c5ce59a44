package core

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// Status is a snapshot of the agent's view, as the status endpoint serves it.
type Status struct {
	Time     time.Time        `json:"time"`
	Driver   string           `json:"driver"`
	DryRun   bool             `json:"dryRun"`
	Budget   int              `json:"budgetRemaining"`
	Nodes    []driver.Node    `json:"nodes"`
	Services []ServiceStatus  `json:"services"`
	Events   []eventlog.Event `json:"events"`
}

// ServiceStatus is one service in a Status.
type ServiceStatus struct {
	Name      string           `json:"name"`
	Version   string           `json:"version"`
	Desired   int              `json:"desired"`
	Running   int              `json:"running"`
	Ready     int              `json:"ready"`
	Rollout   string           `json:"rollout,omitempty"`
	FrontDoor string           `json:"frontDoor,omitempty"`
	Instances []InstanceStatus `json:"instances"`
}

// InstanceStatus is one instance in a Status.
type InstanceStatus struct {
	ID         string    `json:"id"`
	Node       string    `json:"node"`
	Addr       string    `json:"addr"`
	Version    string    `json:"version"`
	State      string    `json:"state"`  // the driver's view
	Health     string    `json:"health"` // the agent's verdict
	Ready      bool      `json:"ready"`
	PID        int       `json:"pid,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	P99Ms      float64   `json:"p99Ms,omitempty"`
	HeapBytes  float64   `json:"heapBytes,omitempty"`
	Stopping   bool      `json:"stopping,omitempty"`
	Replacing  string    `json:"replacing,omitempty"`
	ReplacedBy string    `json:"replacedBy,omitempty"`
	// Restarts is how many times this instance's slot was restarted or replaced
	// (one more than the instance it replaced), as far as the agent's history
	// goes back.
	Restarts int `json:"restarts"`
	// Label names the instance's state in words: ready, "not ready (...)",
	// retiring (being stopped) or the driver's state (exited).
	Label string `json:"label"`
}

// Status returns a snapshot of the agent's view, with the last events events.
func (a *Agent) Status(ctx context.Context, events int) Status {
	nodes, _ := a.drv.Nodes(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	st := Status{Time: time.Now(), Driver: a.drv.Name(), DryRun: a.fleet.Agent.DryRun, Budget: a.budget.Remaining(time.Now()),
		Nodes: nodes, Events: a.ev.Recent(events)}
	for _, name := range a.order {
		s := a.svcs[name]
		ss := ServiceStatus{Name: name, Version: s.version, Desired: s.desired, FrontDoor: a.doorAdr[name]}
		if r := s.rollout; r != nil {
			kind := "rolling out"
			if r.rollback {
				kind = "rolling back"
			}
			ss.Rollout = kind + " " + r.from + " -> " + r.to + " (" + strconv.Itoa(r.updated) + " updated)"
			if r.paused {
				ss.Rollout += ", paused"
			}
		}
		for _, m := range s.members {
			if m.gone {
				continue
			}
			is := InstanceStatus{ID: m.inst.ID, Node: m.inst.Node, Addr: m.inst.Addr, Version: m.inst.Version, State: string(m.inst.State),
				Health: m.tr.Health().String(), Ready: m.routable(), PID: m.inst.PID, StartedAt: m.inst.StartedAt,
				Stopping: m.stopping, Replacing: m.replaces, ReplacedBy: m.replacedBy, Restarts: a.restartCount(m.inst.ID)}
			is.Label = instanceLabel(is)
			if m.p99 > 0 {
				is.P99Ms = m.p99
			}
			if p, ok := m.heap.Last(); ok {
				is.HeapBytes = p.V
			}
			if m.inst.State == driver.StateRunning && !m.stopping {
				ss.Running++
			}
			if is.Ready {
				ss.Ready++
			}
			ss.Instances = append(ss.Instances, is)
		}
		slices.SortFunc(ss.Instances, func(x, y InstanceStatus) int { return strings.Compare(x.ID, y.ID) })
		st.Services = append(st.Services, ss)
	}
	return st
}

type pageView struct {
	Status
	ByNode []nodeView
}

type nodeView struct {
	Node      driver.Node
	Instances []InstanceStatus
}

func view(st Status) pageView {
	v := pageView{Status: st}
	for _, n := range st.Nodes {
		nv := nodeView{Node: n}
		for _, s := range st.Services {
			for _, in := range s.Instances {
				if in.Node == n.Name {
					nv.Instances = append(nv.Instances, in)
				}
			}
		}
		v.ByNode = append(v.ByNode, nv)
	}
	slices.Reverse(v.Events)
	return v
}
