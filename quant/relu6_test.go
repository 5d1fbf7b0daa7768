package quant

import (
	"math"
	"slices"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/internal/engine"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// relu6Variant makes every ReLU of g a ReLU6 (Clip(0, 6)).
func relu6Variant(g *graph.Graph) {
	for _, n := range g.Nodes {
		if n.Op == graph.OpRelu {
			n.Op, n.Clip = graph.OpClip, &graph.Clip{Max: 6}
		}
	}
}

// TestInt8KeepsClips quantizes a ReLU6 CIFAR ResNet. The float32 plan
// folds its Clips into the layers before them; quantization calibrates
// the graph of graph.Fuse, whose Clips stay ops with their own output
// parameters, and the int8 plan keeps them (as steps between conversions),
// so it computes exactly what the plan that folds nothing does.
func TestInt8KeepsClips(t *testing.T) {
	g, err := resnet.Build(resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 8}, resnet.HeInit(5))
	if err != nil {
		t.Fatal(err)
	}
	relu6Variant(g)
	p32, err := engine.Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := quantizeForTest(t, g, 4, QuantizeOptions{Method: MinMax, Workers: 2})
	p8, err := engine.CompileWith(q, engine.CompileOptions{Precision: engine.Int8})
	if err != nil {
		t.Fatal(err)
	}
	clips := func(p *engine.Plan) (n int) {
		for _, s := range p.Steps() {
			if s.Op == graph.OpClip {
				n++
			}
		}
		return n
	}
	if n := clips(p32); n != 0 {
		t.Errorf("the float32 plan runs %d Clip steps, want them folded", n)
	}
	if n := clips(p8); n == 0 || len(p8.Graph.Nodes) != len(q.Nodes) {
		t.Errorf("the int8 plan folded Clips: %d Clip steps, %d of %d nodes", n, len(p8.Graph.Nodes), len(q.Nodes))
	}
	unfolded, err := engine.CompileWith(q, engine.CompileOptions{Precision: engine.Int8, KeepValues: true})
	if err != nil {
		t.Fatal(err)
	}
	in := make([]float32, g.Input().Size())
	calibInput(1001, in)
	run := func(p *engine.Plan) []float32 {
		e, err := engine.NewExec(p, 2)
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
	got, want, f32 := run(p8), run(unfolded), run(p32)
	if !slices.Equal(got, want) {
		t.Fatalf("int8 plan %v, the plan that folds nothing %v", got, want)
	}
	var dot, n1, n2 float64
	for i := range f32 {
		dot += float64(f32[i]) * float64(got[i])
		n1 += float64(f32[i]) * float64(f32[i])
		n2 += float64(got[i]) * float64(got[i])
	}
	if cos := dot / math.Sqrt(n1*n2); !(cos > 0.97) {
		t.Errorf("int8 vs fp32 cosine similarity %.4f", cos)
	}
}
