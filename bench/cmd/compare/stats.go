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
)

var allRuntimes = []string{rtEdge, rtORT, rtTorch}

// result is one invocation of one runtime's benchmark (its JSON line).
type result struct {
	Runtime  string  `json:"runtime"`
	Version  string  `json:"version,omitempty"`
	Kernel   string  `json:"kernel,omitempty"` // edge-resnet's kernel path
	Model    string  `json:"model"`
	Threads  int     `json:"threads"`
	Runs     int     `json:"runs"`
	MinMs    float64 `json:"min_ms"`
	MedianMs float64 `json:"median_ms"`
	P90Ms    float64 `json:"p90_ms"`
	Round    int     `json:"round"`
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

var runtimeTitle = map[string]string{rtEdge: "edge-resnet", rtORT: "ONNX Runtime", rtTorch: "PyTorch"}

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
