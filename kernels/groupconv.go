package kernels

import (
	"fmt"
	"math"
	"strings"
	"unsafe"
)

// Grouped convolution: the input's C channels and the output's Cout
// channels are split into G groups, and group g's outputs
// [g*Cout/G, (g+1)*Cout/G) see only its inputs [g*C/G, (g+1)*C/G)
// (ResNeXt's 3x3 convolutions; G = C = Cout is depthwise). Weights are
// HWIO with I = C/G: w[((kh*KW+kw)*(C/G)+ci)*Cout + co].
//
// Two implementations: GroupConvDirect (below; its Go code is the
// reference and the generic path) and GroupConvGemm, one GEMM per group,
// for groups too wide for the direct vector kernels.

// GroupedB is the weights of a grouped convolution packed for the GEMM,
// one (KH*KW*C/G) x (Cout/G) matrix per group.
type GroupedB struct {
	Groups int
	B      []PackedB
}

// Bytes is the memory the packed weights take.
func (w *GroupedB) Bytes() int64 {
	var n int64
	for i := range w.B {
		n += w.B[i].Bytes()
	}
	return n
}

// PackGrouped packs grouped-conv weights (HWIO with I = C/G) per group for
// the Set's GEMM kernel.
func (s *Set) PackGrouped(g *ConvGeom, groups int, w []float32) GroupedB {
	cig, cog := g.C/groups, g.Cout/groups
	k := g.KH * g.KW * cig
	out := GroupedB{Groups: groups, B: make([]PackedB, groups)}
	m := make([]float32, k*cog)
	for gr := range groups {
		for r := range k {
			copy(m[r*cog:(r+1)*cog], w[r*g.Cout+gr*cog:][:cog])
		}
		out.B[gr] = s.PackB(m, k, cog)
	}
	return out
}

// MR is the row tile of the GEMM kernel the weights were packed for.
func (w *GroupedB) MR() int { return w.B[0].MR() }

// GroupConvGemmScratch is the scratch (in float32s) GroupConvGemm needs
// with weights w.
func GroupConvGemmScratch(g *ConvGeom, w *GroupedB) int {
	k := g.KH * g.KW * g.C / w.Groups
	return w.B[0].impl.blockRows(k) * k
}

// GroupConvGemm computes output pixels [px0, px1) of a grouped convolution
// as one GEMM per group over an im2col of the group's input channels,
// through the GEMM epilogue (bias, residual with the output's layout,
// ReLU). Each output is one FMA chain in (kh, kw, ci) order, so splitting
// pixels across calls does not change a bit.
func GroupConvGemm(g *ConvGeom, w *GroupedB, in, out []float32, ep *Epilogue, px0, px1 int, scratch []float32) {
	groups := w.Groups
	cig, cog := g.C/groups, g.Cout/groups
	k := g.KH * g.KW * cig
	if groups < 1 || len(w.B) != groups || w.B[0].K != k || w.B[0].N != cog || len(in) < g.H*g.W*g.C ||
		len(out) < g.Pixels()*g.Cout || px0 < 0 || px1 > g.Pixels() || len(scratch) < GroupConvGemmScratch(g, w) {
		panic(fmt.Sprintf("kernels.GroupConvGemm: bad arguments %+v groups=%d", *g, groups))
	}
	rows := w.B[0].impl.blockRows(k)
	sub := Epilogue{LdRes: g.Cout, Relu: ep.Relu, Clamp: ep.Clamp, Lo: ep.Lo, Hi: ep.Hi}
	for b0 := px0; b0 < px1; b0 += rows {
		b1 := min(px1, b0+rows)
		for gr := range groups {
			im2colGroup(g, in, scratch, gr*cig, cig, b0, b1)
			if ep.Bias != nil {
				sub.Bias = ep.Bias[gr*cog:]
			}
			if ep.Res != nil {
				sub.Res = ep.Res[b0*g.Cout+gr*cog:]
			}
			Gemm(b1-b0, scratch, k, &w.B[gr], out[b0*g.Cout+gr*cog:], g.Cout, &sub, 0, w.B[gr].Panels())
		}
	}
}

