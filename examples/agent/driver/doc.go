// Package driver defines how the agent acts on the world: the Driver interface every
// backend implements, and the optional capability interfaces through which a backend
// takes over what it does natively.
//
// # The model
//
// The agent decides; a driver acts. Every driver can list the instances of a service
// and the nodes they run on, and stop an instance (Driver). Beyond that a driver is one
// of two kinds:
//
//   - A Placer starts single instances where the agent tells it to (the local driver:
//     processes on this machine grouped into virtual nodes). The agent then does
//     everything itself: it keeps the replica count, restarts exited instances, places
//     instances on nodes and runs rolling updates instance by instance.
//   - An Orchestrator keeps a declared service by itself (the docker driver on Swarm).
//     The agent hands it the replica count (Scale), the rolling update with its
//     parallelism, delay, monitor window and failure action (Apply), and a rollback
//     (Rollback); the orchestrator's own restart policy restarts exited instances. The
//     agent adds what the orchestrator does not do: it reads every instance's health
//     document and stops instances that are unhealthy by it (Stop; the orchestrator
//     replaces them), it scales on latency and saturation, and it reports everything
//     in its event log.
//
// Further optional interfaces: NodeController (drain a node, and for the local driver
// fail and recover one), Adopter (take over the instances a previous agent run left
// running).
//
// # Concurrency
//
// Every method of every interface in this package may be called concurrently.
// Methods that may block take a context first and return when it is done.
package driver
