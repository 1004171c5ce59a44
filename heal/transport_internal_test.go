package heal

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A zero-config Transport bounds the wait for response headers (http.DefaultTransport
// does not), with a Base of its own so that http.DefaultTransport is left unchanged.
func TestZeroTransportHasAResponseHeaderTimeout(t *testing.T) {
	tr, err := NewTransport(TransportConfig{})
	require.NoError(t, err)
	base, ok := tr.base.(*http.Transport)
	require.True(t, ok)
	assert.Equal(t, 30*time.Second, base.ResponseHeaderTimeout)
	assert.NotSame(t, http.DefaultTransport, tr.base)
	assert.Zero(t, http.DefaultTransport.(*http.Transport).ResponseHeaderTimeout)

	tr, err = NewTransport(TransportConfig{ResponseHeaderTimeout: Off})
	require.NoError(t, err)
	assert.Zero(t, tr.base.(*http.Transport).ResponseHeaderTimeout)
}
