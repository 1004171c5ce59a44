package heal

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/selfheal-go/selfheal/breaker"
	"github.com/selfheal-go/selfheal/health"
	"github.com/selfheal-go/selfheal/supervise"
)

// The names of the health checks this package publishes: the keys of the health
// document that the selfheal agent reads.
const (
	CheckResponseTime = "http:responseTime" // entries "p50" and "p99", in ms
	CheckUtilization  = "http:utilization"  // in-flight / concurrency limit, in %
	CheckInFlight     = "http:inFlight"     // requests being served
	CheckShed         = "http:shed"         // requests shed in the recorder's window
	CheckThroughput   = "http:throughput"   // requests served per second over the window
	CheckBreakerState = "breaker:state"     // one entry per breaker
	CheckBulkhead     = "bulkhead:saturation"
	CheckSupervisor   = "supervisor:state" // one entry per child of a supervision tree
)

// BreakerStates is anything that reports the state of circuit breakers:
// *breaker.Group, [Transport], [Pipeline], or [Breakers] for single breakers.
type BreakerStates interface {
	Snapshot() []breaker.Snapshot
}

// Breakers adapts single breakers to [BreakerStates].
func Breakers(bs ...*breaker.Breaker) BreakerStates { return breakerList(bs) }

type breakerList []*breaker.Breaker

func (l breakerList) Snapshot() []breaker.Snapshot {
	out := make([]breaker.Snapshot, len(l))
	for i, b := range l {
		out[i] = b.Snapshot()
	}
	return out
}

// HealthSources are the things whose state [RegisterHealth] publishes. Nil and empty
// fields publish nothing.
type HealthSources struct {
	// Server publishes the http:* components of its recorder.
	Server *Middleware
	// Breakers publishes breaker:state, one entry per breaker.
	Breakers []BreakerStates
	// Bulkheads publishes bulkhead:saturation, one entry per bulkhead.
	Bulkheads []*Bulkhead
	// Supervisors publishes supervisor:state, one entry per child (and per
	// supervisor) of each tree.
	Supervisors []*supervise.Supervisor
}

