package kernels

import "fmt"

// Grouped convolution: the input's C channels and the output's Cout
// channels are split into G groups, and group g's outputs
// [g*Cout/G, (g+1)*Cout/G) see only its inputs [g*C/G, (g+1)*C/G)
// (ResNeXt's 3x3 convolutions; G = C = Cout is depthwise). Weights are
// HWIO with I = C/G: w[((kh*KW+kw)*(C/G)+ci)*Cout + co].
//
// For output pixel p and channel co of group g, s starts at Bias[co] (or 0)
// and adds round(w*x) over the taps inside the input in (kh, kw, ci)
// order; then the residual Res[p*Cout+co] and the activation, as the
// depthwise contract says. Splitting rows across calls does not change a
// bit.

// GroupConvScratch is the scratch (in float32s) GroupConv needs: one
// output pixel's accumulators.
func GroupConvScratch(g *ConvGeom) int { return g.Cout }

// GroupConv computes output rows [y0, y1) of a grouped convolution of one
// NHWC image into out (OH x OW x Cout), with the epilogue's bias and
// residual (res has the output's layout, or is nil) and act.
func GroupConv(g *ConvGeom, groups int, in, w, bias, res, out []float32, act Activation, y0, y1 int, acc []float32) {
	flags, lo, hi, err := act.clamp()
	if err != nil || groups < 1 || g.C%groups != 0 || g.Cout%groups != 0 || y0 < 0 || y1 > g.OH ||
		len(in) < g.H*g.W*g.C || len(out) < g.Pixels()*g.Cout || len(w) < g.KH*g.KW*(g.C/groups)*g.Cout ||
		len(acc) < g.Cout || bias != nil && len(bias) < g.Cout || res != nil && len(res) < g.Pixels()*g.Cout {
		panic(fmt.Sprintf("kernels.GroupConv: bad arguments %+v groups=%d rows [%d,%d) %v", *g, groups, y0, y1, err))
	}
	cig, cog := g.C/groups, g.Cout/groups
	acc = acc[:g.Cout]
	for oy := y0; oy < y1; oy++ {
		for ox := 0; ox < g.OW; ox++ {
			if bias != nil {
				copy(acc, bias[:g.Cout])
			} else {
				clear(acc)
			}
			groupTaps(g, groups, cig, cog, in, w, acc, oy, ox)
			p := (oy*g.OW + ox) * g.Cout
			dst := out[p : p+g.Cout]
			for co, s := range acc {
				if res != nil {
					s += res[p+co]
				}
				if flags&dwFlagLo != 0 && s < lo {
					s = lo
				}
				if flags&dwFlagHi != 0 && s > hi {
					s = hi
				}
				dst[co] = s
			}
		}
	}
}

// groupTaps adds the window of output pixel (oy, ox) into acc.
func groupTaps(g *ConvGeom, groups, cig, cog int, in, w, acc []float32, oy, ox int) {
	for kh := 0; kh < g.KH; kh++ {
		ih := oy*g.StrideH - g.PadTop + kh*g.DilH
		if ih < 0 || ih >= g.H {
			continue
		}
		for kw := 0; kw < g.KW; kw++ {
			iw := ox*g.StrideW - g.PadLeft + kw*g.DilW
			if iw < 0 || iw >= g.W {
				continue
			}
			x := in[(ih*g.W+iw)*g.C:][:g.C]
			wt := w[(kh*g.KW+kw)*cig*g.Cout:][:cig*g.Cout]
			for gr := range groups {
				a := acc[gr*cog : (gr+1)*cog]
				for ci := range cig {
					v := x[gr*cig+ci]
					wr := wt[ci*g.Cout+gr*cog:][:cog]
					for j := range a {
						a[j] += float32(v * wr[j]) // float32(): one rounding per product, never fused
					}
				}
			}
		}
	}
}

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
// the selected GEMM kernel.
func PackGrouped(g *ConvGeom, groups int, w []float32) GroupedB {
	cig, cog := g.C/groups, g.Cout/groups
	k := g.KH * g.KW * cig
	out := GroupedB{Groups: groups, B: make([]PackedB, groups)}
	m := make([]float32, k*cog)
	for gr := range groups {
		for r := range k {
			copy(m[r*cog:(r+1)*cog], w[r*g.Cout+gr*cog:][:cog])
		}
		out.B[gr] = PackB(m, k, cog)
	}
	return out
}

// GroupConvGemmScratch is the scratch (in float32s) GroupConvGemm needs.
func GroupConvGemmScratch(g *ConvGeom, groups int) int {
	k := g.KH * g.KW * g.C / groups
	return convBlockRows(k) * k
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
		len(out) < g.Pixels()*g.Cout || px0 < 0 || px1 > g.Pixels() || len(scratch) < GroupConvGemmScratch(g, groups) {
		panic(fmt.Sprintf("kernels.GroupConvGemm: bad arguments %+v groups=%d", *g, groups))
	}
	rows := convBlockRows(k)
	sub := Epilogue{LdRes: g.Cout, Relu: ep.Relu}
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
