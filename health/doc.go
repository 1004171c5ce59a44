// Package health runs health checks and serves them as Kubernetes-style probes
// (/livez, /readyz, /startupz) and as the health document of the IETF draft "Health
// Check Response Format for HTTP APIs" (/health, application/health+json).
//
// The full narrative (kinds, statuses, thresholds, execution, endpoints, security,
// draining) is being written; see [Registry], [Check] and [Document].
package health