// RegisterHealth registers with reg the checks of src: [ServerChecks],
// [BreakerCheck], [BulkheadCheck] and [SupervisorCheck]. All of them are readiness
// checks that never fail: at worst they warn (an open breaker, a full bulkhead, a
// child backing off or given up on), which shows in the document and in /readyz?verbose
// without taking the instance out of service, and none of them is a liveness check,
// because restarting a process heals neither a dependency nor load.
//
// It returns the errors of [health.Registry.Register], joined; the checks registered
// before an error stay registered.
func RegisterHealth(reg *health.Registry, src HealthSources) error {
	var checks []health.Check
	if src.Server != nil {
		checks = append(checks, ServerChecks(src.Server)...)
	}
	if len(src.Breakers) > 0 {
		checks = append(checks, BreakerCheck(src.Breakers...))
	}
	if len(src.Bulkheads) > 0 {
		checks = append(checks, BulkheadCheck(src.Bulkheads...))
	}
	if len(src.Supervisors) > 0 {
		checks = append(checks, SupervisorCheck(src.Supervisors...))
	}
	var errs []error
	for _, c := range checks {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// observeCheck is a readiness check that reports observations and never fails.
func observeCheck(name string, fn func() []health.Observation) health.Check {
	return health.Check{
		Name:          name,
		Kinds:         health.Readiness,
		ComponentType: "component",
		NonCritical:   true,
		CacheTTL:      health.Off, // the snapshots are cheap and should be current
		// Inline: a snapshot never blocks, so it runs on the probe's goroutine, with
		// no goroutine or timer per scrape.
		Inline: true,
		Observe: func(context.Context) ([]health.Observation, error) {
			return fn(), nil
		},
	}
}

// ms converts a duration to milliseconds, with three decimals.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// ServerChecks returns the checks that publish m's recorder and load: the keys
// http:responseTime (entries p50 and p99, unit ms), http:inFlight (requests),
// http:shed (requests in the window), http:throughput (req/s) and, when m has a
// concurrency limit (MaxConcurrent or Limit), http:utilization (%): without a limit
// there is nothing to be utilized, and a constant 0% would read as idle to an
// autoscaler. They always pass: they are measurements, not verdicts.
func ServerChecks(m *Middleware) []health.Check {
	snap := func() ServerSnapshot { return m.Snapshot() }
	one := func(name string, value func(ServerSnapshot) any, unit string) health.Check {
		return observeCheck(name, func() []health.Observation {
			return []health.Observation{{ObservedValue: value(snap()), ObservedUnit: unit}}
		})
	}
	checks := []health.Check{
		observeCheck(CheckResponseTime, func() []health.Observation {
			s := snap()
			return []health.Observation{
				{ComponentID: "p50", ObservedValue: ms(s.P50), ObservedUnit: "ms"},
				{ComponentID: "p99", ObservedValue: ms(s.P99), ObservedUnit: "ms"},
			}
		}),
		one(CheckInFlight, func(s ServerSnapshot) any { return s.InFlight }, "requests"),
		one(CheckShed, func(s ServerSnapshot) any { return s.Shed }, "requests"),
		one(CheckThroughput, func(s ServerSnapshot) any { return round2(s.Throughput) }, "req/s"),
	}
	if m.maxConc > 0 || m.limit != nil {
		checks = append(checks, one(CheckUtilization, func(s ServerSnapshot) any { return round2(s.Utilization) }, "%"))
	}
	return checks
}

// BreakerCheck returns the check breaker:state: one entry per breaker of the
// sources, componentId its name, observedValue "closed", "open" or "half-open".
// An open breaker warns (readiness reports it, and stays up: the instance can still
// serve what does not need that dependency); half-open and closed pass.
func BreakerCheck(sources ...BreakerStates) health.Check {
	return observeCheck(CheckBreakerState, func() []health.Observation {
		var obs []health.Observation
		for _, src := range sources {
			for _, s := range src.Snapshot() {
				o := health.Observation{ComponentID: s.Name, ObservedValue: s.State.String(), Status: health.StatusPass}
				if s.State == breaker.StateOpen {
					o.Status = health.StatusWarn
					switch {
					case s.Forced:
						o.Output = "forced open"
					case !s.OpenUntil.IsZero():
						o.Output = fmt.Sprintf("open until %s", s.OpenUntil.UTC().Format(time.RFC3339))
					}
				}
				obs = append(obs, o)
			}
		}
		return obs
	})
}

// BulkheadCheck returns the check bulkhead:saturation: one entry per bulkhead,
// componentId its name, observedValue in-flight / capacity in %. A full bulkhead
// warns.
func BulkheadCheck(bulkheads ...*Bulkhead) health.Check {
	return observeCheck(CheckBulkhead, func() []health.Observation {
		obs := make([]health.Observation, 0, len(bulkheads))
		for _, b := range bulkheads {
			s := b.Snapshot()
			o := health.Observation{ComponentID: s.Name, ObservedValue: round2(s.Saturation() * 100), ObservedUnit: "%"}
			if s.InFlight >= s.MaxConcurrent {
				o.Status = health.StatusWarn
				o.Output = fmt.Sprintf("full: %d in flight, %d queued, %d rejected", s.InFlight, s.Queued, s.Rejected)
			}
			obs = append(obs, o)
		}
		return obs
	})
}

// SupervisorCheck returns the check supervisor:state: one entry per supervisor and
// per child of each tree, componentId its path ("root/worker"), observedValue its
// state ("running", "backing-off", "stopped", "failed"), output its last error. A
// child backing off or failed, a child with an abandoned copy still running (output
// says so), and a supervisor that gave up, warn: the tree heals itself, and readiness
// only reports it.
func SupervisorCheck(sups ...*supervise.Supervisor) health.Check {
	return observeCheck(CheckSupervisor, func() []health.Observation {
		var obs []health.Observation
		for _, sup := range sups {
			t := sup.Snapshot()
			root := health.Observation{ComponentID: t.Path, ObservedValue: string(t.State), Status: health.StatusPass}
			if t.State == supervise.StateFailed {
				root.Status, root.Output = health.StatusWarn, "supervisor gave up"
			}
			obs = append(obs, root)
			for _, c := range t.All() {
				o := health.Observation{ComponentID: c.Path, ObservedValue: string(c.State), Status: health.StatusPass, Output: c.LastError}
				if c.State == supervise.StateBackingOff || c.State == supervise.StateFailed {
					o.Status = health.StatusWarn
				}
				if c.Abandoned {
					o.Status = health.StatusWarn
					o.Output = "an abandoned copy is still running; " + c.LastError
				}
				obs = append(obs, o)
			}
		}
		return obs
	})
}
