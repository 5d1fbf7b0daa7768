package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// run executes the CLI with args and returns stdout, stderr and the error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

const fixture = "../../testdata/models/cifar8_a_flatten"

func TestConvertInspectClassify(t *testing.T) {
	dir := t.TempDir()
	labels := filepath.Join(dir, "labels.txt")
	os.WriteFile(labels, []byte(strings.Join([]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, "\n")), 0o644)
	model := filepath.Join(dir, "m.ern")
	out, _, err := run(t, "convert", fixture+".onnx", "-o", model, "--labels", labels, "--resize", "0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "wrote") {
		t.Fatalf("convert printed %q", out)
	}
	out, _, err = run(t, "inspect", model)
	if err != nil || !strings.Contains(out, "arena:") || !strings.Contains(out, "total") {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	out, _, err = run(t, "inspect", "--json", model)
	var insp struct {
		Layers      []json.RawMessage `json:"layers"`
		ArenaBytes  int64             `json:"arena_bytes"`
		TensorBytes int64             `json:"tensor_bytes"`
	}
	if err != nil || json.Unmarshal([]byte(out), &insp) != nil || len(insp.Layers) == 0 || insp.ArenaBytes <= 0 || insp.ArenaBytes > insp.TensorBytes {
		t.Fatalf("inspect --json: %v %+v", err, insp)
	}

	// The .npy input through the model image gives PyTorch's logits.
	out, _, err = run(t, "classify", "-m", model, "--json", "--logits", "-k", "3", fixture+".input.npy")
	if err != nil {
		t.Fatal(err)
	}
	var res jsonResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if len(res.Top) != 3 || res.Top[0].Label == "" || len(res.Logits) != 10 || res.Ms <= 0 {
		t.Fatalf("bad result %+v", res)
	}
}

func TestClassifyContinuesAfterBadFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "broken.png")
	os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\ntruncated"), 0o644)
	out, stderr, err := run(t, "classify", "-m", fixture+".onnx", "--json", bad, fixture+".input.npy", filepath.Join(dir, "missing.npy"))
	if !errors.Is(err, errReported) {
		t.Fatalf("want a failure status, got %v", err)
	}
	if !strings.Contains(stderr, "broken.png") || !strings.Contains(stderr, "missing.npy") {
		t.Fatalf("stderr does not name the bad files: %q", stderr)
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		lines++
	}
	if lines != 1 {
		t.Fatalf("want 1 result line, got %d: %q", lines, out)
	}
}

