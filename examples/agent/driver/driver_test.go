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
