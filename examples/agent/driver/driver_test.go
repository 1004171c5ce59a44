package driver_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

func TestNodeErrorMatchesCause(t *testing.T) {
	err := fmt.Errorf("start: %w", &driver.NodeError{Node: "node-1", Op: "start on", Err: driver.ErrNodeUnavailable})
	assert.ErrorIs(t, err, driver.ErrNodeUnavailable)
	var ne *driver.NodeError
	assert.True(t, errors.As(err, &ne))
	assert.Equal(t, "node-1", ne.Node)
	assert.Equal(t, `start: driver: start on node "node-1": driver: node unavailable`, err.Error())
}

func ExampleNodeError() {
	err := &driver.NodeError{Node: "node-2", Op: "start on", Err: driver.ErrNodeUnavailable}
	fmt.Println(errors.Is(err, driver.ErrNodeUnavailable))
	fmt.Println(err)
	// Output:
	// true
	// driver: start on node "node-2": driver: node unavailable
}

func TestParseNodeState(t *testing.T) {
	for _, tt := range []struct {
		give string
		want driver.NodeState
	}{
		{"ready", driver.NodeReady}, {"up", driver.NodeReady}, {"UP", driver.NodeReady}, {"undrain", driver.NodeReady},
		{"down", driver.NodeDown}, {"fail", driver.NodeDown},
		{"degraded", driver.NodeDegraded}, {"degrade", driver.NodeDegraded},
		{"drained", driver.NodeDrained}, {" drain ", driver.NodeDrained},
	} {
		got, err := driver.ParseNodeState(tt.give)
		assert.NoError(t, err, tt.give)
		assert.Equal(t, tt.want, got, tt.give)
	}
	_, err := driver.ParseNodeState("sideways")
	assert.EqualError(t, err, `driver: unknown node state "sideways": want ready (up), down, degraded or drained (drain)`)
}

func ExampleParseNodeState() {
	st, _ := driver.ParseNodeState("up")
	fmt.Println(st)
	_, err := driver.ParseNodeState("off")
	fmt.Println(err)
	// Output:
	// ready
	// driver: unknown node state "off": want ready (up), down, degraded or drained (drain)
}
