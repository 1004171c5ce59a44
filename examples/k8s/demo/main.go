//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/selfheal-go/selfheal/examples/demo/play"
)

// inside names the environment variable that tells the demo it runs inside the
// cluster's bridge namespace; its value is the pid of the demo outside, in whose
// namespaces cluster.sh runs (it kills and restarts nodes there).
const inside = "SELFHEAL_K8S_DEMO_OUTSIDE"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// demoConfig is what the command line asks for.
type demoConfig struct {
	o            options
	agent, alone bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	interval := fs.Duration("interval", 500*time.Millisecond, "the agent's probe interval (timeout twice that, 3 failures in a row)")
	updateDelay := fs.Duration("update-delay", 2*time.Second, "minReadySeconds: the delay between rolling update batches")
	nodeDeadline := fs.Duration("node-deadline", 60*time.Second, "how long Kubernetes alone is given to run a lost node's pods elsewhere (its toleration is 300 s)")
	rps := fs.Int("rps", 40, "client requests per second through the front door")
	passes := fs.String("passes", "agent,kubernetes", "the passes to play: agent (with the agent), kubernetes (Kubernetes alone), or both")
	steps := fs.String("steps", strings.Join(StepKeys, ","), "the steps to play after the spread, in their order: "+strings.Join(StepKeys, ", "))
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	c := demoConfig{o: options{interval: *interval, updateDelay: *updateDelay, nodeDeadline: *nodeDeadline, rps: *rps},
		agent: strings.Contains(*passes, "agent"), alone: strings.Contains(*passes, "kubernetes")}
	if !c.agent && !c.alone || *rps <= 0 || *interval <= 0 || *updateDelay < time.Second {
		fmt.Fprintln(stderr, "demo: -passes wants agent, kubernetes or both; -rps and -interval positive; -update-delay at least 1s")
		return 2
	}
	if *steps != strings.Join(StepKeys, ",") {
		c.o.steps = map[string]bool{}
		for k := range strings.SplitSeq(*steps, ",") {
			if k = strings.TrimSpace(k); k != "" && !slices.Contains(StepKeys, k) {
				fmt.Fprintf(stderr, "demo: -steps: unknown step %q (the steps: %s)\n", k, strings.Join(StepKeys, ", "))
				return 2
			}
			c.o.steps[k] = true
		}
	}
	stdout = play.SyncWriter(stdout)
	if os.Getenv(inside) != "" {
		start := time.Now()
		agent, alone, err := playPasses(ctx, c, stdout, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "demo:", err)
		}
		failed := printTable(stdout, "", agent, alone)
		fmt.Fprintf(stdout, "\n%d steps, %d failed, %s\n", len(agent)+len(alone), failed, time.Since(start).Round(100*time.Millisecond))
		if err != nil || failed > 0 {
			return 1
		}
		return 0
	}
	if os.Getenv("SELFHEAL_K8S_KUBECONFIG") == "" {
		stop, err := startCluster(ctx, stdout, stderr)
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
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	return runInside(ctx, append([]string{exe}, args...), stdout, stderr)
}

// netnsName is the cluster's bridge namespace, where the apiserver and every pod
// IP are reachable.
func netnsName() string {
	if ns := os.Getenv("SELFHEAL_K8S_NETNS"); ns != "" {
		return filepath.Base(ns)
	}
	return "shk8sbr"
}

