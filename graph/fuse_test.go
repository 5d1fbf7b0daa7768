package graph

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// fuseNet builds the small graphs of TestFuseClip on a 4x5x3 input.
type fuseNet struct {
	g *Graph
	r *rand.Rand
}

func newFuseNet() *fuseNet {
	b := &fuseNet{g: &Graph{}, r: rand.New(rand.NewPCG(3, 9))}
	b.g.Add(&Node{Name: "in", Op: OpInput, Shape: Shape{4, 5, 3}})
	return b
}

func (b *fuseNet) values(n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(b.r.NormFloat64() * scale)
	}
	return v
}

// node adds n reading inputs and returns its index.
func (b *fuseNet) node(n *Node, inputs ...int) int {
	n.Inputs = inputs
	if n.Name == "" {
		n.Name = n.Op.String()
	}
	return b.g.Add(n)
}

// conv is a 3x3 conv (3 channels in and out, padding 1) with a bias and
// outputs of a few units, so that ReLU6 clamps both ends.
func (b *fuseNet) conv(x int) int {
	return b.node(&Node{Op: OpConv, Conv: &Conv{KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1,
		Pad: Pads{Top: 1, Left: 1, Bottom: 1, Right: 1}, Cin: 3, Cout: 3, Weight: b.values(81, 1), Bias: b.values(3, 1)}}, x)
}

func (b *fuseNet) clip(x int, lo, hi float64) int {
	return b.node(&Node{Op: OpClip, Clip: &Clip{Min: float32(lo), Max: float32(hi)}}, x)
}

func (b *fuseNet) affine(x int) int {
	return b.node(&Node{Op: OpAffine, Affine: &Affine{Scale: b.values(3, 3), Shift: b.values(3, 1)}}, x)
}

// describe lists the nodes after the input as Describe shows them.
func describe(g *Graph) string {
	var s []string
	for i := 1; i < len(g.Nodes); i++ {
		s = append(s, g.Describe(i))
	}
	return strings.Join(s, " | ")
}

// sameValues reports bit-identical slices, any NaN matching any NaN.
func sameValues(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
			return false
		}
	}
	return true
}

// TestFuseClip checks the Clip rule of FuseWith: a Clip folds into the
// Conv, Dense, Add or Affine before it, bounds kept, after a fused ReLU,
// only when that node is used by the Clip alone, is not clamped yet and
// neither value is quantized; Fuse folds none. Both fused graphs evaluate
// bit for bit as the source on an input with NaN, infinities and -0.
func TestFuseClip(t *testing.T) {
	inf := math.Inf(1)
	cases := []struct {
		name  string
		build func(b *fuseNet)
		want  string // FuseWith(Clip) as describe shows it
	}{
		{"conv relu6", func(b *fuseNet) { b.clip(b.conv(0), 0, 6) }, "Conv 3x3/1 +bias +clip[0, 6]"},
		{"relu then clip", func(b *fuseNet) { b.clip(b.node(&Node{Op: OpRelu}, b.conv(0)), -inf, 6) }, "Conv 3x3/1 +bias +relu +clip[-Inf, 6]"},
		{"clip 0..inf is a relu", func(b *fuseNet) { b.clip(b.conv(0), 0, inf) }, "Conv 3x3/1 +bias +relu"},
		{"any interval", func(b *fuseNet) { b.clip(b.conv(0), -2.5, -0.5) }, "Conv 3x3/1 +bias +clip[-2.5, -0.5]"},
		{"conv used twice", func(b *fuseNet) {
			c := b.conv(0)
			b.node(&Node{Op: OpAdd}, c, b.clip(c, 0, 6))
		}, "Conv 3x3/1 +bias | Clip [0, 6] | Add"},
		{"conv is an output too", func(b *fuseNet) {
			c := b.conv(0)
			b.clip(c, 0, 6)
			b.g.Extra = []int{c}
		}, "Conv 3x3/1 +bias | Clip [0, 6]"},
		{"after a pool", func(b *fuseNet) {
			b.clip(b.node(&Node{Op: OpMaxPool, Pool: &Pool{KH: 2, KW: 2, StrideH: 1, StrideW: 1}}, 0), 0, 6)
		}, "MaxPool 2x2/1 | Clip [0, 6]"},
		{"quantized clip", func(b *fuseNet) {
			c := b.clip(b.conv(0), 0, 6)
			b.g.Nodes[c].Quant = &QParams{Scale: 6.0 / 255}
		}, "Conv 3x3/1 +bias | Clip [0, 6]"},
		{"quantized conv", func(b *fuseNet) {
			c := b.conv(0)
			b.g.Nodes[c].Quant = &QParams{Scale: 0.1, Zero: 128}
			b.clip(c, 0, 6)
		}, "Conv 3x3/1 +bias | Clip [0, 6]"},
		{"relu after the clip", func(b *fuseNet) { b.node(&Node{Op: OpRelu}, b.clip(b.conv(0), -1, 6)) }, "Conv 3x3/1 +bias +clip[-1, 6] | Relu"},
		{"clip after the clip", func(b *fuseNet) { b.clip(b.clip(b.conv(0), 0, 6), 1, 2) }, "Conv 3x3/1 +bias +clip[0, 6] | Clip [1, 2]"},
		{"batchnorm after the clip", func(b *fuseNet) { b.affine(b.clip(b.conv(0), 0, 6)) }, "Conv 3x3/1 +bias +clip[0, 6] | Affine"},
		{"residual conv", func(b *fuseNet) {
			c1 := b.conv(0)
			b.clip(b.node(&Node{Op: OpAdd}, b.conv(c1), c1), 0, 6)
		}, "Conv 3x3/1 +bias | Conv 3x3/1 +bias +residual(Conv) +clip[0, 6]"},
		{"dense", func(b *fuseNet) {
			p := b.node(&Node{Op: OpGlobalAvgPool}, 0)
			b.clip(b.node(&Node{Op: OpDense, Dense: &Dense{In: 3, Out: 4, Weight: b.values(12, 3), Bias: b.values(4, 1)}}, p), -0.5, 0.5)
		}, "GlobalAvgPool | Dense +clip[-0.5, 0.5]"},
		{"add", func(b *fuseNet) { b.clip(b.node(&Node{Op: OpAdd}, 0, b.affine(0)), 0, 6) }, "Affine | Add +clip[0, 6]"},
		{"affine", func(b *fuseNet) { b.clip(b.affine(0), -1, 1) }, "Affine +clip[-1, 1]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newFuseNet()
			c.build(b)
			b.g.Output = len(b.g.Nodes) - 1
			checkFuseClip(t, b, c.want)
		})
	}
}

