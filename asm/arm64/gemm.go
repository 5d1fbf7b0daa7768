package main

import "fmt"

// The NEON fp32 GEMM microkernels for kernels/gemm_arm64.go.
//
// A is not packed (the GEMM contract passes rows of A with a stride), so
// every row of the tile needs its own register of A values. With one
// 128-bit load per row covering 4 k steps, a tile of MR rows and NR columns
// needs MR*NR/4 accumulators + MR registers of A + at least 2 of B:
// 6x16 fills the 32 registers exactly (24 + 6 + 2), while the packed-A
// classic 8x12 would need 24 + 8 + 3 = 35. NR = 16 also divides every
// ResNet channel count (64..2048), where 12 wastes up to 11% on the zero
// padding of the last panel.
//
// Per 4 k steps a 6-row tile issues 6 A loads, 8 B loads (pairs) and
// 96 FMLA by element, plus the loop's SUBS/BNE: 96/112 = 86% FMLA.
// Kernels with 1..5 rows handle the M tail without computing rows that
// are thrown away; they do the same operations per output in the same
// order, so any row split gives bit-identical results.

const (
	gemmNR = 16
	gemmMR = 6
)

// gemmLayout assigns registers for a kernel of the given rows.
type gemmLayout struct {
	rows   int
	accLo  V // first accumulator; row i, column block j is accLo+4i+j
	nb     int
	bFirst V // B registers bFirst..bFirst+nb-1
}

func newGemmLayout(rows int) gemmLayout {
	l := gemmLayout{rows: rows, accLo: V(32 - rows*gemmNR/4)}
	l.bFirst = V(rows)
	l.nb = min(4, int(l.accLo)-rows)
	if l.nb < 2 {
		panic(fmt.Sprintf("%d rows leave %d registers for B", rows, l.nb))
	}
	if l.nb == 3 {
		l.nb = 2 // loads come in whole halves of the 16 columns
	}
	return l
}

func (l gemmLayout) acc(i, j int) V { return l.accLo + V(4*i+j) }
func (l gemmLayout) a(i int) V      { return V(i) }
func (l gemmLayout) b(j int) V      { return l.bFirst + V(j%l.nb) }

// General-purpose registers of the GEMM kernels.
const (
	rP      R = 0  // *neonGemm
	rA0     R = 1  // A row pointers rA0..rA0+rows-1
	rB      R = 7  // B, walking the panel
	rN      R = 8  // loop counter
	rBias   R = 9  // bias (per tile), then the ReLU flag
	rRes    R = 10 // residual row, walking down the tiles
	rC      R = 12 // C row, walking down the tiles
	rLdc    R = 13
	rLdRes  R = 14
	rTiles  R = 15
	rBBase  R = 19 // start of the panel
	rAStep  R = 20 // from where a row pointer stops to its next tile's row
	rK4     R = 21 // k / 4
	rKRem   R = 22 // k % 4
	rLda    R = 23
	rTmp    R = 24
	strName   = "neonGemm"
)

func gemmName(rows int) string { return fmt.Sprintf("gemmF32_%dx%d_NEON", rows, gemmNR) }

// gemmKernel writes the kernel for tiles of the given rows.
func gemmKernel(a *Asm, rows int) {
	l := newGemmLayout(rows)
	a.Text(gemmName(rows), 0, 8)
	gemmArgs(a, rows)
	a.Label("tile")
	a.MOVD(rBBase.String(), rB.String())
	for i := range rows {
		for j := range gemmNR / 4 {
			a.VEOR(l.acc(i, j))
		}
	}
	a.CBZ(rK4, "rem")
	a.MOVD(rK4.String(), rN.String())
	l.loop4(a)
	l.loop1(a)
	l.epilogue(a)
	for i := range rows {
		a.ADD(rAStep, rA0+R(i), rA0+R(i))
	}
	a.SUBSconst(1, rTiles, rTiles)
	a.BNE("tile")
	a.RET()
}

// gemmArgs loads the fields of the neonGemm argument, splits k into 4-step
// blocks and a remainder, and points rA0.. at the tile's rows of A.
func gemmArgs(a *Asm, rows int) {
	a.MOVD("p+0(FP)", rP.String())
	a.MOVD(a.field(strName, "a", rP), rA0.String())
	a.MOVD(a.field(strName, "lda", rP), rLda.String())
	a.MOVD(a.field(strName, "b", rP), rBBase.String())
	a.MOVD(a.field(strName, "c", rP), rC.String())
	a.MOVD(a.field(strName, "ldc", rP), rLdc.String())
	a.MOVD(a.field(strName, "res", rP), rRes.String())
	a.MOVD(a.field(strName, "ldres", rP), rLdRes.String())
	a.MOVD(a.field(strName, "k", rP), rK4.String())
	a.MOVD(a.field(strName, "tiles", rP), rTiles.String())
	a.Comment("astep = rows*lda - 4k bytes")
	a.MOVD(fmt.Sprintf("$%d", rows), rAStep.String())
	a.MUL(rLda, rAStep, rAStep)
	a.LSLconst(2, rK4, rTmp)
	a.SUB(rTmp, rAStep, rAStep)
	a.ANDconst(3, rK4, rKRem)
	a.LSRconst(2, rK4, rK4)
	for i := 1; i < rows; i++ {
		a.ADD(rLda, rA0+R(i-1), rA0+R(i))
	}
}

