package core

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/health"

	"github.com/selfheal-go/selfheal/examples/agent/config"
	"github.com/selfheal-go/selfheal/examples/agent/driver"
)

// Scaling on utilization (scale.utilizationTarget): the instances' health
// documents report http:utilization (in-flight over the concurrency limit, in %);
// the load ratio is the higher of utilization over its target and p99 over the
// latency target, and the scaler scales out on it although the latency is fine.
func TestUtilizationTargetScales(t *testing.T) {
	for _, tt := range []struct {
		name       string
		target     string // scale.utilizationTarget; "" for none
		util, p99  float64
		wantRatio  float64
		wantBasis  string // the basis without its statistic ("mean", "median")
		wantScaled int    // the scaler's recommendation for 3 replicas
	}{
		{name: "utilization over its target scales out", target: "50", util: 90, p99: 20, wantRatio: 1.8, wantBasis: "utilization 90% / target 50%", wantScaled: 6},
		{name: "latency is the higher ratio", target: "50", util: 10, p99: 150, wantRatio: 1.5, wantBasis: "p99 150ms / target 100ms", wantScaled: 5},
		{name: "utilization within its band stays", target: "50", util: 55, p99: 20, wantRatio: 1.1, wantBasis: "utilization 55% / target 50%", wantScaled: 3},
		{name: "low utilization scales in on the latency ratio", target: "50", util: 5, p99: 20, wantRatio: 0.2, wantBasis: "p99 20ms / target 100ms", wantScaled: 1},
		{name: "without a target utilization is ignored", target: "", util: 90, p99: 20, wantRatio: 0.2, wantBasis: "p99 20ms / target 100ms", wantScaled: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			util := ""
			if tt.target != "" {
				util = ", utilizationTarget: " + tt.target
			}
			f, err := config.Parse("fleet.yaml", []byte(`nodes: [node-1]
services:
  - name: web
    command: [/bin/true]
    replicas: 3
    minReplicas: 1
    maxReplicas: 10
    scale: {latencyTarget: 100ms, tolerance: 0.25, maxStep: 5`+util+`}
`))
			require.NoError(t, err)
			s := newSvc(&f.Services[0])
			a := &Agent{incs: map[string]*incident{}}
			now := time.Now()
			var results []probeResult
			for i := 1; i <= 3; i++ {
				id := fmt.Sprintf("web-%d", i)
				s.members[id] = s.newMember(driver.Instance{ID: id, Service: "web", Node: "node-1", State: driver.StateRunning,
					StartedAt: now.Add(-time.Minute)}, now.Add(-time.Minute))
				doc, err := health.ParseDocument(fmt.Appendf(nil, `{"status": "pass", "checks": {
					"http:utilization": [{"observedValue": %g, "observedUnit": "%%"}],
					"http:responseTime": [{"componentId": "p50", "observedValue": 5, "observedUnit": "ms"},
					                      {"componentId": "p99", "observedValue": %g, "observedUnit": "ms"}]}}`, tt.util, tt.p99))
				require.NoError(t, err)
				results = append(results, probeResult{id: id, live: true, ready: true, doc: doc})
			}
			a.judge(s, results, now)
			for _, m := range s.members {
				require.True(t, m.tr.Ready(), "the instances are ready")
			}
			ratio, basis := s.loadRatio()
			assert.InDelta(t, tt.wantRatio, ratio, 1e-9)
			assert.Contains(t, basis, tt.wantBasis) // "mean" or "median" before it
			d := s.scaler.Recommend(now, 3, ratio)
			assert.Equal(t, tt.wantScaled, d.Replicas)
		})
	}
}
