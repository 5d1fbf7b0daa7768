package resnet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// randomWeights gives every parameter, BatchNorm statistics included,
// random values, so that folding is really exercised.
func randomWeights(seed uint64) Weights {
	r := rand.New(rand.NewPCG(seed, 99))
	return func(name string, shape []int) ([]float32, error) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			switch {
			case strings.HasSuffix(name, "running_var"):
				v[i] = 0.5 + 1.5*r.Float32()
			case strings.HasSuffix(name, "running_mean"), strings.HasSuffix(name, "bias"):
				v[i] = 0.5 * (2*r.Float32() - 1)
			case len(shape) == 1: // gamma
				v[i] = 0.5 + r.Float32()
			default:
				fan := n / shape[0]
				v[i] = float32(r.NormFloat64() * math.Sqrt(2/float64(fan)))
			}
		}
		return v, nil
	}
}

var smallConfigs = []Config{
	{Blocks: []int{1, 1, 1, 1}, BaseWidth: 8, Height: 40, Width: 56, Classes: 7},
	{Blocks: []int{2, 1, 1, 1}, BaseWidth: 4, Bottleneck: true, Height: 33, Width: 47, Classes: 5, ConvBias: true},
	{Blocks: []int{1, 1, 1, 1}, BaseWidth: 4, Bottleneck: true, StrideOn1x1: true, Height: 32, Width: 32, Classes: 3},
	{Blocks: []int{1, 1, 1, 1}, BaseWidth: 8, Shortcut: ShortcutA, Height: 35, Width: 29, Classes: 4, InChannels: 1},
	{CIFAR: true, Depth: 8, BaseWidth: 4, Shortcut: ShortcutA, Height: 16, Width: 20},
	{CIFAR: true, Depth: 14, BaseWidth: 4, Shortcut: ShortcutAEnd, Height: 12, Width: 12, Classes: 6},
	{CIFAR: true, Depth: 8, BaseWidth: 4, Shortcut: ShortcutB, Height: 9, Width: 13, ConvBias: true},
}

