package decide_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/selfheal-go/selfheal/examples/agent/decide"
)

// A restart that is no longer owed because the count is met (the autoscaler
// scaled in while a node failure's restarts waited) heals its incident: dropped
// silently, the incident stayed open for good (TestChaos: node-1 failed with 3
// of 6 instances on it while the fleet scaled in to 4).
func TestPlanHealsTheIncidentsOfRestartsNoLongerOwed(t *testing.T) {
	for _, tt := range []struct {
		name    string
		desired int
		pending []decide.Restart
		want    []string // incidents healed by count
	}{
		{name: "count met: both heal", desired: 3, pending: []decide.Restart{{Incident: "web#7", Node: "node-1"}, {Incident: "web#8", Node: "node-1"}},
			want: []string{"web#7", "web#8"}},
		{name: "count not met: restarted, not healed", desired: 4, pending: []decide.Restart{{Incident: "web#7", Node: "node-1"}}, want: nil},
		{name: "nothing pending", desired: 3, want: nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := snap(three(), func(s *decide.Snapshot) { s.Desired, s.Pending = tt.desired, tt.pending })
			var healed []string
			clear := false
			for _, a := range decide.Plan(s) {
				switch a.Kind {
				case decide.ActHealCount:
					assert.False(t, clear, "healed before the pending restarts are cleared")
					assert.Equal(t, "count-met", a.What)
					healed = append(healed, a.Incident)
				case decide.ActClearPending:
					clear = true
				}
			}
			assert.Equal(t, tt.want, healed)
		})
	}
}
