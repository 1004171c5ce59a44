package healgrpc

import (
	"context"
	"math"
	"time"

	"github.com/selfheal-go/selfheal/health"
)

// The names of the health checks [Server.Checks] publishes, the gRPC side of
// heal's http:* components.
const (
	CheckResponseTime = "grpc:responseTime" // entries "p50" and "p99", in ms
	CheckUtilization  = "grpc:utilization"  // in-flight / MaxConcurrent, in %
	CheckInFlight     = "grpc:inFlight"     // calls being served
	CheckShed         = "grpc:shed"         // calls shed in the recorder's window
	CheckThroughput   = "grpc:throughput"   // unary calls served per second
)

// Checks returns the checks that publish s's recorder and load in a health
// registry's document: grpc:responseTime (entries p50 and p99, ms), grpc:inFlight,
// grpc:shed, grpc:throughput (calls/s) and, when s has a concurrency bound,
// grpc:utilization (%). They are readiness checks that never fail (measurements,
// not verdicts), read memory only, and run inline. Register each with
// health.Registry.Register.
func (s *Server) Checks() []health.Check {
	one := func(name string, obs func(ServerSnapshot) []health.Observation) health.Check {
		return health.Check{
			Name:          name,
			Kinds:         health.Readiness,
			ComponentType: "component",
			NonCritical:   true,
			CacheTTL:      health.Off,
			Inline:        true,
			Observe: func(context.Context) ([]health.Observation, error) {
				return obs(s.Snapshot()), nil
			},
		}
	}
	value := func(v any, unit string) []health.Observation {
		return []health.Observation{{ObservedValue: v, ObservedUnit: unit}}
	}
	checks := []health.Check{
		one(CheckResponseTime, func(sn ServerSnapshot) []health.Observation {
			return []health.Observation{
				{ComponentID: "p50", ObservedValue: ms(sn.P50), ObservedUnit: "ms"},
				{ComponentID: "p99", ObservedValue: ms(sn.P99), ObservedUnit: "ms"},
			}
		}),
		one(CheckInFlight, func(sn ServerSnapshot) []health.Observation { return value(sn.InFlight, "calls") }),
		one(CheckShed, func(sn ServerSnapshot) []health.Observation { return value(sn.Shed, "calls") }),
		one(CheckThroughput, func(sn ServerSnapshot) []health.Observation {
			return value(math.Round(sn.Throughput*100)/100, "calls/s")
		}),
	}
	if s.max > 0 {
		checks = append(checks, one(CheckUtilization, func(sn ServerSnapshot) []health.Observation {
			return value(math.Round(float64(sn.InFlight)/float64(sn.MaxConcurrent)*10000)/100, "%")
		}))
	}
	return checks
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }
