package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// childEnv makes the test binary play a child of runChild (see fakeChild).
const childEnv = "SELFHEAL_DEMO_FAKE_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(fakeChild(mode))
	}
	os.Exit(m.Run())
}

// fakeChild is the child process of the runChild tests: "echo" prints its
// arguments and its working directory, copies its standard input to its standard
// error and exits 3; "wait" prints "ready" and exits 130 at SIGINT; "deaf" prints
// "ready" and ignores SIGINT.
func fakeChild(mode string) int {
	switch mode {
	case "echo":
		wd, _ := os.Getwd()
		fmt.Printf("args %q in %s\n", os.Args[1:], wd)
		_, _ = io.Copy(os.Stderr, os.Stdin)
		return 3
	case "wait", "deaf":
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt)
		fmt.Println("ready")
		t := time.NewTimer(30 * time.Second)
		for {
			select {
			case <-c:
				if mode == "wait" {
					fmt.Println("interrupted")
					return 130
				}
			case <-t.C:
				return 0
			}
		}
	}
	return 2
}

func child(t *testing.T, mode string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	return cmd
}

// readyWriter closes ready once "ready" was written.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	once  sync.Once
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), "ready") {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// runChild hands the child its arguments, working directory and standard input,
// and returns its output and exit code.
func TestRunChildExitCodeAndStreams(t *testing.T) {
	dir := t.TempDir()
	cmd := child(t, "echo", "-steps=crash", "-rps=10")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	code := runChild(context.Background(), cmd, strings.NewReader("from stdin\n"), &stdout, &stderr, time.Second)
	assert.Equal(t, 3, code)
	assert.Contains(t, stdout.String(), `args ["-steps=crash" "-rps=10"] in `+dir)
	assert.Equal(t, "from stdin\n", stderr.String())

	var errOut bytes.Buffer
	code = runChild(context.Background(), exec.Command(filepath.Join(dir, "no-such-demo")), nil, io.Discard, &errOut, time.Second)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut.String(), "no-such-demo")
}

// A cancelled context reaches the child as SIGINT; its exit code is returned.
func TestRunChildInterrupt(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT to a child on Windows")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &readyWriter{ready: make(chan struct{})}
	done := make(chan int, 1)
	go func() { done <- runChild(ctx, child(t, "wait"), nil, out, io.Discard, 20*time.Second) }()
	select {
	case <-out.ready:
	case <-time.After(20 * time.Second):
		t.Fatal("the child did not start")
	}
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 130, code)
		assert.Contains(t, out.String(), "interrupted")
	case <-time.After(20 * time.Second):
		t.Fatal("the interrupt did not reach the child")
	}
}

// A child that ignores the interrupt is killed after the grace period.
func TestRunChildKilledAfterGrace(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT to a child on Windows")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &readyWriter{ready: make(chan struct{})}
	var errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- runChild(ctx, child(t, "deaf"), nil, out, &errOut, 300*time.Millisecond) }()
	select {
	case <-out.ready:
	case <-time.After(20 * time.Second):
		t.Fatal("the child did not start")
	}
	t0 := time.Now()
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 1, code)
		assert.Less(t, time.Since(t0), 10*time.Second)
		assert.Contains(t, errOut.String(), "killed")
	case <-time.After(20 * time.Second):
		t.Fatal("the child was not killed")
	}
}

func TestKubernetesArgs(t *testing.T) {
	tests := []struct {
		give    []string
		want    []string
		wantErr string
	}{
		{give: nil, want: nil},
		{give: []string{"-driver", "kubernetes"}, want: nil},
		{give: []string{"-driver", "kubernetes", "-interval", "1s", "-rps", "20", "-update-delay", "3s", "-passes", "agent", "-steps", "crash,hang"},
			want: []string{"-interval=1s", "-passes=agent", "-rps=20", "-steps=crash,hang", "-update-delay=3s"}},
		{give: []string{"-driver", "kubernetes", "-events", "e.jsonl"}, wantErr: "-events"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("demo", flag.ContinueOnError)
			fs.String("driver", "local", "")
			fs.Duration("interval", 0, "")
			fs.Int("rps", 0, "")
			fs.Duration("update-delay", 0, "")
			fs.String("passes", "", "")
			fs.String("steps", "", "")
			fs.String("events", "", "")
			require.NoError(t, fs.Parse(tt.give))
			got, err := kubernetesArgs(fs)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// The examples/k8s module is found from this package's directory, as from the
// repository's root.
func TestK8sModule(t *testing.T) {
	dir, err := k8sModule()
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, "go.mod"))
	assert.FileExists(t, filepath.Join(dir, "demo", "main.go"))
	assert.FileExists(t, filepath.Join(filepath.Dir(filepath.Dir(dir)), ".ci", "k8s", "cluster.sh"))
}

// -driver kubernetes builds and runs the Kubernetes demo: a step it does not know
// is its usage error (exit 2), before any cluster is needed.
func TestKubernetesDriverRunsTheK8sDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Kubernetes demo (client-go)")
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-driver", "kubernetes", "-steps", "crash,nope"}, &stdout, &stderr)
	t.Log(stdout.String(), stderr.String())
	if runtime.GOOS != "linux" {
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr.String(), "Linux only")
		return
	}
	assert.Equal(t, 2, code)
	assert.Contains(t, stdout.String(), "building")
	assert.Contains(t, stderr.String(), `unknown step "nope"`)
}

func TestKubernetesDriverEventsRefused(t *testing.T) {
	var stderr bytes.Buffer
	assert.Equal(t, 2, run(context.Background(), []string{"-driver", "kubernetes", "-events", "x.jsonl"}, io.Discard, &stderr))
	assert.Contains(t, stderr.String(), "-events")
}
