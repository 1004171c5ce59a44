//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
	"github.com/selfheal-go/selfheal/examples/demo/play"
)

// labInside names the environment variable that tells the demo it runs inside the
// lab manager's network namespace; its value is the pid of the demo outside, whose
// namespaces lab.sh runs in (it adds and kills hosts there).
const labInside = "SELFHEAL_DEMO_LAB_OUTSIDE"

// labConfig is what -driver swarm-lab plays.
type labConfig struct {
	interval    time.Duration
	updateDelay time.Duration
	rps         int
	events      string
	agent       bool // the pass with the agent
	alone       bool // the pass with Swarm alone
}

// runSwarmLab plays the classic demonstration on the test-host lab. Outside the lab
// (the usual start), it uses the lab SELFHEAL_LAB_MANAGER names, or starts one with
// lab.sh start 3 and stops it at the end, and runs self again inside the manager
// host's network namespace, where the hosts' addresses are reachable; inside, it
// plays the steps.
func runSwarmLab(ctx context.Context, c labConfig, self []string, stdout, stderr io.Writer) int {
	if os.Getenv(labInside) != "" {
		start := time.Now()
		agent, alone, err := labPasses(ctx, c, stdout, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "demo:", err)
		}
		failed := printLabTable(stdout, agent, alone)
		fmt.Fprintf(stdout, "\n%d steps, %d failed, %s\n", len(agent)+len(alone), failed, time.Since(start).Round(100*time.Millisecond))
		if err != nil || failed > 0 {
			return 1
		}
		return 0
	}
	script := labScript()
	if os.Getenv("SELFHEAL_LAB_MANAGER") == "" {
		stop, err := startLab(ctx, script, stdout, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "demo:", err)
			return 1
		}
		defer func() {
			if err := stop(); err != nil {
				fmt.Fprintln(stderr, "demo:", err)
			}
		}()
	}
	return insideLab(ctx, self, stdout, stderr)
}

// insideLab runs self inside the lab manager's network namespace (ip netns exec) and
// returns its exit code. An interrupt reaches it as SIGINT: it removes its service.
func insideLab(ctx context.Context, self []string, stdout, stderr io.Writer) int {
	manager := labManagerHost()
	cmd := exec.Command("ip", append([]string{"netns", "exec", manager}, self...)...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", labInside, os.Getpid()))
	return runChild(ctx, cmd, nil, stdout, stderr, 2*time.Minute)
}

// labScript is $SELFHEAL_LAB_SCRIPT, or .ci/docker/lab.sh in the working directory
// or the nearest directory above it that has one.
func labScript() string {
	if s := os.Getenv("SELFHEAL_LAB_SCRIPT"); s != "" {
		return s
	}
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, ".ci", "docker", "lab.sh")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		up := filepath.Dir(dir)
		if up == dir {
			return filepath.Join(".ci", "docker", "lab.sh")
		}
		dir = up
	}
}

// labManagerHost is the manager host's name: the directory of its engine's socket.
func labManagerHost() string {
	return filepath.Base(filepath.Dir(strings.TrimPrefix(os.Getenv("SELFHEAL_LAB_MANAGER"), "unix://")))
}

// startLab starts a lab of 3 hosts (lab.sh start 3) under the lab's lock (the lab's
// names are fixed: a CI run may hold it), sets the environment it prints, and
// returns the function that stops it and checks that nothing is left.
func startLab(ctx context.Context, script string, stdout, stderr io.Writer) (stop func() error, err error) {
	lockPath := os.Getenv("SELFHEAL_LAB_LOCK")
	if lockPath == "" {
		lockPath = "/tmp/selfheal-lab.lock"
	}
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("another run uses the test-host lab (%s is locked): wait for it, or point the demo at a running lab with eval \"$(bash %s env)\"", lockPath, script)
	}
	fmt.Fprintf(stdout, "starting the test-host lab: bash %s start 3\n", script)
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, "bash", script, "start", "3")
	cmd.Stderr = stderr
	out, err := cmd.Output()
	stop = func() error {
		defer lock.Close()
		t0 := time.Now()
		c := exec.Command("bash", script, "stop")
		c.Stdout, c.Stderr = stderr, stderr
		if err := c.Run(); err != nil {
			return fmt.Errorf("lab.sh stop: %w", err)
		}
		left, err := exec.Command("bash", script, "leftovers").Output()
		if err != nil {
			return fmt.Errorf("the lab left behind: %s", left)
		}
		fmt.Fprintf(stdout, "lab stopped in %s, nothing left behind\n", time.Since(t0).Round(10*time.Millisecond))
		return nil
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("lab.sh start: %w", err), stop())
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if !ok {
			continue
		}
		os.Setenv(k, strings.ReplaceAll(strings.Trim(v, "'"), `\ `, " ")) // bash's %q of plain words

	}
	fmt.Fprintf(stdout, "lab started in %s\n", time.Since(t0).Round(10*time.Millisecond))
	return stop, nil
}

