package oteltest

import (
	"context"
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	"go.opentelemetry.io/otel/metric/noop"
)

// MeterProvider is a metric.MeterProvider that records what is reported to the
// instruments of its meters. Create one with [NewMeterProvider]. Its methods are safe
// for concurrent use. Instruments are identified by name alone, whatever the meter's
// scope.
type MeterProvider struct {
	embedded.MeterProvider

	mu          sync.Mutex
	scopes      []string
	instruments []string
	sums        points // counters and up-down counters
	gauges      points // synchronous gauges: last value
	records     map[string][]Record
	regs        []*Registration
	instCbs     []func(context.Context, *collector) error // callbacks given to observable instruments
}

// NewMeterProvider returns a MeterProvider that has recorded nothing.
func NewMeterProvider() *MeterProvider {
	return &MeterProvider{sums: points{}, gauges: points{}, records: map[string][]Record{}}
}

// Record is one measurement of a histogram. Int64 histograms record float64(value).
type Record struct {
	Attributes attribute.Set
	Value      float64
}

// Meter returns a meter whose instruments record into p. The scope name is kept
// (see [MeterProvider.Scopes]); the options are ignored.
func (p *MeterProvider) Meter(name string, _ ...metric.MeterOption) metric.Meter {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.Contains(p.scopes, name) {
		p.scopes = append(p.scopes, name)
	}
	return &meter{p: p}
}

// Scopes returns the distinct scope names meters were requested for, in the order of
// their first request.
func (p *MeterProvider) Scopes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.scopes)
}

// InstrumentNames returns the name of every instrument created, in order, once per
// creation.
func (p *MeterProvider) InstrumentNames() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.instruments)
}

// Int64Sum returns the sum added to the int64 counter or up-down counter name with
// exactly the attributes kvs.
func (p *MeterProvider) Int64Sum(name string, kvs ...attribute.KeyValue) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, _ := get[int64](p.sums, name, kvs)
	return v
}

// Float64Sum is [MeterProvider.Int64Sum] for float64 instruments.
func (p *MeterProvider) Float64Sum(name string, kvs ...attribute.KeyValue) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, _ := get[float64](p.sums, name, kvs)
	return v
}

// Int64SumBy returns the sums of the int64 counter or up-down counter name by the
// [Key] of their attribute sets: the sums of sets that share it are added.
func (p *MeterProvider) Int64SumBy(name string, keys ...attribute.Key) map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return by[int64](p.sums, name, keys, true)
}

// Float64SumBy is [MeterProvider.Int64SumBy] for float64 instruments.
func (p *MeterProvider) Float64SumBy(name string, keys ...attribute.Key) map[string]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return by[float64](p.sums, name, keys, true)
}

// Int64Gauge returns the last value recorded by the int64 gauge name with exactly
// the attributes kvs, and whether there is one.
func (p *MeterProvider) Int64Gauge(name string, kvs ...attribute.KeyValue) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return get[int64](p.gauges, name, kvs)
}

// Float64Gauge is [MeterProvider.Int64Gauge] for float64 gauges.
func (p *MeterProvider) Float64Gauge(name string, kvs ...attribute.KeyValue) (float64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return get[float64](p.gauges, name, kvs)
}

// Records returns the measurements of the histogram name, in order.
func (p *MeterProvider) Records(name string) []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.records[name])
}

// Key returns the values of keys in set, joined by a space; a missing key's value
// is "".
func Key(set attribute.Set, keys ...attribute.Key) string {
	vals := make([]string, len(keys))
	for i, k := range keys {
		if v, ok := set.Value(k); ok {
			vals[i] = v.String()
		}
	}
	return strings.Join(vals, " ")
}

type number interface{ int64 | float64 }

// point is the value of one instrument and attribute set.
type point struct {
	set attribute.Set
	i   int64
	f   float64
}

type pointKey struct {
	name string
	set  attribute.Distinct
}

type points map[pointKey]*point

func (ps points) at(name string, set attribute.Set) *point {
	k := pointKey{name, set.Equivalent()}
	pt := ps[k]
	if pt == nil {
		pt = &point{set: set}
		ps[k] = pt
	}
	return pt
}

func value[N number](pt *point) N {
	var n N
	if _, ok := any(n).(int64); ok {
		return N(pt.i)
	}
	return N(pt.f)
}

// update adds v to pt, or sets pt to v.
func update[N number](pt *point, v N, add bool) {
	if add {
		v += value[N](pt)
	}
	switch v := any(v).(type) {
	case int64:
		pt.i = v
	case float64:
		pt.f = v
	}
}

