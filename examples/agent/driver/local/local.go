package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

// MarkerEnv is the environment variable every instance carries; its value identifies
// the driver (the state file, or the driver's own process) that started it.
const MarkerEnv = "SELFHEAL_LOCAL_DRIVER"

// Config configures a Driver. The zero value is one node named "node-1", no state
// file, a 5 s stop grace period, children's output discarded.
type Config struct {
	// Nodes are the names of the virtual nodes; nil means ["node-1"].
	Nodes []string
	// StateFile records the instances for adoption by the next agent run; "" means no
	// state file (and no adoption). Its directory is created 0700 when missing, and
	// it is written 0600. New refuses a state file, or a directory, that another
	// user owns or that others (group or world) may write: whoever can write it
	// could name the processes the driver adopts.
	StateFile string
	// StopGrace is the time between SIGTERM and SIGKILL in Stop when the caller
	// passes no grace; <= 0 means 5 s.
	StopGrace time.Duration
	// LogDir receives one <instance id>.log file per instance with its stdout and
	// stderr; "" means the output is discarded.
	LogDir string
	// Host is the address instances listen on and are reached at; "" means 127.0.0.1.
	Host string
	// PollInterval is how often the reaper looks for exited processes; <= 0 means
	// 20 ms.
	PollInterval time.Duration
	// Logger receives what the driver does; nil means no logging.
	Logger *slog.Logger
}

// Driver runs instances as local processes. Create it with New; it is safe for
// concurrent use.
type Driver struct {
	cfg    Config
	marker string
	log    *slog.Logger

	mu      sync.Mutex
	nodes   map[string]*driver.Node
	order   []string
	insts   map[string]*proc
	ports   map[int]bool
	closed  bool
	started bool
	stop    chan struct{}
	wg      sync.WaitGroup
	watch   map[chan struct{}]bool
}

type proc struct {
	inst      driver.Instance
	pgid      int
	startTime uint64 // /proc/<pid>/stat field 22
	port      int
	child     bool          // our child: reap with wait4; else poll /proc
	done      chan struct{} // closed when the process exited
	os        *os.Process
}

var (
	_ driver.Placer         = (*Driver)(nil)
	_ driver.NodeController = (*Driver)(nil)
	_ driver.Adopter        = (*Driver)(nil)
	_ driver.Watcher        = (*Driver)(nil)
)

// New returns a driver. It starts nothing.
func New(cfg Config) (*Driver, error) {
	if len(cfg.Nodes) == 0 {
		cfg.Nodes = []string{"node-1"}
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 5 * time.Second
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	d := &Driver{
		cfg:   cfg,
		log:   cfg.Logger,
		nodes: map[string]*driver.Node{},
		insts: map[string]*proc{},
		ports: map[int]bool{},
		stop:  make(chan struct{}),
		watch: map[chan struct{}]bool{},
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	for _, n := range cfg.Nodes {
		if n == "" {
			return nil, errors.New("local: Config.Nodes: empty node name")
		}
		if _, dup := d.nodes[n]; dup {
			return nil, fmt.Errorf("local: Config.Nodes: duplicate node %q", n)
		}
		d.nodes[n] = &driver.Node{Name: n, State: driver.NodeReady}
		d.order = append(d.order, n)
	}
	if cfg.StateFile != "" {
		abs, err := filepath.Abs(cfg.StateFile)
		if err != nil {
			return nil, fmt.Errorf("local: Config.StateFile: %w", err)
		}
		d.cfg.StateFile = abs
		if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
			return nil, fmt.Errorf("local: Config.StateFile: %w", err)
		}
		if err := private(filepath.Dir(abs), true); err != nil {
			return nil, fmt.Errorf("local: Config.StateFile: %w", err)
		}
		if err := private(abs, false); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("local: Config.StateFile: %w", err)
		}
		sum := sha256.Sum256([]byte(abs))
		d.marker = hex.EncodeToString(sum[:8])
	} else {
		d.marker = fmt.Sprintf("pid-%d-%p", os.Getpid(), d)
	}
	return d, nil
}

// Marker is the value of MarkerEnv in the environment of this driver's instances.
func (d *Driver) Marker() string { return d.marker }

// Name returns "local".
func (d *Driver) Name() string { return "local" }

// Nodes lists the virtual nodes in configuration order.
func (d *Driver) Nodes(ctx context.Context) ([]driver.Node, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]driver.Node, 0, len(d.order))
	for _, n := range d.order {
		out = append(out, *d.nodes[n])
	}
	return out, nil
}

