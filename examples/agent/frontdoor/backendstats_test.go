package frontdoor_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/frontdoor"
)

// BackendStats counts, per backend, the attempts, the failed ones (5xx) and the
// time to their response headers.
func TestBackendStats(t *testing.T) {
	slow := backend(t, "slow", func(w http.ResponseWriter, _ *http.Request) { time.Sleep(30 * time.Millisecond) })
	bad := backend(t, "bad", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	for _, b := range []frontdoor.Backend{slow, bad} {
		fd, err := frontdoor.New(frontdoor.Config{Backends: func() []frontdoor.Backend { return []frontdoor.Backend{b} }})
		require.NoError(t, err)
		for range 3 {
			serve(t, fd, http.MethodPost, "")
		}
		st := fd.BackendStats()[b.ID]
		assert.Equal(t, int64(3), st.Requests, b.ID)
		if b.ID == "bad" {
			assert.Equal(t, int64(3), st.Errors)
		} else {
			assert.Zero(t, st.Errors)
			assert.GreaterOrEqual(t, st.Latency, 90*time.Millisecond)
		}
		fd.CloseIdleConnections()
	}
}
