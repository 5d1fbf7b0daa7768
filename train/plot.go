package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// PlotFile is the SVG of a run's loss and accuracy curves in OutDir,
// redrawn after every validation.
const PlotFile = "metrics.svg"

// The plot's geometry, in SVG user units: two panels side by side.
const (
	plotPanelW, plotPanelH = 420, 280
	plotMargin             = 48
)

// plotSeries is one curve: a value of every record, drawn in color.
type plotSeries struct {
	name, color string
	value       func(Metrics) float64
}

// WritePlot draws ms (in step order) as an SVG to path: the training and
// validation loss against the step on the left, the accuracies on the
// right. The file is replaced atomically (a temporary file renamed), so a
// viewer never sees half a plot.
func WritePlot(path string, ms []Metrics) error {
	var b bytes.Buffer
	w := 2*plotPanelW + plotMargin
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", w, plotPanelH+plotMargin)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	plotPanel(&b, 0, "loss", ms, []plotSeries{
		{"train", "#1f77b4", func(m Metrics) float64 { return m.TrainLoss }},
		{"validation", "#d62728", func(m Metrics) float64 { return m.ValLoss }},
	})
	plotPanel(&b, plotPanelW+plotMargin/2, "accuracy", ms, []plotSeries{
		{"train", "#1f77b4", func(m Metrics) float64 { return m.TrainAcc }},
		{"validation", "#d62728", func(m Metrics) float64 { return m.ValAcc }},
	})
	b.WriteString("</svg>\n")
	tmp, err := os.CreateTemp(filepath.Dir(path), ".plot-*")
	if err != nil {
		return fmt.Errorf("train: %s: %w", path, err)
	}
	_, werr := tmp.Write(b.Bytes())
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("train: %s: %w", path, werr)
	}
	return nil
}

// plotPanel draws one panel at x0: a frame with the value range and the
// step range as labels, a polyline per series, and a legend.
func plotPanel(b *bytes.Buffer, x0 int, title string, ms []Metrics, series []plotSeries) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, m := range ms {
		for _, s := range series {
			if v := s.value(m); !math.IsNaN(v) && !math.IsInf(v, 0) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if lo > hi {
		lo, hi = 0, 1
	}
	if hi-lo < 1e-9 {
		lo, hi = lo-0.5, hi+0.5
	}
	step0, step1 := 0, 1
	if len(ms) > 0 {
		step0, step1 = ms[0].Step, max(ms[len(ms)-1].Step, ms[0].Step+1)
	}
	left, top := x0+plotMargin, plotMargin/2
	pw, ph := plotPanelW-plotMargin, plotPanelH-plotMargin/2
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="13">%s</text>`+"\n", left, top-6, title)
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%.4g</text>`+"\n", left-4, top+10, hi)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%.4g</text>`+"\n", left-4, top+ph, lo)
	fmt.Fprintf(b, `<text x="%d" y="%d">step %d</text>`+"\n", left, top+ph+14, step0)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">step %d</text>`+"\n", left+pw, top+ph+14, step1)
	for i, s := range series {
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="`, s.color)
		for _, m := range ms {
			v := s.value(m)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			x := float64(left) + float64(pw)*float64(m.Step-step0)/float64(step1-step0)
			y := float64(top+ph) - float64(ph)*(v-lo)/(hi-lo)
			fmt.Fprintf(b, "%.1f,%.1f ", x, y)
		}
		b.WriteString("\"/>\n")
		fmt.Fprintf(b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", left+pw-80, top+16+14*i, s.color, s.name)
	}
}

// readMetrics reads the records of a metrics.jsonl (none if it does not
// exist), for a resumed run's plot.
func readMetrics(path string) ([]Metrics, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer f.Close()
	var ms []Metrics
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var m Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("train: %s line %d: %w", path, line, err)
		}
		ms = append(ms, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("train: %s: %w", path, err)
	}
	return ms, nil
}
