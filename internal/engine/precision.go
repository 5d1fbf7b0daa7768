package engine

import (
	"github.com/edge-resnet/edge-resnet/graph"
)

// Precision is graph.Precision; a plan is FP32 or Int8.
type Precision = graph.Precision

const (
	FP32 = graph.PrecisionFP32
	Int8 = graph.PrecisionInt8
)

// HasInt8 reports whether a graph carries any int8 data (activation
// parameters or int8 weights).
func HasInt8(g *graph.Graph) bool {
	for _, n := range g.Nodes {
		if n.Quant != nil || n.Conv != nil && n.Conv.Quant != nil || n.Dense != nil && n.Dense.Quant != nil {
			return true
		}
	}
	return false
}

// int8Nodes decides which node values an int8 plan stores as uint8: those
// with Quant whose inputs all have Quant and whose op has an int8 form.
// Ops that only move or compare values (max pooling, padding with real
// zero, slicing, concatenation, flattening) need the output to share the
// inputs' parameters. The input node stays float32 (callers write floats),
// and so does a node with a fused Clip (graph.Node.Clamp, which graph.Fuse
// never puts on a quantized node): the int8 epilogues have no upper bound.
func int8Nodes(g *graph.Graph) []bool {
	u8 := make([]bool, len(g.Nodes))
	for i, n := range g.Nodes {
		if i == 0 || n.Quant == nil || n.Clamp != nil {
			continue
		}
		ok := true
		same := true
		for _, in := range n.Inputs {
			q := g.Nodes[in].Quant
			if q == nil {
				ok = false
				break
			}
			same = same && *q == *n.Quant
		}
		if !ok {
			continue
		}
		switch n.Int8() {
		case graph.Int8Weights:
			u8[i] = n.Conv != nil && n.Conv.Quant != nil || n.Dense != nil && n.Dense.Quant != nil
		case graph.Int8Requant:
			u8[i] = true
			if n.Op == graph.OpGlobalAvgPool {
				// The int32 channel sums of GlobalAvgPool8 hold 2^23 pixels.
				in := g.Nodes[n.Inputs[0]].Shape
				u8[i] = in.H*in.W < 1<<23
			}
		case graph.Int8Move:
			u8[i] = same
		}
	}
	return u8
}

// IsUint8 reports whether the plan stores node i's value as uint8.
func (p *Plan) IsUint8(i int) bool { return i >= 0 && i < len(p.u8) && p.u8[i] }
