package heal_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The README's quick start compiles and vets as written: it is extracted from
// README.md and built with the go command, in this module.
func TestReadmeQuickStartBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "```go\npackage main\n")
	require.True(t, ok, "README.md has no quick start")
	code, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	dir := t.TempDir()
	main := filepath.Join(dir, "main.go")
	require.NoError(t, os.WriteFile(main, []byte("package main\n"+code), 0o600))
	for _, args := range [][]string{{"vet", main}, {"build", "-o", filepath.Join(dir, "quickstart"), main}} {
		cmd := exec.Command(goCmd, args...)
		cmd.Dir = ".." // the module's root
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s:\n%s", args[0], out)
	}
}
