package engine

import (
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/kernels"
)

// The steps of MaxPool, AvgPool and GlobalAvgPool, float32 and uint8.

func init() {
	registerStep(FP32, compilePool, graph.OpMaxPool, graph.OpAvgPool)
	registerStep(Int8, compilePool, graph.OpMaxPool)
	registerStep(FP32, compileGlobalAvgPool, graph.OpGlobalAvgPool)
	registerStep(Int8, compileGlobalAvgPool8, graph.OpGlobalAvgPool)
}

func compilePool(_ *compiler, st *step, nd *graph.Node) (kernel, error) {
	pl, x, o := nd.Pool, st.inShape, st.outShape
	return &pool{max: nd.Op == graph.OpMaxPool, geom: kernels.PoolGeom{
		H: x.H, W: x.W, C: x.C, OH: o.H, OW: o.W, KH: pl.KH, KW: pl.KW,
		StrideH: pl.StrideH, StrideW: pl.StrideW, PadTop: pl.Pad.Top, PadLeft: pl.Pad.Left,
		PadBottom: pl.Pad.Bottom, PadRight: pl.Pad.Right, CountIncludePad: pl.CountIncludePad,
	}}, nil
}

// pool is max or average pooling, split over output pixels. An int8 step
// is a uint8 max pool (a max commutes with the monotone quantization).
type pool struct {
	max  bool
	geom kernels.PoolGeom
}

func (k *pool) parts(st *step, n int) int {
	if st.int8 {
		return partsIf(st.outShape.Size() >= 1<<16, n)
	}
	return partsIf(st.outShape.Size() >= 1<<14, n)
}

func (k *pool) weightBytes() int64 { return 0 }

func (k *pool) run(e *Exec, st *step, part, parts int) {
	x0, x1 := split(st.outShape.H*st.outShape.W, 1, part, parts)
	for b := range e.n {
		switch {
		case st.int8:
			e.plan.Kernels.MaxPool8(&k.geom, e.view8(st.in, st.inShape, b), e.view8(st.out, st.outShape, b), x0, x1)
		case k.max:
			e.plan.Kernels.MaxPool(&k.geom, e.view(st.in, st.inShape, b), e.view(st.out, st.outShape, b), x0, x1)
		default:
			kernels.AvgPool(&k.geom, e.view(st.in, st.inShape, b), e.view(st.out, st.outShape, b), x0, x1)
		}
	}
}

func (k *pool) describe(_ *Plan, st *step) string { return opName(st) }

// opName describes a step that has one implementation: its op, with
// "int8 " before it for uint8 steps.
func opName(st *step) string {
	if st.int8 {
		return "int8 " + st.op.String()
	}
	return st.op.String()
}

func compileGlobalAvgPool(*compiler, *step, *graph.Node) (kernel, error) { return globalAvgPool{}, nil }

type globalAvgPool struct{ serialKernel }

func (globalAvgPool) run(e *Exec, st *step, _, _ int) {
	for b := range e.n {
		kernels.GlobalAvgPool(e.view(st.in, st.inShape, b), st.inShape.H*st.inShape.W, st.inShape.C, e.view(st.out, st.outShape, b))
	}
}
func (globalAvgPool) describe(_ *Plan, st *step) string { return opName(st) }

func compileGlobalAvgPool8(c *compiler, st *step, nd *graph.Node) (kernel, error) {
	qIn, qOut := c.quant(nd.Inputs[0]), *nd.Quant
	hw := st.inShape.H * st.inShape.W
	return &globalAvgPool8{zeroIn: qIn.Zero, zeroOut: qOut.Zero,
		scale: float32(float64(qIn.Scale) / (float64(hw) * float64(qOut.Scale)))}, nil
}

// globalAvgPool8 sums each channel in int32 and requantizes the mean.
type globalAvgPool8 struct {
	serialKernel
	zeroIn, zeroOut int32
	scale           float32
}

func (k *globalAvgPool8) run(e *Exec, st *step, _, _ int) {
	for b := range e.n {
		kernels.GlobalAvgPool8(e.view8(st.in, st.inShape, b), st.inShape.H*st.inShape.W, st.inShape.C, k.zeroIn, k.scale, k.zeroOut, e.view8(st.out, st.outShape, b))
	}
}
func (k *globalAvgPool8) describe(_ *Plan, st *step) string { return opName(st) }
