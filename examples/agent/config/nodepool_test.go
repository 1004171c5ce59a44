package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/config"
)

func TestNodePool(t *testing.T) {
	const svc = "services:\n  - name: web\n    image: web:{version}\nagent: {driver: docker}\n"
	f, err := config.Parse("fleet.yaml", []byte("nodePool:\n  min: 3\n  provision: bash lab.sh add-host\n  drainAt: 85\n  horizon: 5m\n"+svc))
	require.NoError(t, err)
	assert.Equal(t, config.NodePool{Min: 3, Provision: "bash lab.sh add-host", DrainAt: 85, Horizon: config.Duration(5 * time.Minute)}, f.NodePool)

	for give, want := range map[string]string{
		"nodePool: {min: 3}\n":       "fleet.yaml:1:11: nodePool.provision: required with nodePool.min: the command that adds a node",
		"nodePool: {min: -1}\n":      "fleet.yaml:1:17: nodePool.min: must not be negative",
		"nodePool: {guard: maybe}\n": `fleet.yaml:1:19: nodePool.guard: must be on or off, not "maybe"`,
		"nodePool: {drainAt: 120}\n": "fleet.yaml:1:21: nodePool.drainAt: must be a percentage, not 120",
		"nodePool: {provison: x}\n":  "",
	} {
		_, err := config.Parse("fleet.yaml", []byte(give+svc))
		require.Error(t, err, give)
		if want != "" {
			assert.Equal(t, want, err.Error())
		}
		assert.ErrorIs(t, err, config.ErrInvalid)
	}
}
