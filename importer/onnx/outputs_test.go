package onnx

import (
	"errors"
	"slices"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
)

// TestMultipleOutputs imports a model with two outputs (the conv before
// its ReLU and the ReLU), in the file's order and with its names, and
// checks the outputs' values against each other; a repeated output name is
// corrupt.
func TestMultipleOutputs(t *testing.T) {
	m := small(13)
	m.output("c")
	g, info, err := Import(m.bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Extra) != 1 || !slices.Equal(g.OutputNames, []string{"y", "c"}) || !slices.Equal(info.OutputNames, []string{"y", "c"}) {
		t.Fatalf("outputs %v + %v named %v (info %v)", g.Output, g.Extra, g.OutputNames, info.OutputNames)
	}
	in := make([]float32, g.Input().Size())
	for i := range in {
		in[i] = float32(i%7) - 3
	}
	outs, err := g.EvalOutputs(in)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range outs[1] {
		if outs[0][i] != max(c, 0) {
			t.Fatalf("value %d: relu %v of conv %v", i, outs[0][i], c)
		}
	}
	f, err := graph.Fuse(g)
	if err != nil || len(f.Extra) != 1 || f.Nodes[f.Extra[0]].Op != graph.OpConv {
		t.Fatalf("fused: %v, extra %v", err, f.Extra)
	}
	d := small(13)
	d.output("y")
	if _, _, err := Import(d.bytes(), Options{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a repeated output: %v", err)
	}
}
