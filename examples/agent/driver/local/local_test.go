package local_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
)

// The test binary doubles as the instance program: with LOCAL_HELPER set it runs one
// of the behaviours below instead of the tests.
func TestMain(m *testing.M) {
	switch os.Getenv("LOCAL_HELPER") {
	case "":
		goleak.VerifyTestMain(m)
	case "serve":
		srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, os.Getenv("INSTANCE_ID"))
		})}
		go func() {
			c := make(chan os.Signal, 1)
			signal.Notify(c, syscall.SIGTERM)
			<-c
			srv.Close()
		}()
		_ = srv.ListenAndServe()
		os.Exit(0)
	case "crash":
		time.Sleep(50 * time.Millisecond)
		os.Exit(3)
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		if os.Getenv("LOCAL_GRANDCHILD") == "" {
			// A grandchild in the same process group, also deaf to SIGTERM.
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "LOCAL_GRANDCHILD=1")
			_ = cmd.Start()
		}
		time.Sleep(time.Hour)
	}
}

func newDriver(t *testing.T, cfg local.Config) *local.Driver {
	t.Helper()
	d, err := local.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		insts, _ := d.Instances(context.Background(), "")
		for _, in := range insts {
			_ = d.Stop(context.Background(), in.ID, 100*time.Millisecond)
		}
		require.NoError(t, d.Close())
		assertNoLeftovers(t, d.Marker())
	})
	return d
}

func assertNoLeftovers(t *testing.T, marker string) {
	t.Helper()
	require.Eventually(t, func() bool { return len(local.Leftovers(marker)) == 0 }, 5*time.Second, 20*time.Millisecond,
		"processes left behind: %v", local.Leftovers(marker))
}

func spec(id, node, mode string) driver.InstanceSpec {
	return driver.InstanceSpec{Service: "svc", ID: id, Version: "v1", Node: node,
		Command: []string{os.Args[0], "-test.run=^$"}, Env: []string{"LOCAL_HELPER=" + mode}}
}