// runInside runs self inside the cluster's bridge namespace (ip netns exec) and
// returns its exit code. An interrupt reaches it as SIGINT: it removes its service.
func runInside(ctx context.Context, self []string, stdout, stderr io.Writer) int {
	cmd := exec.Command("ip", append([]string{"netns", "exec", netnsName()}, self...)...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", inside, os.Getpid()))
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err = <-done:
		case <-time.After(2 * time.Minute):
			_ = cmd.Process.Kill()
			err = <-done
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	return 0
}

// startCluster starts the cluster (cluster.sh start) under its lock (its names are
// fixed: a CI run may hold it), sets the environment it prints, and returns the
// function that stops it and checks that nothing is left.
func startCluster(ctx context.Context, stdout, stderr io.Writer) (stop func() error, err error) {
	sh := script()
	lockPath := os.Getenv("SELFHEAL_K8S_LOCK")
	if lockPath == "" {
		lockPath = "/tmp/selfheal-k8s.lock"
	}
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("another run uses the cluster (%s is locked): wait for it, or point the demo at a running cluster with eval \"$(bash %s env)\"", lockPath, sh)
	}
	fmt.Fprintf(stdout, "starting the cluster: bash %s start\n", sh)
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, "bash", sh, "start")
	cmd.Stderr = stderr
	out, err := cmd.Output()
	stop = func() error {
		defer lock.Close()
		t0 := time.Now()
		c := exec.Command("bash", sh, "stop")
		c.Stdout, c.Stderr = stderr, stderr
		if err := c.Run(); err != nil {
			return fmt.Errorf("cluster.sh stop: %w", err)
		}
		if left, err := exec.Command("bash", sh, "leftovers").Output(); err != nil {
			return fmt.Errorf("the cluster left behind: %s", left)
		}
		fmt.Fprintf(stdout, "cluster stopped in %s, nothing left behind\n", time.Since(t0).Round(10*time.Millisecond))
		return nil
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cluster.sh start: %w", err), stop())
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			os.Setenv(k, strings.ReplaceAll(strings.Trim(v, "'"), `\ `, " ")) // bash's %q of plain words
		}
	}
	fmt.Fprintf(stdout, "cluster started in %s\n", time.Since(t0).Round(10*time.Millisecond))
	return stop, nil
}

// playPasses plays the steps with the agent, then with Kubernetes alone (as c
// says), from inside the cluster's bridge namespace.
func playPasses(ctx context.Context, c demoConfig, stdout, stderr io.Writer) (agent, alone []play.Result, err error) {
	o := c.o
	o.kubeconfig = os.Getenv("SELFHEAL_K8S_KUBECONFIG")
	if o.kubeconfig == "" {
		return nil, nil, errors.New("SELFHEAL_K8S_KUBECONFIG is not set")
	}
	o.image = os.Getenv("SELFHEAL_K8S_IMAGE")
	if o.image == "" {
		o.image = "localhost/selfheal-k8s-testsvc:1"
	}
	o.timeline = stdout
	sh, outside := script(), os.Getenv(inside)
	o.cluster = func(ctx context.Context, args ...string) (string, error) {
		argv := append([]string{"--target", outside, "--mount", "--net", "--", "bash", sh}, args...)
		cmd := exec.CommandContext(ctx, "nsenter", argv...)
		cmd.Stderr = stderr
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("cluster.sh %s: %w", strings.Join(args, " "), err)
		}
		return string(out), nil
	}
	if c.agent {
		fmt.Fprintf(stdout, "\n== with the agent: its front door, the driver's node guard (kubelet /healthz every 250 ms) and rollout monitor; probes every %s, %d req/s\n", o.interval, o.rps)
		agent, err = playPass(ctx, o, true)
		if err != nil {
			return agent, nil, fmt.Errorf("the pass with the agent: %w", err)
		}
	}
	if c.alone && ctx.Err() == nil {
		fmt.Fprintf(stdout, "\n== Kubernetes alone: no agent; a front door that routes as a Service does (to the pods Kubernetes reports ready), %d req/s\n", o.rps)
		fmt.Fprintln(stdout, "   the cluster's settings are Kubernetes' defaults: node-monitor-grace-period 50s, node-monitor-period 5s, not-ready/unreachable tolerations 300s; readiness probe every 1s, 3 failures")
		alone, err = playPass(ctx, o, false)
		if err != nil {
			return agent, alone, fmt.Errorf("the pass with Kubernetes alone: %w", err)
		}
	}
	return agent, alone, nil
}

// printTable prints the steps side by side, with the agent and with Kubernetes
// alone, each line after prefix, and returns how many failed.
func printTable(w io.Writer, prefix string, agent, alone []play.Result) int {
	n := max(len(agent), len(alone))
	line := func(format string, args ...any) { fmt.Fprintf(w, prefix+format+"\n", args...) }
	line("")
	line("%-26s | %-44s | %-44s", "", "with the agent", "Kubernetes alone")
	line("%-26s | %7s %7s %28s | %7s %7s %28s", "step", "detect", "heal", "clients ok", "detect", "heal", "clients ok")
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
		line("%-26s | %s | %s", name, cell(agent, i), cell(alone, i))
		for k, rs := range [][]play.Result{agent, alone} {
			if i >= len(rs) {
				continue
			}
			who := []string{"agent", "Kubernetes alone"}[k]
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
	line("")
	for _, s := range notes {
		line("%s", s)
	}
	return failed
}
