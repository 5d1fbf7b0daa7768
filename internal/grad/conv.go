package grad

import (
	"fmt"
	"sync"

	"github.com/edge-resnet/edge-resnet/kernels"
)

// ConvConfig is the geometry of a convolution layer. Zero strides,
// dilations and groups mean 1.
type ConvConfig struct {
	Cin, Cout, KH, KW                    int
	StrideH, StrideW                     int
	PadTop, PadLeft, PadBottom, PadRight int
	DilH, DilW                           int
	Groups                               int // 1..Cin, dividing Cin and Cout; Cin = Cout = Groups is depthwise
	Bias                                 bool
}

// Conv is a 2-D convolution layer on batched NHWC tensors, forward and
// backward on the GEMM kernels of a kernels.Set:
//   - Forward is the inference convolution (kernels.Conv, or
//     kernels.GroupConvGemm for groups > 1) on the current weights, packed
//     again (in place) at every call since training changes them.
//   - Backward computes dX = dY·Wᵀ: with stride 1 as the equivalent
//     transposed convolution, a forward convolution of dY by the weights
//     flipped in space with I and O swapped; otherwise as a GEMM over the
//     rows of dY (the pixels) with Wᵀ packed per group, then col2im (a
//     scatter-add over the taps, the padding taps dropped), whose depth is
//     only Cout/Groups (on ResNet-20's 3x3 layers 21 GFLOP/s against 53
//     for the transposed convolution). It adds dW = Xcolᵀ·dY computed
//     transposed, dWᵀ += dYᵀ·Xcol, per block of pixels and group: the
//     GEMM's B is the block's im2col, packed, and its A the block's dY,
//     transposed (Cout/Groups rows), which moves Cout/Groups values per
//     pixel where transposing the im2col would move KH*KW*Cin/Groups (4.8
//     -> 42 GFLOP/s on ResNet-20's 3x3 layers); the blocks accumulate in a
//     fixed order. Where a group has at least 16 input channels and the
//     stride along W is 1, the same GEMM runs tap by tap (weightsByTaps):
//     each tap's B is the block's inputs under it, packed as runs of
//     whole output rows instead of pixel by pixel, with the same sums in
//     the same order (40 -> 71 GFLOP/s on ResNet-20's first stage, 1
//     thread, Intel Xeon family 6 model 167). Where moreover the output
//     has the input's size, the stride and dilation are 1, and Cin is one
//     panel of the GEMM kernel (16 or 32 channels on AVX-512), dW runs
//     per image and tap with the input in place as B and no packing at
//     all (weightsImage; ResNet-20's 32x32x16 layer at batch 128, 1
//     thread: about 1.3x, from 60 to 80 GFLOP/s, measured on a busy
//     machine; the sums are then in another order, within rounding).
//
// Threads splits Forward (and dX with stride 1) over images and pixel
// ranges, the strided dX over images, and dW over contiguous ranges of the
// batch's pixels, each thread summing into its own partial gradients,
// reduced in thread order: a given thread count gives bit-identical
// results. After the first step on a shape, Forward and Backward allocate
// nothing with Threads 1; each extra thread costs a goroutine per phase (a
// few small allocations, whatever the sizes).
type Conv struct {
	ConvConfig
	W     []float32 // HWIO: KH x KW x Cin/Groups x Cout
	B     []float32 // Cout, or nil without bias
	GradW []float32 // the gradients Backward adds to, as W and B
	GradB []float32

	Threads     int          // 0 means 1
	Set         *kernels.Set // nil means kernels.Best()
	NoInputGrad bool         // Backward skips dX and returns nil (a first layer)

	x       []float32 // the input of the last Forward (not copied)
	in, out Shape
	geom    kernels.ConvGeom // one image
	set     *kernels.Set
	threads int
	y, dx   []float32
	wB, wT  []kernels.PackedB // per group: Kg x cog, and its transpose cog x Kg
	grouped kernels.GroupedB
	work    []convWorker
	rows    int // pixels per dW block (the depth of the packed dY)
	dxRows  int // pixels per dX block
	fwdEp   kernels.Epilogue
	zeroEp  kernels.Epilogue
	ready   bool // Forward ran since the shape was set
	byTaps  bool // dW tap by tap (weightsByTaps) rather than on the im2col
	noTaps  bool // tests: dW on the im2col whatever tapsPay says
	inPlace bool // dW per image and tap on the input in place (weightsImage)
	noPlace bool // tests: never inPlace

	// Forward, and dX as the transposed convolution, run as Winograd
	// F(4x4, 3x3) where it applies (wino, winoT non-nil; winogradPays).
	wino, winoT *kernels.Winograd
	noWinograd  bool      // tests: never Winograd
	parts       int       // Forward pieces per image
	dwPixels    int       // N*OH*OW
	runDY       []float32 // the dy of the running Backward

	// dX of a convolution with stride 1 is the convolution of dY by the
	// weights flipped in space with I and O swapped (padding
	// Dil*(K-1) - Pad), run as Forward runs (transposed is then true).
	transposed bool
	geomT      kernels.ConvGeom
	wFlip      []float32         // HWIO of the transposed convolution: KH x KW x cog x Cin
	wF         []kernels.PackedB // per group: (KH*KW*cog) x cig
	groupedT   kernels.GroupedB
}

