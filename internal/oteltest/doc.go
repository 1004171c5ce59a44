// Package oteltest records what code reports through the OpenTelemetry API, for the
// tests of the selfheal packages: the library module may require only the API, not
// the SDK.
//
// A [MeterProvider] keeps, by instrument name and attribute set, the sums of
// counters and up-down counters, the last value of gauges and every histogram
// record. [MeterProvider.Collect] runs the callbacks registered with its meters (and
// those given to observable instruments) and returns their [Observations];
// [MeterProvider.Observe] does the same for a test, failing it on an error.
// [MeterProvider.Registrations] lists every callback registration, so that a test can
// check that one was unregistered.
//
// A [Span] is a recording span that keeps its events; [ContextWithSpan] returns a
// context carrying a new one.
//
// Lookups take either the exact attribute set of a measurement (Int64Sum(name, kvs...))
// or keys whose values, joined by a space, index a map (Int64SumBy(name, keys...)).
// Everything in the package is safe for concurrent use.
package oteltest
