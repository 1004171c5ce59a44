package core

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// The charts are SVG rendered here, on the server: the page needs no library and
// works offline, and the browser only swaps the HTML the agent pushes.

const (
	chartW, chartH             = 360.0, 150.0
	padL, padR, padT, padB     = 40.0, 8.0, 16.0, 20.0
	plotW, plotH               = chartW - padL - padR, chartH - padT - padB
	maxColumns             int = int(plotW) // points per line at most: one per pixel column
)

// chartLine is one series of a chart. Each line is told apart by its dash pattern
// and its name in the legend, not by colour alone.
type chartLine struct {
	Name  string
	Class string // line-a, line-b, line-c: colour and dash pattern (CSS)
	Dash  string // the SVG dash pattern, repeated in the legend
	// Value returns the sample's value; ok false leaves a gap.
	Value func(Sample) (v float64, ok bool)
	// Agg picks a pixel column's value when samples share it: the minimum keeps
	// dips (ready replicas, success) visible, the maximum spikes (latency).
	Min bool
}

type chartSpec struct {
	Title   string
	Unit    string
	YMax    float64 // fixed top of the y axis; 0: from the data
	Lines   []chartLine
	Empty   string // said instead of a chart when no line has a point
	Percent bool
}

// renderChart draws spec over samples from from to to, with markers on the time
// axis. The SVG carries data-points (how many points it drew) for tests.
func renderChart(spec chartSpec, samples []Sample, markers []marker, from, to time.Time) template.HTML {
	span := to.Sub(from).Seconds()
	x := func(t time.Time) float64 { return padL + plotW*math.Max(0, math.Min(1, t.Sub(from).Seconds()/span)) }
	type pt struct {
		x, y float64
		gap  bool
	}
	// Reduce each line to one value per pixel column.
	cols := make([][]pt, len(spec.Lines))
	ymax := spec.YMax
	points := 0
	for li, ln := range spec.Lines {
		last := -1
		for _, s := range samples {
			v, ok := ln.Value(s)
			if !ok || !finiteF(v) {
				if n := len(cols[li]); n > 0 && !cols[li][n-1].gap {
					cols[li] = append(cols[li], pt{gap: true})
				}
				last = -1
				continue
			}
			c := int(x(s.Time))
			if c == last {
				p := &cols[li][len(cols[li])-1]
				if ln.Min && v < p.y || !ln.Min && v > p.y {
					p.y = v
				}
				if spec.YMax == 0 && v > ymax {
					ymax = v // a column's other samples set the scale too
				}
				continue
			}
			last = c
			cols[li] = append(cols[li], pt{x: float64(c), y: v})
			points++
			if spec.YMax == 0 && v > ymax {
				ymax = v
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<figure class="chart"><figcaption>%s</figcaption>`, html.EscapeString(spec.Title))
	if points == 0 {
		fmt.Fprintf(&b, `<p class="nodata" data-points="0">%s</p></figure>`, html.EscapeString(spec.Empty))
		return template.HTML(b.String())
	}
	if ymax <= 0 {
		ymax = 1
	}
	ymax = niceCeil(ymax)
	y := func(v float64) float64 { return padT + plotH*(1-math.Max(0, math.Min(1, v/ymax))) }
	fmt.Fprintf(&b, `<svg viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="%s" data-points="%d">`,
		chartW, chartH, chartW, chartH, html.EscapeString(spec.Title), points)
	// Axes and grid: 0, half and the top.
	for _, f := range []float64{0, .5, 1} {
		yy := y(ymax * f)
		fmt.Fprintf(&b, `<line class="grid" x1="%g" y1="%.1f" x2="%g" y2="%.1f"/>`, padL, yy, padL+plotW, yy)
		fmt.Fprintf(&b, `<text class="tick" x="%g" y="%.1f" text-anchor="end">%s</text>`, padL-4, yy+4, html.EscapeString(axisLabel(ymax*f, spec)))
	}
	fmt.Fprintf(&b, `<text class="tick" x="%g" y="%g">-%s</text>`, padL, chartH-4, shortDur(to.Sub(from)))
	fmt.Fprintf(&b, `<text class="tick" x="%g" y="%g" text-anchor="end">now</text>`, padL+plotW, chartH-4)
	// The agent's actions.
	for _, m := range markers {
		if m.Time.Before(from) || m.Time.After(to) {
			continue
		}
		mx := x(m.Time)
		fmt.Fprintf(&b, `<g class="marker m-%s"><title>%s %s: %s</title><line x1="%.1f" y1="%g" x2="%.1f" y2="%g"/><text x="%.1f" y="%g" text-anchor="middle">%s</text></g>`,
			strings.ReplaceAll(m.Label, " ", "-"), html.EscapeString(m.Time.Format("15:04:05")), html.EscapeString(m.Label), html.EscapeString(m.Why),
			mx, padT, mx, padT+plotH, mx, padT-4, markerLetter(m.Label))
	}
	for li, ln := range spec.Lines {
		var d strings.Builder
		pen := false
		for _, p := range cols[li] {
			if p.gap {
				pen = false
				continue
			}
			if pen {
				fmt.Fprintf(&d, "L%.1f %.1f", p.x, y(p.y))
			} else {
				fmt.Fprintf(&d, "M%.1f %.1f", p.x, y(p.y))
				pen = true
			}
		}
		if d.Len() == 0 {
			continue
		}
		fmt.Fprintf(&b, `<path class="%s" d="%s" stroke-dasharray="%s" fill="none"><title>%s</title></path>`, ln.Class, d.String(), ln.Dash, html.EscapeString(ln.Name))
	}
	b.WriteString(`</svg><ul class="legend">`)
	for _, ln := range spec.Lines {
		fmt.Fprintf(&b, `<li><svg width="24" height="8" aria-hidden="true"><line class="%s" x1="0" y1="4" x2="24" y2="4" stroke-dasharray="%s"/></svg>%s</li>`,
			ln.Class, ln.Dash, html.EscapeString(ln.Name))
	}
	b.WriteString(`</ul></figure>`)
	return template.HTML(b.String())
}

// markerLetter is the letter a marker shows on the time axis; the legend names it.
func markerLetter(label string) string {
	switch label {
	case "restart":
		return "R"
	case "replace":
		return "P"
	case "scale":
		return "S"
	case "rollout batch":
		return "B"
	case "rollback":
		return "K"
	case "eject":
		return "E"
	}
	return "?"
}

func axisLabel(v float64, spec chartSpec) string {
	if spec.Percent {
		return strconv.FormatFloat(v*100, 'f', 0, 64) + "%"
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if v != math.Trunc(v) {
		s = strconv.FormatFloat(v, 'f', 1, 64)
	}
	return s + spec.Unit
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func shortDur(d time.Duration) string {
	if d >= time.Minute {
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return strconv.Itoa(int(d/time.Second)) + "s"
}

func finiteF(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// The charts of a service.
var (
	replicaChart = chartSpec{Title: "replicas: ready, running, wanted", Empty: "no samples yet", Lines: []chartLine{
		{Name: "ready", Class: "line-a", Dash: "none", Min: true, Value: func(s Sample) (float64, bool) { return float64(s.Ready), true }},
		{Name: "running", Class: "line-b", Dash: "6 3", Min: true, Value: func(s Sample) (float64, bool) { return float64(s.Running), true }},
		{Name: "wanted", Class: "line-c", Dash: "2 3", Value: func(s Sample) (float64, bool) { return float64(s.Wanted), true }},
	}}
	latencyChart = chartSpec{Title: "latency (health documents, mean of ready instances)", Unit: "ms",
		Empty: "no latency yet: no ready instance reports http:responseTime", Lines: []chartLine{
			{Name: "p50", Class: "line-a", Dash: "none", Value: func(s Sample) (float64, bool) { return s.P50Ms, s.P50Ms >= 0 }},
			{Name: "p99", Class: "line-b", Dash: "6 3", Value: func(s Sample) (float64, bool) { return s.P99Ms, s.P99Ms >= 0 }},
		}}
	successChart = chartSpec{Title: "client success rate at the front door", YMax: 1, Percent: true,
		Empty: "no client requests through the front door in this window", Lines: []chartLine{
			{Name: "success (not failed by the front door)", Class: "line-a", Dash: "none", Min: true,
				Value: func(s Sample) (float64, bool) { return s.Success, s.Success >= 0 }},
		}}
)
