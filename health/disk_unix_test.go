//go:build unix && !openbsd && !netbsd && !solaris && !illumos

package health_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/health"
)

// TestDiskFree reads the real filesystem of the test's temporary directory.
func TestDiskFree(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	obs, err := health.DiskFree(dir, 0)(ctx)
	require.NoError(t, err)
	require.Len(t, obs, 1)
	free, ok := obs[0].ObservedValue.(uint64)
	require.True(t, ok)
	assert.Positive(t, free)
	assert.Equal(t, "bytes", obs[0].ObservedUnit)
	assert.Equal(t, health.StatusPass, obs[0].Status)

	obs, err = health.DiskFree(dir, 1<<62)(ctx)
	require.NoError(t, err)
	assert.Equal(t, health.StatusFail, obs[0].Status)
	assert.Contains(t, obs[0].Output, "bytes free")

	_, err = health.DiskFree(dir+"/does-not-exist", 0)(ctx)
	assert.ErrorIs(t, err, os.ErrNotExist)
}
