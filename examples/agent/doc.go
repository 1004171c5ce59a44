// Command agent is selfheal's companion agent: it keeps a fleet of services
// healthy from the health documents they export (see package core for the loop and
// its safety rules, and package config for the fleet file).
//
//	agent -config fleet.yaml [-dry-run]       run the agent
//	agent [-addr 127.0.0.1:7070] status       print the agent's view (JSON)
//	agent scale <service> <replicas>          scale by hand, within minReplicas..maxReplicas
//	agent update <service> <version>          rolling update
//	agent node <name> <ready|up|down|degraded|drained|drain>
//
// A control command prints what it did ("scale web: 3 -> 6 replicas"); with
// -token-file it sends the token of agent.tokenFile.
//
// The agent writes its events as JSON lines to stderr and to agent.eventLog, and
// serves a status page with the instances per node and the recent timeline at
// agent.listen (default http://127.0.0.1:7070/).
//
// # The control plane
//
// The status page, /status, /metrics and the commands answer only a request whose
// Host is localhost, a loopback address, agent.listen's host or one of agent.hosts,
// so that a web page cannot read them by re-binding its own name to 127.0.0.1. A
// command (a POST) is refused when the browser marks it cross-origin (Origin or
// Sec-Fetch-Site), without the bearer token when agent.tokenFile is set (required
// when agent.listen is not a loopback address), and from any address but loopback
// when it is not; its query is bounded to 2 KiB, its body to 4 KiB, a node reason
// to 256 bytes, names to 63 bytes, and a replica count to the fleet file's bounds.
//
// # Telemetry
//
// GET /metrics serves the agent's metrics in the Prometheus text format (through the
// OpenTelemetry Prometheus exporter: selfheal_agent_incidents_total,
// selfheal_agent_actions_total, selfheal_agent_detect_duration_seconds and
// selfheal_agent_heal_duration_seconds), behind the same Host check as the status page.
//
// When OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, the
// agent sends its decisions as spans over OTLP/HTTP (service.name selfheal-agent unless
// OTEL_SERVICE_NAME says otherwise; the other OTEL_* variables are honoured): a span
// per incident, and under it a span per action (restart, replace, scale, rollback,
// eject, a rollout batch...) with the incident id, service, instance and node
// (TELEMETRY.md, section "The agent"). They are made from the event stream by a
// subscriber (telemetry.go), so the loop is not touched. The local driver passes the
// agent's environment to the instances, so the demo service's spans go to the same
// collector; an action names the instance it started, and that is the instance's
// service.instance.id. Unset, no exporter runs.
//
// # Nodes of a swarm
//
// With the docker driver the agent runs the driver's node guard beside its loop
// (docker.NodeGuard; nodePool.guard: off turns it off, and it is off in a dry run): a
// worker confirmed lost (every probe of its instances and of its gossip port silent
// for 3 rounds, or Swarm reports it down) is removed from the swarm so that its
// replicas run elsewhere at once; below nodePool.min ready nodes the agent runs
// nodePool.provision (a shell command that adds a node) and rolls the services onto a
// node that joins; a node that reports (node label selfheal.pressure.<resource>) a
// resource at nodePool.drainAt percent, or rising to full within nodePool.horizon, is
// drained before it fails. Each action is an incident in the history and the event
// log (node-lost, nodes-below-min, node-joined, node-pressure) that says why. The
// agent must reach the nodes' addresses: run it on a manager.
package main
