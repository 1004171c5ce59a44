package docker

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

// Instances lists the tasks of service ("" means every service the driver manages)
// as instances: pending and starting tasks as StateStarting, running tasks as
// StateRunning, and tasks that failed or completed on their own (a crash, an
// unhealthy container, a container stopped by Stop) as StateExited until Swarm prunes
// them from its task history or Stop forgets them. Tasks Swarm shut down on purpose
// (replaced by an update, removed by a scale-in) are not listed. An unknown service
// has no instances.
//
// Instance.ID is the task id, Node the node's hostname, Addr the host and the port of
// the task's replica slot, Version the version the task was started with.
func (d *Driver) Instances(ctx context.Context, service string) ([]driver.Instance, error) {
	ctx, cancel, err := d.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	tasks, names, nodes, err := d.listTasks(ctx, service)
	if err != nil {
		return nil, d.wrap("list instances", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := make(map[string]bool, len(tasks))
	out := make([]driver.Instance, 0, len(tasks))
	for _, t := range tasks {
		name, ok := names[t.ServiceID]
		if !ok {
			continue
		}
		seen[t.ID] = true
		if _, gone := d.forgotten[t.ID]; gone {
			continue
		}
		inst, ok := d.instance(t, name, nodes)
		if ok {
			out = append(out, inst)
		}
	}
	if service == "" {
		for id := range d.forgotten {
			if !seen[id] {
				delete(d.forgotten, id)
			}
		}
	}
	slices.SortFunc(out, func(a, b driver.Instance) int {
		return strings.Compare(a.Service+"\x00"+a.ID, b.Service+"\x00"+b.ID)
	})
	return out, nil
}

// listTasks returns the tasks of service ("" means all managed services), the names
// of their services by id, and the nodes by id.
func (d *Driver) listTasks(ctx context.Context, service string) ([]swarm.Task, map[string]string, map[string]nodeInfo, error) {
	svcs, err := d.managed(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	names := map[string]string{} // service id -> name
	args := filters.NewArgs()
	for _, s := range svcs {
		if service != "" && s.Spec.Name != service {
			continue
		}
		names[s.ID] = s.Spec.Name
		args.Add("service", s.ID)
	}
	if len(names) == 0 {
		return nil, names, nil, nil
	}
	tasks, err := d.cli.TaskList(ctx, swarm.TaskListOptions{Filters: args})
	if err != nil {
		return nil, nil, nil, err
	}
	nodes, err := d.nodeMap(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	return tasks, names, nodes, nil
}

// Task is Swarm's full view of one task, for status pages and diagnosis: the
// instance, plus what Instances leaves out.
type Task struct {
	driver.Instance
	Slot         int    // the replica slot; the port is BasePort+Slot-1
	TaskState    string // Swarm's state: pending, starting, running, failed, shutdown, ...
	DesiredState string // what Swarm wants: running, shutdown, ...
	// Health is Docker's HEALTHCHECK status of the task's container: "starting",
	// "healthy", "unhealthy", or "" (no health check, or no running container).
	Health      string
	ContainerID string
	Message     string // Swarm's last status message or error
}

// Tasks lists every task Swarm still remembers for service ("" means every service
// the driver manages), including those it shut down on purpose, with Docker's health
// status of every running container. It costs one container inspection per running
// task: poll Instances in loops, call Tasks for a status page.
func (d *Driver) Tasks(ctx context.Context, service string) ([]Task, error) {
	ctx, cancel, err := d.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	op := "list tasks"
	tasks, names, nodes, err := d.listTasks(ctx, service)
	if err != nil {
		return nil, d.wrap(op, err)
	}
	out := make([]Task, 0, len(tasks))
	for _, t := range tasks {
		name, ok := names[t.ServiceID]
		if !ok {
			continue
		}
		inst, ok := d.instance(t, name, nodes)
		if !ok { // shut down on purpose: still a task
			inst.State = driver.StateExited
			inst.ExitedAt = t.Status.Timestamp
			inst.ExitReason = string(t.Status.State)
		}
		task := Task{Instance: inst, Slot: t.Slot, TaskState: string(t.Status.State),
			DesiredState: string(t.DesiredState), Message: t.Status.Message}
		if t.Status.Err != "" {
			task.Message = t.Status.Err
		}
		if cs := t.Status.ContainerStatus; cs != nil {
			task.ContainerID = cs.ContainerID
		}
		if task.ContainerID != "" && (t.Status.State == swarm.TaskStateRunning || t.Status.State == swarm.TaskStateStarting) {
			c, err := d.cli.ContainerInspect(ctx, task.ContainerID)
			switch {
			case err == nil && c.State != nil && c.State.Health != nil:
				task.Health = string(c.State.Health.Status)
			case err != nil && !cerrdefs.IsNotFound(err):
				return nil, d.wrap(op, err)
			}
		}
		out = append(out, task)
	}
	slices.SortFunc(out, func(a, b Task) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		if a.Slot != b.Slot {
			return a.Slot - b.Slot
		}
		return b.StartedAt.Compare(a.StartedAt)
	})
	return out, nil
}

type nodeInfo struct{ name, addr string }

func (d *Driver) nodeMap(ctx context.Context) (map[string]nodeInfo, error) {
	nodes, err := d.cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, err
	}
	m := make(map[string]nodeInfo, len(nodes))
	for _, n := range nodes {
		m[n.ID] = nodeInfo{name: nodeName(n), addr: n.Status.Addr}
	}
	return m, nil
}

// instance maps a task; ok is false for tasks that are not instances any more.
func (d *Driver) instance(t swarm.Task, service string, nodes map[string]nodeInfo) (driver.Instance, bool) {
	inst := driver.Instance{
		ID:      t.ID,
		Service: service,
	}
	var labels map[string]string
	if t.Spec.ContainerSpec != nil {
		labels = t.Spec.ContainerSpec.Labels
	}
	inst.Version = labels[LabelVersion]
	n := nodes[t.NodeID]
	inst.Node = n.name
	if base, err := strconv.Atoi(labels[LabelBasePort]); err == nil && t.Slot > 0 {
		host := d.cfg.InstanceHost
		if host == "" {
			host = n.addr
		}
		if host == "" || host == "0.0.0.0" {
			host = "127.0.0.1"
		}
		inst.Addr = net.JoinHostPort(host, strconv.Itoa(base+t.Slot-1))
	}
	if cs := t.Status.ContainerStatus; cs != nil {
		inst.PID = cs.PID
	}
	switch t.Status.State {
	case swarm.TaskStateRunning:
		if t.DesiredState == swarm.TaskStateShutdown || t.DesiredState == swarm.TaskStateRemove {
			// Swarm is stopping it (an update, a scale-in, a node it gave up): it
			// drains and exits on its own. Listed, its closed listener would look
			// unhealthy to the agent, which would stop it again (seen on the lab
			// under load: the agent "replaced" every task a rolling update stopped),
			// and the front door would keep routing to it.
			return inst, false
		}
		inst.State = driver.StateRunning
		inst.StartedAt = t.Status.Timestamp
	case swarm.TaskStateNew, swarm.TaskStateAllocated, swarm.TaskStatePending, swarm.TaskStateAssigned,
		swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateReady, swarm.TaskStateStarting:
		if t.DesiredState != swarm.TaskStateRunning && t.DesiredState != swarm.TaskStateReady {
			return inst, false // never started, and never will
		}
		inst.State = driver.StateStarting
		inst.StartedAt = t.CreatedAt
	case swarm.TaskStateFailed, swarm.TaskStateComplete, swarm.TaskStateRejected, swarm.TaskStateOrphaned:
		inst.State = driver.StateExited
		inst.StartedAt = t.CreatedAt
		inst.ExitedAt = t.Status.Timestamp
		inst.ExitReason = exitReason(t)
		inst.PID = 0
	default: // shutdown, remove: Swarm stopped it on purpose
		return inst, false
	}
	return inst, true
}

func exitReason(t swarm.Task) string {
	switch {
	case t.Status.Err != "":
		return t.Status.Err
	case t.Status.ContainerStatus != nil && t.Status.State != swarm.TaskStateRejected:
		return "exit status " + strconv.Itoa(t.Status.ContainerStatus.ExitCode)
	case t.Status.Message != "":
		return string(t.Status.State) + ": " + t.Status.Message
	}
	return string(t.Status.State)
}

// Stop stops the task's container: SIGTERM, then SIGKILL after grace (<= 0 means
// Config.StopGrace). Swarm's restart policy then replaces the task with a new one in
// the same replica slot: this is how the agent replaces an instance that is unhealthy
// by its health document, which Swarm cannot see. Stop forgets the task: Instances no
// longer lists it. Stopping a task that already exited only forgets it; stopping a
// pending task forgets it and leaves it to Swarm. Stop returns driver.ErrNotFound for
// an unknown task.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	if grace <= 0 {
		grace = d.cfg.StopGrace
	}
	ctx, cancel, err := d.beginFor(ctx, d.cfg.CallTimeout+grace)
	if err != nil {
		return err
	}
	defer cancel()
	op := "stop instance " + id
	t, _, err := d.cli.TaskInspectWithRaw(ctx, id)
	if err != nil {
		return d.wrap(op, err)
	}
	d.forget(id)
	cs := t.Status.ContainerStatus
	live := t.Status.State == swarm.TaskStateRunning || t.Status.State == swarm.TaskStateStarting
	if !live || cs == nil || cs.ContainerID == "" {
		d.log.InfoContext(ctx, "instance forgotten", "instance", id, "state", t.Status.State)
		return nil
	}
	secs := int((grace + time.Second - 1) / time.Second)
	err = d.cli.ContainerStop(ctx, cs.ContainerID, container.StopOptions{Timeout: &secs})
	if err != nil && cerrdefs.IsNotFound(err) {
		err = nil // it went away by itself
	}
	d.count(ctx, err)
	if err != nil {
		return d.wrap(op, err)
	}
	d.log.InfoContext(ctx, "instance stopped; Swarm replaces it", "instance", id, "container", cs.ContainerID, "grace", grace)
	return nil
}

