package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Runtime names as they appear in results and on the command line.
const (
	rtEdge  = "edge-resnet"
	rtORT   = "onnxruntime"
	rtTorch = "pytorch"
	// int8: edge-resnet's quantized image (edge-resnet quantize, bench
	// --precision int8) and ONNX Runtime's QDQ model (bench/export_qdq.py).
	rtEdge8 = "edge-resnet-int8"
	rtORT8  = "onnxruntime-int8"
)

// allRuntimes are the fp32 runtimes, the default; int8Runtimes what
// --precision int8 times: our fp32 as the baseline, our int8, ORT's int8.
var (
	allRuntimes  = []string{rtEdge, rtORT, rtTorch}
	int8Runtimes = []string{rtEdge, rtEdge8, rtORT8}
	knownRuntime = []string{rtEdge, rtORT, rtTorch, rtEdge8, rtORT8}
)

func isInt8(rt string) bool { return rt == rtEdge8 || rt == rtORT8 }

// result is one invocation of one runtime's benchmark (its JSON line).
type result struct {
	Runtime   string  `json:"runtime"`
	Version   string  `json:"version,omitempty"`
	Kernel    string  `json:"kernel,omitempty"`    // edge-resnet's kernel path
	Precision string  `json:"precision,omitempty"` // what edge-resnet ran: fp32 or int8
	Model     string  `json:"model"`
	Threads   int     `json:"threads"`
	Runs      int     `json:"runs"`
	MinMs     float64 `json:"min_ms"`
	MedianMs  float64 `json:"median_ms"`
	P90Ms     float64 `json:"p90_ms"`
	Round     int     `json:"round"`
}

type cellKey struct {
	model   string
	threads int
	runtime string
}

// summary aggregates the rounds of one (model, threads, runtime) cell: the
// median of the per-round medians and the minimum over all timed runs.
type summary struct {
	Rounds   int
	MedianMs float64 // median over rounds of each round's median
	MinMs    float64 // fastest single run in any round
	LoMs     float64 // fastest round median
	HiMs     float64 // slowest round median
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func aggregate(results []result) map[cellKey]summary {
	by := map[cellKey][]result{}
	for _, r := range results {
		k := cellKey{r.Model, r.Threads, r.Runtime}
		by[k] = append(by[k], r)
	}
	out := map[cellKey]summary{}
	for k, rs := range by {
		meds := make([]float64, len(rs))
		s := summary{Rounds: len(rs), MinMs: math.Inf(1), LoMs: math.Inf(1), HiMs: math.Inf(-1)}
		for i, r := range rs {
			meds[i] = r.MedianMs
			s.MinMs = min(s.MinMs, r.MinMs)
			s.LoMs = min(s.LoMs, r.MedianMs)
			s.HiMs = max(s.HiMs, r.MedianMs)
		}
		s.MedianMs = median(meds)
		out[k] = s
	}
	return out
}

// roundOrder rotates the runtimes by the round number so that no runtime
// always runs first (right after another's process exits) or last.
func roundOrder(runtimes []string, round int) []string {
	n := len(runtimes)
	out := make([]string, n)
	for i := range runtimes {
		out[i] = runtimes[(i+round)%n]
	}
	return out
}

// relDiff is max|a-b| / max|b|: the error of a relative to the reference b.
func relDiff(a, b []float32) (float64, error) {
	if len(a) != len(b) || len(a) == 0 {
		return 0, fmt.Errorf("logit counts differ: %d vs %d", len(a), len(b))
	}
	var d, m float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		if math.IsNaN(x) || math.IsNaN(y) {
			return math.Inf(1), nil
		}
		d = max(d, math.Abs(x-y))
		m = max(m, math.Abs(y))
	}
	if m == 0 {
		if d == 0 {
			return 0, nil
		}
		return math.Inf(1), nil
	}
	return d / m, nil
}

// targets are the goals: edge-resnet's median latency over ONNX
// Runtime's at batch 1 (at 1 and 2 threads).
var targets = map[string]float64{"resnet50": 1.0, "resnet18": 0.8}

var runtimeTitle = map[string]string{rtEdge: "edge-resnet", rtORT: "ONNX Runtime", rtTorch: "PyTorch",
	rtEdge8: "edge-resnet int8", rtORT8: "ONNX Runtime int8"}

