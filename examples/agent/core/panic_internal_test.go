package core

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/selfheal-go/selfheal/examples/agent/decide"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

// With no instance ready, the front door gets the instances that were ready and
// failed fewer probes in a row than the failure threshold (panic routing): in the
// chaos test, a node failure's replacements starting on a loaded machine made the
// probes of both surviving instances time out in the same round, and clients got
// 503 "no ready instance" from the front door for half a second.
func TestBackendsPanicRoutesToSuspectInstances(t *testing.T) {
	cfg := newTestAgent(t).svcs["web"].cfg // failureThreshold 4
	now := time.Now()
	pass := decide.Probe{Live: true, Ready: true}
	fail := decide.Probe{Err: "liveness probe timed out"}
	type give struct {
		probes   []decide.Probe
		stopping bool
	}
	for _, tt := range []struct {
		name string
		give []give
		want []string
	}{
		{name: "ready instances only", give: []give{{probes: []decide.Probe{pass}}, {probes: []decide.Probe{pass, fail}}}, want: []string{"web-1"}},
		{name: "none ready: the suspect ones", give: []give{{probes: []decide.Probe{pass, fail}}, {probes: []decide.Probe{pass, fail, fail}}}, want: []string{"web-1", "web-2"}},
		{name: "never unhealthy ones", give: []give{{probes: []decide.Probe{pass, fail}}, {probes: []decide.Probe{pass, fail, fail, fail, fail}}}, want: []string{"web-1"}},
		{name: "never stopping ones", give: []give{{probes: []decide.Probe{pass, fail}, stopping: true}, {probes: []decide.Probe{pass, fail}}}, want: []string{"web-2"}},
		{name: "never ones that were not ready", give: []give{{probes: []decide.Probe{fail}}}, want: nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSvc(cfg)
			a := &Agent{svcs: map[string]*svc{"web": s}}
			for i, g := range tt.give {
				id := fmt.Sprintf("web-%d", i+1)
				m := s.newMember(driver.Instance{ID: id, Addr: "127.0.0.1:" + fmt.Sprint(9000+i), State: driver.StateRunning,
					StartedAt: now.Add(-time.Minute)}, now.Add(-time.Minute))
				for j, p := range g.probes {
					m.tr.Observe(now.Add(time.Duration(j)*100*time.Millisecond), p)
					m.wasReady = m.wasReady || m.tr.Ready()
				}
				m.stopping = g.stopping
				s.members[id] = m
			}
			var got []string
			for _, b := range a.Backends("web") {
				got = append(got, b.ID)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