// convWorker is one thread's scratch and partial gradients.
type convWorker struct {
	fwd  []float32       // kernels.Conv / GroupConvGemm scratch
	xcol []float32       // rows x Kg: a block's im2col of one group
	xP   kernels.PackedB // xcol packed as the GEMM's B
	xTap kernels.PackedB // rows x Cin/Groups: the block's inputs under one tap, packed (byTaps)
	dyT  []float32       // cog x rows: a block's dY of one group, transposed
	col  []float32       // dxRows x Kg: dY·Wᵀ of a block
	bwd  []float32       // the transposed convolution's scratch
	gwT  []float32       // partial dW, transposed: Cout x Kg
	gb   []float32       // partial dB
	ep   kernels.Epilogue
}

// NewConv returns a convolution layer with zero weights (and bias, if
// cfg.Bias) and zero gradients.
func NewConv(cfg ConvConfig) *Conv {
	cfg = cfg.withDefaults()
	if cfg.Cin < 1 || cfg.Cout < 1 || cfg.KH < 1 || cfg.KW < 1 || cfg.Groups < 1 || cfg.Cin%cfg.Groups != 0 ||
		cfg.Cout%cfg.Groups != 0 || cfg.StrideH < 1 || cfg.StrideW < 1 || cfg.DilH < 1 || cfg.DilW < 1 ||
		cfg.PadTop < 0 || cfg.PadLeft < 0 || cfg.PadBottom < 0 || cfg.PadRight < 0 {
		panic(fmt.Sprintf("grad.NewConv: bad configuration %+v", cfg))
	}
	c := &Conv{ConvConfig: cfg}
	n := cfg.KH * cfg.KW * cfg.Cin / cfg.Groups * cfg.Cout
	c.W, c.GradW = make([]float32, n), make([]float32, n)
	if cfg.Bias {
		c.B, c.GradB = make([]float32, cfg.Cout), make([]float32, cfg.Cout)
	}
	return c
}

// withDefaults returns cfg with its zero strides, dilations and groups 1.
func (cfg ConvConfig) withDefaults() ConvConfig {
	for _, v := range []*int{&cfg.StrideH, &cfg.StrideW, &cfg.DilH, &cfg.DilW, &cfg.Groups} {
		if *v == 0 {
			*v = 1
		}
	}
	return cfg
}

// Workspace estimates the bytes a Conv of cfg holds, for input shape s
// on threads threads and the Set's kernels (nil: kernels.Best()), beyond
// its weights, gradients, output and input gradient: the packed weights
// (forward, transposed, flipped) and each thread's scratch and partial
// gradients, as prepare allocates them. Memory budgets check it before
// a Conv is made.
func (cfg ConvConfig) Workspace(s Shape, threads int, set *kernels.Set) int64 {
	if set == nil {
		set = kernels.Best()
	}
	threads = max(1, threads)
	c := &Conv{ConvConfig: cfg.withDefaults()}
	out := c.OutShape(s)
	geom, transposed, geomT := c.geometry(s, out)
	kg, cog, cig, w := c.kg(), c.cog(), c.cig(), c.KH*c.KW*c.Cin/c.Groups*c.Cout
	group := func(g kernels.ConvGeom) *kernels.ConvGeom { // one group's convolution
		g.C, g.Cout = g.C/c.Groups, g.Cout/c.Groups
		return &g
	}
	packed, perThread := c.Groups*set.PackedLen(cog, kg), w // wT; gwT
	if c.Bias {
		perThread += c.Cout // gb
	}
	if c.winogradPays(&geom) {
		u, scratch := set.WinogradLen(&geom, winoM)
		packed, perThread = packed+u, perThread+scratch
	} else {
		packed += c.Groups * set.PackedLen(kg, cog) // wB
		perThread += set.ConvScratchLen(group(geom))
	}
	if transposed {
		packed += w // wFlip
		if c.winogradPays(&geomT) {
			u, scratch := set.WinogradLen(&geomT, winoM)
			packed, perThread = packed+u, perThread+scratch
		} else {
			packed += c.Groups * set.PackedLen(c.KH*c.KW*cog, cig)
			perThread += set.ConvScratchLen(group(geomT))
		}
	}
	rows, dxRows := c.blockRows(s, out, threads)
	perThread += dxRows * kg // col
	switch {
	case c.inPlacePays(set, s, out):
		perThread += c.Cout * dyTStride(out.Pixels()) // dyT of an image
	case c.tapsPay():
		perThread += cog*rows + set.PackedLen(rows, cig) // dyT, xTap
	default:
		perThread += cog*rows + rows*kg + set.PackedLen(rows, kg) // dyT, xcol, xP
	}
	return 4 * int64(packed+threads*perThread)
}

