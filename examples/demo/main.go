package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/selfheal-go/selfheal/examples/agent/driver/docker"
	"github.com/selfheal-go/selfheal/examples/demo/play"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	interval := fs.Duration("interval", 250*time.Millisecond, "probe interval")
	events := fs.String("events", "", "also write every agent event as JSON lines to this file")
	only := fs.String("steps", "", "comma-separated substrings of the step names to play (default all)")
	rps := fs.Int("rps", 40, "load generator requests per second through the front door")
	drv := fs.String("driver", "local", "local (processes on virtual nodes), docker (Docker Swarm at $SELFHEAL_DOCKER_HOST), swarm-lab (the classic demonstration on the test-host lab, .ci/docker/lab.sh; needs root) or kubernetes (the classic demonstration on the offline cluster, .ci/k8s/cluster.sh: runs examples/k8s/demo; Linux, needs root)")
	updateDelay := fs.Duration("update-delay", 10*time.Second, "swarm-lab, kubernetes: the delay between rolling update batches (kubernetes: 2s unless set)")
	passes := fs.String("passes", "agent,swarm", "swarm-lab: the passes to play: agent (with the agent), swarm (Swarm alone), or agent,swarm; kubernetes: agent, kubernetes (Kubernetes alone) or both (the default)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	stdout = play.SyncWriter(stdout)
	switch *drv {
	case "kubernetes":
		return runKubernetes(ctx, fs, stdout, stderr)
	case "local":
	case "docker":
		iv := *interval
		if !set(fs, "interval") {
			iv = 500 * time.Millisecond
		}
		return runDocker(ctx, iv, *events, *only, *rps, stdout, stderr)
	case "swarm-lab":
		iv := *interval
		if !set(fs, "interval") {
			iv = time.Second
		}
		c := labConfig{interval: iv, updateDelay: *updateDelay, rps: *rps, events: *events,
			agent: matches("agent", *passes), alone: matches("swarm", *passes)}
		if !c.agent && !c.alone {
			fmt.Fprintf(stderr, "demo: -passes %q: want agent, swarm or both\n", *passes)
			return 2
		}
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(stderr, "demo:", err)
			return 1
		}
		return runSwarmLab(ctx, c, append([]string{exe}, args...), stdout, stderr)
	default:
		fmt.Fprintf(stderr, "demo: -driver %q: want local, docker, swarm-lab or kubernetes\n", *drv)
		return 2
	}

	dir, err := os.MkdirTemp("", "selfheal-demo-")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	fmt.Fprintln(stdout, "selfheal demo: building the demo service")
	bin, err := play.BuildService(ctx, dir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	opt := play.Options{Dir: dir, ServiceBin: bin, Interval: *interval, Timeline: stdout, LoadRPS: *rps}
	if *events != "" {
		f, err := os.Create(*events)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer f.Close()
		opt.EventLog = f
	}
	fmt.Fprintf(stdout, "starting the agent (local driver), 3 replicas over node-1 and node-2, probes every %s, %d req/s through the front door\n", *interval, *rps)
	fleet, err := play.Start(ctx, opt)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "front door http://%s/api/hello, instance logs in %s\n\n", fleet.Door, dir)

	return playSteps(ctx, fleet, play.Steps, *only, start, stdout)
}

// playSteps plays steps on fleet, closes it, prints the table and returns the
// exit code.
func playSteps(ctx context.Context, fleet *play.Fleet, steps []play.Step, only string, start time.Time, stdout io.Writer) int {
	var results []play.Result
	for _, st := range steps {
		if only != "" && !matches(st.Name, only) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		results = append(results, st.Run(ctx, fleet))
		time.Sleep(time.Second) // let the timeline breathe between steps
	}
	closeErr := fleet.Close()

	fmt.Fprintf(stdout, "\n%-26s %10s %10s %10s  %s\n", "step", "detect", "heal", "deadline", "clients (success rate)")
	failed := 0
	for _, r := range results {
		status := "ok"
		if !r.Pass {
			status = "FAILED: " + r.Note
			failed++
		}
		goal := ""
		if r.Goal != "" {
			goal = "goal " + r.Goal + ": met"
			if !r.GoalMet {
				goal = "goal " + r.Goal + ": MISSED"
			}
		}
		fmt.Fprintf(stdout, "%-26s %9.3fs %9.3fs %9.0fs  %5d/%-5d %8.3f%%  %s  %s\n", r.Step, r.Detect.Seconds(), r.Heal.Seconds(),
			r.Deadline.Seconds(), r.OK, r.Requests, 100*r.SuccessRate(), status, goal)
	}
	if closeErr != nil {
		fmt.Fprintln(stdout, "teardown:", closeErr)
		failed++
	}
	fmt.Fprintf(stdout, "\n%d steps, %d failed, %s\n", len(results), failed, time.Since(start).Round(100*time.Millisecond))
	if failed > 0 {
		return 1
	}
	return 0
}

func set(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// runDocker plays the demo on Docker Swarm, at the engine SELFHEAL_DOCKER_HOST
// names (bash .ci/docker/engine.sh start brings a private one up).
func runDocker(ctx context.Context, interval time.Duration, events, only string, rps int, stdout, stderr io.Writer) int {
	host := os.Getenv("SELFHEAL_DOCKER_HOST")
	start := time.Now()
	fmt.Fprintf(stdout, "selfheal demo on Docker Swarm (%s): building the demo service's image %s\n", orDefault(host, "DOCKER_HOST or the default socket"), play.DockerImage)
	d, err := play.NewDocker(ctx, host)
	if errors.Is(err, docker.ErrEngineUnavailable) || errors.Is(err, docker.ErrNotManager) {
		fmt.Fprintf(stderr, `demo: no Docker engine in swarm mode answers at %s:
  %v
Start the project's private engine and point the demo at it, then run the demo again:
  bash .ci/docker/engine.sh start
  eval "$(bash .ci/docker/engine.sh env)"
`, orDefault(host, "the default address"), err)
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "selfheal-demo-")
	if err != nil {
		d.Close()
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	opt := play.DockerOptions{Driver: d, Dir: dir, Interval: interval, Timeline: stdout, LoadRPS: rps}
	if events != "" {
		f, err := os.Create(events)
		if err != nil {
			d.Close()
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer f.Close()
		opt.EventLog = f
	}
	fmt.Fprintf(stdout, "starting the agent (docker driver): service web, 3 replicas as Swarm tasks (host networking, a port per slot), probes and HEALTHCHECK every %s, %d req/s through the front door\n", interval, rps)
	fmt.Fprintln(stdout, "one engine is one node: a real node failure cannot be shown here (the local driver's virtual nodes show it); the node step drains the node and activates it again")
	fleet, err := play.StartDocker(ctx, opt)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "front door http://%s/api/hello\n\n", fleet.Door)
	return playSteps(ctx, fleet, play.DockerSteps, only, start, stdout)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func matches(name, only string) bool {
	for _, s := range strings.Split(only, ",") {
		if s != "" && strings.Contains(name, s) {
			return true
		}
	}
	return false
}