func get[N number](ps points, name string, kvs []attribute.KeyValue) (N, bool) {
	set := attribute.NewSet(kvs...)
	pt := ps[pointKey{name, set.Equivalent()}]
	if pt == nil {
		return 0, false
	}
	return value[N](pt), true
}

// by returns the values of name by the Key of their sets; add says whether values
// that share a key are added (else one of them is kept).
func by[N number](ps points, name string, keys []attribute.Key, add bool) map[string]N {
	m := map[string]N{}
	for k, pt := range ps {
		if k.name == name {
			key, v := Key(pt.set, keys...), value[N](pt)
			if add {
				v += m[key]
			}
			m[key] = v
		}
	}
	return m
}

// meter creates instruments that record into p.
type meter struct {
	embedded.Meter
	p *MeterProvider
}

// instrument is what every synchronous instrument holds.
type instrument struct {
	p    *MeterProvider
	name string
}

func (instrument) Enabled(context.Context) bool { return true }

// adder is a counter or an up-down counter.
type adder[N number] struct{ instrument }

func (a adder[N]) Add(_ context.Context, v N, opts ...metric.AddOption) {
	set := metric.NewAddConfig(opts).Attributes()
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	update(a.p.sums.at(a.name, set), v, true)
}

// histogram records every measurement.
type histogram[N number] struct{ instrument }

func (h histogram[N]) Record(_ context.Context, v N, opts ...metric.RecordOption) {
	set := metric.NewRecordConfig(opts).Attributes()
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	h.p.records[h.name] = append(h.p.records[h.name], Record{Attributes: set, Value: float64(v)})
}

// gauge keeps the last measurement.
type gauge[N number] struct{ instrument }

func (g gauge[N]) Record(_ context.Context, v N, opts ...metric.RecordOption) {
	set := metric.NewRecordConfig(opts).Attributes()
	g.p.mu.Lock()
	defer g.p.mu.Unlock()
	update(g.p.gauges.at(g.name, set), v, false)
}

func newSync(m *meter, name string) instrument {
	m.p.mu.Lock()
	defer m.p.mu.Unlock()
	m.p.instruments = append(m.p.instruments, name)
	return instrument{p: m.p, name: name}
}

type (
	int64Counter struct {
		embedded.Int64Counter
		adder[int64]
	}
	int64UpDownCounter struct {
		embedded.Int64UpDownCounter
		adder[int64]
	}
	int64Histogram struct {
		embedded.Int64Histogram
		histogram[int64]
	}
	int64Gauge struct {
		embedded.Int64Gauge
		gauge[int64]
	}
	float64Counter struct {
		embedded.Float64Counter
		adder[float64]
	}
	float64UpDownCounter struct {
		embedded.Float64UpDownCounter
		adder[float64]
	}
	float64Histogram struct {
		embedded.Float64Histogram
		histogram[float64]
	}
	float64Gauge struct {
		embedded.Float64Gauge
		gauge[float64]
	}
)

func (m *meter) Int64Counter(name string, _ ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return int64Counter{adder: adder[int64]{newSync(m, name)}}, nil
}

func (m *meter) Int64UpDownCounter(name string, _ ...metric.Int64UpDownCounterOption) (metric.Int64UpDownCounter, error) {
	return int64UpDownCounter{adder: adder[int64]{newSync(m, name)}}, nil
}

func (m *meter) Int64Histogram(name string, _ ...metric.Int64HistogramOption) (metric.Int64Histogram, error) {
	return int64Histogram{histogram: histogram[int64]{newSync(m, name)}}, nil
}

func (m *meter) Int64Gauge(name string, _ ...metric.Int64GaugeOption) (metric.Int64Gauge, error) {
	return int64Gauge{gauge: gauge[int64]{newSync(m, name)}}, nil
}

func (m *meter) Float64Counter(name string, _ ...metric.Float64CounterOption) (metric.Float64Counter, error) {
	return float64Counter{adder: adder[float64]{newSync(m, name)}}, nil
}

func (m *meter) Float64UpDownCounter(name string, _ ...metric.Float64UpDownCounterOption) (metric.Float64UpDownCounter, error) {
	return float64UpDownCounter{adder: adder[float64]{newSync(m, name)}}, nil
}

func (m *meter) Float64Histogram(name string, _ ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return float64Histogram{histogram: histogram[float64]{newSync(m, name)}}, nil
}