// geometry returns the kernels' geometry of one image of the forward
// convolution (input s, output out) and whether dX runs as the
// transposed convolution, with its geometry: with stride 1 and padding at
// most Dil*(K-1) (the bottom and right padding take care of themselves:
// rows of dY outside it read as zeros).
func (c *Conv) geometry(s, out Shape) (fwd kernels.ConvGeom, transposed bool, geomT kernels.ConvGeom) {
	fwd = kernels.ConvGeom{H: s.H, W: s.W, C: c.Cin, OH: out.H, OW: out.W, Cout: c.Cout,
		KH: c.KH, KW: c.KW, StrideH: c.StrideH, StrideW: c.StrideW, DilH: c.DilH, DilW: c.DilW,
		PadTop: c.PadTop, PadLeft: c.PadLeft}
	padT, padL := c.DilH*(c.KH-1)-c.PadTop, c.DilW*(c.KW-1)-c.PadLeft
	transposed = c.StrideH == 1 && c.StrideW == 1 && padT >= 0 && padL >= 0
	if transposed {
		geomT = kernels.ConvGeom{H: out.H, W: out.W, C: c.Cout, OH: s.H, OW: s.W, Cout: c.Cin,
			KH: c.KH, KW: c.KW, StrideH: 1, StrideW: 1, DilH: c.DilH, DilW: c.DilW, PadTop: padT, PadLeft: padL}
	}
	return fwd, transposed, geomT
}

// blockRows returns the pixels of a dW block (the depth of its packed
// im2col, a multiple of 8) and of a dX block.
func (c *Conv) blockRows(s, out Shape, threads int) (rows, dxRows int) {
	dwPixels := s.N * out.Pixels()
	return min(dwBlockRows, roundUp((dwPixels+threads-1)/threads, 8)), min(dxBlockRows, out.Pixels())
}

// ZeroGrad zeroes GradW and GradB.
func (c *Conv) ZeroGrad() {
	clear(c.GradW)
	clear(c.GradB)
}

// OutShape is the output shape for an input of shape s.
func (c *Conv) OutShape(s Shape) Shape {
	oh := (s.H+c.PadTop+c.PadBottom-c.DilH*(c.KH-1)-1)/c.StrideH + 1
	ow := (s.W+c.PadLeft+c.PadRight-c.DilW*(c.KW-1)-1)/c.StrideW + 1
	return Shape{N: s.N, H: oh, W: ow, C: c.Cout}
}

// cig, cog and kg are the input and output channels of a group and the
// GEMM depth of a group.
func (c *Conv) cig() int { return c.Cin / c.Groups }
func (c *Conv) cog() int { return c.Cout / c.Groups }
func (c *Conv) kg() int  { return c.KH * c.KW * c.cig() }

// Forward computes the convolution of x (shape s, s.C = Cin) and keeps x
// (not a copy: the caller leaves it unchanged until Backward) for
// Backward. The output belongs to the layer until the next Forward.
func (c *Conv) Forward(x []float32, s Shape) ([]float32, Shape) {
	if s.C != c.Cin || len(x) < s.Size() || s.N < 1 {
		panic(fmt.Sprintf("grad.Conv.Forward: input %+v (%d values) for Cin %d", s, len(x), c.Cin))
	}
	c.prepare(s)
	c.x = x[:s.Size()]
	if c.wino != nil {
		_ = c.wino.SetWeights(c.W) // sized by prepare
	} else {
		for gr := range c.Groups {
			packStrided(&c.wB[gr], c.W, gr*c.cog(), c.Cout, 1, c.kg())
		}
	}
	c.fwdEp.Bias = c.B
	c.ready = true
	c.run(phaseForward, c.in.N*c.parts)
	return c.y, c.out
}

// Output returns the last Forward's output (the layer's buffer, valid
// until the next Forward) and its shape; nil before any Forward.
func (c *Conv) Output() ([]float32, Shape) {
	if !c.ready {
		return nil, Shape{}
	}
	return c.y[:c.out.Size()], c.out
}

// Backward takes dy, the loss gradient of the last Forward's output, adds
// the weight and bias gradients to GradW and GradB and returns dx (owned by
// the layer until the next Backward), or nil with NoInputGrad.
func (c *Conv) Backward(dy []float32) []float32 {
	if !c.ready || len(dy) < c.out.Size() {
		panic(fmt.Sprintf("grad.Conv.Backward: %d values for output %+v (Forward first)", len(dy), c.out))
	}
	c.backwardWeights(dy)
	if c.NoInputGrad {
		return nil
	}
	c.backwardData(dy)
	return c.dx
}

// BackwardWeights is Backward's first half: it adds dW and dB for dy and
// nothing else. BackwardData after it completes Backward; the two apart
// let a profile time each.
func (c *Conv) BackwardWeights(dy []float32) {
	if !c.ready || len(dy) < c.out.Size() {
		panic(fmt.Sprintf("grad.Conv.BackwardWeights: %d values for output %+v (Forward first)", len(dy), c.out))
	}
	c.backwardWeights(dy)
}

// BackwardData is Backward's second half: it returns dx for dy (owned by
// the layer until the next Backward) without touching the gradients.
func (c *Conv) BackwardData(dy []float32) []float32 {
	if !c.ready || len(dy) < c.out.Size() {
		panic(fmt.Sprintf("grad.Conv.BackwardData: %d values for output %+v (Forward first)", len(dy), c.out))
	}
	c.backwardData(dy)
	return c.dx
}

// backwardWeights adds dW and dB: per thread over its range of the batch's
// pixels into its partial sums, then the partials in thread order.
func (c *Conv) backwardWeights(dy []float32) {
	for i := range c.work {
		clear(c.work[i].gwT)
		clear(c.work[i].gb)
	}
	c.runDY = dy[:c.out.Size()]
	if c.inPlace {
		c.run(phaseWeights, c.in.N)
	} else {
		c.run(phaseWeights, c.threads)
	}
	kg := c.kg()
	for co := range c.Cout {
		for k := range kg {
			v := c.GradW[k*c.Cout+co]
			for i := range c.work {
				v += c.work[i].gwT[co*kg+k]
			}
			c.GradW[k*c.Cout+co] = v
		}
	}
	for i := range c.work {
		addTo(c.GradB, c.work[i].gb)
	}
}