// loop4 is the main K loop: 4 k steps per iteration, one 128-bit load of
// A per row and FMLA by element.
func (l gemmLayout) loop4(a *Asm) {
	a.Comment("main loop: 4 k steps, one 128-bit load of A per row")
	a.Label("loop4")
	for i := range l.rows {
		a.VLD1post(rA0+R(i), l.a(i), 1)
	}
	for kk := range 4 {
		for j0 := 0; j0 < gemmNR/4; j0 += l.nb {
			a.VLD1post(rB, l.bFirst, l.nb)
			for j := j0; j < j0+l.nb; j++ {
				for i := range l.rows {
					a.FMLAelem(l.acc(i, j), l.b(j), l.a(i), kk)
				}
			}
		}
	}
	a.SUBSconst(1, rN, rN)
	a.BNE("loop4")
}

// loop1 does the k % 4 remaining steps with A broadcast: the same fused
// operations per output as loop4, so results do not depend on the split.
func (l gemmLayout) loop1(a *Asm) {
	a.Comment("k %% 4 steps, A broadcast; the same fused operations per output")
	a.Label("rem")
	a.CBZ(rKRem, "epilogue")
	a.MOVD(rKRem.String(), rN.String())
	a.Label("loop1")
	for i := range l.rows {
		a.VLD1Rpost(rA0+R(i), l.a(i))
	}
	for j0 := 0; j0 < gemmNR/4; j0 += l.nb {
		a.VLD1post(rB, l.bFirst, l.nb)
		for j := j0; j < j0+l.nb; j++ {
			for i := range l.rows {
				a.VFMLA(l.a(i), l.b(j), l.acc(i, j))
			}
		}
	}
	a.SUBSconst(1, rN, rN)
	a.BNE("loop1")
}

// epilogue adds the bias and the residual, applies the ReLU as the
// argument says and stores the tile's rows. It uses V0..V4, free after
// the K loop (accLo >= 8).
func (l gemmLayout) epilogue(a *Asm) {
	a.Label("epilogue")
	a.MOVD(a.field(strName, "bias", rP), rBias.String())
	a.CBZ(rBias, "nobias")
	a.VLD1(rBias, 0, 4)
	for i := range l.rows {
		for j := range 4 {
			a.FADD(l.acc(i, j), l.acc(i, j), V(j))
		}
	}
	a.Label("nobias")
	a.CBZ(rRes, "nores")
	for i := range l.rows {
		a.VLD1(rRes, 0, 4)
		a.ADD(rLdRes, rRes, rRes)
		for j := range 4 {
			a.FADD(l.acc(i, j), l.acc(i, j), V(j))
		}
	}
	a.Label("nores")
	a.MOVD(a.field(strName, "relu", rP), rBias.String())
	a.CBZ(rBias, "store")
	a.VEOR(4)
	for i := range l.rows {
		for j := range 4 {
			a.FMAX(l.acc(i, j), l.acc(i, j), 4)
		}
	}
	a.Label("store")
	for i := range l.rows {
		a.VST1(rC, l.acc(i, 0), 4)
		a.ADD(rLdc, rC, rC)
	}
}

// fmaPeak writes a loop of 24 independent FMLAs (192 FLOPs per
// iteration) to measure the core's FMA throughput for comparison with
// the GEMM kernels.
func fmaPeak(a *Asm) {
	a.Text("fmaPeakNEON", 0, 8)
	a.MOVD("n+0(FP)", rN.String())
	for v := V(0); v < 32; v++ {
		a.VEOR(v)
	}
	a.CBZ(rN, "done")
	a.Label("loop")
	for v := V(8); v < 32; v++ {
		a.VFMLA(V(v&1), 2, v)
	}
	a.SUBSconst(1, rN, rN)
	a.BNE("loop")
	a.Label("done")
	a.RET()
}

// clampRows writes clampRowsNEON(dst, src *float32, rows, n, ld int, lo,
// hi float32), the clamp of the Clip op and of a Clip fused into a layer
// (kernels.Clamp, Epilogue.Clamp) on rows of vectors: for r < rows,
// j < n, dst[r*ld+j] = min(max(src[r*ld+j], lo), hi) by FMAX then FMIN,
// which are Go's max and min (NaN gives NaN, max(-0, +0) = +0). n is a
// positive multiple of 4, rows >= 1, ld (in elements) >= n; dst may be
// src. Four vectors per iteration while they last, then one.
func clampRows(a *Asm) {
	const (
		dst, src, rows, n, ld R = 0, 1, 2, 3, 4
		d, s, j, t            R = 5, 6, 7, 8
		lo, hi                V = 16, 17
	)
	a.Text("clampRowsNEON", 0, 48)
	a.MOVD("dst+0(FP)", dst.String())
	a.MOVD("src+8(FP)", src.String())
	a.MOVD("rows+16(FP)", rows.String())
	a.MOVD("n+24(FP)", n.String())
	a.MOVD("ld+32(FP)", ld.String())
	a.LSLconst(2, ld, ld)
	a.MOVW("lo+40(FP)", t.String())
	a.VDUPS(t, lo)
	a.MOVW("hi+44(FP)", t.String())
	a.VDUPS(t, hi)
	body := func(nv int) {
		a.VLD1post(s, 0, nv)
		for i := V(0); i < V(nv); i++ {
			a.FMAX(i, i, lo)
		}
		for i := V(0); i < V(nv); i++ {
			a.FMIN(i, i, hi)
		}
		a.VST1post(d, 0, nv)
	}
	a.Label("row")
	a.MOVD(dst.String(), d.String())
	a.MOVD(src.String(), s.String())
	a.MOVD(n.String(), j.String())
	a.Label("groups")
	a.CMPconst(16, j)
	a.BLT("singles")
	body(4)
	a.SUBSconst(16, j, j)
	a.B("groups")
	a.Label("singles")
	a.CBZ(j, "next")
	body(1)
	a.SUBSconst(4, j, j)
	a.B("singles")
	a.Label("next")
	a.ADD(ld, dst, dst)
	a.ADD(ld, src, src)
	a.SUBSconst(1, rows, rows)
	a.BNE("row")
	a.RET()
}
