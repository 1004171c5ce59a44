// Command agent is selfheal's companion agent: it keeps a fleet of services
// healthy from the health documents they export (see package core for the loop and
// its safety rules, and package config for the fleet file).
//
//	agent -config fleet.yaml [-dry-run]       run the agent
//	agent [-addr 127.0.0.1:7070] status       print the agent's view (JSON)
//	agent scale <service> <replicas>          scale by hand
//	agent update <service> <version>          rolling update
//	agent node <name> <ready|down|degraded|drained>
//
// The agent writes its events as JSON lines to stderr and to agent.eventLog, and
// serves a status page with the instances per node and the recent timeline at
// agent.listen (default http://127.0.0.1:7070/).
package main
