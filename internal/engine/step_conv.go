package engine

import (
	"fmt"
	"math"

	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/kernels"
)

// The steps of Conv and Dense: float32 im2col/GEMM and Winograd, int8
// GEMM and Winograd8 with a fused requantization.

func init() {
	registerStep(FP32, compileConv, graph.OpConv)
	registerStep(FP32, compileDense, graph.OpDense)
	registerStep(Int8, compileConv8, graph.OpConv, graph.OpDense)
}

func convGeom(c *graph.Conv, x, o graph.Shape) kernels.ConvGeom {
	return kernels.ConvGeom{
		H: x.H, W: x.W, C: x.C, OH: o.H, OW: o.W, Cout: o.C,
		KH: c.KH, KW: c.KW, StrideH: c.StrideH, StrideW: c.StrideW,
		DilH: c.DilH, DilW: c.DilW, PadTop: c.Pad.Top, PadLeft: c.Pad.Left,
	}
}

// epilogue is the float32 epilogue of a conv or dense step for sample b
// (-1: every sample of the run).
func (e *Exec) epilogue(st *step, bias []float32, b int) kernels.Epilogue {
	ep := kernels.Epilogue{Bias: bias, Relu: st.relu, Clamp: st.clamp, Lo: st.lo, Hi: st.hi}
	if st.in2 >= 0 {
		if b < 0 {
			ep.Res = e.viewAll(st.in2, st.outShape)
		} else {
			ep.Res = e.view(st.in2, st.outShape, b)
		}
	}
	return ep
}

// batchGeom is g for every sample of the run as one image n times as
// tall, which is exact for a direct (1x1, stride 1, unpadded)
// convolution: its output pixels depend on one input pixel each, so the
// GEMM runs once over the batch's pixels.
func batchGeom(g kernels.ConvGeom, n int) kernels.ConvGeom {
	g.H *= n
	g.OH *= n
	return g
}

func compileConv(c *compiler, st *step, nd *graph.Node) (kernel, error) {
	cv := nd.Conv
	if cv.Groups() > 1 {
		return compileGroupConv(c, st, cv)
	}
	geom := convGeom(cv, st.inShape, st.outShape)
	cand := func(m int) candidate {
		if m > 0 {
			return candidate{fmt.Sprintf("winograd%d", m), func() (kernel, int, error) {
				wg, err := c.p.Kernels.NewWinograd(&geom, m, cv.FloatWeight())
				if err != nil {
					return nil, 0, err
				}
				return &winoConv{wg: wg, bias: cv.Bias}, 4 * wg.Scratch(), nil
			}}
		}
		return candidate{"gemm", func() (kernel, int, error) {
			k := &gemmConv{geom: geom, w: c.p.Kernels.PackB(cv.FloatWeight(), geom.K(), cv.Cout), bias: cv.Bias}
			return k, 4 * kernels.ConvScratch(&geom, &k.w), nil
		}}
	}
	policy := winogradChoice(&geom, c.opt.Winograd)
	cands := []candidate{cand(policy)}
	if c.opt.Winograd == WinogradAuto && kernels.WinogradApplies(&geom) {
		for _, m := range []int{0, 2, 4} {
			if m != policy {
				cands = append(cands, cand(m))
			}
		}
	}
	return c.choose(st, c.convSig("fp32", &geom, false), cands)
}

// gemmConv is a float32 convolution as a GEMM (1x1) or im2col + GEMM.
type gemmConv struct {
	geom kernels.ConvGeom
	w    kernels.PackedB
	bias []float32
}

func (k *gemmConv) parts(_ *step, n int) int { return n }
func (k *gemmConv) weightBytes() int64       { return k.w.Bytes() }

func (k *gemmConv) run(e *Exec, st *step, part, parts int) {
	if k.geom.Direct() {
		g := batchGeom(k.geom, e.n)
		k.runOn(e, st, &g, -1, part, parts)
		return
	}
	for b := range e.n {
		k.runOn(e, st, &k.geom, b, part, parts)
	}
}

// runOn computes part of sample b (-1: of the whole batch as one image).
func (k *gemmConv) runOn(e *Exec, st *step, g *kernels.ConvGeom, b, part, parts int) {
	px0, px1, p0, p1 := gridPart(g.Pixels(), k.w.MR(), k.w.Panels(), 4, part, parts)
	if px0 >= px1 || p0 >= p1 {
		return
	}
	ep := e.epilogue(st, k.bias, b)
	in, out := e.viewAll(st.in, st.inShape), e.viewAll(st.out, st.outShape)
	if b >= 0 {
		in, out = e.view(st.in, st.inShape, b), e.view(st.out, st.outShape, b)
	}
	kernels.Conv(g, in, &k.w, out, &ep, px0, px1, p0, p1, e.scratch[part])
}