// im2colGroup is im2col of input channels [c0, c0+cn): one row of
// KH*KW*cn values per output pixel in [px0, px1), zeros in the padding.
func im2colGroup(g *ConvGeom, in, dst []float32, c0, cn, px0, px1 int) {
	i := 0
	oh, ow := px0/g.OW, px0%g.OW
	for p := px0; p < px1; p++ {
		for kh := 0; kh < g.KH; kh++ {
			ih := oh*g.StrideH - g.PadTop + kh*g.DilH
			for kw := 0; kw < g.KW; kw++ {
				iw := ow*g.StrideW - g.PadLeft + kw*g.DilW
				if ih < 0 || ih >= g.H || iw < 0 || iw >= g.W {
					clear(dst[i : i+cn])
				} else {
					copy(dst[i:i+cn], in[(ih*g.W+iw)*g.C+c0:][:cn])
				}
				i += cn
			}
		}
		if ow++; ow == g.OW {
			ow = 0
			oh++
		}
	}
}

// Direct grouped convolution (GroupConvDirect): for output pixel (oy, ox)
// and channel co of group gr = co / (Cout/G), with cig = C/G,
// ih0 = oy*StrideH - PadTop and iw0 = ox*StrideW - PadLeft:
//
//	s = Bias[co]                     (+0 without a bias, and for a bias of -0)
//	for kh < KH, then kw < KW, skipping the taps that fall in the padding,
//	then ci < cig:
//	    s = fma(w[((kh*KW+kw)*cig+ci)*Cout + co], in[((ih0+kh*DilH)*W + iw0+kw*DilW)*C + gr*cig+ci], s)
//	s = s + Res[(oy*OW+ox)*Cout + co]   if Res != nil
//	s = Lo if s < Lo, Hi if s > Hi      the activation (see Activation)
//
// with fma a float32 fused multiply-add, exactly the depthwise contract
// (DepthwiseConv) with an inner loop over the group's input channels. The
// Go code (the fallback and reference, fmaAdd) and every vector kernel
// perform these operations in this order, so the outputs are
// bit-identical on every kernel path and whatever rows each call computes.
// The sum is never -0, so a tap in the padding could as well be added as
// fma(w, +0, s) = s: the kernels do that at the image's left and right
// edges (they run on a copy of the edge pixels' inputs padded with zeros),
// which gives the same bits for finite weights (an infinite or NaN weight
// would make the border outputs NaN there, as GroupConvGemm's would).
//
// Vector kernels, per path (PackGroupDirect chooses, for the selected
// path):
//   - 3x3 filters with stride 1 or 2 along W (dilation 1), cig = cog in
//     {1, 2, 4} (and 8 on AVX-512): the groups of a vector of output
//     channels side by side, each input vector permuted once per input
//     channel and used for every output of a chunk of a row it touches;
//     the last C % lanes channels in Go.
//   - any other shape: one group at a time, its cog outputs in vectors
//     (the last one masked), up to 14 (AVX-512) or 12 or 6 (AVX2) pixels of
//     a row at once, each input channel broadcast from memory.
//   - NEON: that second family for every shape whose groups have a
//     multiple of 4 output channels (FMLA by element takes each input
//     channel from a vector of four); the others in Go.

// GroupEpilogue is what happens to each grouped-convolution sum before it
// is stored: bias, residual with the output's layout (may be out itself),
// activation, as for DepthwiseConv.
type GroupEpilogue = DepthwiseEpilogue