// backwardData computes dx: with stride 1, as the transposed convolution
// of dY, split as Forward; else per image, dY·Wᵀ by blocks of pixels and
// groups, scattered into the image's dx.
func (c *Conv) backwardData(dy []float32) {
	c.runDY = dy[:c.out.Size()]
	if c.transposed {
		c.flipWeights()
		c.run(phaseTransposed, c.in.N*c.parts)
		return
	}
	for gr := range c.Groups {
		packStrided(&c.wT[gr], c.W, gr*c.cog(), 1, c.Cout, c.cog())
	}
	c.run(phaseData, c.in.N)
}

// flipWeights writes and packs the weights of the transposed convolution:
// wFlip[((kh*KW+kw)*cog+co)*Cin + gr*cig+ci] =
// W[(((KH-1-kh)*KW+KW-1-kw)*cig+ci)*Cout + gr*cog+co].
func (c *Conv) flipWeights() {
	cig, cog := c.cig(), c.cog()
	for t := range c.KH * c.KW {
		src := c.W[(c.KH*c.KW-1-t)*cig*c.Cout:]
		dst := c.wFlip[t*cog*c.Cin:]
		for gr := range c.Groups {
			for ci := range cig {
				for co := range cog {
					dst[co*c.Cin+gr*cig+ci] = src[ci*c.Cout+gr*cog+co]
				}
			}
		}
	}
	if c.winoT != nil {
		_ = c.winoT.SetWeights(c.wFlip) // sized by prepare
		return
	}
	for gr := range c.Groups {
		packStrided(&c.wF[gr], c.wFlip, gr*cig, c.Cin, 1, c.KH*c.KW*cog)
	}
}

// prepareTransposed sets up dX as a transposed convolution where
// geometry says it runs as one.
func (c *Conv) prepareTransposed() {
	c.winoT = nil
	if !c.transposed {
		return
	}
	k, cig := c.KH*c.KW*c.cog(), c.cig()
	c.wFlip = make([]float32, len(c.W))
	if c.winogradPays(&c.geomT) {
		c.winoT, _ = c.set.NewWinograd(&c.geomT, winoM, c.wFlip) // it applies: no error
		return
	}
	c.wF = make([]kernels.PackedB, c.Groups)
	for gr := range c.Groups {
		c.wF[gr] = c.set.PackB(make([]float32, k*cig), k, cig)
	}
	c.groupedT = kernels.GroupedB{Groups: c.Groups, B: c.wF}
}

// transposedItem computes piece i%parts of image i/parts of dx by the
// transposed convolution.
func (c *Conv) transposedItem(w *convWorker, i int) {
	n, piece := i/c.parts, i%c.parts
	p := c.in.Pixels()
	px0, px1 := p*piece/c.parts, p*(piece+1)/c.parts
	inN, outN := p*c.Cin, c.out.Pixels()*c.Cout
	dy, dx := c.runDY[n*outN:(n+1)*outN], c.dx[n*inN:(n+1)*inN]
	switch {
	case c.winoT != nil:
		q0, q1 := winoRange(c.winoT, piece, c.parts)
		c.winoT.Run(dy, dx, &c.zeroEp, q0, q1, 0, c.winoT.Panels(), w.bwd)
	case c.Groups == 1:
		kernels.Conv(&c.geomT, dy, &c.wF[0], dx, &c.zeroEp, px0, px1, 0, c.wF[0].Panels(), w.bwd)
	default:
		kernels.GroupConvGemm(&c.geomT, &c.groupedT, dy, dx, &c.zeroEp, px0, px1, w.bwd)
	}
}

// addTo adds src to dst (len(dst) values).
func addTo(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}

// The phases run splits over threads.
const (
	phaseForward = iota
	phaseWeights
	phaseData
	phaseTransposed
)

// run splits items [0, n) of a phase into contiguous ranges, one per
// thread, and runs them (the first on this goroutine).
func (c *Conv) run(phase, n int) {
	t := c.threads
	if t == 1 || n <= 1 {
		c.runRange(phase, 0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for i := 1; i < t; i++ {
		if i0, i1 := i*n/t, (i+1)*n/t; i0 < i1 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.runRange(phase, i, i0, i1)
			}()
		}
	}
	c.runRange(phase, 0, 0, n/t)
	wg.Wait()
}

// runRange runs items [i0, i1) of a phase on thread t's scratch.
func (c *Conv) runRange(phase, t, i0, i1 int) {
	w := &c.work[t]
	switch phase {
	case phaseForward:
		for i := i0; i < i1; i++ {
			c.forwardItem(w, i)
		}
	case phaseWeights:
		if c.inPlace {
			for n := i0; n < i1; n++ {
				c.weightsImage(w, n)
			}
			return
		}
		c.weightsRange(w, t*c.dwPixels/c.threads, (t+1)*c.dwPixels/c.threads)
	case phaseData:
		for n := i0; n < i1; n++ {
			c.dataImage(w, n)
		}
	case phaseTransposed:
		for i := i0; i < i1; i++ {
			c.transposedItem(w, i)
		}
	}
}