// Instances lists the instances of service ("" means all), running or exited, sorted
// by id.
func (d *Driver) Instances(ctx context.Context, service string) ([]driver.Instance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]driver.Instance, 0, len(d.insts))
	for _, p := range d.insts {
		if service == "" || p.inst.Service == service {
			out = append(out, p.inst)
		}
	}
	slices.SortFunc(out, func(a, b driver.Instance) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Start starts one instance on spec.Node (or the first ready node when spec.Node is
// "") and returns once the process runs.
func (d *Driver) Start(ctx context.Context, spec driver.InstanceSpec) (driver.Instance, error) {
	if err := ctx.Err(); err != nil {
		return driver.Instance{}, err
	}
	if len(spec.Command) == 0 {
		return driver.Instance{}, errors.New("local: InstanceSpec.Command: empty")
	}
	if spec.ID == "" {
		return driver.Instance{}, errors.New("local: InstanceSpec.ID: empty")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return driver.Instance{}, driver.ErrClosed
	}
	if _, dup := d.insts[spec.ID]; dup {
		return driver.Instance{}, fmt.Errorf("local: instance %q already exists", spec.ID)
	}
	nodeName := spec.Node
	if nodeName == "" {
		for _, n := range d.order {
			if d.nodes[n].State == driver.NodeReady {
				nodeName = n
				break
			}
		}
	}
	node, ok := d.nodes[nodeName]
	if !ok {
		return driver.Instance{}, &driver.NodeError{Node: nodeName, Op: "start on", Err: driver.ErrNotFound}
	}
	if node.State == driver.NodeDown || node.State == driver.NodeDrained {
		return driver.Instance{}, &driver.NodeError{Node: nodeName, Op: "start on", Err: driver.ErrNodeUnavailable}
	}
	port := spec.Port
	if port == 0 {
		p, err := d.freePort()
		if err != nil {
			return driver.Instance{}, err
		}
		port = p
	}
	repl := strings.NewReplacer("{port}", strconv.Itoa(port), "{id}", spec.ID, "{version}", spec.Version,
		"{node}", nodeName, "{service}", spec.Service)
	argv := make([]string, len(spec.Command))
	for i, a := range spec.Command {
		argv[i] = repl.Replace(a)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(),
		"PORT="+strconv.Itoa(port), "INSTANCE_ID="+spec.ID, "VERSION="+spec.Version,
		"NODE="+nodeName, "SERVICE="+spec.Service, MarkerEnv+"="+d.marker)
	for _, e := range spec.Env {
		cmd.Env = append(cmd.Env, repl.Replace(e))
	}
	out, err := d.output(spec.ID)
	if err != nil {
		return driver.Instance{}, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Start()
	out.Close() // the child holds its own descriptor
	if err != nil {
		return driver.Instance{}, fmt.Errorf("local: start %s: %w", spec.ID, err)
	}
	st, _ := procStartTime(cmd.Process.Pid)
	p := &proc{
		inst: driver.Instance{
			ID: spec.ID, Service: spec.Service, Version: spec.Version, Node: nodeName,
			Addr: net.JoinHostPort(d.cfg.Host, strconv.Itoa(port)), State: driver.StateRunning,
			PID: cmd.Process.Pid, StartedAt: time.Now(),
		},
		pgid: cmd.Process.Pid, startTime: st, port: port, child: true,
		done: make(chan struct{}), os: cmd.Process,
	}
	d.insts[spec.ID] = p
	d.ports[port] = true
	d.startReaperLocked()
	d.saveLocked()
	d.log.Info("instance started", "id", spec.ID, "node", nodeName, "pid", p.inst.PID, "addr", p.inst.Addr, "version", spec.Version)
	return p.inst, nil
}

func (d *Driver) output(id string) (*os.File, error) {
	if d.cfg.LogDir == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	if err := os.MkdirAll(d.cfg.LogDir, 0o700); err != nil {
		return nil, fmt.Errorf("local: Config.LogDir: %w", err)
	}
	return os.OpenFile(filepath.Join(d.cfg.LogDir, id+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
}

// freePort asks the kernel for a free port that none of our instances uses.
func (d *Driver) freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(d.cfg.Host, "0"))
		if err != nil {
			return 0, fmt.Errorf("local: pick a port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !d.ports[port] {
			return port, nil
		}
	}
	return 0, errors.New("local: pick a port: no free port")
}

// Stop stops the instance: SIGTERM to its process group, SIGKILL to the group after
// grace (<= 0 means Config.StopGrace), and forgets it. It returns once the process
// exited, or ctx is done (the group has then been sent SIGKILL).
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	if grace <= 0 {
		grace = d.cfg.StopGrace
	}
	d.mu.Lock()
	p, ok := d.insts[id]
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("local: stop %q: %w", id, driver.ErrNotFound)
	}
	var err error
	select {
	case <-p.done:
	default:
		d.signal(p, syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-p.done:
		case <-t.C:
			d.log.Warn("instance ignored SIGTERM, killing its group", "id", id, "pgid", p.pgid)
			d.signal(p, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-ctx.Done():
				err = ctx.Err()
			}
		case <-ctx.Done():
			d.signal(p, syscall.SIGKILL)
			err = ctx.Err()
		}
		t.Stop()
	}
	// Grandchildren that outlived the leader go too.
	d.signal(p, syscall.SIGKILL)
	d.mu.Lock()
	if d.insts[id] == p {
		delete(d.insts, id)
		delete(d.ports, p.port)
		d.saveLocked()
	}
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("local: stop %q: %w", id, err)
	}
	d.log.Info("instance stopped", "id", id)
	return nil
}

