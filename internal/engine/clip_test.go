package engine

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/kernels"
)

// relu6Net is a small net with a Clip after every kind of layer a plan
// folds one into: a 3x3 conv (Winograd), a ReLU then Clip(-Inf, 6) after a
// strided 3x3 conv (im2col), a depthwise conv, grouped convs of 2 and 8
// output channels per group (direct or per-group GEMM, by kernel path), a
// 1x1 conv with a residual add, an Affine after a clamped value, an Add of
// two values a plan cannot fuse, and a dense layer; bounds one-sided,
// negative and ReLU6.
func relu6Net(r *rand.Rand) *graph.Graph {
	g := &graph.Graph{}
	w := func(n int, scale float64) []float32 {
		v := randInput(r, n)
		for i := range v {
			v[i] *= float32(scale)
		}
		return v
	}
	add := func(n *graph.Node, in ...int) int {
		n.Inputs = in
		return g.Add(n)
	}
	conv := func(name string, x, k, s, cin, cout, groups int) int {
		return add(&graph.Node{Name: name, Op: graph.OpConv, Conv: &graph.Conv{KH: k, KW: k, StrideH: s, StrideW: s, DilH: 1, DilW: 1,
			Pad: graph.Pads{Top: k / 2, Left: k / 2, Bottom: k / 2, Right: k / 2}, Cin: cin, Cout: cout, Group: groups,
			Weight: w(k*k*cin/groups*cout, 3/math.Sqrt(float64(k*k*cin/groups))), Bias: w(cout, 1)}}, x)
	}
	clip := func(x int, lo, hi float64) int {
		return add(&graph.Node{Name: "clip", Op: graph.OpClip, Clip: &graph.Clip{Min: float32(lo), Max: float32(hi)}}, x)
	}
	inf := math.Inf(1)
	x := g.Add(&graph.Node{Name: "in", Op: graph.OpInput, Shape: graph.Shape{H: 10, W: 11, C: 8}})
	x = clip(conv("wino", x, 3, 1, 8, 16, 1), 0, 6)
	x = clip(add(&graph.Node{Name: "relu", Op: graph.OpRelu}, conv("im2col", x, 3, 2, 16, 16, 1)), -inf, 6)
	x = clip(conv("dw", x, 3, 1, 16, 16, 16), 0, 6)
	x = clip(conv("g8", x, 3, 1, 16, 16, 8), -1, 6)
	y := clip(conv("g2", x, 3, 1, 16, 16, 2), 0, 6)
	y = clip(add(&graph.Node{Name: "res", Op: graph.OpAdd}, conv("1x1", y, 1, 1, 16, 16, 1), x), 0, 6)
	z := clip(add(&graph.Node{Name: "bn", Op: graph.OpAffine, Affine: &graph.Affine{Scale: w(16, 1), Shift: w(16, 1)}}, y), -1.5, 1)
	y = clip(add(&graph.Node{Name: "sum", Op: graph.OpAdd}, y, z), -inf, 5)
	y = add(&graph.Node{Name: "pool", Op: graph.OpGlobalAvgPool}, y)
	y = clip(add(&graph.Node{Name: "fc1", Op: graph.OpDense, Dense: &graph.Dense{In: 16, Out: 24, Weight: w(16*24, 1), Bias: w(24, 1)}}, y), -0.5, 0.5)
	g.Output = add(&graph.Node{Name: "fc2", Op: graph.OpDense, Dense: &graph.Dense{In: 24, Out: 10, Weight: w(240, 1), Bias: w(10, 1)}}, y)
	return g
}

// TestClipFusionMatchesEval runs relu6Net (batch 2) on every kernel path:
// the plan folds every Clip, matches the reference evaluator of the
// unfused graph within tolerance with the same top-1, at 1, 2 and 3
// threads bit for bit, and equals bit for bit the plan that runs the
// Clips as steps (KeepValues keeps them), also on an input with a NaN; a
// run allocates nothing.
func TestClipFusionMatchesEval(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 21))
	g := relu6Net(r)
	in := randInput(r, 2*g.Input().Size())
	want, err := g.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	withNaN := slices.Clone(in)
	withNaN[200] = float32(math.NaN())
	seen := map[string]bool{}
	for _, ks := range kernels.Sets() {
		t.Run(ks.Name(), func(t *testing.T) {
			p, err := CompileWith(g, CompileOptions{Batch: 2, Kernels: ks})
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range p.Steps() {
				if st.Op == graph.OpClip {
					t.Fatalf("step %s: a Clip was not folded", st.Name)
				}
				seen[strings.Split(st.Kernel, "/")[0]] = true
			}
			checkPlan(t, p, in, want, 1e-4*maxAbs(want))
			unfused, err := CompileWith(g, CompileOptions{Batch: 2, KeepValues: true, Kernels: ks})
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range [][]float32{in, withNaN} {
				got, ref := runOnce(t, p, x), runOnce(t, unfused, x)
				if !sameBitsOrNaN(got, ref) {
					t.Fatalf("folded Clips differ from Clip steps:\n%v\n%v", got, ref)
				}
				if !slices.ContainsFunc(got, func(v float32) bool { return v != v }) != (&x[0] == &in[0]) {
					t.Fatal("NaN input: no NaN in the output (or the reverse)")
				}
			}
			e, _ := NewExec(p, 2)
			if a := testing.AllocsPerRun(3, func() { e.Run(in) }); a != 0 {
				t.Errorf("Run allocates %v times", a)
			}
			e.Close()
			got := runOnce(t, p, in)
			for b := range 2 {
				if argmax(got[b*10:(b+1)*10]) != argmax(want[b*10:(b+1)*10]) {
					t.Errorf("sample %d: top-1 differs from Eval", b)
				}
			}
		})
	}
	// The generic path runs the grouped conv of 8 channels per group as
	// GEMMs, the one of 2 on the direct kernel.
	for _, k := range []string{"winograd F(4x4)", "im2col+gemm", "depthwise", "grouped direct", "grouped gemm", "gemm", "Affine", "Add"} {
		if !seen[k] {
			t.Errorf("no step ran %q (saw %v)", k, seen)
		}
	}
}

// runOnce runs p at 2 threads and returns a copy of the output.
func runOnce(t *testing.T, p *Plan, in []float32) []float32 {
	t.Helper()
	e, err := NewExec(p, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	out, err := e.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(out)
}

func sameBitsOrNaN(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) || x != x && y != y })
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