// forwardItem computes piece i%parts of image i/parts.
func (c *Conv) forwardItem(w *convWorker, i int) {
	n, piece := i/c.parts, i%c.parts
	p := c.out.Pixels()
	px0, px1 := p*piece/c.parts, p*(piece+1)/c.parts
	inN, outN := c.in.Pixels()*c.Cin, p*c.Cout
	in, out := c.x[n*inN:(n+1)*inN], c.y[n*outN:(n+1)*outN]
	switch {
	case c.wino != nil:
		q0, q1 := winoRange(c.wino, piece, c.parts)
		c.wino.Run(in, out, &c.fwdEp, q0, q1, 0, c.wino.Panels(), w.fwd)
	case c.Groups == 1:
		kernels.Conv(&c.geom, in, &c.wB[0], out, &c.fwdEp, px0, px1, 0, c.wB[0].Panels(), w.fwd)
	default:
		kernels.GroupConvGemm(&c.geom, &c.grouped, in, out, &c.fwdEp, px0, px1, w.fwd)
	}
}

// prepare sizes the geometry, outputs, packed weights and scratch for
// input shape s, unless they are already.
func (c *Conv) prepare(s Shape) {
	set := c.Set
	if set == nil {
		set = kernels.Best()
	}
	threads := max(1, c.Threads)
	if s == c.in && set == c.set && threads == c.threads && c.work != nil {
		return
	}
	c.in, c.out, c.set, c.threads = s, c.OutShape(s), set, threads
	if c.out.H < 1 || c.out.W < 1 {
		panic(fmt.Sprintf("grad.Conv: input %+v gives output %+v", s, c.out))
	}
	c.geom, c.transposed, c.geomT = c.geometry(s, c.out)
	c.y, c.dx = make([]float32, c.out.Size()), make([]float32, s.Size())
	kg, cog := c.kg(), c.cog()
	c.wino, c.wB, c.wT = nil, nil, make([]kernels.PackedB, c.Groups)
	if c.winogradPays(&c.geom) {
		c.wino, _ = set.NewWinograd(&c.geom, winoM, c.W) // it applies: no error
	} else {
		c.wB = make([]kernels.PackedB, c.Groups)
	}
	for gr := range c.Groups {
		if c.wino == nil {
			c.wB[gr] = set.PackB(make([]float32, kg*cog), kg, cog)
		}
		c.wT[gr] = set.PackB(make([]float32, cog*kg), cog, kg)
	}
	c.grouped = kernels.GroupedB{Groups: c.Groups, B: c.wB}
	c.prepareTransposed()
	c.parts = (threads + s.N - 1) / s.N
	c.dwPixels = s.N * c.out.Pixels()
	c.rows, c.dxRows = c.blockRows(s, c.out, threads)
	c.byTaps = c.tapsPay()
	c.inPlace = c.inPlacePays(set, s, c.out)
	c.work = make([]convWorker, threads)
	for i := range c.work {
		c.work[i] = c.newWorker()
	}
}

// The pixel blocks of Backward: dW's is the depth of its GEMM, dX's the
// rows of its GEMM, whose output (dxBlockRows x Kg) col2im then scatters.
const (
	dwBlockRows = 256
	dxBlockRows = 128
)

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// newWorker allocates one thread's scratch.
func (c *Conv) newWorker() convWorker {
	kg, cog := c.kg(), c.cog()
	var w convWorker
	switch {
	case c.wino != nil:
		w.fwd = make([]float32, c.wino.Scratch())
	case c.Groups == 1:
		w.fwd = make([]float32, kernels.ConvScratch(&c.geom, &c.wB[0]))
	default:
		w.fwd = make([]float32, kernels.GroupConvGemmScratch(&c.geom, &c.grouped))
	}
	switch {
	case c.inPlace:
		w.dyT = make([]float32, c.Cout*dyTStride(c.out.Pixels()))
	case c.byTaps:
		w.xTap = c.set.PackB(make([]float32, c.rows*c.cig()), c.rows, c.cig())
	default:
		w.xcol = make([]float32, c.rows*kg)
		w.xP = c.set.PackB(w.xcol, c.rows, kg)
	}
	if !c.inPlace {
		w.dyT = make([]float32, cog*c.rows)
	}
	w.col = make([]float32, c.dxRows*kg)
	switch {
	case c.winoT != nil:
		w.bwd = make([]float32, c.winoT.Scratch())
	case c.transposed && c.Groups == 1:
		w.bwd = make([]float32, kernels.ConvScratch(&c.geomT, &c.wF[0]))
	case c.transposed:
		w.bwd = make([]float32, kernels.GroupConvGemmScratch(&c.geomT, &c.groupedT))
	}
	w.gwT = make([]float32, len(c.W))
	w.gb = make([]float32, len(c.B))
	w.ep.LdRes = kg
	return w
}