func TestClassifyVoteAndDirs(t *testing.T) {
	dir := t.TempDir()
	data, _ := os.ReadFile(fixture + ".input.npy")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	for _, name := range []string{"a.npy", "sub/b.npy", "sub/c.NPY", "notes.txt"} {
		os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	out, _, err := run(t, "classify", "-m", fixture+".onnx", "--json", "--vote", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[3], `"vote"`) || !strings.Contains(lines[3], `"votes":3`) {
		t.Fatalf("unexpected output:\n%s", out)
	}
	text, _, err := run(t, "classify", "-m", fixture+".onnx", "-k", "1", "--vote", dir)
	if err != nil || !strings.Contains(text, "vote: ") {
		t.Fatalf("%v\n%s", err, text)
	}
}

func TestBenchJSON(t *testing.T) {
	out, _, err := run(t, "bench", "--arch", "cifar-resnet20", "--runs", "3", "--warmup", "1", "--threads", "1", "--json", "--profile")
	if err != nil {
		t.Fatal(err)
	}
	var r benchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Runs != 3 || r.Threads != 1 || r.Precision != "fp32" || r.MinMs <= 0 || r.MedianMs < r.MinMs || r.P90Ms < r.MedianMs || len(r.Profile) == 0 {
		t.Fatalf("bad bench result %+v", r)
	}
}

func TestErrorsAreClear(t *testing.T) {
	cases := [][]string{
		{"convert", fixture + ".onnx"},                                // no -o
		{"convert", "nope.onnx", "-o", "x.ern"},                       // missing input
		{"convert", fixture + ".onnx", "-o", "x.ern", "--size", "12"}, // bad size
		{"classify", "-m", fixture + ".onnx", "-k", "0", "x.npy"},     // bad k
		{"bench", "--arch", "resnet19"},                               // bad arch
		{"classify", "-m", "../../README.md", fixture + ".input.npy"}, // not a model
	}
	for _, args := range cases {
		if _, _, err := run(t, args...); err == nil {
			t.Errorf("%v: want an error", args)
		}
	}
}

func TestSummarize(t *testing.T) {
	r := summarize([]float64{5, 1, 4, 2, 3, 10, 6, 7, 8, 9})
	if r.MinMs != 1 || r.MedianMs != 5.5 || r.P90Ms != 9 || r.Runs != 10 {
		t.Fatalf("%+v", r)
	}
}

// fashionMNIST is the Fashion-MNIST test set of the shared data beside
// the checkout; the test is skipped without it.
func fashionMNIST(t *testing.T) string {
	t.Helper()
	data := "../../../shared/data/images/fashion_mnist/t10k-images-idx3-ubyte.gz"
	if _, err := os.Stat(data); err != nil {
		t.Skipf("real test data not found beside the checkout: %v", err)
	}
	return data
}

func TestEvalIDX(t *testing.T) {
	data := fashionMNIST(t)
	out, _, err := run(t, "eval", "--limit", "50", "--json", data)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Images int     `json:"images"`
		Top1   float64 `json:"top1"`
		Top5   float64 `json:"top5"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Images != 50 || r.Top1 < 0.8 || r.Top5 < r.Top1 {
		t.Fatalf("%+v", r)
	}
}

// quantizedImage writes a fused CIFAR ResNet-20 with int8 weights (float
// ones dropped unless keepFloat) and activation quantization on every node,
// quantized here per output channel, as an image in dir.
func quantizedImage(t *testing.T, dir string, keepFloat bool) (string, *graph.Graph) {
	t.Helper()
	g, err := resnet.Build(resnet.Config{Depth: 20, CIFAR: true, Shortcut: resnet.ShortcutA}, resnet.HeInit(3))
	if err != nil {
		t.Fatal(err)
	}
	if g, err = graph.Fuse(g); err != nil {
		t.Fatal(err)
	}
	quant := func(w []float32, out int) *graph.QWeights {
		q := &graph.QWeights{Q: make([]int8, len(w)), Scale: make([]float32, out)}
		for i, v := range w {
			q.Scale[i%out] = max(q.Scale[i%out], float32(math.Abs(float64(v)))/127)
		}
		for i, v := range w {
			q.Q[i] = int8(max(-127, min(127, math.Round(float64(v/q.Scale[i%out])))))
		}
		return q
	}
	for i, n := range g.Nodes {
		switch n.Op {
		case graph.OpConv:
			n.Conv.Quant = quant(n.Conv.Weight, n.Conv.Cout)
			if !keepFloat {
				n.Conv.Weight = nil
			}
		case graph.OpDense:
			n.Dense.Quant = quant(n.Dense.Weight, n.Dense.Out)
			if !keepFloat {
				n.Dense.Weight = nil
			}
		}
		n.Quant = &graph.QParams{Scale: 0.01 + float32(i)/1000, Zero: int32(i % 3 * 64)}
	}
	path := filepath.Join(dir, fmt.Sprintf("int8-%v.ern", keepFloat))
	m := &firmware.Model{Graph: g, Meta: firmware.Meta{Name: "r20q", Arch: "cifar-resnet20", Output: firmware.OutputLogits}}
	if err := firmware.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path, g
}

func TestInspectInt8(t *testing.T) {
	dir := t.TempDir()
	for _, keepFloat := range []bool{false, true} {
		path, g := quantizedImage(t, dir, keepFloat)
		// What the image holds, counted from the graph written.
		var stored, fp32 int64
		nq := 0
		for _, n := range g.Nodes {
			var w, b []float32
			var q *graph.QWeights
			switch n.Op {
			case graph.OpConv:
				w, b, q = n.Conv.Weight, n.Conv.Bias, n.Conv.Quant
				fp32 += 4 * int64(len(q.Q)+len(b))
			case graph.OpDense:
				w, b, q = n.Dense.Weight, n.Dense.Bias, n.Dense.Quant
				fp32 += 4 * int64(len(q.Q)+len(b))
			default:
				continue
			}
			nq++
			stored += 4*int64(len(w)+len(b)+len(q.Scale)) + int64(len(q.Q))
		}

		out, _, err := run(t, "inspect", "--json", path)
		if err != nil {
			t.Fatal(err)
		}
		var insp struct {
			Layers []struct {
				Name        string   `json:"name"`
				Op          string   `json:"op"`
				Precision   string   `json:"precision"`
				ActScale    *float32 `json:"act_scale"`
				ActZero     *int32   `json:"act_zero"`
				WeightBytes int64    `json:"weight_bytes"`
			} `json:"layers"`
			Precision   string  `json:"precision"`
			WeightBytes int64   `json:"weight_bytes"`
			Fp32Bytes   int64   `json:"weight_bytes_fp32"`
			Saving      float64 `json:"weight_saving"`
		}
		if err := json.Unmarshal([]byte(out), &insp); err != nil {
			t.Fatal(err)
		}
		wantPrec := map[bool]string{false: "int8", true: "int8+fp32"}[keepFloat]
		if insp.Precision != wantPrec || insp.WeightBytes != stored || insp.Fp32Bytes != fp32 ||
			math.Abs(insp.Saving-float64(fp32)/float64(stored)) > 1e-12 {
			t.Errorf("keepFloat=%v: totals %s %d bytes, %d as fp32, saving %.4f; want %s %d, %d, %.4f",
				keepFloat, insp.Precision, insp.WeightBytes, insp.Fp32Bytes, insp.Saving, wantPrec, stored, fp32, float64(fp32)/float64(stored))
		}
		if !keepFloat && insp.Saving < 3.5 {
			t.Errorf("int8-only ResNet-20 weights are only %.2fx smaller", insp.Saving)
		}
		var sum int64
		convs := 0
		for i, l := range insp.Layers {
			sum += l.WeightBytes
			n := g.Nodes[i]
			if l.ActScale == nil || l.ActZero == nil || *l.ActScale != n.Quant.Scale || *l.ActZero != n.Quant.Zero {
				t.Errorf("layer %d %s: activation quant %v %v, want %+v", i, l.Name, l.ActScale, l.ActZero, *n.Quant)
			}
			if l.Op == "Conv" || l.Op == "Dense" {
				convs++
				if l.Precision != wantPrec {
					t.Errorf("layer %d %s: precision %q, want %q", i, l.Name, l.Precision, wantPrec)
				}
			}
		}
		if sum != stored || convs != nq {
			t.Errorf("layers sum to %d weight bytes over %d conv/dense, want %d over %d", sum, convs, stored, nq)
		}

		text, _, err := run(t, "inspect", path)
		if err != nil {
			t.Fatal(err)
		}
		var want string
		if keepFloat {
			want = fmt.Sprintf("weights:     %s, fp32 and int8 copies of %d layers (%s as fp32 alone)", bytesStr(stored), nq, bytesStr(fp32))
		} else {
			want = fmt.Sprintf("weights:     %s int8 (%s as fp32): %.2fx smaller", bytesStr(stored), bytesStr(fp32), float64(fp32)/float64(stored))
		}
		if !strings.Contains(text, want) {
			t.Errorf("inspect does not print %q:\n%s", want, text)
		}
		// A row: precision, activation scale and zero point, weight bytes.
		n1 := g.Nodes[1]
		row := fmt.Sprintf(`(?m)^1 +conv1 .* %s +s=%.4g z=%d +448 +%s +`, regexp.QuoteMeta(wantPrec), n1.Quant.Scale, n1.Quant.Zero,
			regexp.QuoteMeta(bytesStr(insp.Layers[1].WeightBytes)))
		if !regexp.MustCompile(row).MatchString(text) || !strings.Contains(text, "precision") || !strings.Contains(text, "activation q") {
			t.Errorf("inspect rows lack %q:\n%s", row, text)
		}
	}
}

func TestInspectFP32Weights(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.ern")
	if _, _, err := run(t, "convert", fixture+".onnx", "-o", model, "--resize", "0"); err != nil {
		t.Fatal(err)
	}
	text, _, err := run(t, "inspect", model)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^weights: +[0-9.]+ [KM]?i?B fp32$`).MatchString(text) || strings.Contains(text, "int8") {
		t.Errorf("an fp32 model's inspect output:\n%s", text)
	}
}

