// Package config reads the agent's fleet file: one YAML file that declares the
// agent's own settings, the nodes, and per service the command or image, the
// replicas, the health endpoints and thresholds, the scaling targets and the update
// policy.
//
// Every field is optional unless marked required; a zero or missing field means the
// default given in its comment. An error names the file, the line, the column and
// the field:
//
//	fleet.yaml:14:16: services[0].update.failureAction: must be rollback, pause or continue, not "explode"
//
// and the agent does not start (a YAML syntax error names the line only: the YAML
// parser reports no column). Values are checked, not coerced: a negative duration, a
// fraction in a whole-number field (replicas: 2.5), a number that is not finite
// (.nan, .inf) and a size beyond 8EiB are errors.
package config
