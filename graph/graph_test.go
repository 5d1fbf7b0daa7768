package graph

import (
	"slices"
	"testing"
)

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
