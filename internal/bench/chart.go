package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// The latency chart: the cumulative distribution of every latency series
// on a log time axis, with the targets as dashed lines. A CDF shows the
// whole distribution (median, tail, outliers) in one line per series, which
// is what a reader comparing against p50/p99 targets needs.

type chartSeries struct {
	label   string
	color   string
	samples []float64 // sorted, ms
}

const (
	chartWidth, chartHeight = 960, 480
	plotLeft, plotTop       = 70, 50
	plotRight, plotBottom   = 700, 420
)

func (r *results) chartSeries() []chartSeries {
	var out []chartSeries
	add := func(label, color string, s latencyStats) {
		if s.Count == 0 {
			return
		}
		label = fmt.Sprintf("%s: p50 %s, p99 %s (n=%d)", label, ms(s.P50), ms(s.P99), s.Count)
		out = append(out, chartSeries{label: label, color: color, samples: s.SamplesMs})
	}
	if r.EdgeToCloud != nil {
		add("edge → cloud", "#1f77b4", r.EdgeToCloud.All)
	}
	if r.CloudToEdge != nil {
		add("cloud → edge", "#ff7f0e", r.CloudToEdge.All)
	}
	colors := map[string]string{"rest": "#2ca02c", "mqtt": "#d62728"}
	for _, c := range r.Commands {
		add("command, "+strings.ToUpper(c.Transport), colors[c.Transport], c.Latency)
	}
	if p := r.Pools; p != nil && p.Commands != nil {
		add(fmt.Sprintf("command, %d pools at once", p.Pools), "#9467bd", p.Commands.Latency)
	}
	return out
}

// chart renders the SVG.
func (r *results) chart() string {
	series := r.chartSeries()
	lo, hi := decadeRange(series)
	x := func(v float64) float64 {
		v = math.Min(math.Max(v, lo), hi)
		return plotLeft + (math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*(plotRight-plotLeft)
	}
	y := func(frac float64) float64 { return plotBottom - frac*(plotBottom-plotTop) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, chartHeight, chartWidth, chartHeight)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartWidth, chartHeight)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", plotLeft,
		html.EscapeString(fmt.Sprintf("edgebridge latency, %s devices (%s run, %s)", count(r.Devices), r.Mode, r.StartedAt.UTC().Format("2006-01-02"))))
	drawGrid(&b, lo, hi, x, y)
	for _, t := range []struct {
		ms    float64
		label string
	}{{50, "50 ms"}, {200, "200 ms"}, {500, "500 ms"}} {
		if t.ms < lo || t.ms > hi {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#888" stroke-dasharray="5,4"/>`+"\n", x(t.ms), plotTop, x(t.ms), plotBottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#666" text-anchor="middle">target %s</text>`+"\n", x(t.ms), plotTop-6, t.label)
	}
	for i, s := range series {
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.color, cdfPoints(s.samples, x, y))
		ly := plotTop + 10 + i*22
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", plotRight+20, ly, plotRight+44, ly, s.color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", plotRight+50, ly+4, html.EscapeString(s.label))
	}
	if len(series) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#666">no latencies measured</text>`+"\n", plotLeft+20, plotTop+40)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// decadeRange is the log axis' extent: whole decades around every sample,
// at least 1 ms to 1 s so that the targets show.
func decadeRange(series []chartSeries) (lo, hi float64) {
	lo, hi = 1, 1000
	for _, s := range series {
		if len(s.samples) == 0 {
			continue
		}
		lo = math.Min(lo, math.Pow(10, math.Floor(math.Log10(math.Max(s.samples[0], 0.01)))))
		hi = math.Max(hi, math.Pow(10, math.Ceil(math.Log10(math.Max(s.samples[len(s.samples)-1], 0.01)))))
	}
	return lo, hi
}

func drawGrid(b *strings.Builder, lo, hi float64, x func(float64) float64, y func(float64) float64) {
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n",
		plotLeft, plotTop, plotRight-plotLeft, plotBottom-plotTop)
	for d := lo; d <= hi*1.0001; d *= 10 {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(d), plotTop, x(d), plotBottom)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(d), plotBottom+18, axisLabel(d))
	}
	for p := 0; p <= 100; p += 25 {
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", plotLeft, y(float64(p)/100), plotRight, y(float64(p)/100))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%d%%</text>`+"\n", plotLeft-6, y(float64(p)/100)+4, p)
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">latency (log scale)</text>`+"\n", (plotLeft+plotRight)/2, plotBottom+40)
	fmt.Fprintf(b, `<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">share of changes at or below</text>`+"\n",
		(plotTop+plotBottom)/2, (plotTop+plotBottom)/2)
}

func axisLabel(msValue float64) string {
	if msValue >= 1000 {
		return fmt.Sprintf("%g s", msValue/1000)
	}
	return fmt.Sprintf("%g ms", msValue)
}

// cdfPoints draws the empirical CDF as steps: at each sample the share
// rises by 1/n.
func cdfPoints(sorted []float64, x func(float64) float64, y func(float64) float64) string {
	var b strings.Builder
	n := float64(len(sorted))
	prev := 0.0
	for i, v := range sorted {
		fmt.Fprintf(&b, "%.1f,%.1f %.1f,%.1f ", x(v), y(prev), x(v), y(float64(i+1)/n))
		prev = float64(i+1) / n
	}
	return strings.TrimSpace(b.String())
}
