package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/selfheal-go/selfheal/examples/demo/play"
)

// runKubernetes plays the classic demonstration on Kubernetes: the command
// examples/k8s/demo, a module of its own (client-go, which this module must not
// import), built with the go command and run as a child with the flags that make
// sense there (kubernetesArgs), this process's standard input and outputs, and its
// exit code. An interrupt reaches it as SIGINT (it removes its service and stops the
// cluster it started); it is killed if it has not exited 3 minutes later.
func runKubernetes(ctx context.Context, fs *flag.FlagSet, stdout, stderr io.Writer) int {
	args, err := kubernetesArgs(fs)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 2
	}
	mod, err := k8sModule()
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "selfheal-k8s-demo-")
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "k8s-demo")
	fmt.Fprintf(stdout, "selfheal demo on Kubernetes: building %s (go build ./demo in %s)\n", filepath.Join(mod, "demo"), mod)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./demo")
	build.Dir, build.Stdout, build.Stderr = mod, stderr, stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(stderr, "demo: building the Kubernetes demo:", err)
		return 1
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(filepath.Dir(mod)) // the repository: the demo finds .ci/k8s/cluster.sh from there
	return runChild(ctx, cmd, os.Stdin, stdout, stderr, 3*time.Minute)
}

// kubernetesArgs are the Kubernetes demo's flags for the ones set on fs:
// -interval, -rps, -update-delay, -passes (agent, kubernetes) and -steps (its step
// names: crash, hang, leak, node, scale, update, rollback). Unset flags keep that
// demo's defaults; -events has no counterpart there and is an error.
func kubernetesArgs(fs *flag.FlagSet) ([]string, error) {
	var args []string
	var err error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "interval", "rps", "update-delay", "passes", "steps":
			args = append(args, "-"+f.Name+"="+f.Value.String())
		case "events":
			err = errors.New("-events: not with -driver kubernetes (the timeline shows the agent's decisions)")
		}
	})
	return args, err
}

// k8sModule returns the directory of the examples/k8s module: under the working
// directory or the nearest directory above it that has examples/k8s/go.mod, else
// next to this file's directory (where `go run` built it from).
func k8sModule() (string, error) {
	var tried []string
	if dir, err := os.Getwd(); err == nil {
		for {
			p := filepath.Join(dir, "examples", "k8s")
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return p, nil
			}
			tried = append(tried, p)
			up := filepath.Dir(dir)
			if up == dir {
				break
			}
			dir = up
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(filepath.Dir(file)), "k8s")
		if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("the examples/k8s module is not in %v: run the demo from the repository", tried)
}

// runChild runs cmd with stdin, stdout and stderr and returns its exit code. When
// ctx ends first, the child gets SIGINT (a kill where there is no SIGINT), and is
// killed if it has not exited within grace. A child that could not start, or was
// killed by a signal, is exit code 1.
func runChild(ctx context.Context, cmd *exec.Cmd, stdin io.Reader, stdout, stderr io.Writer, grace time.Duration) int {
	if _, ok := stderr.(*os.File); !ok {
		stderr = play.SyncWriter(stderr) // written by exec's copier and by us
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
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
		if cmd.Process.Signal(os.Interrupt) != nil {
			_ = cmd.Process.Kill()
		}
		t := time.NewTimer(grace)
		select {
		case err = <-done:
		case <-t.C:
			fmt.Fprintf(stderr, "demo: %s did not exit within %s of the interrupt: killed\n", filepath.Base(cmd.Path), grace)
			_ = cmd.Process.Kill()
			err = <-done
		}
		t.Stop()
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode()
	case err != nil:
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	return 0
}
