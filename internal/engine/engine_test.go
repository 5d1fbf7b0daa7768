package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// randomWeights gives every parameter, BatchNorm statistics included,
// random values, so that folding is really exercised.
func randomWeights(seed uint64) resnet.Weights {
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

var smallConfigs = []resnet.Config{
	{Blocks: []int{1, 1, 1, 1}, BaseWidth: 8, Height: 40, Width: 56, Classes: 7},
	{Blocks: []int{2, 1, 1, 1}, BaseWidth: 4, Bottleneck: true, Height: 33, Width: 47, Classes: 5, ConvBias: true},
	{Blocks: []int{1, 1, 1, 1}, BaseWidth: 4, Bottleneck: true, StrideOn1x1: true, Height: 32, Width: 32, Classes: 3},
	{Blocks: []int{1, 1, 1, 1}, BaseWidth: 8, Shortcut: resnet.ShortcutA, Height: 35, Width: 29, Classes: 4, InChannels: 1},
	{CIFAR: true, Depth: 8, BaseWidth: 4, Shortcut: resnet.ShortcutA, Height: 16, Width: 20},
	{CIFAR: true, Depth: 14, BaseWidth: 4, Shortcut: resnet.ShortcutAEnd, Height: 12, Width: 12, Classes: 6},
	{CIFAR: true, Depth: 8, BaseWidth: 4, Shortcut: resnet.ShortcutB, Height: 9, Width: 13, ConvBias: true},
	// ResNeXt (4 groups of 4 channels in the first stage) and a depthwise
	// middle conv (16 groups of 1: width 16*4/64*16 = 16).
	{Blocks: []int{1, 1, 1, 1}, BaseWidth: 16, Bottleneck: true, Groups: 4, WidthPerGroup: 16, Height: 20, Width: 24, Classes: 5},
	{Blocks: []int{1, 1, 1, 1}, BaseWidth: 16, Bottleneck: true, Groups: 16, WidthPerGroup: 4, Height: 19, Width: 17, Classes: 3},
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
			g, err := resnet.Build(cfg, randomWeights(uint64(ci)))
			if err != nil {
				t.Fatal(err)
			}
			in := randInput(r, g.Input().Size())
			want, err := g.Eval(in)
			if err != nil {
				t.Fatal(err)
			}
			tol := 1e-4 * maxAbs(want)
			f, err := graph.Fuse(g)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range f.Nodes {
				if n.Op == graph.OpAffine || n.Op == graph.OpRelu {
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
				if (wino > 0 && n != all) || (wino < 0 && n != 0) {
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

// count3x3s1 counts the convolutions Winograd applies to (ungrouped 3x3
// stride 1).
func count3x3s1(p *Plan) int {
	n := 0
	for _, st := range p.steps {
		if st.op != graph.OpConv {
			continue
		}
		if c := p.Graph.Nodes[st.node].Conv; c.KH == 3 && c.KW == 3 && c.StrideH == 1 && c.StrideW == 1 && c.Groups() == 1 {
			n++
		}
	}
	return n
}

// TestWinogradOptions checks the environment override and the errors for
// bad settings; auto must use Winograd somewhere on a ResNet.
func TestWinogradOptions(t *testing.T) {
	g, err := resnet.Build(resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 16, Width: 16}, resnet.HeInit(1))
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

func TestExecAllocatesNothing(t *testing.T) {
	for _, cfg := range []resnet.Config{
		{Depth: 18, Height: 64, Width: 64, BaseWidth: 16},
		{Depth: 50, Height: 64, Width: 64, BaseWidth: 8},
	} {
		g, err := resnet.Build(cfg, resnet.HeInit(2))
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
	g := &graph.Graph{}
	x := g.Add(&graph.Node{Name: "in", Op: graph.OpInput, Shape: graph.Shape{H: 9, W: 10, C: 3}})
	p := g.Add(&graph.Node{Name: "pad", Op: graph.OpPad, Inputs: []int{x}, Pad: &graph.PadOp{After: [3]int{1, 1, 0}}})
	c := g.Add(&graph.Node{Name: "conv", Op: graph.OpConv, Inputs: []int{p}, Conv: &graph.Conv{KH: 3, KW: 3, StrideH: 2, StrideW: 2, DilH: 1, DilW: 1,
		Cin: 3, Cout: 5, Weight: randInput(r, 3*3*3*5)}})
	s1 := g.Add(&graph.Node{Name: "s1", Op: graph.OpSlice, Inputs: []int{c}, Slice: &graph.SliceOp{Start: [3]int{1, 0, 0}, End: [3]int{4, 5, 5}, Step: [3]int{1, 2, 1}}})
	s2 := g.Add(&graph.Node{Name: "s2", Op: graph.OpSlice, Inputs: []int{s1}, Slice: &graph.SliceOp{Start: [3]int{1, 0, 1}, End: [3]int{3, 3, 5}, Step: [3]int{2, 1, 3}}})
	g.Add(&graph.Node{Name: "dead", Op: graph.OpRelu, Inputs: []int{c}})
	f := g.Add(&graph.Node{Name: "flat", Op: graph.OpFlatten, Inputs: []int{s2}})
	d := g.Add(&graph.Node{Name: "fc", Op: graph.OpDense, Inputs: []int{f}, Dense: &graph.Dense{In: 1 * 3 * 2, Out: 4, Weight: randInput(r, 24)}})
	g.Output = g.Add(&graph.Node{Name: "bn", Op: graph.OpAffine, Inputs: []int{d}, Affine: &graph.Affine{Scale: randInput(r, 4), Shift: randInput(r, 4)}})
	in := randInput(r, 9*10*3)
	want, err := g.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	fg, err := graph.Fuse(g)
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
			g, err := resnet.Build(resnet.Config{Depth: depth}, resnet.HeInit(1))
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
		tm := newTeam(4, func(task, w int) { counts[w].Add(int64(task)) }, nil)
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