func (m *meter) Float64Gauge(name string, _ ...metric.Float64GaugeOption) (metric.Float64Gauge, error) {
	return float64Gauge{gauge: gauge[float64]{newSync(m, name)}}, nil
}

// observable is the name of an observable instrument, which observers look up.
type observable struct{ name string }

func (o observable) instrumentName() string { return o.name }

type (
	int64ObservableCounter struct {
		noop.Int64ObservableCounter
		observable
	}
	int64ObservableUpDownCounter struct {
		noop.Int64ObservableUpDownCounter
		observable
	}
	int64ObservableGauge struct {
		noop.Int64ObservableGauge
		observable
	}
	float64ObservableCounter struct {
		noop.Float64ObservableCounter
		observable
	}
	float64ObservableUpDownCounter struct {
		noop.Float64ObservableUpDownCounter
		observable
	}
	float64ObservableGauge struct {
		noop.Float64ObservableGauge
		observable
	}
)

// newObservable records the creation of the observable instrument name, and keeps
// the callbacks given to it: bind makes the observer they get.
func newObservable[O any, C ~func(context.Context, O) error](m *meter, name string, cbs []C, bind func(*collector, string) O) observable {
	m.p.mu.Lock()
	defer m.p.mu.Unlock()
	m.p.instruments = append(m.p.instruments, name)
	for _, cb := range cbs {
		m.p.instCbs = append(m.p.instCbs, func(ctx context.Context, c *collector) error { return cb(ctx, bind(c, name)) })
	}
	return observable{name: name}
}

func (m *meter) Int64ObservableCounter(name string, opts ...metric.Int64ObservableCounterOption) (metric.Int64ObservableCounter, error) {
	cbs := metric.NewInt64ObservableCounterConfig(opts...).Callbacks()
	return int64ObservableCounter{observable: newObservable(m, name, cbs, bindInt64)}, nil
}

func (m *meter) Int64ObservableUpDownCounter(name string, opts ...metric.Int64ObservableUpDownCounterOption) (metric.Int64ObservableUpDownCounter, error) {
	cbs := metric.NewInt64ObservableUpDownCounterConfig(opts...).Callbacks()
	return int64ObservableUpDownCounter{observable: newObservable(m, name, cbs, bindInt64)}, nil
}

func (m *meter) Int64ObservableGauge(name string, opts ...metric.Int64ObservableGaugeOption) (metric.Int64ObservableGauge, error) {
	cbs := metric.NewInt64ObservableGaugeConfig(opts...).Callbacks()
	return int64ObservableGauge{observable: newObservable(m, name, cbs, bindInt64)}, nil
}

func (m *meter) Float64ObservableCounter(name string, opts ...metric.Float64ObservableCounterOption) (metric.Float64ObservableCounter, error) {
	cbs := metric.NewFloat64ObservableCounterConfig(opts...).Callbacks()
	return float64ObservableCounter{observable: newObservable(m, name, cbs, bindFloat64)}, nil
}

func (m *meter) Float64ObservableUpDownCounter(name string, opts ...metric.Float64ObservableUpDownCounterOption) (metric.Float64ObservableUpDownCounter, error) {
	cbs := metric.NewFloat64ObservableUpDownCounterConfig(opts...).Callbacks()
	return float64ObservableUpDownCounter{observable: newObservable(m, name, cbs, bindFloat64)}, nil
}

func (m *meter) Float64ObservableGauge(name string, opts ...metric.Float64ObservableGaugeOption) (metric.Float64ObservableGauge, error) {
	cbs := metric.NewFloat64ObservableGaugeConfig(opts...).Callbacks()
	return float64ObservableGauge{observable: newObservable(m, name, cbs, bindFloat64)}, nil
}

// RegisterCallback registers f to run on every [MeterProvider.Collect] until it is
// unregistered. Observations f makes of instruments not in instruments are dropped and
// reported as an error by Collect, as the SDK drops them.
func (m *meter) RegisterCallback(f metric.Callback, instruments ...metric.Observable) (metric.Registration, error) {
	r := &Registration{p: m.p, f: f, allowed: map[string]bool{}}
	for _, inst := range instruments {
		if o, ok := inst.(interface{ instrumentName() string }); ok {
			r.allowed[o.instrumentName()] = true
		}
	}
	m.p.mu.Lock()
	defer m.p.mu.Unlock()
	m.p.regs = append(m.p.regs, r)
	return r, nil
}
