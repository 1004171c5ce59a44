package k8s

import (
	"context"
	"fmt"
	"strings"

	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// RecordIncidents writes each node incident of d's node guard to rec (the agent's
// Record: its history and event log) until ctx is done: decided node-lost with the
// time to detect, acted cordon-and-delete-pods, healed node-lost with the time to
// heal, as the docker agent does for its node guard; for a node drained under
// pressure, decided node-pressure, acted cordon-and-evict-pods, healed node-pressure
// once its pods are gone. It wakes on d's change signal,
// which the guard raises after each incident.
func RecordIncidents(ctx context.Context, d *Driver, rec func(eventlog.Event)) {
	changed := d.Watch(ctx)
	seen := 0
	for {
		all := d.Incidents()
		for _, in := range all[min(seen, len(all)):] {
			id := fmt.Sprintf("node#%d", seen+1)
			seen++
			if in.Pressure != nil {
				why := strings.Join(in.Pressure, ", ")
				rec(eventlog.Event{Time: in.Confirmed, Kind: eventlog.Decided, What: "node-pressure", Node: in.Node, Incident: id,
					Why:      "the node reports " + why + ": draining it before it fails",
					DetectMs: float64(in.Confirmed.Sub(in.Silent).Microseconds()) / 1e3})
				rec(eventlog.Event{Time: in.Confirmed, Kind: eventlog.Acted, What: "cordon-and-evict-pods", Node: in.Node, Incident: id,
					Detail: map[string]any{"pods": strings.Join(in.Pods, ",")}})
				rec(eventlog.Event{Time: in.Healed, Kind: eventlog.Healed, What: "node-pressure", Node: in.Node, Incident: id,
					Why: "its pods run elsewhere", HealMs: float64(in.Healed.Sub(in.Confirmed).Microseconds()) / 1e3})
				continue
			}
			rec(eventlog.Event{Time: in.Confirmed, Kind: eventlog.Decided, What: "node-lost", Node: in.Node, Incident: id,
				Why:      "kubelet /healthz silent while another node answers",
				DetectMs: float64(in.Confirmed.Sub(in.Silent).Microseconds()) / 1e3})
			rec(eventlog.Event{Time: in.Healed, Kind: eventlog.Acted, What: "cordon-and-delete-pods", Node: in.Node, Incident: id,
				Detail: map[string]any{"pods": strings.Join(in.Pods, ",")}})
			rec(eventlog.Event{Time: in.Healed, Kind: eventlog.Healed, What: "node-lost", Node: in.Node, Incident: id,
				HealMs: float64(in.Healed.Sub(in.Confirmed).Microseconds()) / 1e3})
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changed:
			if !ok {
				return
			}
		}
	}
}
