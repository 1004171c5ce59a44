// Command demo plays selfheal's classic self-healing demo on this machine: it
// builds the demo service, starts the agent with the local driver (3 replicas over
// 2 virtual nodes) and a load generator through the agent's front door, then:
// a replica crashes and is restarted; a replica hangs and is replaced; a node fails
// and its replicas are rescheduled; latency is injected and the service scales out,
// then back in when relieved; latency creeps up and the service scales out early, on
// the trend, before it crosses its target; the service is scaled to 12; a new version rolls out
// 3 at a time with a delay; a bad version is rolled back; a replica that leaks
// memory is replaced before it dies.
//
// It prints the timeline as it goes, then per step the time to detect, the time to
// heal and the clients' success rate, and exits 1 if any step missed its deadline.
//
//	go run ./examples/demo [-interval 250ms] [-rps 40] [-events events.jsonl] [-steps crash,hang]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/selfheal-go/selfheal/examples/demo/play"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
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
	if err := fs.Parse(args); err != nil {
		return 2
	}
	stdout = play.SyncWriter(stdout)

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

	var results []play.Result
	for _, st := range play.Steps {
		if *only != "" && !matches(st.Name, *only) {
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

func matches(name, only string) bool {
	for _, s := range strings.Split(only, ",") {
		if s != "" && strings.Contains(name, s) {
			return true
		}
	}
	return false
}