func (d *Driver) forget(id string) {
	d.mu.Lock()
	d.forgotten[id] = time.Now()
	// Bound the set even if Instances is never called for all services.
	if len(d.forgotten) > 4096 {
		for k, at := range d.forgotten {
			if time.Since(at) > time.Hour {
				delete(d.forgotten, k)
			}
		}
	}
	d.mu.Unlock()
}

// Adopt returns the live instances of the services the driver manages: Swarm keeps
// services across agent restarts, so there is nothing to stop and nothing to restart.
// Every returned instance has Adopted set.
func (d *Driver) Adopt(ctx context.Context) ([]driver.Instance, error) {
	all, err := d.Instances(ctx, "")
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, inst := range all {
		if inst.State == driver.StateExited {
			continue
		}
		inst.Adopted = true
		out = append(out, inst)
	}
	return out, nil
}

// Nodes lists the swarm's nodes by hostname: ready and active nodes as NodeReady,
// drained or paused ones as NodeDrained, nodes that are down, unknown or disconnected
// as NodeDown.
func (d *Driver) Nodes(ctx context.Context) ([]driver.Node, error) {
	ctx, cancel, err := d.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	nodes, err := d.cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, d.wrap("list nodes", err)
	}
	out := make([]driver.Node, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, nodeOf(n))
	}
	slices.SortFunc(out, func(a, b driver.Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func nodeName(n swarm.Node) string {
	if n.Description.Hostname != "" {
		return n.Description.Hostname
	}
	return n.ID
}

func nodeOf(n swarm.Node) driver.Node {
	out := driver.Node{Name: nodeName(n), State: driver.NodeReady}
	switch {
	case n.Status.State != swarm.NodeStateReady:
		out.State = driver.NodeDown
		out.Reason = string(n.Status.State)
		if n.Status.Message != "" {
			out.Reason += ": " + n.Status.Message
		}
	case n.Spec.Availability != swarm.NodeAvailabilityActive:
		out.State = driver.NodeDrained
		out.Reason = "availability " + string(n.Spec.Availability)
	}
	return out
}

// SetNodeState drains a node (driver.NodeDrained: Swarm moves its tasks elsewhere, or
// leaves them pending when there is no other node) or makes it active again
// (driver.NodeReady). node is the hostname or the node id. Other states return
// driver.ErrUnsupported: a real node cannot be failed from here. Errors are
// *driver.NodeError values.
func (d *Driver) SetNodeState(ctx context.Context, node string, state driver.NodeState, reason string) error {
	var avail swarm.NodeAvailability
	switch state {
	case driver.NodeDrained:
		avail = swarm.NodeAvailabilityDrain
	case driver.NodeReady:
		avail = swarm.NodeAvailabilityActive
	default:
		return &driver.NodeError{Node: node, Op: "set state " + string(state) + " of", Err: driver.ErrUnsupported}
	}
	ctx, cancel, err := d.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	op := "set availability " + string(avail) + " of node " + node
	err = d.writeRetry(ctx, op, func() error {
		n, err := d.findNode(ctx, node)
		if err != nil {
			return err
		}
		if n.Spec.Availability == avail {
			return nil
		}
		spec := n.Spec
		spec.Labels = cloneMap(n.Spec.Labels)
		spec.Availability = avail
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		if reason != "" {
			spec.Labels["selfheal.reason"] = reason
		} else {
			delete(spec.Labels, "selfheal.reason")
		}
		if err := d.cli.NodeUpdate(ctx, n.ID, n.Version, spec); err != nil {
			return err
		}
		d.log.InfoContext(ctx, "node availability set", "node", node, "availability", avail, "reason", reason)
		return nil
	})
	if err != nil {
		return &driver.NodeError{Node: node, Op: "set availability " + string(avail) + " of", Err: err}
	}
	return nil
}

func (d *Driver) findNode(ctx context.Context, node string) (swarm.Node, error) {
	nodes, err := d.cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return swarm.Node{}, err
	}
	for _, n := range nodes {
		if n.ID == node || n.Description.Hostname == node {
			return n, nil
		}
	}
	return swarm.Node{}, fmt.Errorf("docker: node %q: %w", node, driver.ErrNotFound)
}
