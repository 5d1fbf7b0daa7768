package main

import (
	"io"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := slices.Clone(c.in)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("median reordered its input: %v", c.in)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median(nil) is not NaN")
	}
}

func TestAggregate(t *testing.T) {
	rs := []result{
		{Runtime: rtEdge, Model: "resnet18", Threads: 1, MedianMs: 10, MinMs: 9},
		{Runtime: rtEdge, Model: "resnet18", Threads: 1, MedianMs: 14, MinMs: 8},
		{Runtime: rtEdge, Model: "resnet18", Threads: 1, MedianMs: 11, MinMs: 10},
		{Runtime: rtORT, Model: "resnet18", Threads: 1, MedianMs: 20, MinMs: 19},
		{Runtime: rtEdge, Model: "resnet18", Threads: 2, MedianMs: 6, MinMs: 5},
	}
	agg := aggregate(rs)
	if len(agg) != 3 {
		t.Fatalf("got %d cells, want 3", len(agg))
	}
	s := agg[cellKey{"resnet18", 1, rtEdge}]
	want := summary{Rounds: 3, MedianMs: 11, MinMs: 8, LoMs: 10, HiMs: 14}
	if s != want {
		t.Errorf("edge-resnet resnet18/1: got %+v, want %+v", s, want)
	}
	if s := agg[cellKey{"resnet18", 2, rtEdge}]; s.MedianMs != 6 || s.MinMs != 5 || s.Rounds != 1 {
		t.Errorf("edge-resnet resnet18/2: got %+v", s)
	}
}

func TestRoundOrder(t *testing.T) {
	rts := []string{"a", "b", "c"}
	first := map[string]int{}
	for r := 0; r < 6; r++ {
		o := roundOrder(rts, r)
		s := slices.Clone(o)
		slices.Sort(s)
		if !slices.Equal(s, rts) {
			t.Fatalf("round %d: order %v is not a permutation of %v", r, o, rts)
		}
		first[o[0]]++
	}
	for _, rt := range rts {
		if first[rt] != 2 {
			t.Errorf("%s ran first in %d of 6 rounds, want 2", rt, first[rt])
		}
	}
	if o := roundOrder(rts, 0); !slices.Equal(o, rts) {
		t.Errorf("round 0 order %v, want %v", o, rts)
	}
}

func TestRelDiff(t *testing.T) {
	d, err := relDiff([]float32{1, -4.5, 2}, []float32{1, -4, 2})
	if err != nil || math.Abs(d-0.125) > 1e-12 {
		t.Errorf("relDiff = %v, %v; want 0.125", d, err)
	}
	if d, _ := relDiff([]float32{0, 0}, []float32{0, 0}); d != 0 {
		t.Errorf("relDiff of zeros = %v", d)
	}
	if d, _ := relDiff([]float32{float32(math.NaN())}, []float32{1}); !math.IsInf(d, 1) {
		t.Errorf("relDiff with NaN = %v, want +Inf", d)
	}
	if _, err := relDiff([]float32{1}, []float32{1, 2}); err == nil {
		t.Error("relDiff of different lengths did not fail")
	}
}

func TestParseResult(t *testing.T) {
	edge := "progress...\n" + `{"model":"/x/resnet50.ern","threads":2,"precision":"fp32","kernel":"avx512","runs":20,"min_ms":40.5,"median_ms":42,"p90_ms":45,"mean_ms":42.3}` + "\n"
	r, err := parseResult([]byte(edge), rtEdge, "resnet50", 2)
	if err != nil {
		t.Fatal(err)
	}
	want := result{Runtime: rtEdge, Kernel: "avx512", Precision: "fp32", Model: "resnet50", Threads: 2, Runs: 20, MinMs: 40.5, MedianMs: 42, P90Ms: 45}
	if r != want {
		t.Errorf("got %+v, want %+v", r, want)
	}
	ort := `{"runtime":"onnxruntime","version":"1.30.0","model":"resnet18","threads":1,"runs":3,"min_ms":19,"median_ms":20,"p90_ms":21,"mean_ms":20}`
	if r, err := parseResult([]byte(ort), rtORT, "resnet18", 1); err != nil || r.Version != "1.30.0" {
		t.Errorf("ORT line: %+v, %v", r, err)
	}
	for name, bad := range map[string]string{
		"no json":      "Traceback: boom\n",
		"bad json":     `{"runs": 3, "median_ms": }`,
		"zero median":  `{"threads":1,"runs":3,"min_ms":1,"median_ms":0}`,
		"no runs":      `{"threads":1,"runs":0,"min_ms":1,"median_ms":1}`,
		"wrong thread": `{"threads":4,"runs":3,"min_ms":1,"median_ms":1}`,
	} {
		if _, err := parseResult([]byte(bad), rtTorch, "resnet18", 1); err == nil {
			t.Errorf("%s: no error for %q", name, bad)
		}
	}
	// edge-resnet must have run the precision the column claims.
	line := func(p string) []byte {
		return []byte(`{"threads":1,"runs":3,"min_ms":1,"median_ms":2` + p + `}`)
	}
	for _, c := range []struct {
		rt, precision string
		ok            bool
	}{
		{rtEdge8, `,"precision":"int8"`, true},
		{rtEdge8, `,"precision":"fp32"`, false},
		{rtEdge8, ``, false},
		{rtEdge, `,"precision":"int8"`, false},
		{rtEdge, ``, true},
		{rtORT8, ``, true},
	} {
		r, err := parseResult(line(c.precision), c.rt, "resnet50", 1)
		if (err == nil) != c.ok {
			t.Errorf("%s with %q: got %+v, %v; want ok=%v", c.rt, c.precision, r, err, c.ok)
		}
	}
}

