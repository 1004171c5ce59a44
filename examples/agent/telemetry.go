package main

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

// The attribute keys of the agent's spans (TELEMETRY.md, section "The agent").
const (
	keyIncident = attribute.Key("selfheal.agent.incident") // the incident id, "web#3"
	keyService  = attribute.Key("selfheal.agent.service")
	keyInstance = attribute.Key("selfheal.agent.instance") // the service's service.instance.id
	keyNode     = attribute.Key("selfheal.agent.node")
	keyFault    = attribute.Key("selfheal.agent.fault")   // what opened the incident: crash, unhealthy, latency...
	keyAction   = attribute.Key("selfheal.agent.action")  // restart, replace, scale-out, rollout-batch, eject, ...
	keyStep     = attribute.Key("selfheal.agent.step")    // what carried a decided action out: start, stop...
	keyOutcome  = attribute.Key("selfheal.agent.outcome") // see the outcome constants
	keyWhy      = attribute.Key("selfheal.agent.why")     // the agent's own words; never a driver's error
	keyDryRun   = attribute.Key("selfheal.agent.dry_run")
)

// Outcomes of an action or incident span.
const (
	outcomeActed      = "acted"      // carried out (an acted event)
	outcomeFailed     = "failed"     // a failed event ended it
	outcomeHeld       = "held"       // a safety rule or the budget held it back
	outcomeDryRun     = "dry_run"    // decided in a dry run: nothing done
	outcomeSuperseded = "superseded" // another decision of the incident came first
	outcomeHealed     = "healed"     // the incident healed (also ends its pending action)
	outcomeUnfinished = "unfinished" // the agent stopped, or too many incidents were open
)

// maxOpenIncidents bounds the incident spans kept open; past it the one whose last
// event is the oldest is ended as unfinished (the status page's history keeps as
// many).
const maxOpenIncidents = 1000

// incidentSpan is an incident's open span and its pending action.
type incidentSpan struct {
	span   trace.Span
	ctx    context.Context
	action trace.Span // a decided action not yet carried out; nil when none
	last   time.Time  // of its latest event
}

// telemetry turns the agent's event stream into spans and the time-to-detect
// histogram. It is used by one goroutine (see watch).
type telemetry struct {
	tracer trace.Tracer // nil: no spans
	detect metric.Float64Histogram
	open   map[string]*incidentSpan
}

func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) (*telemetry, error) {
	t := &telemetry{open: map[string]*incidentSpan{}}
	if tp != nil {
		t.tracer = tp.Tracer("github.com/selfheal-go/selfheal/examples/agent")
	}
	var err error
	t.detect, err = mp.Meter("github.com/selfheal-go/selfheal/examples/agent").Float64Histogram("selfheal.agent.detect.duration",
		metric.WithUnit("s"), metric.WithDescription("from the first sign of a fault (failed probe, exit, silent node) to its detection"))
	return t, err
}

// watch subscribes to events and handles each on a goroutine of its own (a
// subscriber that falls 4096 events behind loses events rather than hold up the
// agent). The function it returns ends the subscription, handles what is still
// queued, ends every open span as unfinished, and returns once the goroutine has.
func (t *telemetry) watch(events *eventlog.Log) (stop func()) {
	c, unsubscribe := events.Subscribe(4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range c {
			t.handle(e)
		}
		t.close(time.Now())
	}()
	return func() {
		unsubscribe()
		<-done
	}
}

// attrs returns the attributes of e's subject.
func attrs(e eventlog.Event) []attribute.KeyValue {
	var kv []attribute.KeyValue
	for _, a := range []struct {
		k attribute.Key
		v string
	}{{keyIncident, e.Incident}, {keyService, e.Service}, {keyInstance, e.Instance}, {keyNode, e.Node}} {
		if a.v != "" {
			kv = append(kv, a.k.String(a.v))
		}
	}
	return kv
}

