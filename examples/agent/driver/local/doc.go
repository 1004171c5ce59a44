// Package local is the agent's embedded driver: instances are processes on this
// machine, grouped into virtual nodes.
//
// # Processes
//
// Every instance runs in its own process group (SysProcAttr.Setpgid), on its own
// port on 127.0.0.1. Stop sends SIGTERM to the whole group, then SIGKILL to the group
// after the grace period, and finally SIGKILL to the group once more after the leader
// exited, so that grandchildren never survive their instance (exec.Cmd.WaitDelay
// alone would kill only the leader).
//
// Exits are noticed by one reaper goroutine (started by the first Start or Adopt,
// stopped by Close) that polls each child with wait4(WNOHANG) every PollInterval; an
// exited instance stays listed, with StateExited and its exit reason, until the agent
// calls Stop to forget it.
//
// # Virtual nodes
//
// Config.Nodes names the nodes. SetNodeState(NodeDown) simulates a machine failure:
// every process on the node is killed at once (SIGKILL to each group) and the node
// refuses new instances until it is set back to NodeReady. NodeDrained refuses new
// instances and leaves the running ones alone; NodeDegraded only changes what the node
// reports, so that the agent drains it.
//
// # Adoption
//
// With Config.StateFile set, the driver records every instance (pid, process group,
// the kernel's start time of the process, port, version, node) in that file. A new
// driver on the same file adopts, in Adopt, every recorded process that still runs
// and that it can prove it started, and kills every other process that carries the
// driver's marker in its environment: nothing is orphaned, nothing is duplicated.
//
// # What the driver trusts
//
// The state file is an input, not an authority. A process is adopted only when
// /proc/<pid>/environ carries MarkerEnv with this driver's marker, /proc/<pid>/stat
// shows the recorded start time (a reused pid is never mistaken for an instance) and
// the process leads its own group; the group is then the pid, and the address is
// built from the port, whatever the file says. Every signal goes to a process group
// only while its leader passes the same test, and otherwise to the group's members
// that carry the marker, one by one: a forged or stale file cannot make the driver
// signal a process it did not start.
//
// The file itself is kept private: its directory is created 0700, it is written
// 0600 (a fresh file renamed into place), and New (and Adopt again, on the open
// file) refuses a state file or directory that another user owns or that group or
// others may write, and a state file that is a symbolic link. Instance logs in
// Config.LogDir are created 0600 in a 0700 directory.
package local