// SetNodeState changes a virtual node: NodeDown kills every process on it at once
// and refuses new instances; NodeDrained refuses new instances; NodeDegraded only
// reports; NodeReady brings the node back.
func (d *Driver) SetNodeState(ctx context.Context, name string, state driver.NodeState, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.nodes[name]
	if !ok {
		return &driver.NodeError{Node: name, Op: "set state of", Err: driver.ErrNotFound}
	}
	switch state {
	case driver.NodeReady, driver.NodeDegraded, driver.NodeDrained, driver.NodeDown:
	default:
		return fmt.Errorf("local: unknown node state %q", state)
	}
	n.State, n.Reason = state, reason
	if state == driver.NodeDown {
		for _, p := range d.insts {
			if p.inst.Node == name && p.inst.State != driver.StateExited {
				d.signal(p, syscall.SIGKILL)
				p.inst.ExitReason = "node down"
			}
		}
	}
	d.notifyLocked()
	d.log.Info("node state", "node", name, "state", state, "reason", reason)
	return nil
}

// Close stops the reaper and forgets the instances without stopping them (a new
// driver on the same state file adopts them). Stop them first to end them.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	close(d.stop)
	d.mu.Unlock()
	d.wg.Wait()
	d.mu.Lock()
	for _, p := range d.insts {
		if p.os != nil {
			_ = p.os.Release()
		}
	}
	d.mu.Unlock()
	return nil
}

func (d *Driver) startReaperLocked() {
	if d.started || d.closed {
		return
	}
	d.started = true
	d.wg.Add(1)
	go d.reap()
}

// reap polls every instance for exit.
func (d *Driver) reap() {
	defer d.wg.Done()
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		d.mu.Lock()
		changed := false
		for _, p := range d.insts {
			if p.inst.State == driver.StateExited {
				continue
			}
			reason, exited := p.poll()
			if !exited {
				continue
			}
			if p.inst.ExitReason == "" {
				p.inst.ExitReason = reason
			}
			p.inst.State = driver.StateExited
			p.inst.ExitedAt = time.Now()
			close(p.done)
			changed = true
			// Kill what is left of the group.
			d.signal(p, syscall.SIGKILL)
			d.log.Info("instance exited", "id", p.inst.ID, "reason", p.inst.ExitReason)
		}
		if changed {
			d.notifyLocked()
		}
		d.mu.Unlock()
	}
}

// notifyLocked wakes the watchers; callers hold d.mu.
func (d *Driver) notifyLocked() {
	for c := range d.watch {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Watch returns a channel that receives a value after an instance exits or a node
// changes state, until ctx is done.
func (d *Driver) Watch(ctx context.Context) <-chan struct{} {
	c := make(chan struct{}, 1)
	d.mu.Lock()
	d.watch[c] = true
	d.mu.Unlock()
	context.AfterFunc(ctx, func() {
		d.mu.Lock()
		delete(d.watch, c)
		d.mu.Unlock()
	})
	return c
}

// poll reports whether the process exited, and how.
func (p *proc) poll() (string, bool) {
	if p.child {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(p.inst.PID, &ws, syscall.WNOHANG, nil)
		if err != nil {
			if errors.Is(err, syscall.ECHILD) {
				return "gone", true
			}
			return "", false
		}
		if pid == 0 {
			return "", false
		}
		if p.os != nil {
			_ = p.os.Release()
		}
		switch {
		case ws.Exited():
			return fmt.Sprintf("exit status %d", ws.ExitStatus()), true
		case ws.Signaled():
			return "signal: " + ws.Signal().String(), true
		}
		return "exited", true
	}
	if alive(p.inst.PID, p.startTime) {
		return "", false
	}
	return "exited", true
}

// alive reports whether pid runs (not a zombie) and is the process that started at
// startTime (0 skips that check).
func alive(pid int, startTime uint64) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := statFields(b)
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return false
	}
	if startTime != 0 {
		st, _ := strconv.ParseUint(f[19], 10, 64)
		return st == startTime
	}
	return true
}

