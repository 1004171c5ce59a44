package core_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

var restartInRE = regexp.MustCompile(`^restart in (\S+) `)

// A restart backoff fires when it says: the restart follows its "restart in d"
// decision by d, not at the next probe round (3 s apart here).
func TestBackoffFiresWhenDue(t *testing.T) {
	y := `agent:
  listen: "off"
services:
  - name: web
    command: [/bin/false]
    replicas: 1
    health: {interval: 3s}
    restart: {initial: 300ms, max: 300ms, crashLoopRestarts: 10, crashLoopWindow: 1m}
`
	f, err := config.Parse("fleet.yaml", []byte(y))
	require.NoError(t, err)
	r := start(t, f, true)
	defer noLeftovers(t, r.d.Marker())
	defer r.stop(t)
	require.Eventually(t, func() bool { return len(events(r.a, eventlog.Decided, "restart")) >= 4 }, 10*time.Second, 20*time.Millisecond)

	var backoff *eventlog.Event
	pairs := 0
	for _, e := range r.a.Events().Recent(0) {
		switch {
		case e.Kind == eventlog.Decided && e.What == "backoff":
			backoff = &e
		case e.Kind == eventlog.Decided && e.What == "restart" && backoff != nil:
			m := restartInRE.FindStringSubmatch(backoff.Why)
			require.NotNil(t, m, backoff.Why)
			d, err := time.ParseDuration(m[1])
			require.NoError(t, err)
			// The decision's event is written after the round that planned it (its
			// probes and actions), so the due time is the one the event carries.
			due, err := time.Parse(time.RFC3339Nano, backoff.Detail["due"].(string))
			require.NoError(t, err)
			assert.InDelta(t, float64(d), float64(due.Sub(backoff.Time)), float64(150*time.Millisecond), "due in about d")
			late := e.Time.Sub(due)
			t.Logf("restart in %s: restarted %s after its due time", d, late.Round(time.Millisecond))
			assert.GreaterOrEqual(t, late, -time.Millisecond, "not before it is due")
			assert.Less(t, late, 150*time.Millisecond, "when due, not at the next round")
			pairs++
			backoff = nil
		}
	}
	assert.GreaterOrEqual(t, pairs, 3)
}
