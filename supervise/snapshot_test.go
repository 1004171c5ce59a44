package supervise_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/supervise"
)

func TestSnapshotOfNestedTree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, err := supervise.New(supervise.Config{Name: "root"})
		require.NoError(t, err)
		db, err := supervise.New(supervise.Config{Name: "db", Strategy: supervise.RestForOne})
		require.NoError(t, err)
		_, err = db.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "pool"})
		require.NoError(t, err)
		_, err = db.Add(supervise.Func(func(context.Context) error { return nil }), supervise.ChildConfig{Name: "migrator", Restart: supervise.Transient})
		require.NoError(t, err)
		_, err = root.Add(db, supervise.ChildConfig{})
		require.NoError(t, err)
		_, err = root.Add(supervise.Func(blocker), supervise.ChildConfig{Name: "http"})
		require.NoError(t, err)

		assert.Equal(t, supervise.StateStopped, root.Snapshot().State)
		stop := serve(root)
		synctest.Wait()
		time.Sleep(time.Minute)

		st := root.Snapshot()
		assert.Equal(t, "root", st.Path)
		assert.Equal(t, supervise.StateRunning, st.State)
		type row struct {
			Path   string
			State  supervise.ChildState
			Uptime time.Duration
		}
		var rows []row
		for _, c := range st.All() {
			rows = append(rows, row{c.Path, c.State, c.Uptime})
		}
		assert.Equal(t, []row{
			{"root/db", supervise.StateRunning, time.Minute},
			{"root/db/pool", supervise.StateRunning, time.Minute},
			{"root/db/migrator", supervise.StateStopped, 0},
			{"root/http", supervise.StateRunning, time.Minute},
		}, rows)
		assert.Equal(t, supervise.RestForOne, db.Snapshot().Strategy)
		assert.Equal(t, "root/db", db.Snapshot().Path)
		require.NoError(t, stop())
		for _, c := range root.Snapshot().All() {
			assert.Equal(t, supervise.StateStopped, c.State, c.Path)
		}
	})
}

func TestLogger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
			Level: slog.LevelDebug,
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))
		s, err := supervise.New(supervise.Config{Name: "root", Logger: logger, Backoff: supervise.NoBackoff})
		require.NoError(t, err)
		_, err = s.Add(supervise.Func(failsOnce(errBoom)), supervise.ChildConfig{Name: "w"})
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()
		require.NoError(t, stop())
		assert.Equal(t, strings.Join([]string{
			`level=DEBUG msg="supervise: started" selfheal.supervisor.name=root selfheal.child.name=w`,
			`level=ERROR msg="supervise: failed" selfheal.supervisor.name=root selfheal.child.name=w error=boom`,
			`level=WARN msg="supervise: restarting" selfheal.supervisor.name=root selfheal.child.name=w selfheal.delay=0s selfheal.restart.cause=error restarts=1`,
			`level=DEBUG msg="supervise: started" selfheal.supervisor.name=root selfheal.child.name=w`,
			`level=DEBUG msg="supervise: stopped" selfheal.supervisor.name=root selfheal.child.name=w`,
		}, "\n")+"\n", buf.String())
	})
}

// With NoRecover a panic crashes the program, as it would without a
// supervisor. The test runs itself in a child process to see that.
func TestNoRecoverCrashes(t *testing.T) {
	if os.Getenv("SUPERVISE_NORECOVER_CHILD") == "1" {
		s, err := supervise.New(supervise.Config{Name: "root", NoRecover: true})
		require.NoError(t, err)
		_, err = s.Add(supervise.Func(func(context.Context) error { panic("let it crash") }), supervise.ChildConfig{Name: "w"})
		require.NoError(t, err)
		_ = s.Serve(context.Background())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestNoRecoverCrashes$")
	cmd.Env = append(os.Environ(), "SUPERVISE_NORECOVER_CHILD=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	assert.Equal(t, 2, exit.ExitCode())
	assert.Contains(t, string(out), "panic: let it crash")
}
