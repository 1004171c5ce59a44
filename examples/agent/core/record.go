package core

import "github.com/selfheal-go/selfheal/examples/agent/eventlog"

// Record emits an event of a part that runs beside the agent's loop (the docker
// driver's node guard): it goes to the event log and, with an Incident id, into the
// incident history, as the loop's own events do.
func (a *Agent) Record(e eventlog.Event) { a.emit(e) }
