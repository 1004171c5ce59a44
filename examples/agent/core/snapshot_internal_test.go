package core

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// A rendering is served from memory while young; the next one is made in the
// background when it ages or an event happens, at once after a command, and by the
// request when none is young enough. Requests that come during a rendering share it.
func TestRenderedServedFromMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newTestAgent(t)
		var renders atomic.Int64
		release := make(chan struct{})
		close(release)
		gate := func() chan struct{} { return release }
		render := func() ([]byte, error) {
			<-gate()
			return []byte(strconv.FormatInt(renders.Add(1), 10)), nil
		}
		get := func() string {
			b, err := a.rendered(t.Context(), "k", render)
			require.NoError(t, err)
			return string(b)
		}
		assert.Equal(t, "1", get(), "the first request renders")
		time.Sleep(snapshotRefresh / 2)
		assert.Equal(t, "1", get(), "young: from memory")
		synctest.Wait()
		assert.Equal(t, int64(1), renders.Load(), "nothing rendered in the background")

		time.Sleep(snapshotRefresh / 2)
		assert.Equal(t, "1", get(), "aged: from memory, the next in the background")
		synctest.Wait()
		assert.Equal(t, "2", get())

		a.emit(eventlog.Event{Kind: eventlog.Observed, What: "unhealthy", Service: "web"})
		assert.Equal(t, "2", get(), "an event: from memory, the next in the background")
		synctest.Wait()
		assert.Equal(t, "3", get())

		a.snaps.invalidate()
		assert.Equal(t, "4", get(), "a command: rendered by the request")

		time.Sleep(snapshotMaxAge)
		assert.Equal(t, "5", get(), "too old: rendered by the request")

		// Requests during a rendering wait for it.
		a.snaps.invalidate()
		release = make(chan struct{})
		var wg sync.WaitGroup
		got := make([]string, 5)
		for i := range got {
			wg.Go(func() { got[i] = get() })
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		assert.Equal(t, []string{"6", "6", "6", "6", "6"}, got)
		assert.Equal(t, int64(6), renders.Load())
	})
}

// A command shows in the next GET /status, though a young rendering is in memory.
func TestStatusShowsACommandAtOnce(t *testing.T) {
	a := newTestAgent(t) // 2 replicas
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	desired := func() int {
		resp, err := http.Get(srv.URL + "/status")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var st Status
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
		return st.Services[0].Desired
	}
	require.Equal(t, 2, desired())
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/scale?service=web&replicas=3", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Equal(t, 3, desired())
	http.DefaultClient.CloseIdleConnections()
}
