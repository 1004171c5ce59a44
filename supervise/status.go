package supervise

import "time"

// ChildState is the state of a child, or of a supervisor, in a [TreeStatus].
type ChildState string

const (
	// StateRunning: the child's Serve is running.
	StateRunning ChildState = "running"
	// StateBackingOff: the child ended and waits for its restart.
	StateBackingOff ChildState = "backing-off"
	// StateStopped: the child is not running and not waiting to restart: the
	// supervisor is not serving, the child was stopped, or it finished (a
	// Transient or Temporary child that returned nil).
	StateStopped ChildState = "stopped"
	// StateFailed: the child failed and will not be restarted (a Temporary
	// child that failed, or any child of a supervisor that gave up), or, for a
	// supervisor, it gave up.
	StateFailed ChildState = "failed"
)

// String returns the state as a string.
func (s ChildState) String() string { return string(s) }

// ChildStatus is the status of one child in a [TreeStatus].
type ChildStatus struct {
	Name    string      // the child's name, unique within its supervisor
	Path    string      // supervisor path and name, e.g. "root/db/pool"
	State   ChildState  // running, backing-off, stopped or failed
	Restart RestartType // permanent, transient or temporary
	// Restarts counts the child's restarts since it was added (a supervisor's
	// restarts of a group count for each child restarted).
	Restarts  int
	LastError string        // the last failure, "" if none
	Uptime    time.Duration // how long the current run has lasted; 0 unless running
	// Children holds the children of a nested supervisor, nil otherwise.
	Children []ChildStatus
}

// TreeStatus is a snapshot of a supervisor and, recursively, its children.
type TreeStatus struct {
	Name     string     // the supervisor's name
	Path     string     // its path from the root supervisor, e.g. "root/db"
	State    ChildState // running, stopped or failed (gave up)
	Strategy Strategy
	Children []ChildStatus // in start order
}

// All returns every child of the tree, depth first in start order, with
// nested supervisors before their own children. It is what a health check
// iterates over.
func (t TreeStatus) All() []ChildStatus {
	var out []ChildStatus
	var walk func([]ChildStatus)
	walk = func(cs []ChildStatus) {
		for _, c := range cs {
			out = append(out, c)
			walk(c.Children)
		}
	}
	walk(t.Children)
	return out
}
