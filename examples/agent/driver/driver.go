package driver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors returned (possibly wrapped) by drivers.
var (
	// ErrNotFound: no instance, service or node by that name.
	ErrNotFound = errors.New("driver: not found")
	// ErrNodeUnavailable: the node is down or drained and accepts no instances.
	ErrNodeUnavailable = errors.New("driver: node unavailable")
	// ErrUnsupported: the driver cannot do this (for example fail a real node).
	ErrUnsupported = errors.New("driver: unsupported")
	// ErrClosed: the driver was closed.
	ErrClosed = errors.New("driver: closed")
)

// NodeError reports an operation on a node that failed; it matches its cause with
// errors.Is (for example ErrNodeUnavailable).
type NodeError struct {
	Node string
	Op   string
	Err  error
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("driver: %s node %q: %v", e.Op, e.Node, e.Err)
}

// Unwrap returns the cause.
func (e *NodeError) Unwrap() error { return e.Err }

// State is the driver's own view of an instance: is its process or container there.
// Whether it is healthy or ready is the agent's view, from the health document.
type State string

// Instance states.
const (
	StateStarting State = "starting" // created, not yet running (a pending task)
	StateRunning  State = "running"  // the process or container runs
	StateExited   State = "exited"   // it ended; ExitReason says how
)

// Instance is one replica of a service as the driver sees it.
type Instance struct {
	ID         string    // unique in the driver; stable for the life of the instance
	Service    string    // the service it belongs to
	Version    string    // the version it was started with
	Node       string    // the node it runs on
	Addr       string    // host:port of its HTTP server, for probes and the front door
	State      State     // the driver's view
	PID        int       // process id (local) or 0
	StartedAt  time.Time // when it was started
	ExitedAt   time.Time // when it exited; zero while it runs
	ExitReason string    // "exit status 2", "signal: killed", "node failed", ...
	Adopted    bool      // taken over from a previous agent run
}

// NodeState is the state of a node.
type NodeState string

// Node states.
const (
	NodeReady    NodeState = "ready"    // accepts instances
	NodeDegraded NodeState = "degraded" // runs, but reports itself degraded: drain it before it fails
	NodeDrained  NodeState = "drained"  // runs, accepts no new instances (drained by the agent or an operator)
	NodeDown     NodeState = "down"     // failed: its instances are gone, it accepts none
)

// NodeStates lists the node states, in the order a usage text shows them.
var NodeStates = []NodeState{NodeReady, NodeDown, NodeDegraded, NodeDrained}

// ParseNodeState returns the node state s names: a state's own name or what an
// operator types for it ("up" is ready, "drain" is drained, "degrade" is degraded,
// "fail" is down), in any case. Any other s is an error that lists the choices.
func ParseNodeState(s string) (NodeState, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "ready", "up", "undrain":
		return NodeReady, nil
	case "down", "fail":
		return NodeDown, nil
	case "degraded", "degrade":
		return NodeDegraded, nil
	case "drained", "drain":
		return NodeDrained, nil
	}
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return "", fmt.Errorf("driver: unknown node state %q: want ready (up), down, degraded or drained (drain)", s)
}

// Node is a machine (or, for the local driver, a virtual node).
type Node struct {
	Name   string    `json:"name"`
	State  NodeState `json:"state"`
	Reason string    `json:"reason,omitempty"` // why it is not ready, if known
}

// InstanceSpec is what a Placer needs to start one instance.
type InstanceSpec struct {
	Service string
	ID      string // chosen by the agent; unique
	Version string
	Node    string // where to run it; the driver returns ErrNodeUnavailable if it cannot
	// Command is the argv of the process (local driver). The placeholders {port},
	// {id}, {version}, {node} and {service} are replaced in every argument.
	Command []string
	Image   string   // the image (container drivers)
	Env     []string // extra KEY=value pairs; drivers add PORT, INSTANCE_ID, VERSION, NODE, SERVICE
	Port    int      // the port to listen on; 0 means the driver picks a free one
}

// Driver is what every backend implements. A Driver also implements Placer or
// Orchestrator (the agent checks with a type assertion), and may implement
// NodeController and Adopter.
type Driver interface {
	// Name is the driver's name: "local", "docker".
	Name() string
	// Nodes lists the nodes and their states.
	Nodes(ctx context.Context) ([]Node, error)
	// Instances lists the instances of service ("" means all services), including
	// instances that exited and were not yet removed (State StateExited), so that the
	// agent sees a crash even if it happened between two probes.
	Instances(ctx context.Context, service string) ([]Instance, error)
	// Stop stops the instance: a graceful signal, then a forced kill after grace
	// (<= 0 means the driver's default), and forgets it. Stopping an instance that
	// already exited just forgets it. It returns ErrNotFound for an unknown id. On an
	// Orchestrator, the orchestrator replaces a stopped instance by itself.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Close releases the driver's resources. It does not stop the instances (the
	// agent may be restarting and adopt them); call Stop for that.
	Close() error
}