func TestInt8Table(t *testing.T) {
	agg := aggregate([]result{
		{Runtime: rtEdge, Model: "resnet50", Threads: 1, MedianMs: 40, MinMs: 38},
		{Runtime: rtEdge8, Model: "resnet50", Threads: 1, MedianMs: 16, MinMs: 15.2},
		{Runtime: rtORT8, Model: "resnet50", Threads: 1, MedianMs: 13.5, MinMs: 12},
		{Runtime: rtEdge, Model: "resnet50", Threads: 2, MedianMs: 22, MinMs: 21},
		{Runtime: rtORT8, Model: "resnet50", Threads: 2, MedianMs: 8, MinMs: 7},
	})
	got := int8Table(agg, []string{"resnet50"}, []int{1, 2})
	want := "| model | threads | edge-resnet fp32 ms | edge-resnet int8 ms | ONNX Runtime int8 ms | int8/fp32 (edge) | edge int8/ORT int8 |\n" +
		"|---|---:|---:|---:|---:|---:|---:|\n" +
		"| resnet50 | 1 | 40.0 (38.0) | 16.0 (15.2) | 13.5 (12.0) | 0.40x (0.40x) | 1.19x (1.27x) |\n" +
		"| resnet50 | 2 | 22.0 (21.0) | – | 8.00 (7.00) | – | – |\n"
	if got != want {
		t.Errorf("int8 table:\n%s\nwant:\n%s", got, want)
	}
	for _, c := range []struct {
		kernel string
		want   []string
	}{
		{"avx512vnni", []string{"int8/fp32 0.40x on the avx512vnni path, target <= 0.5x: met", "edge int8/ORT int8 1.19x, target <= 1.0x: missed by 1.19x"}},
		{"avx2", []string{"int8/fp32 0.40x on the avx2 path, target <= 0.7x: met"}},
		{"generic", []string{"(issue 4 sets targets for the VNNI and AVX2 paths only)"}},
	} {
		lines := int8TargetLines(agg, []string{"resnet18", "resnet50"}, []int{1, 2}, c.kernel)
		if len(lines) != 2 {
			t.Errorf("%s: %d target lines, want 2 (no int8 result at 2 threads): %q", c.kernel, len(lines), lines)
		}
		for _, w := range c.want {
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, w) }) {
				t.Errorf("%s: no target line contains %q: %q", c.kernel, w, lines)
			}
		}
	}
	if lines := int8TargetLines(agg, []string{"resnet18"}, []int{1}, "avx2"); lines != nil {
		t.Errorf("targets without resnet50: %q", lines)
	}
}

func TestCosine(t *testing.T) {
	c, same, err := cosine([]float32{1, 2, 3}, []float32{2, 4, 6})
	if err != nil || math.Abs(c-1) > 1e-12 || !same {
		t.Errorf("parallel: %v %v %v", c, same, err)
	}
	c, same, _ = cosine([]float32{1, 0}, []float32{0, 1})
	if c != 0 || same {
		t.Errorf("orthogonal: %v %v", c, same)
	}
	c, same, _ = cosine([]float32{3, 1}, []float32{-3, -1})
	if math.Abs(c+1) > 1e-12 || same {
		t.Errorf("opposite: %v %v", c, same)
	}
	if c, _, _ := cosine([]float32{0, 0}, []float32{1, 2}); !math.IsNaN(c) {
		t.Errorf("zero vector: %v", c)
	}
	if _, _, err := cosine([]float32{1}, []float32{1, 2}); err == nil {
		t.Error("different lengths did not fail")
	}
}

