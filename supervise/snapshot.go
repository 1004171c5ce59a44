package supervise

import "time"

// ChildState is the state of a child, or of a supervisor, in a [Snapshot].
type ChildState string

const (
	// StateRunning: the child's Serve is running.
	StateRunning ChildState = "running"
	// StateBackingOff: the child ended and waits for its restart: for its
	// backoff delay, its group's restart, or its abandoned copy to return
	// (ChildSnapshot.Abandoned).
	StateBackingOff ChildState = "backing-off"
	// StateStopped: the child is not running and not waiting to restart: the
	// supervisor is not serving, the child was stopped (by StopChild, or at
	// shutdown), or it finished (a Transient or Temporary child that returned
	// nil).
	StateStopped ChildState = "stopped"
	// StateFailed: the child failed and will not be restarted (a Temporary
	// child that failed, or any child of a supervisor that gave up), or, for a
	// supervisor, it gave up.
	StateFailed ChildState = "failed"
)

// String returns the state as a string.
func (s ChildState) String() string { return string(s) }

// ChildSnapshot is the state of one child in a [Snapshot].
type ChildSnapshot struct {
	ID      ChildID     // as returned by Add
	Name    string      // the child's name, unique within its supervisor
	Path    string      // supervisor path and name, e.g. "root/db/pool"
	State   ChildState  // running, backing-off, stopped or failed
	Restart RestartType // permanent, transient or temporary
	// Significant is ChildConfig.Significant.
	Significant bool
	// Restarts counts the child's restarts since it was added (a supervisor's
	// restarts of a group count for each child restarted).
	Restarts  int
	LastError string        // the last failure, "" if none
	Uptime    time.Duration // how long the current run has lasted; 0 unless running
	// Abandoned is true while a copy of the child that did not stop within
	// its shutdown timeout is still running. The child is not started again
	// until that copy returns.
	Abandoned bool
	// Children holds the children of a nested supervisor, nil otherwise.
	Children []ChildSnapshot
}

// Snapshot is the state of a supervisor and, recursively, its children, as
// [Supervisor.Snapshot] returns it.
type Snapshot struct {
	Name     string     // the supervisor's name
	Path     string     // its path from the root supervisor, e.g. "root/db"
	State    ChildState // running, stopped or failed (gave up)
	Strategy Strategy
	Children []ChildSnapshot // in start order
	// Abandoned counts this supervisor's abandoned child goroutines that
	// are still running, including those of removed children (not those of
	// nested supervisors, which their own snapshots count).
	Abandoned int
}

// All returns every child of the tree, depth first in start order, with
// nested supervisors before their own children. It is what a health check
// iterates over.
func (t Snapshot) All() []ChildSnapshot {
	var out []ChildSnapshot
	var walk func([]ChildSnapshot)
	walk = func(cs []ChildSnapshot) {
		for _, c := range cs {
			out = append(out, c)
			walk(c.Children)
		}
	}
	walk(t.Children)
	return out
}