// Placer is a Driver that starts single instances where the agent places them.
type Placer interface {
	Driver
	// Start starts one instance on spec.Node and returns it once its process or
	// container is running (not necessarily ready). It returns ErrNodeUnavailable
	// (wrapped in a *NodeError) when the node does not accept instances.
	Start(ctx context.Context, spec InstanceSpec) (Instance, error)
}

// UpdatePolicy is how a rolling update proceeds. Zero fields mean the agent's
// defaults (parallelism 1, no delay, the service's monitor window, rollback).
type UpdatePolicy struct {
	Parallelism   int           // instances updated at once
	Delay         time.Duration // pause between batches
	Monitor       time.Duration // how long each new instance must stay healthy
	FailureAction string        // "rollback" (default), "pause" or "continue"
	// MaxFailureRatio is the fraction of updated instances that may fail during the
	// update before FailureAction applies; 0 means none may fail.
	MaxFailureRatio float64
}

// HealthCheck is how the orchestrator itself checks an instance (Docker's
// HEALTHCHECK). The agent reads the full health document in addition.
type HealthCheck struct {
	// Path is the path the orchestrator probes. The agent hands the readiness path
	// (e.g. "/readyz"), so that a release that never becomes ready fails the
	// orchestrator's check and its rolling update rolls back.
	Path     string
	Interval time.Duration
	Timeout  time.Duration
	Retries  int
}

// ServiceSpec declares a whole service for an Orchestrator.
type ServiceSpec struct {
	Name     string
	Version  string
	Image    string
	Command  []string // argv; placeholders as in InstanceSpec
	Env      []string
	Replicas int
	// BasePort is the port of replica slot 1; slot n listens on BasePort+n-1 (host
	// networking, one port per slot).
	BasePort int
	Health   HealthCheck
	Update   UpdatePolicy
	// Rollback is the policy of an automatic or manual rollback; zero means as Update.
	Rollback UpdatePolicy
}

// RolloutState is the phase of an orchestrator's rolling update.
type RolloutState string

// Rollout states, as Swarm names them.
const (
	RolloutNone              RolloutState = ""                   // no update ever ran
	RolloutUpdating          RolloutState = "updating"           // in progress
	RolloutCompleted         RolloutState = "completed"          // done
	RolloutPaused            RolloutState = "paused"             // stopped by FailureAction "pause"
	RolloutRollbackStarted   RolloutState = "rollback_started"   // rolling back
	RolloutRollbackCompleted RolloutState = "rollback_completed" // rolled back
	RolloutRollbackPaused    RolloutState = "rollback_paused"    // the rollback itself failed
)

// RolloutStatus reports an orchestrator's rolling update.
type RolloutStatus struct {
	State     RolloutState
	Message   string
	Version   string // the version the service currently declares
	StartedAt time.Time
	UpdatedAt time.Time
}

// Orchestrator is a Driver that keeps a declared service by itself. Every write
// returns as soon as the orchestrator accepted it (detached); progress is read with
// Rollout and Instances.
type Orchestrator interface {
	Driver
	// Apply creates the service, or updates it to spec with a rolling update that
	// follows spec.Update (a changed Version or Image) or a plain change (replicas).
	Apply(ctx context.Context, spec ServiceSpec) error
	// Scale sets the replica count.
	Scale(ctx context.Context, service string, replicas int) error
	// Rollback rolls the service back to its previous spec.
	Rollback(ctx context.Context, service string) error
	// Rollout reports the state of the last rolling update.
	Rollout(ctx context.Context, service string) (RolloutStatus, error)
	// Remove removes the service and all its instances.
	Remove(ctx context.Context, service string) error
}

// NodeController is implemented by drivers that can change a node's state. Every
// driver that implements it supports NodeDrained and NodeReady (drain, undrain);
// NodeDown and NodeDegraded (fail a node, make it report itself degraded) are for
// drivers with virtual nodes and return ErrUnsupported elsewhere.
type NodeController interface {
	SetNodeState(ctx context.Context, node string, state NodeState, reason string) error
}

// Adopter is implemented by drivers that can take over the instances a previous
// agent run left running. Adopt returns the live instances it adopted; instances it
// could not verify (gone, or a reused process id) are dropped, and anything it could
// not adopt cleanly is stopped, so that no orphan or duplicate remains.
type Adopter interface {
	Adopt(ctx context.Context) ([]Instance, error)
}

// Watcher is implemented by drivers that can tell the agent at once when an
// instance exits or a node changes state, so that it does not wait for its next
// probe round to notice. Watch returns a channel that receives a value (coalesced:
// the channel has a buffer of one and sends never block) after every such change,
// until ctx is done.
type Watcher interface {
	Watch(ctx context.Context) <-chan struct{}
}