// TestQuantizeArgs pins the quantize command line (issue 4's flags).
func TestQuantizeArgs(t *testing.T) {
	got := quantizeArgs("/c/resnet50.ern", "/c/calib", 100, 7, "/c/resnet50.int8w7.ern")
	want := []string{"quantize", "-m", "/c/resnet50.ern", "--calib", "/c/calib", "-n", "100", "--weight-bits", "7", "-o", "/c/resnet50.int8w7.ern"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for bits, file := range map[int]string{8: "/c/resnet50.int8.ern", 7: "/c/resnet50.int8w7.ern"} {
		e := &env{cache: "/c", o: options{wbits: bits}}
		if got := e.int8File("resnet50"); got != file {
			t.Errorf("%d-bit weights: int8 image %s, want %s", bits, got, file)
		}
	}
}

func TestLogitsFromJSON(t *testing.T) {
	out := `{"file":"input.npy","top":[{"class":1,"label":"x","prob":0.5}],"ms":3,"logits":[1.5,-2,3]}` + "\n"
	got, err := logitsFromJSON([]byte(out))
	if err != nil || !slices.Equal(got, []float32{1.5, -2, 3}) {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := logitsFromJSON([]byte(`{"file":"a"}`)); err == nil {
		t.Error("no error without logits")
	}
}

func TestMarkdownTable(t *testing.T) {
	agg := aggregate([]result{
		{Runtime: rtEdge, Model: "resnet50", Threads: 1, MedianMs: 45, MinMs: 44},
		{Runtime: rtORT, Model: "resnet50", Threads: 1, MedianMs: 50, MinMs: 40},
		{Runtime: rtTorch, Model: "resnet50", Threads: 1, MedianMs: 90, MinMs: 88},
		{Runtime: rtEdge, Model: "resnet50", Threads: 2, MedianMs: 2500, MinMs: 2400},
		{Runtime: rtORT, Model: "resnet50", Threads: 2, MedianMs: 25, MinMs: 24},
	})
	got := markdownTable(agg, []string{"resnet50"}, []int{1, 2}, allRuntimes)
	want := "| model | threads | edge-resnet ms | ONNX Runtime ms | PyTorch ms | edge/ORT | edge/PyTorch |\n" +
		"|---|---:|---:|---:|---:|---:|---:|\n" +
		"| resnet50 | 1 | 45.0 (44.0) | 50.0 (40.0) | 90.0 (88.0) | 0.90x (1.10x) | 0.50x (0.50x) |\n" +
		"| resnet50 | 2 | 2500 (2400) | 25.0 (24.0) | – | 100.0x (100.0x) | – |\n"
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	got = markdownTable(agg, []string{"resnet50"}, []int{1}, []string{rtORT, rtTorch})
	if strings.Contains(got, "edge/") || !strings.Contains(got, "| resnet50 | 1 | 50.0 (40.0) | 90.0 (88.0) |") {
		t.Errorf("table without edge-resnet:\n%s", got)
	}

	got = spreadTable(aggregate([]result{
		{Runtime: rtORT, Model: "resnet18", Threads: 1, MedianMs: 21, MinMs: 20},
		{Runtime: rtORT, Model: "resnet18", Threads: 1, MedianMs: 30, MinMs: 20},
		{Runtime: rtORT, Model: "resnet18", Threads: 1, MedianMs: 25, MinMs: 20},
	}), []string{"resnet18"}, []int{1}, []string{rtEdge, rtORT})
	want = "| model | threads | edge-resnet | ONNX Runtime |\n|---|---:|---:|---:|\n| resnet18 | 1 | – | 21.0–30.0 |\n"
	if got != want {
		t.Errorf("spread table:\n%s\nwant:\n%s", got, want)
	}

	lines := targetLines(agg, []string{"resnet50"}, []int{1, 2})
	if len(lines) != 2 || !strings.HasSuffix(lines[0], ": met") || !strings.HasSuffix(lines[1], "missed by 100.00x") {
		t.Errorf("target lines: %q", lines)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--models", "resnet50, resnet18,resnet50", "--threads", "2,1", "--runs", "3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.models, []string{"resnet50", "resnet18"}) || !slices.Equal(o.threads, []int{2, 1}) || o.runs != 3 {
		t.Errorf("got %+v", o)
	}
	if !slices.Equal(o.runtimes, allRuntimes) || o.rounds != 7 || o.warmup != 5 || o.wbits != 8 {
		t.Errorf("defaults: %+v", o)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--precision", "int8"}, []string{rtEdge, rtEdge8, rtORT8}},
		{[]string{"--precision", "both"}, []string{rtEdge, rtORT, rtTorch, rtEdge8, rtORT8}},
		{[]string{"--precision", "int8", "--runtimes", "onnxruntime-int8"}, []string{rtORT8}},
	} {
		o, err := parseFlags(c.args, io.Discard)
		if err != nil || !slices.Equal(o.runtimes, c.want) {
			t.Errorf("%q: runtimes %q, %v; want %q", c.args, o.runtimes, err, c.want)
		}
	}
	for _, bad := range [][]string{
		{"--precision", "int4"},
		{"--weight-bits", "6"},
		{"--calib-n", "-1"},
		{"--threads", "0"},
		{"--threads", "x"},
		{"--runtimes", "tflite"},
		{"--models", "vgg16"},
		{"--runs", "0"},
		{"--models", ","},
		{"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
