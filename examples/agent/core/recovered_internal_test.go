package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/driver"
	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// An instance reported unhealthy that recovers before a replacement is under way
// (the agent held still because most instances looked broken at once, as a loaded
// machine makes them) heals its incident when it is live again; before, the
// incident stayed open until the instance failed again (37.7 s in a chaos run),
// and a later failure reused it.
func TestARecoveredInstanceHealsItsIncident(t *testing.T) {
	a := newTestAgent(t) // failureThreshold 4
	s := a.svcs["web"]
	now := time.Now()
	m := s.newMember(driver.Instance{ID: "web-1", Node: "node-1", Addr: "127.0.0.1:1", State: driver.StateRunning, StartedAt: now.Add(-time.Minute)}, now)
	s.members["web-1"] = m
	probe := func(at time.Duration, live bool) {
		r := probeResult{id: "web-1", live: live, ready: live}
		if !live {
			r.err = "liveness probe timed out after 1s"
		}
		a.mu.Lock()
		a.judge(s, []probeResult{r}, now.Add(at))
		a.mu.Unlock()
	}
	count := func(kind, what string) (n int, inc string) {
		for _, e := range a.Events().Recent(0) {
			if e.Kind == kind && e.What == what {
				n, inc = n+1, e.Incident
			}
		}
		return n, inc
	}
	probe(0, true)
	for i := 1; i <= 4; i++ {
		probe(time.Duration(i)*100*time.Millisecond, false)
	}
	n, first := count(eventlog.Observed, "unhealthy")
	require.Equal(t, 1, n)
	probe(500*time.Millisecond, true) // no replacement was started: it recovered
	n, healed := count(eventlog.Healed, "recovered")
	assert.Equal(t, 1, n)
	assert.Equal(t, first, healed)
	a.mu.Lock()
	assert.Empty(t, a.incs, "no incident left open")
	assert.False(t, m.reported)
	a.mu.Unlock()

	// A new failure is a new incident.
	for i := 6; i <= 9; i++ {
		probe(time.Duration(i)*100*time.Millisecond, false)
	}
	n, second := count(eventlog.Observed, "unhealthy")
	assert.Equal(t, 2, n)
	assert.NotEqual(t, first, second)

	// With a replacement under way, the replacement heals the incident, not the
	// recovery.
	a.mu.Lock()
	m.replacedBy = "pending"
	a.mu.Unlock()
	probe(time.Second, true)
	n, _ = count(eventlog.Healed, "recovered")
	assert.Equal(t, 1, n)
}