// gcRowKernel is a path's permute-family kernel for cig = cog channels
// per group (3x3, one stride along W; the assembly's contract): for npix
// consecutive output pixels j (all windows inside the input horizontally)
// and output channels [0, n), n a positive multiple of the lanes, the sum
// above over filter rows r < rows (1..3; src and w at the first row
// inside the input, row r of the input at src + r*srcRow), taps kw < 3 at
// src + (j*stride + kw)*c, weights packed by PackGroupDirect (the vector of
// channels [o, o+lanes) at w + o*9*cig + ((r*3+kw)*cig+ci)*lanes), then
// bias (flags&dwFlagBias, else +0 to start), residual res + j*c
// (flags&dwFlagRes), clamp (flags&dwFlagLo, dwFlagHi), stored at dst + j*c.
// c is both the input's and the output's pixel stride (C = Cout).
type gcRowKernel = func(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcTileKernel is a path's broadcast-family kernel: for npix (1..bcP)
// pixels j of a row and groups gr < groups, the nv-vector outputs (nv of
// the kernel; the last vector's lanes [0, nLast) only) of each group over
// a kh x kw window with cig input channels: tap (y, x), channel ci of pixel
// j at src + gr*cig + j*pixStride + y*srcRow + x*srcTap + ci, weights at
// w + gr*gW + ((y*kw+x)*cig+ci)*nv*lanes, then the epilogue of
// gcRowKernel with bias + gr*cog and res, dst + gr*cog + j*dstPix.
type gcTileKernel = func(dst, src, w, bias, res *float32, npix, pixStride, kh, kw, srcRow, srcTap, cig, groups, gW, cog, dstPix, nLast, flags int, lo, hi float32)

// groupConvImpl is a path's GroupConvDirect kernels.
type groupConvImpl struct {
	name  string
	lanes int
	perm  [9][3]gcRowKernel // by cig, then stride along W; nil: none
	permP int               // outputs per chunk of the perm kernels
	bc    [3]gcTileKernel   // by vectors per group (1, 2)
	bcP   [3]int            // their most pixels per call
	// bcFull: the bc kernels take no partial vector (nLast = lanes), so
	// groups whose output channels are not a multiple of the lanes run
	// in Go.
	bcFull bool
	// maxCog is the most output channels per group for which
	// GroupConvDirect beats GroupConvGemm (GroupConvPrefersDirect).
	maxCog int
}

// GroupConvPrefersDirect reports whether, on the Set's path,
// GroupConvDirect is the faster implementation of a grouped convolution
// (the alternative being GroupConvGemm): whenever the path has
// GroupConvDirect kernels and the groups have at most 128 (AVX-512) or
// 48 (AVX2) output channels, by measurement (bench/README.md, "Grouped
// convolution"); never on the generic path, whose GroupConvDirect is the
// reference Go code.
func (s *Set) GroupConvPrefersDirect(g *ConvGeom, groups int) bool {
	impl := s.groupconv
	if impl == nil || groups < 1 || g.C%groups != 0 || g.Cout%groups != 0 {
		return false
	}
	return g.Cout/groups <= impl.maxCog
}

// gcKind is the kernel family of a packed grouped convolution.
type gcKind uint8

const (
	gcGo   gcKind = iota // the Go code
	gcPerm               // gcRowKernel, channels [0, vec); Go the rest
	gcBc                 // gcTileKernel
)

// GroupDirectW is the weights of a grouped convolution packed for
// GroupConvDirect by a Set, whose kernels then run it.
type GroupDirectW struct {
	Groups          int
	impl            *groupConvImpl
	kind            gcKind
	c, cout, kh, kw int
	cig, cog        int
	vec             int       // output channels [0, vec) by the kernels
	pe              int       // pixels per edge piece (the kernel's chunk)
	gb              int       // groups per block (gcBc; Groups otherwise)
	data            []float32 // the kernels' weights
	goW             []float32 // HWIO weights of output channels [vec, Cout), for the Go code
}

// Bytes is the memory the packed weights take.
func (w *GroupDirectW) Bytes() int64 { return 4 * int64(len(w.data)+len(w.goW)) }

// gcPlan is the kernel family for g on impl and the pixels per edge
// piece.
func gcPlan(impl *groupConvImpl, g *ConvGeom, groups int) (kind gcKind, pe int) {
	cig, cog := g.C/groups, g.Cout/groups
	switch {
	case impl == nil:
		return gcGo, 1
	case cig == cog && cig < len(impl.perm) && g.KH == 3 && g.KW == 3 && g.DilW == 1 && g.StrideW <= 2 &&
		impl.perm[cig][g.StrideW] != nil && g.C >= impl.lanes:
		return gcPerm, impl.permP
	}
	if impl.bcFull && cog%impl.lanes != 0 {
		return gcGo, 1
	}
	nvec := (cog + impl.lanes - 1) / impl.lanes
	pe = impl.bcP[min(2, nvec)]
	if nvec > 2 && nvec%2 == 1 {
		pe = min(pe, impl.bcP[1])
	}
	return gcBc, pe
}

// GroupConvDirectScratch is the scratch (in float32s) GroupConvDirect
// needs with weights w: a zero-padded copy of the input of the pixels at
// the image's left and right edges.
func GroupConvDirectScratch(g *ConvGeom, w *GroupDirectW) int {
	kind, pe := gcPlan(w.impl, g, w.Groups)
	if kind == gcGo {
		return 0
	}
	return g.KH * ((pe-1)*g.StrideW + (g.KW-1)*g.DilW + 1) * g.C
}

// PackGroupDirect packs grouped-conv weights (HWIO with I = C/G) for
// GroupConvDirect on the Set's kernels.
func (s *Set) PackGroupDirect(g *ConvGeom, groups int, w []float32) GroupDirectW {
	if groups < 1 || g.C%groups != 0 || g.Cout%groups != 0 || g.KH < 1 || g.KW < 1 || len(w) < g.KH*g.KW*(g.C/groups)*g.Cout {
		panic(fmt.Sprintf("kernels.PackGroupDirect: bad arguments %+v groups=%d len(w)=%d", *g, groups, len(w)))
	}
	impl := s.groupconv
	kind, pe := gcPlan(impl, g, groups)
	cig, cog := g.C/groups, g.Cout/groups
	p := GroupDirectW{Groups: groups, impl: impl, kind: kind, c: g.C, cout: g.Cout, kh: g.KH, kw: g.KW,
		cig: cig, cog: cog, pe: pe}
	rows := g.KH * g.KW * cig // (tap, ci) rows of the HWIO matrix, Cout wide
	switch kind {
	case gcPerm:
		lanes := impl.lanes
		p.vec = g.Cout / lanes * lanes
		p.data = make([]float32, rows*p.vec)
		for cv := range p.vec / lanes {
			for r := range rows {
				copy(p.data[(cv*rows+r)*lanes:][:lanes], w[r*g.Cout+cv*lanes:][:lanes])
			}
		}
	case gcBc:
		p.vec = g.Cout
		p.data = gcPackBc(w, rows, cog, groups, g.Cout, impl.lanes)
		p.gb = max(1, gcBlockBytes/(4*len(p.data)/groups))
	}
	if p.gb == 0 || p.gb > groups {
		p.gb = groups
	}
	if n := g.Cout - p.vec; n > 0 {
		p.goW = make([]float32, rows*n)
		for r := range rows {
			copy(p.goW[r*n:(r+1)*n], w[r*g.Cout+p.vec:][:n])
		}
	}
	return p
}

// gcBlockBytes bounds the weights of the groups that GroupConvDirect's
// broadcast kernels run over all the rows of a call before the next
// groups: one group per row would stream all the weights from L2 or
// memory once per output row.
var gcBlockBytes = 128 << 10

// gcPackBc packs the weights of the broadcast kernels: per group, its cog
// outputs in chunks of two vectors (the last chunk one or two, zero-padded
// past cog), each chunk rows x (its vectors' lanes), rows = (tap, ci).
func gcPackBc(w []float32, rows, cog, groups, cout, lanes int) []float32 {
	nvec := (cog + lanes - 1) / lanes
	gW := rows * nvec * lanes
	data := make([]float32, groups*gW)
	for gr := range groups {
		off := gr * gW
		for c0 := 0; c0 < cog; c0 += 2 * lanes {
			width := min(2*lanes, cog-c0)
			row := (width + lanes - 1) / lanes * lanes
			for r := range rows {
				copy(data[off+r*row:][:width], w[r*cout+gr*cog+c0:][:width])
			}
			off += rows * row
		}
	}
	return data
}

// GroupConvDirect computes output rows [y0, y1) of the grouped
// convolution defined above (in is H*W*C values, out OH*OW*Cout, w packed
// by PackGroupDirect for g, whose kernels run it; ep may be nil) with
// scratch of GroupConvDirectScratch floats. Rows may be split across
// calls (threads) at will: the results do not change. out must not overlap
// in, the weights or the bias; the residual may be out itself. It
// allocates nothing.
func GroupConvDirect(g *ConvGeom, w *GroupDirectW, in, out []float32, ep *GroupEpilogue, y0, y1 int, scratch []float32) {
	if ep == nil {
		ep = &GroupEpilogue{}
	}
	flags, lo, hi, err := ep.Act.clamp()
	outN := g.OH * g.OW * g.Cout
	if err != nil || w.c != g.C || w.cout != g.Cout || w.kh != g.KH || w.kw != g.KW ||
		g.H < 1 || g.W < 1 || g.StrideH < 1 || g.StrideW < 1 || g.DilH < 1 || g.DilW < 1 || g.PadTop < 0 || g.PadLeft < 0 ||
		len(in) < g.H*g.W*g.C || len(out) < outN || ep.Bias != nil && len(ep.Bias) < g.Cout ||
		ep.Res != nil && len(ep.Res) < outN || y0 < 0 || y1 > g.OH || len(scratch) < GroupConvDirectScratch(g, w) {
		panic(fmt.Sprintf("kernels.GroupConvDirect: bad arguments %+v groups=%d rows [%d, %d) len(scratch)=%d %v", *g, w.Groups, y0, y1, len(scratch), err))
	}
	if kind, pe := gcPlan(w.impl, g, w.Groups); kind != w.kind || pe != w.pe {
		panic(fmt.Sprintf("kernels.GroupConvDirect: weights packed for another geometry than %+v", *g))
	}
	if ep.Bias != nil {
		flags |= dwFlagBias
	}
	if ep.Res != nil {
		flags |= dwFlagRes
	}
	r := gcRun{g: g, w: w, in: in, out: out, bias: ep.Bias, res: ep.Res, scratch: scratch, flags: flags, lo: lo, hi: hi}
	// ox is interior when iw0 = ox*StrideW - PadLeft >= 0 and
	// iw0 + (KW-1)*DilW <= W-1.
	r.oxA = min(g.OW, (g.PadLeft+g.StrideW-1)/g.StrideW)
	r.oxB = r.oxA
	if last := g.W - 1 - (g.KW-1)*g.DilW + g.PadLeft; last >= 0 {
		r.oxB = max(r.oxA, min(g.OW, last/g.StrideW+1))
	}
	if w.kind != gcGo {
		for gr := 0; gr < w.Groups; gr += w.gb {
			r.gr0, r.gr1 = gr, min(w.Groups, gr+w.gb)
			for oy := y0; oy < y1; oy++ {
				r.rowKernels(oy)
			}
		}
	}
	for oy := y0; oy < y1; oy++ {
		r.rowGo(oy)
	}
}

// gcRun is one GroupConvDirect call.
type gcRun struct {
	g                           *ConvGeom
	w                           *GroupDirectW
	in, out, bias, res, scratch []float32
	flags                       int
	lo, hi                      float32
	oxA, oxB                    int // output columns whose every kw tap is inside the input
	gr0, gr1                    int // the groups the kernels do
}

// rowKernels runs the kernels over row oy for groups [gr0, gr1) (all of
// them but for gcBc): the interior columns on the input, the edges
// (pieces of at most pe pixels, widened to pe pixels so that the kernel's
// chunks stay full) on zero-padded copies of the groups' input channels.
func (r *gcRun) rowKernels(oy int) {
	g, pe := r.g, r.w.pe
	ih0 := oy*g.StrideH - g.PadTop
	kh0, kh1 := dwTaps(ih0, g.KH, g.DilH, g.H)
	if kh0 >= kh1 {
		return // the Go code's (rowGo)
	}
	a, b := r.oxA, r.oxB
	if a > 0 {
		a = min(max(a, pe), g.OW)
	}
	if a >= b {
		a, b = g.OW, g.OW
	} else if b < g.OW {
		b = max(a, min(b, g.OW-pe))
	}
	for _, e := range [2][2]int{{0, a}, {b, g.OW}} {
		n := (e[1] - e[0] + pe - 1) / pe
		for i := range n {
			x0, x1 := e[0]+(e[1]-e[0])*i/n, e[0]+(e[1]-e[0])*(i+1)/n
			src, srcRow, cs := r.edgeCopy(ih0, kh0, kh1, x0, x1)
			r.segment(oy, kh0, kh1, x0, x1, src, srcRow, cs)
		}
	}
	if a < b {
		src := r.in[((ih0+kh0*g.DilH)*g.W+a*g.StrideW-g.PadLeft)*g.C+r.gr0*r.w.cig:]
		r.segment(oy, kh0, kh1, a, b, src, g.DilH*g.W*g.C, g.C)
	}
}

// rowGo computes in Go what the kernels leave of row oy: the channels
// past w.vec, or all of them when no filter row is inside the input.
func (r *gcRun) rowGo(oy int) {
	g := r.g
	c0 := r.w.vec
	if kh0, kh1 := dwTaps(oy*g.StrideH-g.PadTop, g.KH, g.DilH, g.H); r.w.kind == gcGo || kh0 >= kh1 {
		c0 = 0
	}
	if c0 < g.Cout {
		for ox := range g.OW {
			r.pixelGo(oy, ox, c0)
		}
	}
}

// edgeCopy copies input channels [gr0*cig, gr1*cig) of output pixels
// [x0, x1) of a row, filter rows [kh0, kh1), into the scratch, zeros for
// the columns outside the input; it returns the copy, its row stride and
// its pixel stride.
func (r *gcRun) edgeCopy(ih0, kh0, kh1, x0, x1 int) (copied []float32, srcRow, cs int) {
	g := r.g
	ch0 := r.gr0 * r.w.cig
	cs = (r.gr1 - r.gr0) * r.w.cig
	ncols := (x1-1-x0)*g.StrideW + (g.KW-1)*g.DilW + 1
	iw0 := x0*g.StrideW - g.PadLeft
	c0 := min(ncols, max(0, -iw0))
	c1 := max(c0, min(ncols, g.W-iw0))
	n := ncols * cs
	for kh := kh0; kh < kh1; kh++ {
		d := r.scratch[(kh-kh0)*n:][:n]
		clear(d[:c0*cs])
		src := r.in[((ih0+kh*g.DilH)*g.W+iw0+c0)*g.C+ch0:]
		for c := c0; c < c1; c++ {
			copy(d[c*cs:(c+1)*cs], src[(c-c0)*g.C:])
		}
		clear(d[c1*cs:])
	}
	return r.scratch, n, cs
}

// segment runs the kernels over output pixels [x0, x1) of row oy, whose
// input (filter row kh0, first tap of pixel x0, input channel gr0*cig) is
// src with row stride srcRow and pixel stride cs.
func (r *gcRun) segment(oy, kh0, kh1, x0, x1 int, src []float32, srcRow, cs int) {
	g, w := r.g, r.w
	pix := oy*g.OW + x0
	if w.kind == gcPerm {
		k := w.impl.perm[w.cig][g.StrideW]
		k(&r.out[pix*g.Cout], &src[0], &w.data[kh0*3*w.cig*w.impl.lanes], unsafe.SliceData(r.bias), r.resPtr(pix, 0),
			w.vec, kh1-kh0, x1-x0, g.C, srcRow, r.flags, r.lo, r.hi)
		return
	}
	lanes := w.impl.lanes
	rows := g.KH * g.KW * w.cig
	gW := rows * ((w.cog + lanes - 1) / lanes * lanes)
	n := (x1 - x0 + w.pe - 1) / w.pe
	for i := range n {
		t0, t1 := x0+(x1-x0)*i/n, x0+(x1-x0)*(i+1)/n
		s := src[(t0-x0)*g.StrideW*cs:]
		p := pix + t0 - x0
		for c0 := 0; c0 < w.cog; c0 += 2 * lanes {
			width := min(2*lanes, w.cog-c0)
			nv := (width + lanes - 1) / lanes
			o := r.gr0*w.cog + c0 // the first group's output channel
			var bias *float32
			if r.bias != nil {
				bias = &r.bias[o]
			}
			w.impl.bc[nv](&r.out[p*g.Cout+o], &s[0], &w.data[r.gr0*gW+rows*c0+kh0*g.KW*w.cig*nv*lanes], bias, r.resPtr(p, o),
				t1-t0, g.StrideW*cs, kh1-kh0, g.KW, srcRow, g.DilW*cs, w.cig, r.gr1-r.gr0, gW, w.cog, g.Cout,
				width-(nv-1)*lanes, r.flags, r.lo, r.hi)
		}
	}
}

func (r *gcRun) resPtr(pix, c0 int) *float32 {
	if r.res == nil {
		return nil
	}
	return &r.res[pix*r.g.Cout+c0]
}

// pixelGo computes output channels [c0, Cout) of pixel (oy, ox) in Go;
// the weights of channels below w.vec are only needed when no tap is
// inside the input.
func (r *gcRun) pixelGo(oy, ox, c0 int) {
	g, w := r.g, r.w
	ih0, iw0 := oy*g.StrideH-g.PadTop, ox*g.StrideW-g.PadLeft
	kh0, kh1 := dwTaps(ih0, g.KH, g.DilH, g.H)
	kw0, kw1 := dwTaps(iw0, g.KW, g.DilW, g.W)
	if kw0 >= kw1 || c0 < w.vec {
		kh1 = kh0 // no tap inside the input
	}
	pix := oy*g.OW + ox
	ld := g.Cout - w.vec
	var acc [dwChunk]float32
	for cb := c0; cb < g.Cout; {
		gr := cb / w.cog
		s := acc[:min(dwChunk, (gr+1)*w.cog-cb)]
		dwInitGo(s, r.bias, cb)
		for kh := kh0; kh < kh1; kh++ {
			for kw := kw0; kw < kw1; kw++ {
				x := r.in[((ih0+kh*g.DilH)*g.W+iw0+kw*g.DilW)*g.C+gr*w.cig:][:w.cig]
				wt := w.goW[(kh*g.KW+kw)*w.cig*ld+cb-w.vec:]
				for ci, v := range x {
					gcTapGo(s, wt[ci*ld:], v)
				}
			}
		}
		var res []float32
		if r.res != nil {
			res = r.res[pix*g.Cout+cb:]
		}
		dwFinishGo(r.out[pix*g.Cout+cb:pix*g.Cout+cb+len(s)], s, res, r.flags, r.lo, r.hi)
		cb += len(s)
	}
}

// gcTapGo does s[i] = fma(w[i], x, s[i]) for i < len(s) (fmaAdd written
// out, as in dwTapGo).
func gcTapGo(s, w []float32, x float32) {
	w = w[:len(s)]
	xv := float64(x)
	for i, v := range s {
		p := float64(w[i]) * xv
		if t := p + float64(v); math.Float64bits(t)<<36 != 0 {
			s[i] = float32(t)
		} else {
			s[i] = roundOdd(p, v, t)
		}
	}
}

// groupConvDesc describes the Set's GroupConvDirect kernels.
func (s *Set) groupConvDesc() string {
	gc := s.groupconv
	if gc == nil {
		return "Go"
	}
	var perm []string
	for cig, k := range gc.perm {
		if k[1] != nil {
			perm = append(perm, fmt.Sprint(cig))
		}
	}
	d := fmt.Sprintf("%s, %d lanes: ", gc.name, gc.lanes)
	if len(perm) > 0 {
		d += fmt.Sprintf("3x3 with %s channels per group side by side, otherwise ", strings.Join(perm, ", "))
	}
	d += "one group at a time"
	if gc.bcFull {
		d += fmt.Sprintf(" (output channels per group a multiple of %d)", gc.lanes)
	}
	return d + fmt.Sprintf("; preferred to the GEMM up to %d per group", gc.maxCog)
}
