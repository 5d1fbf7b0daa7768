package engine

import (
	"math"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/kernels"
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
// inputs' parameters. The input node stays float32 (callers write floats).
func int8Nodes(g *graph.Graph) []bool {
	u8 := make([]bool, len(g.Nodes))
	for i, n := range g.Nodes {
		if i == 0 || n.Quant == nil {
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

// convertStep converts node i's value to the other precision.
func (p *Plan) convertStep(i int) step {
	n := p.Graph.Nodes[i]
	st := step{node: i, op: graph.OpQuantize, in: p.offsets[i], in2: -1, out: p.convOffs[i],
		inShape: n.Shape, outShape: n.Shape, q: *n.Quant}
	if p.u8[i] {
		st.op = graph.OpDequantize
	}
	return st
}

// compileStep8 fills in the int8 form of a step whose inputs and output
// are uint8.
func (p *Plan) compileStep8(st step, opt *CompileOptions) (step, error) {
	g := p.Graph
	i := st.node
	nd := g.Nodes[i]
	qIn := *g.Nodes[nd.Inputs[0]].Quant
	qOut := *nd.Quant
	st.q, st.qOut = qIn, qOut
	x, o := st.inShape, nd.Shape
	lo := int32(0)
	if nd.Relu {
		lo = qOut.Zero
	}
	switch nd.Op {
	case graph.OpConv, graph.OpDense:
		var qw *graph.QWeights
		var bias []float32
		if nd.Op == graph.OpConv {
			c := nd.Conv
			st.conv = kernels.ConvGeom{
				H: x.H, W: x.W, C: x.C, OH: o.H, OW: o.W, Cout: o.C,
				KH: c.KH, KW: c.KW, StrideH: c.StrideH, StrideW: c.StrideW,
				DilH: c.DilH, DilW: c.DilW, PadTop: c.Pad.Top, PadLeft: c.Pad.Left,
			}
			qw, bias = c.Quant, c.Bias
		} else {
			d := nd.Dense
			st.conv = kernels.ConvGeom{H: 1, W: 1, C: d.In, OH: 1, OW: 1, Cout: d.Out,
				KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1}
			qw, bias = d.Quant, d.Bias
		}
		st.rq = requant(qIn, qw, bias, qOut, lo)
		if st.in2 >= 0 {
			qr := *g.Nodes[nd.Inputs[1]].Quant
			st.rq.ResZero = qr.Zero
			st.rq.ResScale = float32(float64(qr.Scale) / float64(qOut.Scale))
		}
		if nd.Op == graph.OpConv && winograd8Choice(p.Kernel, &st.conv, opt.Winograd, kernels.Gemm8UsesNarrow(qw.Q)) {
			wg, err := kernels.NewWinograd8(&st.conv, qw.Q)
			if err != nil {
				return step{}, g.Errorf(i, "%v", err)
			}
			st.wino8 = wg
			p.scratch = max(p.scratch, (wg.Scratch()+3)/4)
			break
		}
		st.w8 = kernels.PackConv8(&st.conv, qw.Q)
		p.scratch = max(p.scratch, (kernels.ConvScratch8(&st.conv)+3)/4)
	case graph.OpAdd:
		qb := *g.Nodes[nd.Inputs[1]].Quant
		st.add8 = kernels.Add8Params{
			ZeroA: qIn.Zero, ZeroB: qb.Zero, ZeroOut: qOut.Zero, Lo: lo,
			ScaleA: float32(float64(qIn.Scale) / float64(qOut.Scale)),
			ScaleB: float32(float64(qb.Scale) / float64(qOut.Scale)),
		}
	case graph.OpMaxPool:
		pl := nd.Pool
		st.pool = kernels.PoolGeom{
			H: x.H, W: x.W, C: x.C, OH: o.H, OW: o.W, KH: pl.KH, KW: pl.KW,
			StrideH: pl.StrideH, StrideW: pl.StrideW, PadTop: pl.Pad.Top, PadLeft: pl.Pad.Left,
			PadBottom: pl.Pad.Bottom, PadRight: pl.Pad.Right,
		}
	case graph.OpPad:
		st.pad = nd.Pad
	case graph.OpSlice:
		st.slice = nd.Slice
	case graph.OpConcat:
		at := 0
		for _, in := range nd.Inputs {
			s := g.Nodes[in].Shape
			st.concat = append(st.concat, concatPart{off: p.valueOff(in, true), shape: s, at: at})
			at += [3]int{s.H, s.W, s.C}[nd.Axis]
		}
	case graph.OpGlobalAvgPool, graph.OpFlatten:
	default:
		return step{}, g.Errorf(i, "no int8 kernel for this op")
	}
	return st, nil
}

// requant is the epilogue of an int8 conv or dense layer with input
// parameters qIn, weights qw and output parameters qOut:
// Scale[j] = sIn*sW[j]/sOut and the bias in accumulator units,
// round(bias[j]/(sIn*sW[j])), saturated to int32.
func requant(qIn graph.QParams, qw *graph.QWeights, bias []float32, qOut graph.QParams, lo int32) kernels.Requant {
	n := len(qw.Scale)
	rq := kernels.Requant{ZeroA: qIn.Zero, ZeroOut: qOut.Zero, Lo: lo, Scale: make([]float32, n)}
	for j, sw := range qw.Scale {
		acc := float64(qIn.Scale) * float64(sw)
		rq.Scale[j] = float32(acc / float64(qOut.Scale))
		if bias != nil {
			if rq.Bias == nil {
				rq.Bias = make([]int32, n)
			}
			b := math.RoundToEven(float64(bias[j]) / acc)
			rq.Bias[j] = int32(min(max(b, math.MinInt32), math.MaxInt32))
		}
	}
	return rq
}