func (k *gemmConv) describe(p *Plan, _ *step) string {
	if k.geom.Direct() {
		return "gemm/" + gemmKernel(p, k.w.Kernel())
	}
	return "im2col+gemm/" + gemmKernel(p, k.w.Kernel())
}

// gemmKernel is the path and, as PackB chooses it per matrix (narrow
// outputs run a narrower kernel), the fp32 GEMM kernel of a step.
func gemmKernel(p *Plan, kernel string) string { return p.Kernels.Name() + " " + kernel }

// winoConv is a float32 3x3 stride-1 convolution by Winograd F(m x m, 3x3).
type winoConv struct {
	wg   *kernels.Winograd
	bias []float32
}

func (k *winoConv) parts(_ *step, n int) int { return n }
func (k *winoConv) weightBytes() int64       { return k.wg.Bytes() }

// run splits channels only when there is not one MR block of tiles per
// part: then each part transforms all input tiles itself, work that a tile
// split does not repeat (28x28 F(4x4) at 2 threads: 0.31 -> 0.22 ms).
func (k *winoConv) run(e *Exec, st *step, part, parts int) {
	q0, q1, p0, p1 := gridPart(k.wg.Tiles(), k.wg.MR(), k.wg.Panels(), 1, part, parts)
	if q0 >= q1 || p0 >= p1 {
		return
	}
	for b := range e.n {
		ep := e.epilogue(st, k.bias, b)
		k.wg.Run(e.view(st.in, st.inShape, b), e.view(st.out, st.outShape, b), &ep, q0, q1, p0, p1, e.scratch[part])
	}
}

func (k *winoConv) describe(p *Plan, _ *step) string {
	return k.wg.Name() + "/" + gemmKernel(p, k.wg.Kernel())
}

func compileDense(c *compiler, _ *step, nd *graph.Node) (kernel, error) {
	d := nd.Dense
	return &dense{w: c.p.Kernels.PackB(d.FloatWeight(), d.In, d.Out), bias: d.Bias}, nil
}

// dense is a float32 fully connected layer: a one-row GEMM, split over
// output panels.
type dense struct {
	w    kernels.PackedB
	bias []float32
}

func (k *dense) parts(_ *step, n int) int { return partsIf(k.w.K*k.w.N >= 1<<16, n) }
func (k *dense) weightBytes() int64       { return k.w.Bytes() }

func (k *dense) run(e *Exec, st *step, part, parts int) {
	p0, p1 := split(k.w.Panels(), 1, part, parts)
	ep := e.epilogue(st, k.bias, -1)
	kernels.Gemm(e.n, e.viewAll(st.in, st.inShape), k.w.K, &k.w, e.viewAll(st.out, st.outShape), k.w.N, &ep, p0, p1)
}

func (k *dense) describe(p *Plan, _ *step) string { return "gemm/" + gemmKernel(p, k.w.Kernel()) }

// compileConv8 compiles an int8 conv or dense layer (a dense layer is a
// 1x1 convolution of one pixel).
func compileConv8(c *compiler, st *step, nd *graph.Node) (kernel, error) {
	var geom kernels.ConvGeom
	var qw *graph.QWeights
	var bias []float32
	if cv := nd.Conv; nd.Op == graph.OpConv {
		geom, qw, bias = convGeom(cv, st.inShape, st.outShape), cv.Quant, cv.Bias
	} else {
		d := nd.Dense
		geom = kernels.ConvGeom{H: 1, W: 1, C: d.In, OH: 1, OW: 1, Cout: d.Out,
			KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1}
		qw, bias = d.Quant, d.Bias
	}
	qIn, qOut := c.quant(nd.Inputs[0]), *nd.Quant
	rq := requant(qIn, qw, bias, qOut, reluFloor(nd.Relu, qOut))
	if st.in2 >= 0 {
		qr := c.quant(nd.Inputs[1])
		rq.ResZero = qr.Zero
		rq.ResScale = float32(float64(qr.Scale) / float64(qOut.Scale))
	}
	if cv := nd.Conv; nd.Op == graph.OpConv && cv.Groups() > 1 {
		if cv.Groups() == cv.Cin && cv.Cin == cv.Cout {
			return compileDepthwise8(st, cv, qw.Q, rq)
		}
		return compileGroupConv8(c, st, cv, qw.Q, rq)
	}
	dense := nd.Op == graph.OpDense
	narrow := c.p.Kernels.Gemm8UsesNarrow(qw.Q)
	wino := candidate{"winograd8", func() (kernel, int, error) {
		wg, err := c.p.Kernels.NewWinograd8(&geom, qw.Q)
		if err != nil {
			return nil, 0, err
		}
		return &winoConv8{geom: geom, wg: wg, rq: rq}, wg.Scratch(), nil
	}}
	gemm := candidate{"gemm8", func() (kernel, int, error) {
		k := &gemmConv8{geom: geom, w: c.p.Kernels.PackConv8(&geom, qw.Q), rq: rq, dense: dense}
		return k, kernels.ConvScratch8(&geom, &k.w), nil
	}}
	cands := []candidate{gemm, wino}
	if !dense && winograd8Choice(c.p.Kernels, &geom, c.opt.Winograd, narrow) {
		cands = []candidate{wino, gemm}
	}
	if dense || !kernels.Winograd8Applies(&geom) || c.opt.Winograd != WinogradAuto {
		cands = cands[:1]
	}
	return c.choose(st, c.convSig("int8", &geom, narrow), cands)
}