func randInput(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

func maxDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// TestFamilyPlanMatchesEval runs every small config through the reference
// evaluator (unfused), the fused graph, and the plan at 1, 2 and 3 threads.
func TestFamilyPlanMatchesEval(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for ci, cfg := range smallConfigs {
		t.Run(fmt.Sprintf("%d", ci), func(t *testing.T) {
			g, err := Build(cfg, randomWeights(uint64(ci)))
			if err != nil {
				t.Fatal(err)
			}
			in := randInput(r, g.Input().Size())
			want, err := g.Eval(in)
			if err != nil {
				t.Fatal(err)
			}
			tol := 1e-4 * maxAbs(want)
			f, err := Fuse(g)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range f.Nodes {
				if n.Op == OpAffine || n.Op == OpRelu {
					t.Fatalf("node %q (%v) left after fusion", n.Name, n.Op)
				}
			}
			fused, _ := f.Eval(in)
			if d := maxDiff(fused, want); d > tol {
				t.Fatalf("fused graph differs by %g (tol %g)", d, tol)
			}
			for _, wino := range []int{WinogradOff, 2, 4, 6} {
				p, err := CompileWith(g, CompileOptions{Winograd: wino})
				if err != nil {
					t.Fatal(err)
				}
				n, all := winogradSteps(p, wino), count3x3s1(p)
				if (wino > 0 && (n != all || n == 0)) || (wino < 0 && n != 0) {
					t.Fatalf("Winograd %d: %d Winograd steps, %d 3x3 stride-1 convs", wino, n, all)
				}
				checkPlan(t, p, in, want, tol)
			}
		})
	}
}

// winogradSteps counts the steps of p that run Winograd F(m x m), any
// variant if m <= 0.
func winogradSteps(p *Plan, m int) int {
	n := 0
	for _, s := range p.Steps() {
		if strings.HasPrefix(s.Kernel, "winograd ") && (m <= 0 || strings.HasPrefix(s.Kernel, fmt.Sprintf("winograd F(%dx%d)/", m, m))) {
			n++
		}
	}
	return n
}

// count3x3s1 counts the convolutions Winograd applies to.
func count3x3s1(p *Plan) int {
	n := 0
	for _, st := range p.steps {
		if st.op == OpConv && st.conv.KH == 3 && st.conv.KW == 3 && st.conv.StrideH == 1 && st.conv.StrideW == 1 {
			n++
		}
	}
	return n
}

// TestWinogradOptions checks the environment override and the errors for
// bad settings; auto must use Winograd somewhere on a ResNet.
func TestWinogradOptions(t *testing.T) {
	g, err := Build(Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 16, Width: 16}, HeInit(1))
	if err != nil {
		t.Fatal(err)
	}
	for env, m := range map[string]int{"off": WinogradOff, "2": 2, "4": 4, "6": 6} {
		t.Setenv(EnvWinograd, env)
		p, err := Compile(g)
		if err != nil {
			t.Fatal(err)
		}
		if n := winogradSteps(p, m); (m > 0 && n != count3x3s1(p)) || (m < 0 && winogradSteps(p, 0) != 0) {
			t.Errorf("%s=%s: %d Winograd steps, %v", EnvWinograd, env, n, p.Steps())
		}
		// An explicit option wins over the environment.
		p, _ = CompileWith(g, CompileOptions{Winograd: WinogradOff})
		if n := winogradSteps(p, 0); n != 0 {
			t.Errorf("WinogradOff with %s=%s: %d Winograd steps", EnvWinograd, env, n)
		}
	}
	t.Setenv(EnvWinograd, "")
	p, err := Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	if winogradSteps(p, 0) == 0 {
		t.Error("auto uses no Winograd")
	}
	t.Setenv(EnvWinograd, "8")
	if _, err := Compile(g); err == nil {
		t.Errorf("%s=8 accepted", EnvWinograd)
	}
	t.Setenv(EnvWinograd, "")
	if _, err := CompileWith(g, CompileOptions{Winograd: 3}); err == nil {
		t.Error("Winograd: 3 accepted")
	}
}

// checkPlan runs p at 1, 2 and 3 threads, twice each, and checks the
// results against want and against each other (bit for bit).
func checkPlan(t *testing.T, p *Plan, in, want []float32, tol float64) {
	t.Helper()
	var first []float32
	for _, threads := range []int{1, 2, 3} {
		e, err := NewExec(p, threads)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(got, want); d > tol {
			t.Fatalf("plan with %d threads differs by %g (tol %g)", threads, d, tol)
		}
		if first == nil {
			first = append([]float32(nil), got...)
		} else if maxDiff(first, got) != 0 {
			t.Fatalf("%d threads not bit-identical to 1 thread", threads)
		}
		// A second run on the same arena gives the same answer.
		again, _ := e.Run(in)
		if maxDiff(first, again) != 0 {
			t.Fatal("second run differs")
		}
		e.Close()
	}
	if p.Layout.Total > p.Layout.Sum {
		t.Fatalf("arena %d larger than the sum of tensors %d", p.Layout.Total, p.Layout.Sum)
	}
}

