package kernels

import "fmt"

// ConvGeom is the geometry of a 2-D convolution on NHWC data (batch 1).
type ConvGeom struct {
	H, W, C          int // input
	OH, OW, Cout     int // output
	KH, KW           int
	StrideH, StrideW int
	DilH, DilW       int
	PadTop, PadLeft  int // the bottom/right padding is implied by OH, OW
}

// K is the GEMM depth: KH*KW*C.
func (g *ConvGeom) K() int { return g.KH * g.KW * g.C }

// Pixels is the number of output pixels.
func (g *ConvGeom) Pixels() int { return g.OH * g.OW }

// Direct reports whether the input is already the GEMM's A matrix
// (1x1, stride 1, no padding), so no scratch is needed.
func (g *ConvGeom) Direct() bool {
	return g.KH == 1 && g.KW == 1 && g.StrideH == 1 && g.StrideW == 1 && g.PadTop == 0 && g.PadLeft == 0 &&
		g.OH == g.H && g.OW == g.W
}

// ConvScratch is the scratch (in float32s) one worker needs for Conv with
// weights w: an im2col block of rows enough to amortize the B panel, few
// enough that the block stays in L2.
func ConvScratch(g *ConvGeom, w *PackedB) int {
	if g.Direct() {
		return 0
	}
	return w.impl.blockRows(g.K()) * g.K()
}

// ConvScratchLen is ConvScratch(g, w) for w = s.PackB of g's weights,
// without packing them: memory estimates take it.
func (s *Set) ConvScratchLen(g *ConvGeom) int {
	if g.Direct() {
		return 0
	}
	return s.gemm.forN(g.Cout).blockRows(g.K()) * g.K()
}

// Conv computes output pixels [px0, px1) and column panels [p0, p1) of a
// convolution whose weights w are the packed (KH*KW*C) x Cout matrix in HWIO
// order. ep.Res, if set, is the residual with the output's layout (LdRes is
// ignored and taken as Cout). scratch needs ConvScratch(g, w) values.
func Conv(g *ConvGeom, in []float32, w *PackedB, out []float32, ep *Epilogue, px0, px1, p0, p1 int, scratch []float32) {
	k := g.K()
	if w.K != k || w.N != g.Cout || len(in) < g.H*g.W*g.C || len(out) < g.Pixels()*g.Cout ||
		px0 < 0 || px1 > g.Pixels() || w.impl == nil || len(scratch) < ConvScratch(g, w) {
		panic(fmt.Sprintf("kernels.Conv: bad arguments %+v K=%d N=%d", *g, w.K, w.N))
	}
	sub := *ep
	sub.LdRes = g.Cout
	if g.Direct() {
		if ep.Res != nil {
			sub.Res = ep.Res[px0*g.Cout:]
		}
		Gemm(px1-px0, in[px0*g.C:], g.C, w, out[px0*g.Cout:], g.Cout, &sub, p0, p1)
		return
	}
	rows := w.impl.blockRows(k)
	for b0 := px0; b0 < px1; b0 += rows {
		b1 := min(px1, b0+rows)
		im2col(g, in, scratch, b0, b1)
		if ep.Res != nil {
			sub.Res = ep.Res[b0*g.Cout:]
		}
		Gemm(b1-b0, scratch, k, w, out[b0*g.Cout:], g.Cout, &sub, p0, p1)
	}
}

// im2col writes one row of KH*KW*C values per output pixel in [px0, px1):
// the receptive field in (kh, kw, c) order, zeros where it leaves the input.
func im2col(g *ConvGeom, in, dst []float32, px0, px1 int) {
	im2colRows(g, in, dst, 0, g.K(), px0, px1)
}

// im2colRows writes one row of stride >= KH*KW*C values per output pixel in
// [px0, px1): the receptive field in (kh, kw, c) order, pad where it leaves
// the input and in the row's tail past KH*KW*C (the int8 GEMM's depth is a
// multiple of KMult; the padded depth meets zero weights).
func im2colRows[T float32 | uint8](g *ConvGeom, in, dst []T, pad T, stride, px0, px1 int) {
	c, k := g.C, g.K()
	i := 0
	oh, ow := px0/g.OW, px0%g.OW
	for p := px0; p < px1; p++ {
		h0 := oh*g.StrideH - g.PadTop
		w0 := ow*g.StrideW - g.PadLeft
		for kh := 0; kh < g.KH; kh++ {
			ih := h0 + kh*g.DilH
			if ih < 0 || ih >= g.H {
				fill(dst[i:i+g.KW*c], pad)
				i += g.KW * c
				continue
			}
			rowBase := ih * g.W
			if g.DilW == 1 && w0 >= 0 && w0+g.KW <= g.W {
				// The whole kernel row is contiguous in NHWC: one copy of
				// KW*C values instead of KW copies of C (the stem's C is 3).
				src := (rowBase + w0) * c
				copy(dst[i:i+g.KW*c], in[src:src+g.KW*c])
				i += g.KW * c
				continue
			}
			for kw := 0; kw < g.KW; kw++ {
				iw := w0 + kw*g.DilW
				if iw < 0 || iw >= g.W {
					fill(dst[i:i+c], pad)
				} else {
					src := (rowBase + iw) * c
					copy(dst[i:i+c], in[src:src+c])
				}
				i += c
			}
		}
		fill(dst[i:i+stride-k], pad)
		i += stride - k
		if ow++; ow == g.OW {
			ow = 0
			oh++
		}
	}
}