// reluFloor is the lowest uint8 an int8 epilogue writes: the zero point
// after a fused ReLU, else 0.
func reluFloor(relu bool, q graph.QParams) int32 {
	if relu {
		return q.Zero
	}
	return 0
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

// requant8 is worker part's copy of an int8 epilogue with this run's
// residual view for sample b (-1: every sample).
func (e *Exec) requant8(st *step, rq *kernels.Requant, part, b int) *kernels.Requant {
	r := &e.rq[part]
	*r = *rq
	if st.in2 >= 0 {
		if b < 0 {
			r.Res = e.view8All(st.in2, st.outShape)
		} else {
			r.Res = e.view8(st.in2, st.outShape, b)
		}
	}
	return r
}

// gemmConv8 is an int8 convolution or dense layer on the int8 GEMM.
type gemmConv8 struct {
	geom  kernels.ConvGeom
	w     kernels.PackedB8
	rq    kernels.Requant
	dense bool
}

func (k *gemmConv8) parts(_ *step, n int) int {
	return partsIf(!k.dense || k.w.K*k.w.N >= 1<<16, n)
}
func (k *gemmConv8) weightBytes() int64 { return k.w.Bytes() }

// winograd8Eligible reports a 3x3 stride-1 int8 convolution that could run
// as Winograd8 (Plan.Steps).
func (k *gemmConv8) winograd8Eligible() bool { return !k.dense && kernels.Winograd8Applies(&k.geom) }
func (k *winoConv8) winograd8Eligible() bool { return true }

func (k *gemmConv8) run(e *Exec, st *step, part, parts int) {
	if k.dense || k.geom.Direct() {
		g := batchGeom(k.geom, e.n)
		k.runOn(e, st, &g, -1, part, parts)
		return
	}
	for b := range e.n {
		k.runOn(e, st, &k.geom, b, part, parts)
	}
}

// runOn computes part of sample b (-1: of the whole batch as one image).
func (k *gemmConv8) runOn(e *Exec, st *step, g *kernels.ConvGeom, b, part, parts int) {
	px0, px1, p0, p1 := gridPart(g.Pixels(), k.w.MR(), k.w.Panels(), 4, part, parts)
	if px0 >= px1 || p0 >= p1 {
		return
	}
	rq := e.requant8(st, &k.rq, part, b)
	in, out := e.view8All(st.in, st.inShape), e.view8All(st.out, st.outShape)
	if b >= 0 {
		in, out = e.view8(st.in, st.inShape, b), e.view8(st.out, st.outShape, b)
	}
	kernels.Conv8(g, in, &k.w, out, rq, px0, px1, p0, p1, e.scratch8[part])
}

func (k *gemmConv8) describe(*Plan, *step) string {
	if k.dense || k.geom.Direct8() {
		return "int8 gemm/" + k.w.Kernel() // the kernel chosen for these weights (PackConv8)
	}
	return "int8 im2col+gemm/" + k.w.Kernel()
}

// winoConv8 is an int8 3x3 stride-1 convolution by the exact integer
// Winograd F(2x2, 3x3).
type winoConv8 struct {
	geom kernels.ConvGeom
	wg   *kernels.Winograd8
	rq   kernels.Requant
}

func (k *winoConv8) parts(_ *step, n int) int { return n }
func (k *winoConv8) weightBytes() int64       { return k.wg.Bytes() }

// run: as for the GEMM, few tiles (14x14, 7x7) split output channels,
// which repeats the cheap input transform but halves each part's share of
// the transformed weights; otherwise tiles in units of MR.
func (k *winoConv8) run(e *Exec, st *step, part, parts int) {
	q0, q1, p0, p1 := gridPart(k.wg.Tiles(), k.wg.MR(), k.wg.Panels(), 4, part, parts)
	if q0 >= q1 || p0 >= p1 {
		return
	}
	for b := range e.n {
		rq := e.requant8(st, &k.rq, part, b)
		k.wg.Run(e.view8(st.in, st.inShape, b), e.view8(st.out, st.outShape, b), rq, q0, q1, p0, p1, e.scratch8[part])
	}
}

func (k *winoConv8) describe(*Plan, *step) string {
	return "int8 " + k.wg.Name() + "/" + k.wg.Impl()
}