func TestBuildStandardDepths(t *testing.T) {
	cases := []struct {
		cfg    Config
		params int64 // torchvision / paper parameter counts (BN folded into conv bias)
		name   string
	}{
		{Config{Depth: 18}, 11689512, "resnet18"},
		{Config{Depth: 34}, 21797672, "resnet34"},
		{Config{Depth: 50}, 25557032, "resnet50"},
		{Config{Depth: 101}, 44549160, "resnet101"},
		{Config{Depth: 152}, 60192808, "resnet152"},
		{Config{CIFAR: true, Depth: 20, Shortcut: ShortcutA}, 269722, "cifar-resnet20"},
		{Config{CIFAR: true, Depth: 56, Shortcut: ShortcutA}, 853018, "cifar-resnet56"},
		{Config{CIFAR: true, Depth: 110, Shortcut: ShortcutA}, 1727962, "cifar-resnet110"},
	}
	for _, c := range cases {
		g, err := Build(c.cfg, HeInit(1))
		if err != nil {
			t.Fatal(err)
		}
		f, err := Fuse(g)
		if err != nil {
			t.Fatal(err)
		}
		var params int64
		for i := range f.Nodes {
			params += f.Params(i)
		}
		// Folding adds a bias to every conv, which torchvision's count has
		// as BN beta; BN gamma has no counterpart after folding.
		cfg, _ := c.cfg.Normalize()
		var bnGamma int64
		for i, n := range g.Nodes {
			if n.Op == OpAffine {
				bnGamma += int64(len(g.Nodes[i].Affine.Scale))
			}
		}
		if params+bnGamma != c.params {
			t.Errorf("%s: %d params (+%d BN gammas), want %d", c.name, params, bnGamma, c.params)
		}
		if cfg.Name() != c.name {
			t.Errorf("name %q, want %q", cfg.Name(), c.name)
		}
	}
}

func TestResNet50MACs(t *testing.T) {
	g, err := Build(Config{Depth: 50}, HeInit(1))
	if err != nil {
		t.Fatal(err)
	}
	var macs int64
	for i := range g.Nodes {
		macs += g.MACs(i)
	}
	// 4.09 GMACs is the commonly quoted figure for torchvision ResNet-50.
	if macs < 4.08e9 || macs > 4.12e9 {
		t.Fatalf("ResNet-50 has %d MACs", macs)
	}
}

func TestBadConfigs(t *testing.T) {
	for _, c := range []Config{{Depth: 19}, {CIFAR: true, Depth: 21}, {Depth: 18, Classes: -1}, {Blocks: []int{1, 0}}} {
		if _, err := Build(c, HeInit(1)); err == nil {
			t.Errorf("config %+v: want an error", c)
		}
	}
}

func TestQuantizedWeightsOnly(t *testing.T) {
	q := &QWeights{Q: []int8{1, -2, 127, -127, 0, 3}, Scale: []float32{0.5, 2}}
	g := &Graph{Nodes: []*Node{{Name: "in", Op: OpInput, Shape: Shape{1, 1, 3}, Quant: &QParams{Scale: 0.1, Zero: 7}},
		{Name: "d", Op: OpDense, Inputs: []int{0}, Dense: &Dense{In: 3, Out: 2, Quant: q}}}, Output: 1}
	if err := g.InferShapes(); err != nil {
		t.Fatal(err)
	}
	want := []float32{0.5, -4, 63.5, -254, 0, 6}
	if got := g.Nodes[1].Dense.FloatWeight(); !slices.Equal(got, want) {
		t.Errorf("FloatWeight = %v, want %v", got, want)
	}
	if got := g.Params(1); got != 6 {
		t.Errorf("Params = %d, want 6", got)
	}
}