// handle turns one event into metrics and spans:
//
//   - an event with an incident id opens that incident's span (a root, from the
//     event's time, named selfheal.agent.incident) if it is not open, and is added to
//     it as a span event named after its kind (selfheal.agent.observed, ...);
//   - a decided event starts an action span (selfheal.agent.action, a child of its
//     incident), which the incident's next acted or failed event ends (the step that
//     carried it out), or its next decision (superseded), or its healing; in a dry run
//     it ends at once;
//   - an acted, failed or held event that ends no pending decision is an action span
//     of its own, of no duration;
//   - a healed event ends the incident's span.
func (t *telemetry) handle(e eventlog.Event) {
	if e.DetectMs > 0 && (e.Kind == eventlog.Observed || e.Kind == eventlog.Decided) {
		// The keys of the agent's other metrics (core): service, kind.
		t.detect.Record(context.Background(), e.DetectMs/1e3, metric.WithAttributes(attribute.String("service", e.Service), attribute.String("kind", e.What)))
	}
	if t.tracer == nil {
		return
	}
	at := trace.WithTimestamp(e.Time)
	var inc *incidentSpan
	parent := context.Background()
	if e.Incident != "" {
		inc = t.incident(e)
		parent = inc.ctx
		ev := []attribute.KeyValue{keyAction.String(e.What)}
		if e.Instance != "" {
			ev = append(ev, keyInstance.String(e.Instance))
		}
		if e.Node != "" {
			ev = append(ev, keyNode.String(e.Node))
		}
		if e.Why != "" && e.Kind != eventlog.Failed {
			ev = append(ev, keyWhy.String(e.Why))
		}
		inc.span.AddEvent("selfheal.agent."+e.Kind, at, trace.WithAttributes(ev...))
		inc.last = e.Time
	}
	// end ends the pending action of inc with the outcome and the step e.
	end := func(outcome string, failed bool) bool {
		if inc == nil || inc.action == nil {
			return false
		}
		kv := []attribute.KeyValue{keyOutcome.String(outcome)}
		if outcome == outcomeActed || outcome == outcomeFailed {
			kv = append(kv, keyStep.String(e.What))
			kv = append(kv, attrs(e)...) // the instance and node the step acted on
		}
		inc.action.SetAttributes(kv...)
		if failed {
			inc.action.SetStatus(codes.Error, "failed: "+e.What)
		}
		inc.action.End(at)
		inc.action = nil
		return true
	}
	// single records e as an action span of no duration.
	single := func(outcome string, failed bool) {
		_, s := t.tracer.Start(parent, "selfheal.agent.action", at, trace.WithAttributes(append(attrs(e),
			keyAction.String(e.What), keyOutcome.String(outcome), keyDryRun.Bool(e.DryRun))...))
		if e.Why != "" && !failed {
			s.SetAttributes(keyWhy.String(e.Why))
		}
		if failed {
			s.SetStatus(codes.Error, "failed: "+e.What)
		}
		s.End(at)
	}
	switch e.Kind {
	case eventlog.Decided:
		end(outcomeSuperseded, false)
		if e.DryRun {
			single(outcomeDryRun, false)
			return
		}
		if inc == nil { // a decision of no incident: nothing will end it
			single(outcomeActed, false)
			return
		}
		kv := append(attrs(e), keyAction.String(e.What), keyDryRun.Bool(false))
		if e.Why != "" {
			kv = append(kv, keyWhy.String(e.Why))
		}
		_, inc.action = t.tracer.Start(parent, "selfheal.agent.action", at, trace.WithAttributes(kv...))
	case eventlog.Acted:
		if !end(outcomeActed, false) {
			single(outcomeActed, false)
		}
	case eventlog.Failed:
		if !end(outcomeFailed, true) {
			single(outcomeFailed, true)
		}
	case eventlog.Held:
		single(outcomeHeld, false)
	case eventlog.Healed:
		if inc != nil {
			end(outcomeHealed, false)
			inc.span.SetAttributes(keyOutcome.String(outcomeHealed))
			inc.span.SetStatus(codes.Ok, "")
			inc.span.End(at)
			delete(t.open, e.Incident)
		}
	}
}

// incident returns the open span of e's incident, opening it if need be.
func (t *telemetry) incident(e eventlog.Event) *incidentSpan {
	if inc := t.open[e.Incident]; inc != nil {
		return inc
	}
	if len(t.open) >= maxOpenIncidents {
		var oldest string
		for id, inc := range t.open {
			if oldest == "" || inc.last.Before(t.open[oldest].last) {
				oldest = id
			}
		}
		t.finish(t.open[oldest], e.Time)
		delete(t.open, oldest)
	}
	kv := append(attrs(e), keyFault.String(e.What))
	ctx, span := t.tracer.Start(context.Background(), "selfheal.agent.incident", trace.WithNewRoot(),
		trace.WithTimestamp(e.Time), trace.WithAttributes(kv...))
	inc := &incidentSpan{span: span, ctx: ctx, last: e.Time}
	t.open[e.Incident] = inc
	return inc
}

// finish ends inc, unfinished, at now.
func (t *telemetry) finish(inc *incidentSpan, now time.Time) {
	at := trace.WithTimestamp(now)
	if inc.action != nil {
		inc.action.SetAttributes(keyOutcome.String(outcomeUnfinished))
		inc.action.End(at)
	}
	inc.span.SetAttributes(keyOutcome.String(outcomeUnfinished))
	inc.span.End(at)
}

// close ends every open span, unfinished, at now.
func (t *telemetry) close(now time.Time) {
	for id, inc := range t.open {
		t.finish(inc, now)
		delete(t.open, id)
	}
}

// durationBuckets gives the agent's duration histograms (selfheal.agent.*.duration:
// time to detect, time to heal) buckets in seconds that tell 100 ms from 2 s; the
// SDK's default boundaries (0, 5, 10, 25...) would put every heal of a demo in one.
var durationBuckets = sdkmetric.NewView(
	sdkmetric.Instrument{Name: "selfheal.agent.*.duration", Kind: sdkmetric.InstrumentKindHistogram},
	sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
		Boundaries: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600},
	}},
)