// weightsRange adds to w's partial sums the dW and dB of the batch's
// output pixels [q0, q1) (n*OH*OW + oy*OW + ox), by blocks of c.rows
// pixels: per group, gwT[group, :] += dYᵀ · Xcol (cog x Kg, the GEMM's B
// being the block's im2col packed and zero-padded to the packed depth).
func (c *Conv) weightsRange(w *convWorker, q0, q1 int) {
	dy, kg, cog, r := c.runDY, c.kg(), c.cog(), c.rows
	for b0 := q0; b0 < q1; b0 += r {
		b1 := min(q1, b0+r)
		m := b1 - b0
		for gr := range c.Groups {
			transposeRows(w.dyT, r, dy[b0*c.Cout+gr*cog:], c.Cout, m, cog)
			part := w.gwT[gr*cog*kg:]
			if c.byTaps {
				c.weightsByTaps(w, part, b0, b1, gr)
				continue
			}
			c.im2colBlock(w.xcol, b0, b1, gr)
			packStrided(&w.xP, w.xcol, 0, kg, 1, m)
			w.ep.Res = part
			kernels.Gemm(cog, w.dyT, r, &w.xP, part, kg, &w.ep, 0, w.xP.Panels())
		}
	}
	if w.gb != nil {
		for q := q0; q < q1; q++ {
			addTo(w.gb, dy[q*c.Cout:(q+1)*c.Cout])
		}
	}
}

// transposeRows writes the transpose of the m x n matrix src (row stride
// ld) into dst (n rows of stride r >= m), zeros in each row's columns
// [m, r). Eight source rows a pass: each read is a run of n values, each
// write eight neighbours (half a cache line; four were slower).
func transposeRows(dst []float32, r int, src []float32, ld, m, n int) {
	j := 0
	for ; j+8 <= m; j += 8 {
		s0, s1, s2, s3 := src[j*ld:][:n], src[(j+1)*ld:][:n], src[(j+2)*ld:][:n], src[(j+3)*ld:][:n]
		s4, s5, s6, s7 := src[(j+4)*ld:][:n], src[(j+5)*ld:][:n], src[(j+6)*ld:][:n], src[(j+7)*ld:][:n]
		for i := range n {
			d := dst[i*r+j:][:8]
			d[0], d[1], d[2], d[3] = s0[i], s1[i], s2[i], s3[i]
			d[4], d[5], d[6], d[7] = s4[i], s5[i], s6[i], s7[i]
		}
	}
	for ; j < m; j++ {
		row := src[j*ld:][:n]
		for i, v := range row {
			dst[i*r+j] = v
		}
	}
	for i := range n {
		clear(dst[i*r+m : (i+1)*r])
	}
}

// winoM is the Winograd tile training uses, F(4x4, 3x3), as inference
// does by default.
const winoM = 4

// winoMaxWeights bounds the transformed weights of a Winograd layer
// (36 x Cin x Cout floats for F(4x4), twice with dX's) at 4 MiB a layer,
// to bound the memory they add beside the weights, their gradients and
// Adam's state: ResNet-20 takes Winograd everywhere it applies,
// ResNet-18's 256- and 512-channel stages keep the GEMM (a memory
// choice; the time there was not measured).
const winoMaxWeights = 4 << 20

// winogradPays reports whether the convolution of geometry g (the
// forward one or the transposed one of dX) runs as Winograd F(4x4):
// where it applies (3x3, stride 1), ungrouped, the transformed weights
// within winoMaxWeights. Its results differ from the GEMM's by rounding
// only (docs/WINOGRAD.md) and do not depend on the thread count.
func (c *Conv) winogradPays(g *kernels.ConvGeom) bool {
	return !c.noWinograd && c.Groups == 1 && kernels.WinogradApplies(g) && 36*4*g.C*g.Cout <= winoMaxWeights
}

// winoRange is piece piece of parts of wg's tiles, cut at multiples of
// its MR as Run requires.
func winoRange(wg *kernels.Winograd, piece, parts int) (q0, q1 int) {
	tiles, mr := wg.Tiles(), wg.MR()
	q0 = tiles * piece / parts / mr * mr
	q1 = tiles
	if piece+1 < parts {
		q1 = tiles * (piece + 1) / parts / mr * mr
	}
	return q0, q1
}

// tapsPay reports whether dW runs tap by tap: where a group has at least
// 16 input channels (a GEMM of that many columns per tap keeps the
// kernel busy) and the stride along W is 1 (consecutive output pixels of
// a row read consecutive inputs, which pack as runs).
func (c *Conv) tapsPay() bool { return !c.noTaps && c.cig() >= 16 && c.StrideW == 1 }

// weightsByTaps adds the dW of group gr for the batch's output pixels
// [b0, b1) (dYᵀ already in w.dyT) tap by tap: for tap t, the columns of
// gwT that hold it get dYᵀ · X_t, X_t the pixels' inputs under that tap
// (rows x Cin/Groups). The same products as the im2col's GEMM, summed in
// the same order, with packing that copies whole output rows at once
// where im2col copies a pixel's taps one by one.
func (c *Conv) weightsByTaps(w *convWorker, part []float32, b0, b1, gr int) {
	cig, kg := c.cig(), c.kg()
	for t := range c.KH * c.KW {
		c.packTap(&w.xTap, t/c.KW, t%c.KW, b0, b1, gr)
		dst := part[t*cig:]
		w.ep.Res = dst
		kernels.Gemm(c.cog(), w.dyT, c.rows, &w.xTap, dst, kg, &w.ep, 0, w.xTap.Panels())
	}
}