func TestInferShapesRejects(t *testing.T) {
	in := &Node{Name: "in", Op: OpInput, Shape: Shape{8, 8, 3}}
	cases := map[string]*Graph{
		"conv channel mismatch": {Nodes: []*Node{in, {Name: "c", Op: OpConv, Inputs: []int{0},
			Conv: &Conv{KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, Cin: 4, Cout: 2, Weight: make([]float32, 8)}}}, Output: 1},
		"forward reference": {Nodes: []*Node{in, {Name: "r", Op: OpRelu, Inputs: []int{2}}, {Name: "r2", Op: OpRelu, Inputs: []int{0}}}, Output: 1},
		"window larger than input": {Nodes: []*Node{in, {Name: "p", Op: OpMaxPool, Inputs: []int{0},
			Pool: &Pool{KH: 9, KW: 9, StrideH: 1, StrideW: 1}}}, Output: 1},
		"missing attrs": {Nodes: []*Node{in, {Name: "d", Op: OpDense, Inputs: []int{0}}}, Output: 1},
		"huge pad":      {Nodes: []*Node{in, {Name: "p", Op: OpPad, Inputs: []int{0}, Pad: &PadOp{After: [3]int{1 << 20, 0, 0}}}}, Output: 1},
		"bad output":    {Nodes: []*Node{in}, Output: 5},
		"no weights at all": {Nodes: []*Node{in, {Name: "c", Op: OpConv, Inputs: []int{0},
			Conv: &Conv{KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, Cin: 3, Cout: 2}}}, Output: 1},
		"int8 weights too few": {Nodes: []*Node{in, {Name: "c", Op: OpConv, Inputs: []int{0},
			Conv: &Conv{KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, Cin: 3, Cout: 2,
				Quant: &QWeights{Q: make([]int8, 5), Scale: []float32{1, 1}}}}}, Output: 1},
		"int8 weight -128": {Nodes: []*Node{in, {Name: "c", Op: OpConv, Inputs: []int{0},
			Conv: &Conv{KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, Cin: 3, Cout: 2,
				Quant: &QWeights{Q: []int8{0, 0, -128, 0, 0, 0}, Scale: []float32{1, 1}}}}}, Output: 1},
		"int8 scale zero": {Nodes: []*Node{in, {Name: "d", Op: OpDense, Inputs: []int{0},
			Dense: &Dense{In: 3, Out: 1, Quant: &QWeights{Q: make([]int8, 3), Scale: []float32{0}}}}}, Output: 1},
		"activation zero point 256": {Nodes: []*Node{{Name: "in", Op: OpInput, Shape: Shape{8, 8, 3}, Quant: &QParams{Scale: 1, Zero: 256}}}},
	}
	for name, g := range cases {
		if err := g.InferShapes(); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestExecAllocatesNothing(t *testing.T) {
	for _, cfg := range []Config{
		{Depth: 18, Height: 64, Width: 64, BaseWidth: 16},
		{Depth: 50, Height: 64, Width: 64, BaseWidth: 8},
	} {
		g, err := Build(cfg, HeInit(2))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, threads := range []int{1, 2} {
			e, _ := NewExec(p, threads)
			in := randInput(rand.New(rand.NewPCG(1, 1)), g.Input().Size())
			if allocs := testing.AllocsPerRun(5, func() { e.Run(in) }); allocs != 0 {
				t.Errorf("%+v, %d threads: %v allocations per run", cfg, threads, allocs)
			}
			e.Close()
		}
	}
}

// TestFuseRewrites checks the rewrites beyond the ResNet family's: a zero
// Pad folded into the next Conv's padding (asymmetric, as Keras "same" with
// stride 2 exports), a Slice of a Slice, an Affine after a Dense, and dead
// nodes dropped; the fused graph must compute the same values.
func TestFuseRewrites(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	g := &Graph{}
	x := g.Add(&Node{Name: "in", Op: OpInput, Shape: Shape{9, 10, 3}})
	p := g.Add(&Node{Name: "pad", Op: OpPad, Inputs: []int{x}, Pad: &PadOp{After: [3]int{1, 1, 0}}})
	c := g.Add(&Node{Name: "conv", Op: OpConv, Inputs: []int{p}, Conv: &Conv{KH: 3, KW: 3, StrideH: 2, StrideW: 2, DilH: 1, DilW: 1,
		Cin: 3, Cout: 5, Weight: randInput(r, 3*3*3*5)}})
	s1 := g.Add(&Node{Name: "s1", Op: OpSlice, Inputs: []int{c}, Slice: &SliceOp{Start: [3]int{1, 0, 0}, End: [3]int{4, 5, 5}, Step: [3]int{1, 2, 1}}})
	s2 := g.Add(&Node{Name: "s2", Op: OpSlice, Inputs: []int{s1}, Slice: &SliceOp{Start: [3]int{1, 0, 1}, End: [3]int{3, 3, 5}, Step: [3]int{2, 1, 3}}})
	g.Add(&Node{Name: "dead", Op: OpRelu, Inputs: []int{c}})
	f := g.Add(&Node{Name: "flat", Op: OpFlatten, Inputs: []int{s2}})
	d := g.Add(&Node{Name: "fc", Op: OpDense, Inputs: []int{f}, Dense: &Dense{In: 1 * 3 * 2, Out: 4, Weight: randInput(r, 24)}})
	g.Output = g.Add(&Node{Name: "bn", Op: OpAffine, Inputs: []int{d}, Affine: &Affine{Scale: randInput(r, 4), Shift: randInput(r, 4)}})
	in := randInput(r, 9*10*3)
	want, err := g.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	fg, err := Fuse(g)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, n := range fg.Nodes {
		ops = append(ops, n.Op.String())
	}
	if got := strings.Join(ops, " "); got != "Input Conv Slice Flatten Dense" {
		t.Fatalf("fused ops: %s", got)
	}
	got, _ := fg.Eval(in)
	if d := maxDiff(got, want); d > 1e-5*maxAbs(want) {
		t.Fatalf("fused graph differs by %g", d)
	}
	p2, err := Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := NewExec(p2, 2)
	defer e.Close()
	got, _ = e.Run(in)
	if d := maxDiff(got, want); d > 1e-5*maxAbs(want) {
		t.Fatalf("plan differs by %g", d)
	}
}

// BenchmarkWinogradVsIm2col runs ImageNet ResNet-18 and -50 (224x224, one
// thread) compiled with WinogradOff and with the automatic policy,
// alternating the two plans every iteration so that both see the same
// machine load, and reports the fastest run of each and their ratio
// (-benchtime 7x gives 7 runs of each).
func BenchmarkWinogradVsIm2col(b *testing.B) {
	for _, depth := range []int{18, 50} {
		b.Run(fmt.Sprintf("resnet%d", depth), func(b *testing.B) {
			g, err := Build(Config{Depth: depth}, HeInit(1))
			if err != nil {
				b.Fatal(err)
			}
			var ex [2]*Exec
			for i, w := range []int{WinogradOff, WinogradAuto} {
				p, err := CompileWith(g, CompileOptions{Winograd: w})
				if err != nil {
					b.Fatal(err)
				}
				ex[i], _ = NewExec(p, 1)
				defer ex[i].Close()
			}
			in := randInput(rand.New(rand.NewPCG(1, 2)), g.Input().Size())
			best := [2]float64{math.Inf(1), math.Inf(1)}
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				for i, e := range ex {
					t0 := time.Now()
					e.Run(in)
					best[i] = math.Min(best[i], time.Since(t0).Seconds()*1e3)
				}
			}
			b.ReportMetric(best[0], "off-min-ms")
			b.ReportMetric(best[1], "auto-min-ms")
			b.ReportMetric(best[1]/best[0], "auto/off")
		})
	}
}

// TestTeamCallerRunsUnclaimedParts: with no worker running (as when the OS
// has not scheduled their threads) the caller runs every part itself.
func TestTeamCallerRunsUnclaimedParts(t *testing.T) {
	var counts [4]atomic.Int64
	tm := &team{n: 4, work: func(task, p int) { counts[p].Add(int64(task)) }} // no worker goroutines
	tm.park.init()
	for task := 1; task <= 3; task++ {
		tm.do(task)
	}
	for p := range counts {
		if got := counts[p].Load(); got != 6 {
			t.Fatalf("part %d ran tasks summing to %d, want 6", p, got)
		}
	}
}

// TestTeamRunsEveryTask starts many teams and gives them a task at once,
// before their workers have had a chance to start, and many tasks after
// they have parked: every part must run for every task exactly once.
func TestTeamRunsEveryTask(t *testing.T) {
	for trial := 0; trial < 50; trial++ {
		var counts [4]atomic.Int64
		tm := newTeam(4, func(task, w int) { counts[w].Add(int64(task)) })
		sum := 0
		for task := 1; task <= 20; task++ {
			tm.do(task)
			sum += task
			if task == 10 {
				time.Sleep(3 * teamSpin) // let the workers park
			}
		}
		tm.close()
		for w := range counts {
			if got := counts[w].Load(); got != int64(sum) {
				t.Fatalf("trial %d: worker %d ran tasks summing to %d, want %d", trial, w, got, sum)
			}
		}
	}
}