// checkFuseClip fuses b's graph both ways and checks the structure and
// the values.
func checkFuseClip(t *testing.T, b *fuseNet, want string) {
	t.Helper()
	in := b.values(b.g.Nodes[0].Shape.Size(), 1)
	in[7], in[20], in[33], in[45] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1))
	ref, err := b.g.EvalOutputs(in)
	if err != nil {
		t.Fatal(err)
	}
	folded, err := FuseWith(b.g, FuseOptions{Clip: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(folded); got != want {
		t.Errorf("FuseWith: %s\nwant      %s", got, want)
	}
	plain, err := Fuse(b.g)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range plain.Nodes {
		if n.Clamp != nil {
			t.Errorf("Fuse folded a Clip into node %d (%s)", i, plain.Describe(i))
		}
	}
	for name, f := range map[string]*Graph{"Fuse": plain, "FuseWith": folded} {
		got, err := f.EvalOutputs(in)
		if err != nil {
			t.Fatal(err)
		}
		for k := range ref {
			if !sameValues(got[k], ref[k]) {
				t.Errorf("%s: output %d differs from the source's:\n%v\n%v", name, k, got[k], ref[k])
			}
		}
	}
	for i, n := range b.g.Nodes {
		if n.Clamp != nil {
			t.Errorf("the source's node %d got a Clamp", i)
		}
	}
}

// TestClampChecked: InferShapes accepts a fused Clip only on the ops that
// have activations, with the bounds of a Clip op.
func TestClampChecked(t *testing.T) {
	nan := float32(math.NaN())
	cases := []struct {
		name string
		op   Op
		c    Clip
		ok   bool
	}{
		{"affine relu6", OpAffine, Clip{0, 6}, true},
		{"affine infinite", OpAffine, Clip{float32(math.Inf(-1)), float32(math.Inf(1))}, true},
		{"affine point", OpAffine, Clip{2, 2}, true},
		{"upside down", OpAffine, Clip{6, 0}, false},
		{"NaN", OpAffine, Clip{nan, 6}, false},
		{"min +Inf", OpAffine, Clip{float32(math.Inf(1)), float32(math.Inf(1))}, false},
		{"on a pool", OpGlobalAvgPool, Clip{0, 6}, false},
	}
	for _, c := range cases {
		n := &Node{Name: "n", Op: c.op, Inputs: []int{0}, Clamp: &c.c}
		if c.op == OpAffine {
			n.Affine = &Affine{Scale: []float32{1, 1, 1}, Shift: []float32{0, 0, 0}}
		}
		g := &Graph{Nodes: []*Node{{Name: "in", Op: OpInput, Shape: Shape{2, 2, 3}}, n}, Output: 1}
		if err := g.InferShapes(); (err == nil) != c.ok {
			t.Errorf("%s: InferShapes = %v", c.name, err)
		}
	}
}

// TestFuseLeavesSourceAlone checks that Fuse and FuseWith do not write to
// the graph they read (a loaded model's graph is shared by the plans of
// its sessions, compiled concurrently): the source's shapes stay as they
// were, not inferred, while the result's are, and concurrent calls on one
// graph agree (run with -race).
func TestFuseLeavesSourceAlone(t *testing.T) {
	b := newFuseNet()
	x := b.conv(0)
	x = b.clip(x, 0, 6)
	b.affine(x)
	b.g.Output = len(b.g.Nodes) - 1
	for _, n := range b.g.Nodes[1:] {
		n.Shape = Shape{} // never inferred
	}
	done := make(chan *Graph, 4)
	for i := range 4 {
		go func() {
			f, err := FuseWith(b.g, FuseOptions{Clip: i%2 == 0})
			if err != nil {
				t.Error(err)
			}
			done <- f
		}()
	}
	for range 4 {
		if f := <-done; f != nil && f.Nodes[len(f.Nodes)-1].Shape != (Shape{4, 5, 3}) {
			t.Errorf("fused output shape %v", f.Nodes[len(f.Nodes)-1].Shape)
		}
	}
	for i, n := range b.g.Nodes[1:] {
		if n.Shape != (Shape{}) {
			t.Errorf("Fuse wrote shape %v into source node %d", n.Shape, i+1)
		}
	}
}
