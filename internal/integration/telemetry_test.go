package integration_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
)

// table is what TELEMETRY.md lists, or what the code emitted: by name, the set of
// attribute (or log) keys, and for instruments the unit too.
type table struct {
	metrics map[string]string   // name -> "unit: key, key"
	spans   map[string][]string // name -> keys
	events  map[string][]string
	logs    map[string][]string // message -> keys
}

func newTable() *table {
	return &table{metrics: map[string]string{}, spans: map[string][]string{}, events: map[string][]string{}, logs: map[string][]string{}}
}

var code = regexp.MustCompile("`([^`]*)`")

// parseTelemetryMD reads the tables of the root TELEMETRY.md.
func parseTelemetryMD(t *testing.T) *table {
	t.Helper()
	b, err := os.ReadFile("../../TELEMETRY.md")
	require.NoError(t, err)
	want := newTable()
	section := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = h
			continue
		}
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		name := code.FindStringSubmatch(cells[0])[1]
		keys := func(cell string) []string {
			var ks []string
			for _, m := range code.FindAllStringSubmatch(cell, -1) {
				ks = append(ks, m[1])
			}
			return sorted(ks)
		}
		switch section {
		case "Metrics":
			want.metrics[name] = code.FindStringSubmatch(cells[2])[1] + ": " + strings.Join(keys(cells[3]), ", ")
		case "Spans":
			want.spans[name] = keys(cells[2])
		case "Span events":
			want.events[name] = keys(cells[2])
		case "Log records":
			want.logs[name] = keys(cells[2])
		}
	}
	require.NotEmpty(t, want.metrics)
	require.NotEmpty(t, want.spans)
	require.NotEmpty(t, want.events)
	require.NotEmpty(t, want.logs)
	return want
}

func sorted(ks []string) []string {
	sort.Strings(ks)
	return slices.Compact(ks)
}

// sdk is a real OpenTelemetry SDK: a ManualReader for the metrics, a SpanRecorder
// for the spans, and a log handler that records every record's message and keys.
type sdk struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	log    *slog.Logger
	logs   *logRecorder

	mu      sync.Mutex
	metrics map[string]map[string]bool // collected so far: "unit: " -> keys, by name
}

func newSDK(t *testing.T) *sdk {
	s := &sdk{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder(), logs: &logRecorder{keys: map[string][]string{}},
		metrics: map[string]map[string]bool{}}
	s.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	s.log = slog.New(s.logs)
	t.Cleanup(func() {
		_ = s.mp.Shutdown(context.Background())
		_ = s.tp.Shutdown(context.Background())
	})
	return s
}

// caller returns a context whose span (the caller's) is recording, and the function
// that ends it.
func (s *sdk) caller(ctx context.Context) (context.Context, func()) {
	ctx, span := s.tp.Tracer("test").Start(ctx, "test.caller")
	return ctx, func() { span.End() }
}

// collect collects the metrics now, for instruments observed only for a while
// (a supervisor's, while it serves), adding them to what emitted returns.
func (s *sdk) collect(t *testing.T) {
	var rm metricdata.ResourceMetrics
	require.NoError(t, s.reader.Collect(context.Background(), &rm))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var ks []string
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					ks = append(ks, setKeys(p.Attributes.ToSlice())...)
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					ks = append(ks, setKeys(p.Attributes.ToSlice())...)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					ks = append(ks, setKeys(p.Attributes.ToSlice())...)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					ks = append(ks, setKeys(p.Attributes.ToSlice())...)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					ks = append(ks, setKeys(p.Attributes.ToSlice())...)
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					ks = append(ks, setKeys(p.Attributes.ToSlice())...)
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
			if len(ks) == 0 {
				continue // an observable instrument with no owner left
			}
			if s.metrics[m.Name] == nil {
				s.metrics[m.Name] = map[string]bool{}
			}
			s.metrics[m.Name][m.Unit+": "] = true
			for _, k := range ks {
				s.metrics[m.Name][k] = true
			}
		}
	}
}

// emitted collects what the SDK recorded into a table.
func (s *sdk) emitted(t *testing.T) *table {
	t.Helper()
	s.collect(t)
	got := newTable()
	s.mu.Lock()
	for name, set := range s.metrics {
		var unit string
		var ks []string
		for k := range set {
			if u, ok := strings.CutSuffix(k, ": "); ok {
				unit = u
			} else {
				ks = append(ks, k)
			}
		}
		got.metrics[name] = unit + ": " + strings.Join(sorted(ks), ", ")
	}
	s.mu.Unlock()
	for _, sp := range s.spans.Ended() {
		if sp.Name() == "test.caller" {
			for _, ev := range sp.Events() {
				got.events[ev.Name] = sorted(append(got.events[ev.Name], setKeys(ev.Attributes)...))
			}
			continue
		}
		got.spans[sp.Name()] = sorted(append(got.spans[sp.Name()], setKeys(sp.Attributes())...))
		for _, ev := range sp.Events() {
			got.events[ev.Name] = sorted(append(got.events[ev.Name], setKeys(ev.Attributes)...))
		}
	}
	s.logs.mu.Lock()
	for m, ks := range s.logs.keys {
		got.logs[m] = sorted(slices.Clone(ks))
	}
	s.logs.mu.Unlock()
	return got
}

func setKeys(kvs []attribute.KeyValue) []string {
	ks := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		ks = append(ks, string(kv.Key))
	}
	return ks
}

// logRecorder is a slog.Handler that keeps, by message, the keys of the records.
type logRecorder struct {
	mu   sync.Mutex
	keys map[string][]string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	ks := h.keys[r.Message]
	if ks == nil {
		ks = []string{}
	}
	r.Attrs(func(a slog.Attr) bool {
		ks = append(ks, a.Key)
		return true
	})
	h.keys[r.Message] = sorted(ks)
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

var errBoom = errors.New("boom")

// TestTelemetryTable runs every package under the SDK through every path that
// reports something, and checks that what they emit is exactly TELEMETRY.md's
// tables: every instrument with its unit and attribute keys, every span and span
// event with theirs, every log message with its keys.
func TestTelemetryTable(t *testing.T) {
	defer goleak.VerifyNone(t)
	want := parseTelemetryMD(t)
	s := newSDK(t)
	for _, run := range scenarios {
		run(t, s)
	}
	got := s.emitted(t)
	assert.Equal(t, want.metrics, got.metrics, "metrics: TELEMETRY.md (-) against the code (+)")
	assert.Equal(t, want.spans, got.spans, "spans")
	assert.Equal(t, want.events, got.events, "span events")
	assert.Equal(t, want.logs, got.logs, "log records")
}

// scenarios are the runs of each package; the files telemetry_<pkg>_test.go add
// theirs.
var scenarios []func(*testing.T, *sdk)