// TestQuantizeEvalPrecision quantizes the built-in Fashion-MNIST model on
// 30 real images, checks the JSON report, and compares fp32 with itself
// through eval --against; bench reports the precision it ran.
func TestQuantizeEvalPrecision(t *testing.T) {
	data := fashionMNIST(t)
	out := filepath.Join(t.TempDir(), "q.ern")
	stdout, _, err := run(t, "quantize", "--calib", data, "-n", "30", "--keep-fp32", "last", "-o", out, "--json")
	if _, _, err := run(t, "quantize", "--calib", data); err == nil {
		t.Error("quantize without -o accepted")
	}
	if _, _, err := run(t, "quantize", "--calib", data, "-n", "4", "--weight-bits", "6", "-o", out+"6"); err == nil {
		t.Error("quantize --weight-bits 6 accepted")
	}
	if o, _, err := run(t, "quantize", "--calib", data, "-n", "10", "--weight-bits", "7", "-o", out+"7", "--json"); err != nil ||
		!strings.Contains(o, `"weight_bits":7`) {
		t.Errorf("quantize --weight-bits 7: %v\n%s", err, o)
	}
	var rep struct {
		Method string `json:"method"`
		Images int    `json:"images"`
		Layers []struct {
			Name, Op, Precision string
			Scale               float32
		} `json:"layers"`
		Agreement struct {
			Images int     `json:"images"`
			Top1   float64 `json:"top1"`
		} `json:"agreement"`
	}
	// The report is printed before the model is written.
	line, _, _ := strings.Cut(stdout, "\n")
	if jerr := json.Unmarshal([]byte(line), &rep); jerr != nil {
		t.Fatalf("quantize --json: %v (%v)\n%s", jerr, err, stdout)
	}
	int8Layers := 0
	for _, l := range rep.Layers {
		if l.Precision == "int8" {
			int8Layers++
		}
	}
	if rep.Method != "mse" || rep.Images != 30 || rep.Agreement.Images != 30 || rep.Agreement.Top1 < 0.9 || int8Layers < 10 {
		t.Errorf("report: %+v", rep)
	}
	if err != nil {
		// Until the model image stores int8 fields, writing fails; the
		// report above is still checked.
		t.Logf("writing the int8 model: %v", err)
	} else {
		o, _, err := run(t, "eval", "-m", out, "--limit", "20", "--against", "fp32", "--json", data)
		if err != nil || !strings.Contains(o, `"precision":"int8"`) {
			t.Errorf("eval of the int8 model: %v\n%s", err, o)
		}
	}
	o, _, err := run(t, "eval", "--limit", "20", "--precision", "fp32", "--against", "fp32", "--json", data)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Precision string `json:"precision"`
		Agreement struct {
			Images     int     `json:"images"`
			Top1       float64 `json:"top1"`
			MaxAbsDiff float64 `json:"max_abs_diff"`
		} `json:"agreement"`
	}
	if err := json.Unmarshal([]byte(o), &ev); err != nil || ev.Precision != "fp32" || ev.Agreement.Images != 20 || ev.Agreement.Top1 != 1 || ev.Agreement.MaxAbsDiff != 0 {
		t.Errorf("eval --against fp32: %v %+v", err, ev)
	}
	if _, _, err := run(t, "eval", "--limit", "5", "--precision", "int8", data); err == nil {
		t.Error("eval --precision int8 of a float model accepted")
	}
	if _, _, err := run(t, "eval", "--limit", "5", "--precision", "int4", data); err == nil {
		t.Error("--precision int4 accepted")
	}
	o, _, err = run(t, "bench", "--runs", "2", "--warmup", "0", "--precision", "fp32", "--json")
	if err != nil || !strings.Contains(o, `"precision":"fp32"`) {
		t.Errorf("bench --precision fp32: %v\n%s", err, o)
	}
	o, _, err = run(t, "quantize", "-h")
	if err != nil || !strings.Contains(o, "--keep-fp32") || !strings.Contains(o, "entropy") || !strings.Contains(o, "--weight-bits 7") {
		t.Errorf("quantize -h: %v\n%s", err, o)
	}
}

