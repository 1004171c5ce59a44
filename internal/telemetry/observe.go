package telemetry

import (
	"context"
	"runtime"
	"sync/atomic"
	"weak"

	"go.opentelemetry.io/otel/metric"
)

// RegisterWeak registers observe with m as the callback of instruments, holding owner
// weakly: while owner is alive the callback calls observe with it, and once owner is
// garbage the callback observes nothing and is unregistered, so that a meter provider
// that outlives its owners (a test suite's, a plugin host's) does not keep them
// alive. observe must not hold owner itself: pass a method expression such as
// (*Breaker).observe, or a function of its arguments only.
func RegisterWeak[T any](m metric.Meter, owner *T, observe func(*T, metric.Observer), instruments ...metric.Observable) error {
	w := weak.Make(owner)
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if v := w.Value(); v != nil {
			observe(v, o)
		}
		return nil
	}, instruments...)
	if err != nil {
		return err
	}
	if reg != nil {
		runtime.AddCleanup(owner, func(reg metric.Registration) { _ = reg.Unregister() }, reg)
	}
	return nil
}

// ObserveCounts reports counts[i] with opts[i] to the observable counter inst, for
// every count that is not zero. Counting in atomics and observing them at
// collection costs a hot path an atomic add, where a synchronous SDK counter costs
// more than a breaker call.
func ObserveCounts(o metric.Observer, inst metric.Int64Observable, counts []atomic.Int64, opts []metric.ObserveOption) {
	for i := range counts {
		if n := counts[i].Load(); n > 0 {
			o.ObserveInt64(inst, n, opts[i])
		}
	}
}
