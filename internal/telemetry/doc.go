// Package telemetry holds what every selfheal package needs to reach OpenTelemetry:
// the instrumentation scope name and the resolution of nil providers to the global
// ones. It never sets a global provider.
package telemetry
