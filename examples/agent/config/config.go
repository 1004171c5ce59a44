package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid is matched (errors.Is) by every *Error.
var ErrInvalid = errors.New("config: invalid")

// Error is a configuration error at a place in a file.
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int
	Field  string // the path of the field, e.g. services[0].replicas
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is matches ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Duration is a time.Duration written as "250ms", "2s", "1m30s".
type Duration time.Duration

// UnmarshalYAML parses a duration string. A negative duration is an error.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return at(n, "want a duration such as 250ms")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return at(n, "want a duration such as 250ms, not %q", n.Value)
	}
	if v < 0 {
		return at(n, "must not be negative, not %s", n.Value)
	}
	*d = Duration(v)
	return nil
}

// at is an *Error at the position of n; Parse fills in the file and the field.
func at(n *yaml.Node, format string, args ...any) error {
	return &Error{Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)}
}

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Or returns the duration, or def when it is zero.
func (d Duration) Or(def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}

// Bytes is a size written as a number of bytes or with a unit: "256MiB", "1GiB",
// "500MB", "64KiB".
type Bytes int64

var bytesRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B|B)?$`)

// UnmarshalYAML parses a size. A size beyond what an int64 holds, or one that is
// not a whole number of bytes, is an error.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return at(n, "want a size such as 256MiB")
	}
	m := bytesRE.FindStringSubmatch(strings.TrimSpace(n.Value))
	if m == nil {
		return at(n, "want a size such as 256MiB, not %q", n.Value)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	mult := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	v := f * mult
	// 1<<63 is the first float64 an int64 cannot hold.
	if err != nil || v >= 1<<63 {
		return at(n, "%s is too large (at most 8EiB)", n.Value)
	}
	if v != math.Trunc(v) {
		return at(n, "%s is not a whole number of bytes", n.Value)
	}
	*b = Bytes(v)
	return nil
}

// Fleet is the whole file.
type Fleet struct {
	Agent    Agent     `yaml:"agent"`
	Nodes    []string  `yaml:"nodes"`    // virtual nodes of the local driver; empty means [node-1]
	NodePool NodePool  `yaml:"nodePool"` // the node level of a swarm (docker driver)
	Services []Service `yaml:"services"` // required: at least one
}

// Agent is the agent's own settings.
type Agent struct {
	Driver string `yaml:"driver"` // "local" (default), "docker" or "kubernetes" (examples/k8s/agent)
	Listen string `yaml:"listen"` // status endpoint address; "" means 127.0.0.1:7070, "off" means none
	// TokenFile holds the token that the control API requires (Authorization:
	// Bearer <token>); required when Listen is not a loopback address, "" means
	// no token (the API then answers loopback callers only).
	TokenFile string `yaml:"tokenFile"`
	// Hosts are the host names or addresses (without port) the status page and
	// the control API answer to besides localhost, the loopback addresses and
	// Listen's host (unless it is 0.0.0.0 or ::): list the names the agent is
	// reached by. A request naming any other Host is refused (DNS rebinding). nil
	// means none.
	Hosts     []string `yaml:"hosts"`
	EventLog  string   `yaml:"eventLog"`  // JSON-lines event log file; "" means stderr only
	StateFile string   `yaml:"stateFile"` // the local driver's state file for adoption; "" means none
	LogDir    string   `yaml:"logDir"`    // instance output files (local driver); "" means discarded
	DryRun    bool     `yaml:"dryRun"`    // decide and log, but act on nothing
	// Budget bounds disruptive actions (stopping a live instance: replacing a hung
	// or leaking one, draining, scaling in) per window.
	Budget struct {
		Max    int      `yaml:"max"`    // 0 means 3
		Window Duration `yaml:"window"` // 0 means 1m
	} `yaml:"budget"`
	// BrokenFraction: when more than this fraction of a service's instances look
	// broken by their probes at once (at least 2), the agent holds still; 0 means 0.5.
	BrokenFraction float64 `yaml:"brokenFraction"`
}

// Service declares one service.
type Service struct {
	Name    string   `yaml:"name"`    // required; lowercase letters, digits and dashes
	Version string   `yaml:"version"` // the version to run; "" means "v1"
	Command []string `yaml:"command"` // argv (local driver; required there); placeholders {port} {id} {version} {node} {service}
	Image   string   `yaml:"image"`   // image (docker and kubernetes drivers; required there); may use {version}
	Env     []string `yaml:"env"`     // KEY=value

	Replicas    int `yaml:"replicas"`    // 0 means minReplicas
	MinReplicas int `yaml:"minReplicas"` // 0 means 1
	MaxReplicas int `yaml:"maxReplicas"` // 0 means max(10, replicas)

	FrontDoor string   `yaml:"frontDoor"` // address of this service's front door; "" means none
	BasePort  int      `yaml:"basePort"`  // port of replica slot 1 (docker driver); 0 means 18080
	StopGrace Duration `yaml:"stopGrace"` // SIGTERM to SIGKILL; 0 means 5s

	Health  Health  `yaml:"health"`
	Restart Restart `yaml:"restart"`
	Scale   Scale   `yaml:"scale"`
	Update  Update  `yaml:"update"`
	Limits  Limits  `yaml:"limits"`
	// Outliers is outlier detection (on unless off is set).
	Outliers Outliers `yaml:"outliers"`
}

// Health is how the agent probes instances. A probe gets the health document
// first; when it carries the probes' verdicts (health.ProbesHeader: a selfheal
// health registry sends them) that one request is the whole probe, otherwise the
// Liveness and then the Readiness path are asked too.
type Health struct {
	Liveness         string   `yaml:"liveness"`         // "" means /livez
	Readiness        string   `yaml:"readiness"`        // "" means /readyz
	Document         string   `yaml:"document"`         // "" means /health
	Interval         Duration `yaml:"interval"`         // 0 means 1s
	Timeout          Duration `yaml:"timeout"`          // 0 means the interval
	FailureThreshold int      `yaml:"failureThreshold"` // 0 means 3
	SuccessThreshold int      `yaml:"successThreshold"` // 0 means 1
	StartupGrace     Duration `yaml:"startupGrace"`     // 0 means 10s
	MinUnhealthy     Duration `yaml:"minUnhealthy"`     // 0 means none
	// NotReadyTimeout: an instance whose readiness fails while its liveness
	// passes leaves the front door's rotation at once, and is replaced (surge
	// first) when it is still not ready after this long; 0 means 30s.
	NotReadyTimeout Duration `yaml:"notReadyTimeout"`
	// GRPC, when set, probes liveness and readiness through grpc.health.v1 instead
	// of the HTTP paths; see GRPCProbe.
	GRPC *GRPCProbe `yaml:"grpc"`
}

// Restart spaces restarts and detects crash loops.
type Restart struct {
	Initial           Duration `yaml:"initial"`           // 0 means 200ms
	Max               Duration `yaml:"max"`               // 0 means 10s
	Jitter            float64  `yaml:"jitter"`            // 0 means 0.2
	CrashLoopRestarts int      `yaml:"crashLoopRestarts"` // 0 means 5
	CrashLoopWindow   Duration `yaml:"crashLoopWindow"`   // 0 means 1m
}

// Scale is when to scale out and in. Without a latency or utilization target the
// service does not autoscale.
type Scale struct {
	LatencyTarget     Duration `yaml:"latencyTarget"`     // p99 target; 0 means no latency scaling
	UtilizationTarget float64  `yaml:"utilizationTarget"` // in-flight/limit target in percent; 0 means none
	Tolerance         float64  `yaml:"tolerance"`         // 0 means 0.1
	UpWindow          Duration `yaml:"upWindow"`          // 0 means 0 (at once)
	DownWindow        Duration `yaml:"downWindow"`        // 0 means 30s
	MaxStep           int      `yaml:"maxStep"`           // 0 means no limit
}

// Update is the rolling update policy.
type Update struct {
	Parallelism     int      `yaml:"parallelism"`     // 0 means 1
	Delay           Duration `yaml:"delay"`           // between batches; 0 means none
	Monitor         Duration `yaml:"monitor"`         // each new instance must stay healthy this long; 0 means 5s
	FailureAction   string   `yaml:"failureAction"`   // rollback (default), pause or continue
	MaxFailureRatio float64  `yaml:"maxFailureRatio"` // 0 means none may fail
	StartTimeout    Duration `yaml:"startTimeout"`    // a new instance must be ready within; 0 means startupGrace
}

// Limits are what the preventive healing watches.
type Limits struct {
	Heap       Bytes    `yaml:"heap"`       // heap limit; 0 means not watched
	Goroutines int      `yaml:"goroutines"` // goroutine limit; 0 means not watched
	Horizon    Duration `yaml:"horizon"`    // replace when a limit is reached within; 0 means 10s
}

// Outliers is outlier detection, as Envoy does it: an instance whose latency or
// error rate through the front door stands far from its peers' (over at least
// minRequests requests in the window) is ejected from the front door for
// baseEjection times the number of its ejections, and replaced (surge first) at its
// replaceAfter-th ejection. Never more than maxEjected of the fleet is ejected at
// once (at least one instance of a fleet of 3 or more). It needs a front door.
type Outliers struct {
	Off           bool     `yaml:"off"`           // true turns it off
	MinRequests   int      `yaml:"minRequests"`   // 0 means 20
	Window        Duration `yaml:"window"`        // the traffic judged; 0 means 10s
	LatencyFactor float64  `yaml:"latencyFactor"` // slow: mean latency this many times the peers' median; 0 means 3
	MinLatencyGap Duration `yaml:"minLatencyGap"` // ... and at least this much above it; 0 means 50ms
	ErrorRateGap  float64  `yaml:"errorRateGap"`  // failing: error rate this much above the peers' median; 0 means 0.3
	BaseEjection  Duration `yaml:"baseEjection"`  // 0 means 30s
	MaxEjected    float64  `yaml:"maxEjected"`    // share of the fleet; 0 means 1/3
	ReplaceAfter  int      `yaml:"replaceAfter"`  // replaced at this ejection; 0 means 2
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// Load reads and checks the fleet file at path.
func Load(path string) (*Fleet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// lineRE finds yaml.v3's "line N:" prefixes.
var lineRE = regexp.MustCompile(`line (\d+): (.*)`)

// Parse checks the fleet file data read from file (used in messages), fills in the
// defaults, and returns it. Every error is an *Error.
func Parse(file string, data []byte) (*Fleet, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, &root, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, &Error{File: file, Msg: "empty file: want agent, nodes and services"}
	}
	var f Fleet
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, yamlError(file, &root, err)
	}
	if err := strict(&root, reflect.TypeFor[Fleet](), ""); err != nil {
		err.(*Error).File = file
		return nil, err
	}
	if err := f.check(); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = file
			e.Line, e.Column = locate(&root, e.Field)
			return nil, e
		}
		return nil, err
	}
	f.fill()
	return &f, nil
}

func yamlError(file string, root *yaml.Node, err error) error {
	var e *Error
	if errors.As(err, &e) { // from an UnmarshalYAML of this package: it knows the node
		e.File = file
		e.Field, _ = fieldAt(root, e.Line, e.Column, false)
		return e
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimSpace(strings.SplitN(msg, "\n", 2)[0])
	e = &Error{File: file, Msg: msg}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
		fm := unknownRE.FindStringSubmatch(e.Msg)
		if fm != nil {
			e.Msg = "unknown field " + strconv.Quote(fm[1])
		}
		var n *yaml.Node
		e.Field, n = fieldAt(root, e.Line, 0, fm != nil)
		if n != nil {
			e.Column = n.Column
		}
	}
	return e
}

var unknownRE = regexp.MustCompile(`^field (\S+) not found in type`)

// fieldAt returns the path of the first key or scalar value at line (and column,
// when col > 0), and that node: the value when it is a scalar on that line (unless
// key is set), else the key.
func fieldAt(root *yaml.Node, line, col int, key bool) (string, *yaml.Node) {
	var found string
	var node *yaml.Node
	is := func(n *yaml.Node) bool { return n.Line == line && (col <= 0 || n.Column == col) }
	var walk func(n *yaml.Node, path string) bool
	walk = func(n *yaml.Node, path string) bool {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if walk(c, path) {
					return true
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := join(path, k.Value)
				if v.Kind == yaml.ScalarNode && is(v) && !(key && is(k)) {
					found, node = p, v
					return true
				}
				if is(k) {
					found, node = p, k
					return true
				}
				if walk(v, p) {
					return true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if c.Kind == yaml.ScalarNode && is(c) {
					found, node = p, c
					return true
				}
				if walk(c, p) {
					return true
				}
			}
		}
		return false
	}
	walk(root, "")
	return found, node
}

// strict rejects what the YAML decoder accepts but the fleet file must not: a
// fraction in a whole-number field (the decoder truncates replicas: 2.5 to 2) and a
// number that is not finite (.nan, .inf) in any numeric field. It runs after a
// successful decode, so the node tree's aliases are within the decoder's limits.
func strict(n *yaml.Node, t reflect.Type, path string) error {
	use := n // where the value is written: an alias, not its anchor
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			if err := strict(c, t, path); err != nil {
				return err
			}
		}
		return nil
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
		return nil // it checks its own values
	}
	bad := func(format string, args ...any) error {
		return &Error{Line: use.Line, Column: use.Column, Field: path, Msg: fmt.Sprintf(format, args...)}
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			for j := range t.NumField() {
				if f := t.Field(j); strings.Split(f.Tag.Get("yaml"), ",")[0] == k {
					if err := strict(n.Content[i+1], f.Type, join(path, k)); err != nil {
						return err
					}
				}
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, c := range n.Content {
			if err := strict(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Int, reflect.Int64:
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" {
			return bad("want a whole number, not %s", n.Value)
		}
	case reflect.Float64:
		if n.Kind == yaml.ScalarNode {
			var v float64
			if err := n.Decode(&v); err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
				return bad("want a finite number, not %s", n.Value)
			}
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var pathRE = regexp.MustCompile(`([^.\[\]]+)|\[(\d+)\]`)

// locate returns the line and column of the field at path (the deepest existing
// part of it).
func locate(root *yaml.Node, path string) (int, int) {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line, col := n.Line, n.Column
	for _, m := range pathRE.FindAllStringSubmatch(path, -1) {
		var next *yaml.Node
		switch {
		case m[1] != "" && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == m[1] {
					next = n.Content[i+1]
				}
			}
		case m[2] != "" && n.Kind == yaml.SequenceNode:
			i, _ := strconv.Atoi(m[2])
			if i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			break
		}
		n, line, col = next, next.Line, next.Column
	}
	return line, col
}

func bad(field, format string, args ...any) error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (f *Fleet) check() error {
	switch f.Agent.Driver {
	case "", "local", "docker", "kubernetes":
	default:
		return bad("agent.driver", "must be local, docker or kubernetes, not %q", f.Agent.Driver)
	}
	if a := f.Agent.Listen; a != "" && a != "off" {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return bad("agent.listen", "want host:port, not %q", a)
		}
		if !Loopback(host) && f.Agent.TokenFile == "" {
			return bad("agent.listen", "%s is not a loopback address: set agent.tokenFile, so that the control API takes commands only with the token", a)
		}
	}
	for i, h := range f.Agent.Hosts {
		if h == "" || strings.ContainsAny(h, ":/ []") {
			return bad(fmt.Sprintf("agent.hosts[%d]", i), "want a host name without port, not %q", h)
		}
	}
	if f.Agent.Budget.Max < 0 {
		return bad("agent.budget.max", "must not be negative")
	}
	if b := f.Agent.BrokenFraction; b < 0 || b >= 1 {
		return bad("agent.brokenFraction", "must be in [0, 1), not %v", b)
	}
	if err := f.NodePool.check(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, n := range f.Nodes {
		field := fmt.Sprintf("nodes[%d]", i)
		if !nameRE.MatchString(n) {
			return bad(field, "node name %q: use lowercase letters, digits and dashes", n)
		}
		if seen[n] {
			return bad(field, "duplicate node %q", n)
		}
		seen[n] = true
	}
	if len(f.Services) == 0 {
		return bad("services", "at least one service is required")
	}
	names := map[string]bool{}
	doors := map[string]string{}
	for i := range f.Services {
		s := &f.Services[i]
		p := fmt.Sprintf("services[%d]", i)
		switch {
		case s.Name == "":
			return bad(p+".name", "required")
		case !nameRE.MatchString(s.Name):
			return bad(p+".name", "%q: use lowercase letters, digits and dashes", s.Name)
		case names[s.Name]:
			return bad(p+".name", "duplicate service %q", s.Name)
		}
		names[s.Name] = true
		if f.Agent.Driver == "docker" || f.Agent.Driver == "kubernetes" {
			if s.Image == "" {
				return bad(p+".image", "required with the %s driver", f.Agent.Driver)
			}
		} else if len(s.Command) == 0 {
			return bad(p+".command", "required with the local driver")
		}
		if s.Replicas < 0 {
			return bad(p+".replicas", "must not be negative")
		}
		if s.MinReplicas < 0 {
			return bad(p+".minReplicas", "must not be negative")
		}
		if s.MaxReplicas < 0 {
			return bad(p+".maxReplicas", "must not be negative")
		}
		if s.MaxReplicas > 0 && s.MinReplicas > s.MaxReplicas {
			return bad(p+".minReplicas", "%d is above maxReplicas %d", s.MinReplicas, s.MaxReplicas)
		}
		if s.MaxReplicas > 0 && s.Replicas > s.MaxReplicas {
			return bad(p+".replicas", "%d is above maxReplicas %d", s.Replicas, s.MaxReplicas)
		}
		if s.FrontDoor != "" {
			if _, _, err := net.SplitHostPort(s.FrontDoor); err != nil {
				return bad(p+".frontDoor", "want host:port, not %q", s.FrontDoor)
			}
			if other, dup := doors[s.FrontDoor]; dup {
				return bad(p+".frontDoor", "%s is already the front door of %s", s.FrontDoor, other)
			}
			doors[s.FrontDoor] = s.Name
		}
		if s.BasePort < 0 || s.BasePort > 65535 {
			return bad(p+".basePort", "not a port: %d", s.BasePort)
		}
		for j, e := range s.Env {
			if !strings.Contains(e, "=") {
				return bad(fmt.Sprintf("%s.env[%d]", p, j), "want KEY=value, not %q", e)
			}
		}
		h := s.Health
		for _, c := range []struct {
			f string
			v string
		}{{"liveness", h.Liveness}, {"readiness", h.Readiness}, {"document", h.Document}} {
			if c.v != "" && !strings.HasPrefix(c.v, "/") {
				return bad(p+".health."+c.f, "a path starting with /, not %q", c.v)
			}
		}
		if h.Interval != 0 && h.Interval.D() < 10*time.Millisecond {
			return bad(p+".health.interval", "at least 10ms, not %s", h.Interval.D())
		}
		if h.FailureThreshold < 0 {
			return bad(p+".health.failureThreshold", "must not be negative")
		}
		if h.SuccessThreshold < 0 {
			return bad(p+".health.successThreshold", "must not be negative")
		}
		if s.Restart.CrashLoopRestarts < 0 {
			return bad(p+".restart.crashLoopRestarts", "must not be negative")
		}
		if s.Scale.MaxStep < 0 {
			return bad(p+".scale.maxStep", "must not be negative")
		}
		if r := s.Restart.Jitter; r < 0 || r > 1 {
			return bad(p+".restart.jitter", "must be in [0, 1], not %v", r)
		}
		if t := s.Scale.Tolerance; t < 0 || t >= 1 {
			return bad(p+".scale.tolerance", "must be in [0, 1), not %v", t)
		}
		if u := s.Scale.UtilizationTarget; u < 0 || u > 100 {
			return bad(p+".scale.utilizationTarget", "a percentage in (0, 100], not %v", u)
		}
		if s.Update.Parallelism < 0 {
			return bad(p+".update.parallelism", "must not be negative")
		}
		switch s.Update.FailureAction {
		case "", "rollback", "pause", "continue":
		default:
			return bad(p+".update.failureAction", "must be rollback, pause or continue, not %q", s.Update.FailureAction)
		}
		if r := s.Update.MaxFailureRatio; r < 0 || r > 1 {
			return bad(p+".update.maxFailureRatio", "must be in [0, 1], not %v", r)
		}
		if s.Limits.Heap < 0 {
			return bad(p+".limits.heap", "must not be negative")
		}
		if s.Limits.Goroutines < 0 {
			return bad(p+".limits.goroutines", "must not be negative")
		}
		if o := s.Outliers; o.MinRequests < 0 {
			return bad(p+".outliers.minRequests", "must not be negative")
		} else if o.ReplaceAfter < 0 {
			return bad(p+".outliers.replaceAfter", "must not be negative")
		} else if o.LatencyFactor != 0 && o.LatencyFactor <= 1 {
			return bad(p+".outliers.latencyFactor", "must be above 1, not %v", o.LatencyFactor)
		} else if o.ErrorRateGap < 0 || o.ErrorRateGap > 1 {
			return bad(p+".outliers.errorRateGap", "must be in [0, 1], not %v", o.ErrorRateGap)
		} else if o.MaxEjected < 0 || o.MaxEjected > 1 {
			return bad(p+".outliers.maxEjected", "must be in [0, 1], not %v", o.MaxEjected)
		}
	}
	return nil
}

// fill sets the documented defaults.
func (f *Fleet) fill() {
	if f.Agent.Driver == "" {
		f.Agent.Driver = "local"
	}
	if f.Agent.Listen == "" {
		f.Agent.Listen = "127.0.0.1:7070"
	}
	if len(f.Nodes) == 0 {
		f.Nodes = []string{"node-1"}
	}
	for i := range f.Services {
		s := &f.Services[i]
		if s.Version == "" {
			s.Version = "v1"
		}
		if s.MinReplicas == 0 {
			s.MinReplicas = 1
		}
		if s.Replicas == 0 {
			s.Replicas = s.MinReplicas
		}
		if s.MaxReplicas == 0 {
			s.MaxReplicas = max(10, s.Replicas)
		}
		s.MinReplicas = min(s.MinReplicas, s.Replicas)
		if s.BasePort == 0 {
			s.BasePort = 18080
		}
		h := &s.Health
		if h.Liveness == "" {
			h.Liveness = "/livez"
		}
		if h.Readiness == "" {
			h.Readiness = "/readyz"
		}
		if h.Document == "" {
			h.Document = "/health"
		}
		if h.Interval == 0 {
			h.Interval = Duration(time.Second)
		}
		if h.Timeout == 0 {
			h.Timeout = h.Interval
		}
		if h.StartupGrace == 0 {
			h.StartupGrace = Duration(10 * time.Second)
		}
		if h.NotReadyTimeout == 0 {
			h.NotReadyTimeout = Duration(30 * time.Second)
		}
		if s.Update.Parallelism == 0 {
			s.Update.Parallelism = 1
		}
		if s.Update.Monitor == 0 {
			s.Update.Monitor = Duration(5 * time.Second)
		}
		if s.Update.FailureAction == "" {
			s.Update.FailureAction = "rollback"
		}
		if s.Update.StartTimeout == 0 {
			s.Update.StartTimeout = h.StartupGrace
		}
		if s.StopGrace == 0 {
			s.StopGrace = Duration(5 * time.Second)
		}
		if s.Limits.Horizon == 0 {
			s.Limits.Horizon = Duration(10 * time.Second)
		}
		if s.Outliers.Window == 0 {
			s.Outliers.Window = Duration(10 * time.Second)
		}
	}
}

// Loopback reports whether host (a name or an address, without port) is the
// loopback interface: localhost or a loopback IP. The empty host (every
// interface) is not.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Service returns the service named name, or nil.
func (f *Fleet) Service(name string) *Service {
	for i := range f.Services {
		if f.Services[i].Name == name {
			return &f.Services[i]
		}
	}
	return nil
}
