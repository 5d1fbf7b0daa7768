package engine

import (
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/kernels"
)

// The steps of grouped convolutions: depthwise (group = Cin = Cout) on the
// direct depthwise kernels, other groupings on the direct grouped kernel
// or one GEMM per group (float32) and on the int8 GEMM (int8). The direct
// kernels split output rows across threads, the GEMMs output pixels.

// compileGroupConv compiles a conv with Group > 1 (float32).
func compileGroupConv(c *compiler, st *step, cv *graph.Conv) (kernel, error) {
	x, o := st.inShape, st.outShape
	act := st.act()
	w := cv.FloatWeight()
	if cv.Groups() == cv.Cin && cv.Cin == cv.Cout {
		g := kernels.DepthwiseGeom{H: x.H, W: x.W, C: x.C, KH: cv.KH, KW: cv.KW, StrideH: cv.StrideH, StrideW: cv.StrideW,
			DilH: cv.DilH, DilW: cv.DilW, PadTop: cv.Pad.Top, PadLeft: cv.Pad.Left, PadBottom: cv.Pad.Bottom, PadRight: cv.Pad.Right}
		g.SetOutput()
		if err := g.Check(); err != nil {
			return nil, err
		}
		return &depthwise{geom: g, w: w, bias: cv.Bias, act: act}, nil
	}
	geom := convGeom(cv, x, o)
	ks := c.p.Kernels
	if !ks.GroupConvPrefersDirect(&geom, cv.Groups()) && cv.Cout/cv.Groups() >= groupGemmMinOut {
		k := &groupGemm{geom: geom, w: ks.PackGrouped(&geom, cv.Groups(), w), bias: cv.Bias}
		c.needScratch(4 * kernels.GroupConvGemmScratch(&geom, &k.w))
		return k, nil
	}
	k := &groupDirect{geom: geom, w: ks.PackGroupDirect(&geom, cv.Groups(), w), bias: cv.Bias, act: act}
	c.needScratch(4 * kernels.GroupConvDirectScratch(&geom, &k.w))
	return k, nil
}

// groupGemmMinOut is the fewest output channels per group that run as one
// GEMM per group where the path has no direct vector kernel for them (on
// the generic path all such groups). ResNeXt-50 32x4d (4 to 32 per group),
// 1 thread, Xeon (AVX-512 path, a busy machine): its grouped convs took
// 222 ms on the direct Go kernel and 40 ms as GEMMs, although the GEMM
// kernel's 32-wide panels are only 1/8 used at 4 per group.
const groupGemmMinOut = 4

// groupGemm is a grouped convolution as one GEMM per group.
type groupGemm struct {
	geom kernels.ConvGeom
	w    kernels.GroupedB
	bias []float32
}

func (k *groupGemm) parts(_ *step, n int) int { return n }
func (k *groupGemm) weightBytes() int64       { return k.w.Bytes() }

func (k *groupGemm) run(e *Exec, st *step, part, parts int) {
	px0, px1 := split(k.geom.Pixels(), k.w.MR(), part, parts)
	if px0 >= px1 {
		return
	}
	for b := range e.n {
		ep := e.epilogue(st, k.bias, b)
		kernels.GroupConvGemm(&k.geom, &k.w, e.view(st.in, st.inShape, b), e.view(st.out, st.outShape, b), &ep, px0, px1, e.scratch[part])
	}
}

func (k *groupGemm) describe(p *Plan, _ *step) string {
	return "grouped gemm/" + gemmKernel(p, k.w.B[0].Kernel())
}

// rowParts splits output rows when there are enough of them.
func rowParts(oh, n int) int { return partsIf(oh >= 2*n, n) }

type depthwise struct {
	geom kernels.DepthwiseGeom
	w    []float32
	bias []float32
	act  kernels.Activation
}

func (k *depthwise) parts(st *step, n int) int { return rowParts(k.geom.OH, n) }
func (k *depthwise) weightBytes() int64        { return 0 } // the graph's weights, used in place

func (k *depthwise) run(e *Exec, st *step, part, parts int) {
	y0, y1 := split(k.geom.OH, 1, part, parts)
	if y0 >= y1 {
		return
	}
	for b := range e.n {
		ep := kernels.DepthwiseEpilogue{Bias: k.bias, Act: k.act}
		if st.in2 >= 0 {
			ep.Res = e.view(st.in2, st.outShape, b)
		}
		e.plan.Kernels.DepthwiseConv(&k.geom, e.view(st.in, st.inShape, b), k.w, e.view(st.out, st.outShape, b), &ep, y0, y1)
	}
}

func (k *depthwise) describe(p *Plan, _ *step) string { return "depthwise/" + p.Kernels.Name() }