func waitState(t *testing.T, d *local.Driver, id string, want driver.State) driver.Instance {
	t.Helper()
	var got driver.Instance
	require.Eventually(t, func() bool {
		insts, _ := d.Instances(context.Background(), "svc")
		for _, in := range insts {
			if in.ID == id {
				got = in
				return in.State == want
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	return got
}

func get(t *testing.T, addr string) (string, error) {
	t.Helper()
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b := make([]byte, 64)
	n, _ := resp.Body.Read(b)
	return string(b[:n]), nil
}

func TestStartServeStop(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, local.Config{Nodes: []string{"n1", "n2"}})
	in, err := d.Start(ctx, spec("a", "n2", "serve"))
	require.NoError(t, err)
	assert.Equal(t, "n2", in.Node)
	assert.Equal(t, driver.StateRunning, in.State)
	var body string
	require.Eventually(t, func() bool { body, err = get(t, in.Addr); return err == nil }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "a", body)

	require.NoError(t, d.Stop(ctx, "a", time.Second))
	insts, _ := d.Instances(ctx, "")
	assert.Empty(t, insts)
	assert.ErrorIs(t, d.Stop(ctx, "a", 0), driver.ErrNotFound)
}

func TestCrashIsReported(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, local.Config{})
	_, err := d.Start(ctx, spec("c", "", "crash"))
	require.NoError(t, err)
	in := waitState(t, d, "c", driver.StateExited)
	assert.Equal(t, "exit status 3", in.ExitReason)
	assert.False(t, in.ExitedAt.IsZero())
	require.NoError(t, d.Stop(ctx, "c", 0)) // forgets it
}

func TestStopKillsTheWholeGroup(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, local.Config{})
	_, err := d.Start(ctx, spec("s", "", "stubborn"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(local.Leftovers(d.Marker())) == 2 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, d.Stop(ctx, "s", 200*time.Millisecond))
	assertNoLeftovers(t, d.Marker())
}

func TestNodeDownKillsAndRefuses(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, local.Config{Nodes: []string{"n1", "n2"}})
	for _, id := range []string{"a", "b"} {
		_, err := d.Start(ctx, spec(id, "n1", "serve"))
		require.NoError(t, err)
	}
	_, err := d.Start(ctx, spec("c", "n2", "serve"))
	require.NoError(t, err)

	require.NoError(t, d.SetNodeState(ctx, "n1", driver.NodeDown, "test"))
	a := waitState(t, d, "a", driver.StateExited)
	assert.Equal(t, "node down", a.ExitReason)
	waitState(t, d, "b", driver.StateExited)
	waitState(t, d, "c", driver.StateRunning)

	_, err = d.Start(ctx, spec("d", "n1", "serve"))
	assert.ErrorIs(t, err, driver.ErrNodeUnavailable)
	nodes, _ := d.Nodes(ctx)
	assert.Equal(t, []driver.Node{{Name: "n1", State: driver.NodeDown, Reason: "test"}, {Name: "n2", State: driver.NodeReady}}, nodes)

	require.NoError(t, d.SetNodeState(ctx, "n1", driver.NodeReady, ""))
	_, err = d.Start(ctx, spec("d", "n1", "serve"))
	require.NoError(t, err)
	assert.ErrorIs(t, d.SetNodeState(ctx, "n9", driver.NodeDown, ""), driver.ErrNotFound)
}

func TestAdoptAfterAgentRestart(t *testing.T) {
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "state.json")
	d1, err := local.New(local.Config{Nodes: []string{"n1", "n2"}, StateFile: state})
	require.NoError(t, err)
	a, err := d1.Start(ctx, spec("a", "n1", "serve"))
	require.NoError(t, err)
	_, err = d1.Start(ctx, spec("b", "n2", "serve"))
	require.NoError(t, err)
	require.NoError(t, d1.Close()) // the agent goes away; its instances stay

	// An orphan: a process of ours that the state file does not know.
	orphan := exec.Command(os.Args[0], "-test.run=^$")
	orphan.Env = append(os.Environ(), "LOCAL_HELPER=stubborn", local.MarkerEnv+"="+d1.Marker())
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, orphan.Start())
	t.Cleanup(func() { _ = orphan.Wait() })

	d2 := newDriver(t, local.Config{Nodes: []string{"n1", "n2"}, StateFile: state})
	require.Equal(t, d1.Marker(), d2.Marker())
	adopted, err := d2.Adopt(ctx)
	require.NoError(t, err)
	require.Len(t, adopted, 2)
	assert.True(t, adopted[0].Adopted)
	assert.Equal(t, a.PID, adopted[0].PID)

	// The orphan (and its grandchild) are gone; the adopted instances serve.
	require.Eventually(t, func() bool { return len(local.Leftovers(d2.Marker())) == 2 }, 10*time.Second, 20*time.Millisecond)
	var body string
	require.Eventually(t, func() bool { body, err = get(t, a.Addr); return err == nil }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "a", body)

	// An adopted instance that dies is noticed without wait4.
	require.NoError(t, syscall.Kill(a.PID, syscall.SIGKILL))
	waitState(t, d2, "a", driver.StateExited)
}

func TestConfigErrors(t *testing.T) {
	_, err := local.New(local.Config{Nodes: []string{"a", "a"}})
	assert.ErrorContains(t, err, "duplicate node")
	d := newDriver(t, local.Config{})
	_, err = d.Start(context.Background(), driver.InstanceSpec{ID: "x"})
	assert.ErrorContains(t, err, "Command")
}

func ExampleDriver() {
	d, _ := local.New(local.Config{Nodes: []string{"node-1", "node-2"}})
	defer d.Close()
	nodes, _ := d.Nodes(context.Background())
	for _, n := range nodes {
		fmt.Println(n.Name, n.State)
	}
	// Output:
	// node-1 ready
	// node-2 ready
}

func TestWatchReportsExits(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := newDriver(t, local.Config{})
	c := d.Watch(ctx)
	_, err := d.Start(ctx, spec("c", "", "crash"))
	require.NoError(t, err)
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification of the exit")
	}
	require.NoError(t, d.SetNodeState(ctx, "node-1", driver.NodeDegraded, ""))
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification of the node change")
	}
}
