package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/config"
)

// TestFleetFile: the example fleet file loads (agent.driver kubernetes is a driver the
// fleet file may name, an image is required with it) and names the test image.
func TestFleetFile(t *testing.T) {
	f, err := config.Load("fleet.yaml")
	require.NoError(t, err)
	require.Equal(t, "kubernetes", f.Agent.Driver)
	require.Equal(t, "localhost/selfheal-k8s-testsvc:1", f.Services[0].Image)

	noImage := filepath.Join(t.TempDir(), "f.yaml")
	require.NoError(t, os.WriteFile(noImage, []byte("agent: {driver: kubernetes}\nservices: [{name: web}]\n"), 0o600))
	_, err = config.Load(noImage)
	require.ErrorContains(t, err, "image")
}

// TestRunRefuses: the agent runs the kubernetes driver only, and needs a kubeconfig.
func TestRunRefuses(t *testing.T) {
	dir := t.TempDir()
	local := filepath.Join(dir, "local.yaml")
	require.NoError(t, os.WriteFile(local, []byte("services: [{name: web, command: [/bin/true]}]\n"), 0o600))
	var out strings.Builder
	require.Equal(t, 2, run(context.Background(), []string{"-fleet", local, "-kubeconfig", "x"}, &out))
	require.Contains(t, out.String(), `not "local"`)

	out.Reset()
	t.Setenv("KUBECONFIG", "")
	require.Equal(t, 2, run(context.Background(), []string{"-fleet", "fleet.yaml"}, &out))
	require.Contains(t, out.String(), "-kubeconfig")
}