// markdownTable renders the comparison: per model and thread count, each
// runtime's median (and min) ms and edge-resnet's ratios to the others.
func markdownTable(agg map[cellKey]summary, models []string, threads []int, runtimes []string) string {
	var b strings.Builder
	var others []string
	for _, rt := range runtimes {
		if rt != rtEdge {
			others = append(others, rt)
		}
	}
	hasEdge := slices.Contains(runtimes, rtEdge)
	b.WriteString("| model | threads |")
	for _, rt := range runtimes {
		fmt.Fprintf(&b, " %s ms |", runtimeTitle[rt])
	}
	if hasEdge {
		for _, rt := range others {
			fmt.Fprintf(&b, " edge/%s |", shortTitle(rt))
		}
	}
	b.WriteString("\n|---|---:|")
	n := len(runtimes)
	if hasEdge {
		n += len(others)
	}
	b.WriteString(strings.Repeat("---:|", n))
	b.WriteString("\n")
	for _, m := range models {
		for _, t := range threads {
			fmt.Fprintf(&b, "| %s | %d |", m, t)
			for _, rt := range runtimes {
				s, ok := agg[cellKey{m, t, rt}]
				if !ok {
					b.WriteString(" – |")
					continue
				}
				fmt.Fprintf(&b, " %s (%s) |", fmtMs(s.MedianMs), fmtMs(s.MinMs))
			}
			if hasEdge {
				e, eok := agg[cellKey{m, t, rtEdge}]
				for _, rt := range others {
					o, ok := agg[cellKey{m, t, rt}]
					if !eok || !ok {
						b.WriteString(" – |")
						continue
					}
					fmt.Fprintf(&b, " %s (%s) |", fmtRatio(e.MedianMs/o.MedianMs), fmtRatio(e.MinMs/o.MinMs))
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// int8Table renders the int8 comparison: per model and thread count our
// fp32, our int8 and ONNX Runtime's int8, median (min) ms, and the ratios
// issue 4 asks for: our int8 over our fp32 and over ORT's int8.
func int8Table(agg map[cellKey]summary, models []string, threads []int) string {
	var b strings.Builder
	b.WriteString("| model | threads | edge-resnet fp32 ms | edge-resnet int8 ms | ONNX Runtime int8 ms | int8/fp32 (edge) | edge int8/ORT int8 |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range models {
		for _, t := range threads {
			fmt.Fprintf(&b, "| %s | %d |", m, t)
			cells := [3]*summary{}
			for i, rt := range []string{rtEdge, rtEdge8, rtORT8} {
				s, ok := agg[cellKey{m, t, rt}]
				if !ok {
					b.WriteString(" – |")
					continue
				}
				cells[i] = &s
				fmt.Fprintf(&b, " %s (%s) |", fmtMs(s.MedianMs), fmtMs(s.MinMs))
			}
			for _, pair := range [][2]int{{1, 0}, {1, 2}} {
				x, y := cells[pair[0]], cells[pair[1]]
				if x == nil || y == nil {
					b.WriteString(" – |")
					continue
				}
				fmt.Fprintf(&b, " %s (%s) |", fmtRatio(x.MedianMs/y.MedianMs), fmtRatio(x.MinMs/y.MinMs))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// int8Targets are issue 4's goals for ResNet-50: our int8 latency over our
// fp32 by kernel path, and over ONNX Runtime's int8.
const (
	int8OverFP32VNNI = 0.5
	int8OverFP32AVX2 = 0.7
	int8OverORT      = 1.0
)

// int8TargetLines says whether edge-resnet's int8 ResNet-50 meets issue 4's
// goals at each thread count; kernel is the path edge-resnet int8 ran on.
func int8TargetLines(agg map[cellKey]summary, models []string, threads []int, kernel string) []string {
	var out []string
	if !slices.Contains(models, "resnet50") {
		return nil
	}
	verdict := func(r, goal float64) string {
		if r <= goal {
			return "met"
		}
		return fmt.Sprintf("missed by %.2fx", r/goal)
	}
	for _, t := range threads {
		e8, ok8 := agg[cellKey{"resnet50", t, rtEdge8}]
		if !ok8 {
			continue
		}
		if e, ok := agg[cellKey{"resnet50", t, rtEdge}]; ok {
			goal := 0.0
			switch {
			case strings.Contains(kernel, "vnni"):
				goal = int8OverFP32VNNI
			case strings.Contains(kernel, "avx2"):
				goal = int8OverFP32AVX2
			}
			r := e8.MedianMs / e.MedianMs
			if goal > 0 {
				out = append(out, fmt.Sprintf("resnet50, %d thread(s): int8/fp32 %s on the %s path, target <= %.1fx: %s", t, fmtRatio(r), kernel, goal, verdict(r, goal)))
			} else {
				out = append(out, fmt.Sprintf("resnet50, %d thread(s): int8/fp32 %s on the %s path (issue 4 sets targets for the VNNI and AVX2 paths only)", t, fmtRatio(r), kernel))
			}
		}
		if o, ok := agg[cellKey{"resnet50", t, rtORT8}]; ok {
			r := e8.MedianMs / o.MedianMs
			out = append(out, fmt.Sprintf("resnet50, %d thread(s): edge int8/ORT int8 %s, target <= %.1fx: %s", t, fmtRatio(r), int8OverORT, verdict(r, int8OverORT)))
		}
	}
	return out
}

// cosine is the cosine similarity of two logit vectors, and whether their
// top-1 classes agree.
func cosine(a, b []float32) (float64, bool, error) {
	if len(a) != len(b) || len(a) == 0 {
		return 0, false, fmt.Errorf("logit counts differ: %d vs %d", len(a), len(b))
	}
	var ab, aa, bb float64
	ia, ib := 0, 0
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		ab, aa, bb = ab+x*y, aa+x*x, bb+y*y
		if a[i] > a[ia] {
			ia = i
		}
		if b[i] > b[ib] {
			ib = i
		}
	}
	if aa == 0 || bb == 0 || math.IsNaN(ab) {
		return math.NaN(), false, nil
	}
	return ab / math.Sqrt(aa*bb), ia == ib, nil
}

// spreadTable shows, per cell, the fastest and slowest round median: how
// much the rounds disagreed, i.e. how far to trust the table's medians.
func spreadTable(agg map[cellKey]summary, models []string, threads []int, runtimes []string) string {
	var b strings.Builder
	b.WriteString("| model | threads |")
	for _, rt := range runtimes {
		fmt.Fprintf(&b, " %s |", runtimeTitle[rt])
	}
	b.WriteString("\n|---|---:|" + strings.Repeat("---:|", len(runtimes)) + "\n")
	for _, m := range models {
		for _, t := range threads {
			fmt.Fprintf(&b, "| %s | %d |", m, t)
			for _, rt := range runtimes {
				s, ok := agg[cellKey{m, t, rt}]
				if !ok {
					b.WriteString(" – |")
					continue
				}
				fmt.Fprintf(&b, " %s–%s |", fmtMs(s.LoMs), fmtMs(s.HiMs))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// targetLines says, per model with a target, whether edge-resnet meets it
// against ONNX Runtime at each thread count (by the median ratio).
func targetLines(agg map[cellKey]summary, models []string, threads []int) []string {
	var out []string
	for _, m := range models {
		goal, ok := targets[m]
		if !ok {
			continue
		}
		for _, t := range threads {
			e, eok := agg[cellKey{m, t, rtEdge}]
			o, ook := agg[cellKey{m, t, rtORT}]
			if !eok || !ook {
				continue
			}
			r := e.MedianMs / o.MedianMs
			verdict := "met"
			if r > goal {
				verdict = fmt.Sprintf("missed by %.2fx", r/goal)
			}
			out = append(out, fmt.Sprintf("%s, %d thread(s): edge/ORT %s, target <= %.1fx: %s", m, t, fmtRatio(r), goal, verdict))
		}
	}
	return out
}

func shortTitle(rt string) string {
	switch rt {
	case rtORT:
		return "ORT"
	case rtTorch:
		return "PyTorch"
	case rtEdge8:
		return "edge int8"
	case rtORT8:
		return "ORT int8"
	}
	return rt
}

func fmtMs(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtRatio(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case v >= 10:
		return fmt.Sprintf("%.1fx", v)
	}
	return fmt.Sprintf("%.2fx", v)
}