// inPlacePays reports whether dW runs per image and tap with the input
// in place as the GEMM's B (weightsImage): an ungrouped convolution of
// stride 1 and dilation 1 whose output has its input's size, and whose
// Cin is exactly one panel of the kernel set's GEMM takes for Cin
// columns (16 or 32 on AVX-512), so that a run of input pixels is a packed
// B as it lies. It saves weightsByTaps' packing and the per-block
// transposes (ResNet-20's first two stages).
func (c *Conv) inPlacePays(set *kernels.Set, s, out Shape) bool {
	if c.noTaps || c.noPlace || c.Groups != 1 || c.StrideH != 1 || c.StrideW != 1 ||
		c.DilH != 1 || c.DilW != 1 || out.H != s.H || out.W != s.W {
		return false
	}
	_, ok := set.ViewB(nil, 0, c.Cin)
	return ok
}

// weightsImage adds image n's dW (and dB) tap by tap, each tap's B the
// image's input in place. With the output the input's size, output pixel
// p = oh*W+ow under tap (kh, kw) reads input pixel p + dh*W + dw (dh =
// kh-PadTop, dw = kw-PadLeft): the output rows whose tap row is inside
// the image read one run of input pixels. In that run, the pixels whose
// tap column falls outside their row read a neighbouring row's pixel
// where the padding's zero belongs, so their dY is zeroed in A (w.dyT,
// the image's dYᵀ, masked for each dw).
func (c *Conv) weightsImage(w *convWorker, n int) {
	pix, kg, ow, ld := c.out.Pixels(), c.kg(), c.out.W, dyTStride(c.out.Pixels())
	dy := c.runDY[n*pix*c.Cout : (n+1)*pix*c.Cout]
	x := c.x[n*pix*c.Cin : (n+1)*pix*c.Cin]
	transposeRows(w.dyT, ld, dy, c.Cout, pix, c.Cout)
	prev := 0 // dyT as transposed: every column inside
	for kw := range c.KW {
		dw := kw - c.PadLeft
		c.maskTapColumns(w.dyT, ld, dy, dw, prev)
		prev = dw
		for kh := range c.KH {
			dh := kh - c.PadTop
			p0, p1 := max(0, -dh)*ow+max(0, -dw), min(c.out.H, c.out.H-dh)*ow-max(0, dw)
			if p1 <= p0 {
				continue
			}
			off := dh*ow + dw
			b, _ := c.set.ViewB(x[(p0+off)*c.Cin:(p1+off)*c.Cin], p1-p0, c.Cin)
			dst := w.gwT[(kh*c.KW+kw)*c.Cin:]
			w.ep.Res = dst
			kernels.Gemm(c.Cout, w.dyT[p0:], ld, &b, dst, kg, &w.ep, 0, 1)
		}
	}
	if w.gb != nil {
		for q := range pix {
			addTo(w.gb, dy[q*c.Cout:(q+1)*c.Cout])
		}
	}
}

// dyTStride is the row stride of an image's dYᵀ in weightsImage: its
// pixels rounded up to whole cache lines, and an odd number of lines, so
// that the GEMM's loads of one column from its rows fall in different
// cache sets (at 4 KiB, 32x32 pixels, they took one set and ran 2x
// slower).
func dyTStride(pixels int) int {
	ld := roundUp(pixels, 16)
	if ld/16%2 == 0 {
		ld += 16
	}
	return ld
}

// maskTapColumns turns dyT (the image's dYᵀ, Cout rows of stride ld),
// masked for tap column offset prev, into dyT masked for dw: column ow
// holds dY where ow+dw is inside the row, else 0. Only the columns whose
// state changes are written (ow < PadLeft or ow >= W-PadRight).
func (c *Conv) maskTapColumns(dyT []float32, ld int, dy []float32, dw, prev int) {
	wd := c.out.W
	inside := func(ow, d int) bool { return ow+d >= 0 && ow+d < wd }
	fix := func(ow int) {
		in := inside(ow, dw)
		if in == inside(ow, prev) {
			return
		}
		for oh := range c.out.H {
			p := oh*wd + ow
			for co := range c.Cout {
				v := float32(0)
				if in {
					v = dy[p*c.Cout+co]
				}
				dyT[co*ld+p] = v
			}
		}
	}
	for ow := range min(c.PadLeft, wd) {
		fix(ow)
	}
	for ow := max(c.PadLeft, wd-c.PadRight); ow < wd; ow++ {
		fix(ow)
	}
}

// packTap writes into p (K = c.rows rows of Cin/Groups values) the inputs
// of group gr under tap (kh, kw) for output pixels [q0, q1), zeros where
// the tap falls in the padding and in the rows past q1-q0. Stride 1
// along W: a run of pixels of one output row reads a run of one input
// row.
func (c *Conv) packTap(p *kernels.PackedB, kh, kw, q0, q1, gr int) {
	g, cig := &c.geom, c.cig()
	pix := c.out.Pixels()
	k := 0
	for q := q0; q < q1; {
		n, oh, ow := q/pix, (q%pix)/g.OW, q%g.OW
		run := min(q1-q, g.OW-ow)
		ih := oh*g.StrideH - g.PadTop + kh*g.DilH
		if ih < 0 || ih >= g.H {
			packRows(p, k, run, nil, 0)
		} else {
			iw := ow - g.PadLeft + kw*g.DilW
			lead := min(run, max(0, -iw))
			valid := max(0, min(run-lead, g.W-(iw+lead)))
			packRows(p, k, lead, nil, 0)
			if valid > 0 {
				packRows(p, k+lead, valid, c.x[((n*g.H+ih)*g.W+iw+lead)*c.Cin+gr*cig:], c.Cin)
			}
			packRows(p, k+lead+valid, run-lead-valid, nil, 0)
		}
		k, q = k+run, q+run
	}
	packRows(p, k, p.K-k, nil, 0)
}