// labPasses plays the lab's steps with the agent, then with Swarm alone (as c says),
// from inside the manager host's namespace.
func labPasses(ctx context.Context, c labConfig, stdout, stderr io.Writer) (agent, alone []play.Result, err error) {
	host := os.Getenv("SELFHEAL_LAB_MANAGER")
	newDriver := func() (*docker.Driver, error) {
		d, err := play.NewLabDocker(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("the lab's manager at %s: %w", host, err)
		}
		return d, nil
	}
	script := labScript()
	outside := os.Getenv(labInside)
	lab := func(ctx context.Context, args ...string) (string, error) {
		argv := append([]string{"--target", outside, "--mount", "--net", "--", "bash", script}, args...)
		cmd := exec.CommandContext(ctx, "nsenter", argv...)
		cmd.Stderr = stderr
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("lab.sh %s: %w", strings.Join(args, " "), err)
		}
		return string(out), nil
	}
	var events io.Writer
	if c.events != "" {
		f, err := os.Create(c.events)
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		events = f
	}
	o := play.LabOptions{Lab: lab, Manager: labManagerHost(), Interval: c.interval, UpdateDelay: c.updateDelay,
		LoadRPS: c.rps, Timeline: stdout, EventLog: events}
	if c.agent {
		dir, err := os.MkdirTemp("", "selfheal-demo-")
		if err != nil {
			return nil, nil, err
		}
		defer os.RemoveAll(dir)
		if o.Driver, err = newDriver(); err != nil {
			return nil, nil, err
		}
		o.Agent, o.Dir = true, dir
		fmt.Fprintf(stdout, "\n== with the agent: its front door, node guard and node pool (min 3 ready nodes); probes every %s, Docker's HEALTHCHECK at least every 2s, %d req/s\n", c.interval, c.rps)
		agent, err = play.PlayLab(ctx, o)
		o.Driver.Close() // the agent's fleet closed it too: closing twice is fine
		if err != nil {
			return agent, nil, fmt.Errorf("the pass with the agent: %w", err)
		}
	}
	if c.alone && ctx.Err() == nil {
		if o.Driver, err = newDriver(); err != nil {
			return agent, nil, err
		}
		o.Agent, o.Dir = false, ""
		fmt.Fprintf(stdout, "\n== Swarm alone: no agent; a front door that routes as Swarm's ingress mesh would (to the tasks Swarm reports running), %d req/s\n", c.rps)
		alone, err = play.PlayLab(ctx, o)
		o.Driver.Close()
		if err != nil {
			return agent, alone, fmt.Errorf("the pass with Swarm alone: %w", err)
		}
	}
	return agent, alone, nil
}

// printLabTable prints the steps side by side, with the agent and with Swarm alone,
// and returns how many failed.
func printLabTable(w io.Writer, agent, alone []play.Result) int {
	n := max(len(agent), len(alone))
	fmt.Fprintf(w, "\n%-28s | %-44s | %-44s\n", "", "with the agent", "Swarm alone")
	fmt.Fprintf(w, "%-28s | %7s %7s %28s | %7s %7s %28s\n", "step", "detect", "heal", "clients ok", "detect", "heal", "clients ok")
	failed := 0
	var notes []string
	cell := func(rs []play.Result, i int) string {
		if i >= len(rs) {
			return fmt.Sprintf("%7s %7s %28s", "", "", "")
		}
		r := rs[i]
		dur := func(d time.Duration) string {
			if d == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1fs", d.Seconds())
		}
		clients := "-"
		if r.Requests > 0 {
			clients = fmt.Sprintf("%d/%d %.2f%%", r.OK, r.Requests, 100*r.SuccessRate())
		}
		return fmt.Sprintf("%7s %7s %28s", dur(r.Detect), dur(r.Heal), clients)
	}
	for i := range n {
		name := ""
		for _, rs := range [][]play.Result{agent, alone} {
			if i < len(rs) {
				name = rs[i].Step
			}
		}
		fmt.Fprintf(w, "%-28s | %s | %s\n", name, cell(agent, i), cell(alone, i))
		for k, rs := range [][]play.Result{agent, alone} {
			if i >= len(rs) {
				continue
			}
			who := []string{"agent", "Swarm alone"}[k]
			r := rs[i]
			if !r.Pass {
				failed++
				notes = append(notes, fmt.Sprintf("  %s, %s: FAILED: %s", r.Step, who, r.Note))
			} else if r.Note != "" {
				notes = append(notes, fmt.Sprintf("  %s, %s: %s", r.Step, who, r.Note))
			}
			if r.Goal != "" {
				met := "met"
				if !r.GoalMet {
					met = "MISSED"
				}
				notes = append(notes, fmt.Sprintf("  %s, %s: goal %s: %s", r.Step, who, r.Goal, met))
			}
		}
	}
	fmt.Fprintln(w)
	for _, s := range notes {
		fmt.Fprintln(w, s)
	}
	return failed
}
