package oteltest

import (
	"context"
	"slices"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Span is a recording trace.Span that keeps the events added to it; its other methods
// do nothing. A zero Span is ready to use; its methods are safe for concurrent use.
type Span struct {
	noop.Span

	mu     sync.Mutex
	events []Event
}

// Event is an event added to a [Span].
type Event struct {
	Name       string
	Attributes []attribute.KeyValue
}

// ContextWithSpan returns a copy of ctx that carries a new Span, and the span.
func ContextWithSpan(ctx context.Context) (context.Context, *Span) {
	s := &Span{}
	return trace.ContextWithSpan(ctx, s), s
}

// IsRecording reports true: code that adds events only to recording spans adds them.
func (s *Span) IsRecording() bool { return true }

// AddEvent records the event with its attributes.
func (s *Span) AddEvent(name string, opts ...trace.EventOption) {
	cfg := trace.NewEventConfig(opts...)
	attrs := cfg.Attributes()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, Event{Name: name, Attributes: attrs})
}

// Events returns the events added, in order.
func (s *Span) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// EventNames returns the names of the events added, in order.
func (s *Span) EventNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, len(s.events))
	for i, e := range s.events {
		names[i] = e.Name
	}
	return names
}
