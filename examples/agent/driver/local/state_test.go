package local_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/driver/local"
)

// bystander starts a process the driver did not start (no marker), in its own
// process group, and returns it with its kernel start time.
func bystander(t *testing.T) (*exec.Cmd, uint64) {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
	require.NoError(t, err)
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	st, err := strconv.ParseUint(f[19], 10, 64)
	require.NoError(t, err)
	return cmd, st
}

func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return f[0] != "Z" && f[0] != "X"
}

// forge writes a state file as an attacker would: records naming any pid and group.
func forge(t *testing.T, path string, recs ...map[string]any) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"instances": recs})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

func TestAdoptsOnlyWhatItStarted(t *testing.T) {
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "state.json")
	by, byStart := bystander(t)

	// A record that names an unrelated process, with its true start time.
	forge(t, state, map[string]any{
		"instance":  map[string]any{"ID": "web-1", "Service": "svc", "Node": "n1", "PID": by.Process.Pid, "Addr": "10.0.0.1:22"},
		"pgid":      by.Process.Pid,
		"startTime": byStart,
		"port":      40000,
	})
	d := newDriver(t, local.Config{Nodes: []string{"n1"}, StateFile: state})
	adopted, err := d.Adopt(ctx)
	require.NoError(t, err)
	assert.Empty(t, adopted, "a process the driver did not start is not adopted")
	assert.ErrorIs(t, d.Stop(ctx, "web-1", 10*time.Millisecond), driver.ErrNotFound)
	assert.True(t, running(by.Process.Pid), "the unrelated process lives")
}

func TestSignalsOnlyItsOwnGroup(t *testing.T) {
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "state.json")
	d1, err := local.New(local.Config{Nodes: []string{"n1"}, StateFile: state})
	require.NoError(t, err)
	in, err := d1.Start(ctx, spec("a", "n1", "serve"))
	require.NoError(t, err)
	require.NoError(t, d1.Close())

	// The record of a real instance, with the group of an unrelated process and a
	// foreign address.
	by, _ := bystander(t)
	b, err := os.ReadFile(state)
	require.NoError(t, err)
	var sf map[string]any
	require.NoError(t, json.Unmarshal(b, &sf))
	rec := sf["instances"].([]any)[0].(map[string]any)
	rec["pgid"] = by.Process.Pid
	rec["instance"].(map[string]any)["Addr"] = "10.0.0.1:22"
	forge(t, state, rec)

	d2 := newDriver(t, local.Config{Nodes: []string{"n1"}, StateFile: state})
	adopted, err := d2.Adopt(ctx)
	require.NoError(t, err)
	require.Len(t, adopted, 1, "the real instance is adopted")
	assert.Equal(t, in.Addr, adopted[0].Addr, "at the address the driver gave it, not the file's")
	require.NoError(t, d2.Stop(ctx, "a", time.Second))
	assert.False(t, running(in.PID), "the instance was stopped")
	assert.True(t, running(by.Process.Pid), "the group named by the file was not signalled")
}

func TestStateFileStaysPrivate(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "new", "state")
	state := filepath.Join(dir, "state.json")
	d := newDriver(t, local.Config{StateFile: state})
	_, err := d.Start(ctx, spec("a", "", "serve"))
	require.NoError(t, err)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "a missing directory is created 0700")
	fi, err = os.Stat(state)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// Refused: a state file others may write, in a directory others may write,
	// owned by another user, or a symbolic link.
	open := t.TempDir()
	require.NoError(t, os.Chmod(open, 0o777))
	_, err = local.New(local.Config{StateFile: filepath.Join(open, "state.json")})
	assert.ErrorContains(t, err, "writable by other users (mode 0777)")

	loose := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(loose, []byte("{}"), 0o666))
	require.NoError(t, os.Chmod(loose, 0o666))
	_, err = local.New(local.Config{StateFile: loose})
	assert.ErrorContains(t, err, "writable by other users (mode 0666)")

	link := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.Symlink(state, link))
	_, err = local.New(local.Config{StateFile: link})
	assert.ErrorContains(t, err, "not a regular file")

	if os.Geteuid() == 0 {
		theirs := filepath.Join(t.TempDir(), "state.json")
		require.NoError(t, os.WriteFile(theirs, []byte("{}"), 0o600))
		require.NoError(t, os.Chown(theirs, 65534, 65534))
		_, err = local.New(local.Config{StateFile: theirs})
		assert.ErrorContains(t, err, "owned by uid 65534")
	}

	// Adopt checks again: a file loosened after New is refused.
	require.NoError(t, os.Chmod(state, 0o646))
	_, err = d.Adopt(ctx)
	assert.ErrorContains(t, err, "writable by other users")
	require.NoError(t, os.Chmod(state, 0o600))
}
