package kernels

import "fmt"

// K8 is the int8 GEMM depth of a convolution: K rounded up to KMult. The
// packed weights get zero rows for the extra depth.
func (g *ConvGeom) K8() int { return (g.K() + KMult - 1) / KMult * KMult }

// Direct8 reports whether the uint8 input is already the int8 GEMM's A
// matrix: Direct and a channel count that is a multiple of KMult.
func (g *ConvGeom) Direct8() bool { return g.Direct() && g.C%KMult == 0 }

// conv8BlockRows is the row block of the uint8 im2col: about 64 KiB of
// rows, a multiple of the kernel's MR.
func conv8BlockRows(k, mr int) int { return blockRows8(k, mr, 64<<10) }

// blockRows8 is about bytes of im2col rows of depth k, a multiple of mr.
func blockRows8(k, mr, bytes int) int {
	return max(mr, bytes/max(k, 1)/mr*mr)
}

// convBlockRows is the im2col row block of Conv8 with weights w: 64 KiB
// of rows, or what the kernel asks for (gemm8Impl.im2colBytes).
func (w *PackedB8) convBlockRows() int {
	if b := w.impl.im2colBytes; b > 0 {
		return blockRows8(w.K, w.MR(), b)
	}
	return conv8BlockRows(w.K, w.MR())
}

// ConvScratch8 is the scratch (in bytes) one worker needs for Conv8 with
// weights w.
func ConvScratch8(g *ConvGeom, w *PackedB8) int {
	if g.Direct8() {
		return 0
	}
	return w.convBlockRows() * g.K8()
}

// PackConv8 pads HWIO int8 weights (K x Cout) with zero rows to K8 and
// packs them for the Set's int8 kernel.
func (s *Set) PackConv8(g *ConvGeom, w []int8) PackedB8 {
	k, k8 := g.K(), g.K8()
	if len(w) != k*g.Cout {
		panic(fmt.Sprintf("kernels.PackConv8: %d weights for %dx%d", len(w), k, g.Cout))
	}
	if k8 != k {
		p := make([]int8, k8*g.Cout)
		copy(p, w)
		w = p
	}
	return s.PackB8(w, k8, g.Cout)
}

// Conv8 computes output pixels [px0, px1) and column panels [p0, p1) of a
// uint8 convolution (input zero point rq.ZeroA, real zero, is also the
// padding value) with weights packed by PackConv8. rq.Res, if set, is the
// residual with the output's layout (rq.LdRes is taken as Cout). scratch
// needs ConvScratch8(g, w) bytes. Like GemmU8, Conv8 modifies rq during the
// call and restores it.
func Conv8(g *ConvGeom, in []uint8, w *PackedB8, out []uint8, rq *Requant, px0, px1, p0, p1 int, scratch []byte) {
	k := g.K8()
	if w.K != k || w.N != g.Cout || len(in) < g.H*g.W*g.C || len(out) < g.Pixels()*g.Cout ||
		px0 < 0 || px1 > g.Pixels() || len(scratch) < ConvScratch8(g, w) || rq.ZeroA < 0 || rq.ZeroA > 255 {
		panic(fmt.Sprintf("kernels.Conv8: bad arguments %+v K=%d N=%d", *g, w.K, w.N))
	}
	if px0 >= px1 || p0 >= p1 {
		return
	}
	// rq is adjusted in place and restored (see GemmU8).
	res, ldRes := rq.Res, rq.LdRes
	defer func() { rq.Res, rq.LdRes = res, ldRes }()
	rq.LdRes = g.Cout
	if g.Direct8() {
		if res != nil {
			rq.Res = res[px0*g.Cout:]
		}
		GemmU8(px1-px0, in[px0*g.C:], g.C, w, out[px0*g.Cout:], g.Cout, rq, p0, p1)
		return
	}
	rows := w.convBlockRows()
	for b0 := px0; b0 < px1; b0 += rows {
		b1 := min(px1, b0+rows)
		Im2col8(g, in, uint8(rq.ZeroA), scratch, b0, b1)
		if res != nil {
			rq.Res = res[b0*g.Cout:]
		}
		GemmU8(b1-b0, scratch, k, w, out[b0*g.Cout:], g.Cout, rq, p0, p1)
	}
}

// Im2col8 writes one row of K8 bytes per output pixel in [px0, px1): the
// receptive field in (kh, kw, c) order, pad where it leaves the input, and
// pad again for the depth beyond K (which meets zero weights).
func Im2col8(g *ConvGeom, in []uint8, pad uint8, dst []uint8, px0, px1 int) {
	if len(dst) < (px1-px0)*g.K8() {
		panic("kernels.Im2col8: short scratch")
	}
	im2colRows(g, in, dst, pad, g.K8(), px0, px1)
}