// TestCPUJSON: `cpu --json` is one object naming the selected path, which
// is among the available ones.
func TestCPUJSON(t *testing.T) {
	out, _, err := run(t, "cpu", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Path       string   `json:"path"`
		Available  []string `json:"available"`
		Primitives []struct{ Name, Impl string }
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	found := false
	for _, a := range c.Available {
		found = found || a == c.Path
	}
	if !found || len(c.Primitives) == 0 {
		t.Fatalf("cpu --json: %+v", c)
	}
}

// TestClassifyTTA runs classify --tta on the built-in model's samples:
// each JSON line names its view count and ranks classes by the mean
// probability, the plain run differs, and bad combinations are refused
// naming the option.
func TestClassifyTTA(t *testing.T) {
	samples := []string{"../../testdata/samples/0000_ankle_boot.png", "../../testdata/samples/0004_shirt.png"}
	plain, _, err := run(t, "classify", "--json", "-k", "10", samples[1])
	if err != nil {
		t.Fatal(err)
	}
	var p jsonResult
	if err := json.Unmarshal([]byte(plain), &p); err != nil || p.Views != 0 {
		t.Fatalf("plain: %v %+v", err, p)
	}
	for _, tc := range []struct {
		tta   string
		views int
	}{{"flip", 2}, {"crop", 5}, {"flip,crop", 10}} {
		out, _, err := run(t, append([]string{"classify", "--tta", tc.tta, "--json", "-k", "10", "--vote"}, samples...)...)
		if err != nil {
			t.Fatalf("--tta %s: %v", tc.tta, err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.Contains(lines[2], `"inputs":2`) {
			t.Fatalf("--tta %s: want 2 results and a vote:\n%s", tc.tta, out)
		}
		var r jsonResult
		if err := json.Unmarshal([]byte(lines[1]), &r); err != nil {
			t.Fatal(err)
		}
		sum := float32(0)
		for i, c := range r.Top {
			sum += c.Prob
			if i > 0 && c.Prob > r.Top[i-1].Prob {
				t.Errorf("--tta %s: classes not ranked: %+v", tc.tta, r.Top)
			}
		}
		if r.Views != tc.views || len(r.Top) != 10 || math.Abs(float64(sum)-1) > 1e-4 || r.Ms <= 0 || r.Logits != nil {
			t.Errorf("--tta %s: %+v (probabilities sum to %v)", tc.tta, r, sum)
		}
		if r.Top[0].Prob == p.Top[0].Prob {
			t.Errorf("--tta %s: same top-1 probability %v as without views", tc.tta, r.Top[0].Prob)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tta", "mirror"}, `--tta: preprocess: test-time augmentation "mirror": unknown view "mirror" (want none, flip, crop or flip,crop)`},
		{[]string{"--tta", "flip,", "--json"}, `"flip,": empty view name`},
		{[]string{"--tta", "flip", "--logits"}, "--logits cannot be combined with --tta flip"},
	} {
		_, _, err := run(t, append(append([]string{"classify"}, tc.args...), samples[0])...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	_, stderr, err := run(t, "classify", "-m", fixture+".onnx", "--tta", "flip", fixture+".input.npy")
	if !errors.Is(err, errReported) || !strings.Contains(stderr, "input.npy: --tta takes images only") {
		t.Errorf(".npy with --tta: %v %q", err, stderr)
	}
}

func TestEvalTTA(t *testing.T) {
	data := fashionMNIST(t)
	out, _, err := run(t, "eval", "--limit", "40", "--tta", "flip", "--json", data)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		TTA    string  `json:"tta"`
		Views  int     `json:"views"`
		Images int     `json:"images"`
		Top1   float64 `json:"top1"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.TTA != "flip" || r.Views != 2 || r.Images != 40 || r.Top1 < 0.8 {
		t.Fatalf("%+v", r)
	}
	if _, _, err := run(t, "eval", "--tta", "crop,zoom", data); err == nil || !strings.Contains(err.Error(), `unknown view "zoom"`) {
		t.Errorf("--tta crop,zoom: %v", err)
	}
}
