package config

// GRPCProbe is the gRPC probe of a service's instances (health.grpc in the fleet
// file, for example `health: {grpc: {service: "users.v1.Users"}}`, or `grpc: {}`
// for the server as a whole): the agent calls grpc.health.v1.Health/Check on the
// instance's address (plaintext HTTP/2, as Kubernetes' grpc probe does) with the
// service name. SERVING is live and ready; NOT_SERVING (or any other status) is
// live but not ready, so the instance leaves the front door's rotation and is
// replaced after notReadyTimeout; an unknown service (NOT_FOUND) is not ready
// either, with its reason; no answer, or no Health service, fails liveness. The
// health document is still read from health.document over HTTP.
type GRPCProbe struct {
	Service string `yaml:"service"` // the service name checked; "" means the server as a whole
}