// compileDepthwise8 compiles an int8 depthwise convolution.
func compileDepthwise8(st *step, cv *graph.Conv, w []int8, rq kernels.Requant) (kernel, error) {
	x := st.inShape
	g := kernels.DepthwiseGeom{H: x.H, W: x.W, C: x.C, KH: cv.KH, KW: cv.KW, StrideH: cv.StrideH, StrideW: cv.StrideW,
		DilH: cv.DilH, DilW: cv.DilW, PadTop: cv.Pad.Top, PadLeft: cv.Pad.Left, PadBottom: cv.Pad.Bottom, PadRight: cv.Pad.Right}
	g.SetOutput()
	if err := g.Check(); err != nil {
		return nil, err
	}
	return &depthwise8{geom: g, w: w, rq: rq}, nil
}

// depthwise8 is an int8 depthwise convolution with the int8 GEMM's
// requantization, bit for bit.
type depthwise8 struct {
	geom kernels.DepthwiseGeom
	w    []int8
	rq   kernels.Requant
}

func (k *depthwise8) parts(st *step, n int) int { return rowParts(k.geom.OH, n) }
func (k *depthwise8) weightBytes() int64        { return 0 } // the graph's int8 weights, used in place

func (k *depthwise8) run(e *Exec, st *step, part, parts int) {
	y0, y1 := split(k.geom.OH, 1, part, parts)
	if y0 >= y1 {
		return
	}
	for b := range e.n {
		rq := e.requant8(st, &k.rq, part, b)
		e.plan.Kernels.Depthwise8(&k.geom, e.view8(st.in, st.inShape, b), k.w, e.view8(st.out, st.outShape, b), rq, 255, y0, y1)
	}
}

func (k *depthwise8) describe(p *Plan, _ *step) string { return "int8 depthwise/" + p.Kernels.Name() }

// groupDirect is a grouped convolution on the direct vector kernels
// (kernels.GroupConvDirect), split by output rows.
type groupDirect struct {
	geom kernels.ConvGeom
	w    kernels.GroupDirectW
	bias []float32
	act  kernels.Activation
}

func (k *groupDirect) parts(st *step, n int) int { return rowParts(k.geom.OH, n) }
func (k *groupDirect) weightBytes() int64        { return k.w.Bytes() }

func (k *groupDirect) run(e *Exec, st *step, part, parts int) {
	y0, y1 := split(k.geom.OH, 1, part, parts)
	if y0 >= y1 {
		return
	}
	for b := range e.n {
		ep := kernels.GroupEpilogue{Bias: k.bias, Act: k.act}
		if st.in2 >= 0 {
			ep.Res = e.view(st.in2, st.outShape, b)
		}
		kernels.GroupConvDirect(&k.geom, &k.w, e.view(st.in, st.inShape, b), e.view(st.out, st.outShape, b), &ep, y0, y1, e.scratch[part])
	}
}

func (k *groupDirect) describe(p *Plan, _ *step) string { return "grouped direct/" + p.Kernels.Name() }

// compileGroupConv8 compiles an int8 grouped convolution that is not
// depthwise: kernels.GroupConv8, one int8 GEMM per group (groups narrower
// than the kernel's panel merged), exact like the dense int8 conv.
func compileGroupConv8(c *compiler, st *step, cv *graph.Conv, w []int8, rq kernels.Requant) (kernel, error) {
	geom := convGeom(cv, st.inShape, st.outShape)
	k := &groupConv8{geom: geom, w: c.p.Kernels.PackGrouped8(&geom, cv.Groups(), w), rq: rq}
	c.needScratch(kernels.GroupConv8Scratch(&geom, &k.w))
	return k, nil
}

// groupConv8 is an int8 grouped convolution on the int8 GEMM, split by
// output pixels in units of the kernel's row tile.
type groupConv8 struct {
	geom kernels.ConvGeom
	w    kernels.GroupedB8
	rq   kernels.Requant
}

func (k *groupConv8) parts(_ *step, n int) int { return n }
func (k *groupConv8) weightBytes() int64       { return k.w.Bytes() }

func (k *groupConv8) run(e *Exec, st *step, part, parts int) {
	px0, px1 := split(k.geom.Pixels(), k.w.MR(), part, parts)
	if px0 >= px1 {
		return
	}
	for b := range e.n {
		rq := e.requant8(st, &k.rq, part, b)
		kernels.GroupConv8(&k.geom, &k.w, e.view8(st.in, st.inShape, b), e.view8(st.out, st.outShape, b), rq, px0, px1, e.scratch8[part])
	}
}

func (k *groupConv8) describe(*Plan, *step) string { return "int8 grouped gemm/" + k.w.Kernel() }