// statFields returns the fields of /proc/<pid>/stat after the command name: index 0
// is field 3 (state), index 2 is field 5 (pgrp), index 19 is field 22 (starttime).
func statFields(b []byte) []string {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f := statFields(b)
	if len(f) < 20 {
		return 0, errors.New("local: short /proc stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// record is one instance in the state file.
type record struct {
	Instance  driver.Instance `json:"instance"`
	PGID      int             `json:"pgid"`
	StartTime uint64          `json:"startTime"`
	Port      int             `json:"port"`
}

type stateFile struct {
	Marker    string                      `json:"marker"`
	Instances []record                    `json:"instances"`
	Nodes     map[string]driver.NodeState `json:"nodes"`
}

func (d *Driver) saveLocked() {
	if d.cfg.StateFile == "" {
		return
	}
	sf := stateFile{Marker: d.marker, Nodes: map[string]driver.NodeState{}}
	for _, p := range d.insts {
		if p.inst.State == driver.StateExited {
			continue
		}
		sf.Instances = append(sf.Instances, record{Instance: p.inst, PGID: p.pgid, StartTime: p.startTime, Port: p.port})
	}
	slices.SortFunc(sf.Instances, func(a, b record) int { return strings.Compare(a.Instance.ID, b.Instance.ID) })
	for n, node := range d.nodes {
		sf.Nodes[n] = node.State
	}
	b, _ := json.MarshalIndent(sf, "", "  ")
	// A new file of our own (CreateTemp: 0600, O_EXCL), renamed over the old one.
	f, err := os.CreateTemp(filepath.Dir(d.cfg.StateFile), filepath.Base(d.cfg.StateFile)+".*.tmp")
	if err != nil {
		d.log.Error("state file", "err", err)
		return
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), d.cfg.StateFile)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		d.log.Error("state file", "err", err)
	}
}

// Adopt takes over the instances recorded in the state file that still run and
// that this driver can prove it started: the process carries the driver's marker
// in its environment, has the recorded start time, and leads its own process group
// (a record's pid, start time or group that does not match is ignored, and the
// process left alone). It kills every other process that carries the marker (a
// process started but never recorded, or a leftover of a dead instance's group).
// It returns the adopted instances, and an error when the state file is one that
// New would refuse.
func (d *Driver) Adopt(ctx context.Context) ([]driver.Instance, error) {
	if d.cfg.StateFile == "" {
		return nil, nil
	}
	var sf stateFile
	b, err := readPrivate(d.cfg.StateFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("local: adopt: %w", err)
	default:
		if err := json.Unmarshal(b, &sf); err != nil {
			d.log.Warn("state file unreadable, replacing the fleet", "err", err)
			sf = stateFile{}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, driver.ErrClosed
	}
	for n, st := range sf.Nodes {
		if node, ok := d.nodes[n]; ok && st != "" {
			node.State = st
		}
	}
	var adopted []driver.Instance
	keep := map[int]bool{} // pgids we adopted
	for _, r := range sf.Instances {
		if _, known := d.insts[r.Instance.ID]; known || r.Instance.ID == "" {
			continue
		}
		if _, ok := d.nodes[r.Instance.Node]; !ok || r.Port <= 0 || r.Port > 65535 || d.ports[r.Port] {
			continue
		}
		if !owned(r.Instance.PID, r.StartTime, d.marker) {
			if alive(r.Instance.PID, 0) {
				d.log.Warn("state file names a process this driver did not start: left alone", "id", r.Instance.ID, "pid", r.Instance.PID)
			}
			continue
		}
		// Nothing but the pid and the start time is taken on trust from the file,
		// and those only once the process proved itself: the group is the pid
		// (Setpgid), the address is ours.
		p := &proc{inst: r.Instance, pgid: r.Instance.PID, startTime: r.StartTime, port: r.Port, done: make(chan struct{})}
		p.inst.Addr = net.JoinHostPort(d.cfg.Host, strconv.Itoa(r.Port))
		p.inst.Adopted = true
		p.inst.State = driver.StateRunning
		d.insts[p.inst.ID] = p
		d.ports[p.port] = true
		keep[p.pgid] = true
		adopted = append(adopted, p.inst)
		d.log.Info("instance adopted", "id", p.inst.ID, "pid", p.inst.PID, "node", p.inst.Node)
	}
	// Everything else with our marker goes: the process, and its whole group when
	// the group's leader carries the marker too.
	for _, pid := range markedProcesses(d.marker) {
		pgid, err := syscall.Getpgid(pid)
		if err != nil || keep[pgid] {
			continue
		}
		d.log.Warn("killing an orphan of a previous run", "pid", pid, "pgid", pgid)
		if pgid == pid || marked(pgid, d.marker) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	d.startReaperLocked()
	d.saveLocked()
	return adopted, nil
}

// signal sends sig to the instance's process group when its leader is provably
// the instance (marker, start time, group: see owned), and otherwise (the leader
// exited) to each process of the group that carries the marker: a process the
// driver did not start is never signalled, even if it took over the pid.
func (d *Driver) signal(p *proc, sig syscall.Signal) {
	if owned(p.inst.PID, p.startTime, d.marker) {
		_ = syscall.Kill(-p.pgid, sig)
		return
	}
	for _, pid := range markedProcesses(d.marker) {
		if f, ok := stat(pid); ok && f[2] == strconv.Itoa(p.pgid) {
			_ = syscall.Kill(pid, sig)
		}
	}
}

// owned reports whether pid is a live process this driver started: it carries
// MarkerEnv=marker in its environment, started at startTime (non-zero; so the pid
// was not reused) and leads its own process group.
func owned(pid int, startTime uint64, marker string) bool {
	if pid <= 1 || startTime == 0 {
		return false
	}
	f, ok := stat(pid)
	if !ok || f[0] == "Z" || f[0] == "X" || f[2] != strconv.Itoa(pid) || f[19] != strconv.FormatUint(startTime, 10) {
		return false
	}
	return marked(pid, marker)
}

// marked reports whether pid's environment has MarkerEnv=marker.
func marked(pid int, marker string) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	return err == nil && containsEnv(env, []byte(MarkerEnv+"="+marker+"\x00"))
}

// stat returns the fields of /proc/<pid>/stat after the command name (see
// statFields), and whether there are enough of them.
func stat(pid int) ([]string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	f := statFields(b)
	return f, len(f) >= 20
}

// private returns an error unless path (a directory when dir is set, else a
// regular file, not a symbolic link) belongs to this process's user and no one
// else may write it.
func private(path string, dir bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	return privateInfo(path, fi, dir)
}

func privateInfo(path string, fi os.FileInfo, dir bool) error {
	switch {
	case dir && !fi.IsDir():
		return fmt.Errorf("%s: not a directory", path)
	case !dir && !fi.Mode().IsRegular():
		return fmt.Errorf("%s: not a regular file (%s)", path, fi.Mode().Type())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s: owned by uid %d, not by this user (uid %d): refusing it", path, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		if dir {
			return fmt.Errorf("%s: writable by other users (mode %04o): refusing it; keep the state file in a directory only this user may write (0700)", path, fi.Mode().Perm())
		}
		return fmt.Errorf("%s: writable by other users (mode %04o): refusing it; make it 0600", path, fi.Mode().Perm())
	}
	return nil
}

// readPrivate reads the state file, refusing it as New does (checked on the open
// file, so that it cannot be swapped between the check and the read).
func readPrivate(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := privateInfo(path, fi, false); err != nil {
		return nil, err
	}
	if err := private(filepath.Dir(path), true); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, 16<<20))
}

// markedProcesses returns the pids of live processes whose environment has
// MarkerEnv=marker.
func markedProcesses(marker string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte(MarkerEnv + "=" + marker + "\x00")
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !containsEnv(env, want) {
			continue
		}
		if alive(pid, 0) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func containsEnv(env, want []byte) bool {
	for len(env) > 0 {
		i := strings.IndexByte(string(env), 0)
		var kv []byte
		if i < 0 {
			kv, env = env, nil
		} else {
			kv, env = env[:i+1], env[i+1:]
		}
		if string(kv) == string(want) || string(kv)+"\x00" == string(want) {
			return true
		}
	}
	return false
}

// Leftovers returns the pids of live processes started by a driver with this marker
// that no driver tracks any more; tests use it to check that nothing was left
// behind.
func Leftovers(marker string) []int { return markedProcesses(marker) }
