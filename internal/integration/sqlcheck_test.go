package integration_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"

	"github.com/selfheal-go/selfheal/health"
)

// TestSQLPing runs health.Ping against a real embedded SQLite database: the check
// passes while the database is open and fails once it is closed.
func TestSQLPing(t *testing.T) {
	defer goleak.VerifyNone(t)
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "app.db"))
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY)`)
	require.NoError(t, err)

	reg := health.New(health.Config{})
	require.NoError(t, reg.Register(health.Check{
		Name: "sqlite:ping", ComponentType: "datastore", CacheTTL: health.Off, Timeout: 5 * time.Second,
		Func: health.Ping(db),
	}))
	ctx := context.Background()
	assert.Equal(t, health.StatusPass, reg.Evaluate(ctx, health.Readiness))
	// A dependency check is a readiness check by default, never a liveness check.
	assert.Equal(t, health.StatusPass, reg.Evaluate(ctx, health.Liveness))

	// *sql.Conn is a Pinger too.
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	assert.NoError(t, health.Ping(conn)(ctx))
	require.NoError(t, conn.Close())

	require.NoError(t, db.Close())
	assert.Equal(t, health.StatusFail, reg.Evaluate(ctx, health.Readiness))
	doc := reg.Document(ctx)
	entry, ok := doc.Find("sqlite:ping", "")
	require.True(t, ok)
	assert.Equal(t, health.StatusFail, entry.Status)
	assert.Contains(t, entry.Output, "database is closed")
	assert.Equal(t, "datastore", entry.ComponentType)
}

// TestSQLPingCanceled: the ping honours the check's context.
func TestSQLPingCanceled(t *testing.T) {
	defer goleak.VerifyNone(t)
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "app.db"))
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, health.Ping(db)(ctx), context.Canceled)
}
