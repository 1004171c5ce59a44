// Package play runs the classic self-healing demo against real processes: it
// builds the demo service, starts the agent with the local driver (replicas over
// virtual nodes) and a load generator through the agent's front door, and plays
// the steps, each of which injects a fault and measures how long the agent took to
// detect it and to heal it, and what share of the clients' requests succeeded
// meanwhile. The demo command and the tests both use it. StartDocker plays on
// Docker Swarm; PlayLab plays the classic demonstration on the test-host lab, with
// the agent or with Swarm alone.
package play
