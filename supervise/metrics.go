package supervise

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// cause is why a child was restarted; it is the "cause" attribute of the
// restarts metric and Event.Cause.
type cause int

const (
	causeError cause = iota
	causePanic
	causeExit
	causeSibling
	numCauses
)

var causeNames = [numCauses]string{"error", "panic", "exit", "sibling"}

func (c cause) String() string { return causeNames[c] }

type metrics struct {
	meter     metric.Meter
	restarts  metric.Int64Counter
	running   metric.Int64ObservableUpDownCounter
	abandoned metric.Int64ObservableGauge
}

func newMetrics(mp metric.MeterProvider) *metrics {
	m := &metrics{meter: telemetry.Meter(mp, "supervise")}
	var err error
	m.restarts, err = m.meter.Int64Counter("selfheal.supervise.restarts",
		metric.WithDescription("Restarts of supervised children, by supervisor, child and cause (error, panic, exit, sibling)."),
		metric.WithUnit("{restart}"))
	if err != nil {
		m.restarts = noop.Int64Counter{}
	}
	m.running, err = m.meter.Int64ObservableUpDownCounter("selfheal.supervise.children.running",
		metric.WithDescription("Children whose Serve is running, by supervisor."),
		metric.WithUnit("{child}"))
	if err != nil {
		m.running = noop.Int64ObservableUpDownCounter{}
	}
	m.abandoned, err = m.meter.Int64ObservableGauge("selfheal.supervise.children.abandoned",
		metric.WithDescription("Abandoned child goroutines (that did not stop within their shutdown timeout) still running, by supervisor."),
		metric.WithUnit("{goroutine}"))
	if err != nil {
		m.abandoned = noop.Int64ObservableGauge{}
	}
	return m
}

// register starts reporting s's running and abandoned children until the
// returned function is called.
func (m *metrics) register(s *Supervisor, path string) func() {
	opt := metric.WithAttributeSet(attribute.NewSet(attribute.String("supervisor", path)))
	reg, err := m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(m.running, s.running.Load(), opt)
		o.ObserveInt64(m.abandoned, s.abandoned.Load(), opt)
		return nil
	}, m.running, m.abandoned)
	if err != nil || reg == nil {
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}

// restartOpts returns the attribute options of child c's restarts for cause
// z, built on first use. s.mu must be held.
func (c *child) restartOpts(path string, z cause) []metric.AddOption {
	if c.opts[z] == nil {
		c.opts[z] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
			attribute.String("supervisor", path),
			attribute.String("child", c.name),
			attribute.String("cause", z.String()),
		))}
	}
	return c.opts[z]
}
