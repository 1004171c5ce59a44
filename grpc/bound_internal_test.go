package healgrpc

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClientForgetsTheLeastRecentlyUsedTarget(t *testing.T) {
	c, err := NewClient(ClientConfig{MaxTargets: 2})
	require.NoError(t, err)
	a := c.target("a")
	c.target("b")
	assert.Same(t, a, c.target("a"), "a known target is kept")
	c.target("c")
	assert.Equal(t, []string{"a", "c"}, slices.Sorted(maps.Keys(c.targets)), "b was the least recently used")
	for i := range 1000 {
		c.target(fmt.Sprint("hostile-", i))
	}
	assert.Equal(t, 2, c.Targets())

	unbounded, err := NewClient(ClientConfig{MaxTargets: Off})
	require.NoError(t, err)
	for i := range 300 {
		unbounded.target(fmt.Sprint(i))
	}
	assert.Equal(t, 300, unbounded.Targets())
	_, err = NewClient(ClientConfig{MaxTargets: -2})
	require.ErrorIs(t, err, ErrInvalidConfig)
}

func TestServerMethodAttributesAreBounded(t *testing.T) {
	m := &methodSet{seen: map[string]struct{}{}}
	assert.Equal(t, "/a.S/M", m.name("/a.S/M"))
	for i := range 2 * maxMethodAttrs {
		m.name(fmt.Sprintf("/hostile.S/M%d", i))
	}
	assert.Len(t, m.seen, maxMethodAttrs)
	assert.Equal(t, "/a.S/M", m.name("/a.S/M"), "a method named before stays named")
	assert.Equal(t, "/_OTHER/_OTHER", m.name("/hostile.S/new"))
	svc, meth := splitMethod("/_OTHER/_OTHER")
	assert.Equal(t, "_OTHER", svc)
	assert.Equal(t, "_OTHER", meth)
}
