package supervise

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/internal/telemetry"
)

// cause is why a child was restarted; it is the selfheal.restart.cause attribute
// of the restarts metric and Event.Cause.
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
	tracer    trace.Tracer
}

// The span names: a restart and a supervisor giving up are spans of their own,
// children of the span in the context of Serve.
const (
	spanRestart = "selfheal.supervise.restart"
	spanGaveUp  = "selfheal.supervise.gave_up"
)

func newMetrics(mp metric.MeterProvider, tp trace.TracerProvider) *metrics {
	m := &metrics{meter: telemetry.Meter(mp, "supervise"), tracer: telemetry.Tracer(tp, "supervise")}
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
	opt := metric.WithAttributeSet(attribute.NewSet(telemetry.KeySupervisorName.String(path)))
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
			telemetry.KeySupervisorName.String(path),
			telemetry.KeyChildName.String(c.name),
			telemetry.KeyRestartCause.String(z.String()),
		))}
	}
	return c.opts[z]
}

// restarted counts a restart of child c for cause z (opts from restartOpts) and
// records its span, with the error that caused it, if any.
func (m *metrics) restarted(ss *session, opts []metric.AddOption, c *child, z cause, delay time.Duration, err error) {
	m.restarts.Add(context.Background(), 1, opts...)
	_, span := m.tracer.Start(ss.parent(), spanRestart, trace.WithAttributes(
		telemetry.KeySupervisorName.String(ss.path),
		telemetry.KeyChildName.String(c.name),
		telemetry.KeyRestartCause.String(z.String()),
		telemetry.KeyDelay.Float64(delay.Seconds())))
	telemetry.EndSpan(span, err)
}

// gaveUp records the span of a supervisor that gives up with err.
func (m *metrics) gaveUp(ss *session, err error) {
	_, span := m.tracer.Start(ss.parent(), spanGaveUp, trace.WithAttributes(telemetry.KeySupervisorName.String(ss.path)))
	telemetry.EndSpan(span, err)
}

// parent is the parent context of the session's spans.
func (ss *session) parent() context.Context {
	if ss.base == nil {
		return context.Background()
	}
	return ss.base
}