// packRows writes rows [k, k+n) of the packed matrix p: row i is
// src[i*ld:][:p.N], or zeros if src is nil. Where a row is exactly one
// panel (N = NR = ld) the rows are one copy.
func packRows(p *kernels.PackedB, k, n int, src []float32, ld int) {
	if n <= 0 {
		return
	}
	nr := p.NR
	for j := range p.Panels() {
		w := min(nr, p.N-j*nr)
		panel := p.Data[(j*p.K+k)*nr : (j*p.K+k+n)*nr]
		switch {
		case src == nil:
			clear(panel)
		case p.N == nr && ld == nr:
			copy(panel, src[:n*nr])
		default:
			for i := range n {
				copy(panel[i*nr:i*nr+w], src[i*ld+j*nr:])
			}
		}
	}
}

// im2colBlock writes the im2col of group gr's input channels for the
// batch's output pixels [q0, q1) into dst: one row of Kg values per pixel,
// its receptive field in (kh, kw, ci) order, zeros in the padding.
func (c *Conv) im2colBlock(dst []float32, q0, q1, gr int) {
	g, cig := &c.geom, c.cig()
	p, kwc := c.out.Pixels(), g.KW*cig
	i := 0
	for q := q0; q < q1; q++ {
		n, oh, ow := q/p, (q%p)/g.OW, q%g.OW
		img := c.x[n*c.in.Pixels()*c.Cin+gr*cig:]
		w0 := ow*g.StrideW - g.PadLeft
		for kh := range g.KH {
			ih := oh*g.StrideH - g.PadTop + kh*g.DilH
			switch {
			case ih < 0 || ih >= g.H:
				clear(dst[i : i+kwc])
			case cig == c.Cin && g.DilW == 1 && w0 >= 0 && w0+g.KW <= g.W:
				copy(dst[i:i+kwc], img[(ih*g.W+w0)*c.Cin:])
			default:
				for kw := range g.KW {
					d := dst[i+kw*cig : i+(kw+1)*cig]
					if iw := w0 + kw*g.DilW; iw < 0 || iw >= g.W {
						clear(d)
					} else {
						copy(d, img[(ih*g.W+iw)*c.Cin:])
					}
				}
			}
			i += kwc
		}
	}
}

// dataImage computes image n's dx: per block of pixels and group,
// col = dY·Wᵀ, then col2im.
func (c *Conv) dataImage(w *convWorker, n int) {
	p := c.out.Pixels()
	dy := c.runDY[n*p*c.Cout:]
	dx := c.dx[n*c.in.Pixels()*c.Cin : (n+1)*c.in.Pixels()*c.Cin]
	clear(dx)
	kg, cog := c.kg(), c.cog()
	for b0 := 0; b0 < p; b0 += c.dxRows {
		b1 := min(p, b0+c.dxRows)
		for gr := range c.Groups {
			kernels.Gemm(b1-b0, dy[b0*c.Cout+gr*cog:], c.Cout, &c.wT[gr], w.col, kg, &c.zeroEp, 0, c.wT[gr].Panels())
			c.col2im(w.col, dx, b0, b1, gr)
		}
	}
}

// col2im adds row j of col (Kg values in (kh, kw, ci) order) into the
// input pixels of output pixel b0+j's taps, group gr's channels, for
// pixels [b0, b1) of one image's dx; taps in the padding are dropped.
func (c *Conv) col2im(col, dx []float32, b0, b1, gr int) {
	g, cig, kg := &c.geom, c.cig(), c.kg()
	for j, q := 0, b0; q < b1; j, q = j+1, q+1 {
		oh, ow := q/g.OW, q%g.OW
		row := col[j*kg:]
		for kh := range g.KH {
			ih := oh*g.StrideH - g.PadTop + kh*g.DilH
			if ih < 0 || ih >= g.H {
				continue
			}
			for kw := range g.KW {
				iw := ow*g.StrideW - g.PadLeft + kw*g.DilW
				if iw < 0 || iw >= g.W {
					continue
				}
				src := row[(kh*g.KW+kw)*cig:][:cig]
				addTo(dx[(ih*g.W+iw)*c.Cin+gr*cig:][:cig], src)
			}
		}
	}
}

// packStrided packs into p (made by Set.PackB, K x N) the matrix
// B[k][n] = src[off + k*sk + n*sn] for k < rows, zeros for the rows past:
// Set.PackB's layout (panels of NR columns, K rows of NR values each, the
// last panel's columns past N zero), without allocating.
func packStrided(p *kernels.PackedB, src []float32, off, sk, sn, rows int) {
	nr := p.NR
	for j := range p.Panels() {
		n0 := j * nr
		w := min(nr, p.N-n0)
		panel := p.Data[j*p.K*nr : (j+1)*p.K*nr]
		for k := range p.K {
			d := panel[k*nr : k*nr+w]
			switch {
			case k >= rows:
				clear(d)
			case sn == 1:
				copy(d, src[off+k*sk+n0:])
			default:
				s := off + k*sk + n0*sn
				for i := range d {
					d[i] = src[s+i*sn]
				}
			}
		}
	}
}
