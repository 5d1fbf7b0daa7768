package main

import "fmt"

// The int8 GEMM microkernels for kernels/gemm8_arm64.go: uint8 activations
// times int8 weights packed in groups of KG = 4 k bytes per column
// (PackB8: one 16-byte load of a panel holds 4 columns x 4 k), int32
// accumulation, and the requantization of kernels.Requantize in NEON.
//
// Both kernels flip the activations to signed bytes with EOR 0x80 (a-128):
// SDOT and SMULL multiply signed by signed. The Go wrapper folds the
// correction into a per-column int32 offset that the accumulators start
// from: Σ(a-z)w = Σ(a-128)w + (128-z)·ColSum, plus the bias; int32
// arithmetic wraps the same way in both orders, so the sums are exact.
//
// gemmU8_Rx16_NEONDOT (R = 1..6), for ASIMDDP (Cortex-A76 and later):
// 4R accumulators of 4 int32 columns; per 16 k, one 16-byte load of A per
// row (flipped in place), and per 4 k (one lane of A) four 16-byte loads of
// B, each feeding R SDOT by element. 6x16 fills the 32 registers: 24
// accumulators + 6 A + 2 B, the 0x80 constant living in a B register until
// the first B load of each 16 k.
//
// gemmU8_Rx16_NEON (R = 1..2), for every ARMv8-A core (Cortex-A72, A53):
// SMULL/SMULL2 multiply 8 byte pairs into int16 (|(a-128)·w| <= 128·128
// fits, so the kernel is exact for every input, w = -128 included) and
// SADALP adds adjacent int16 pairs into the int32 accumulators. With B's
// 4 columns x 4 k bytes against A's 4 k bytes repeated (LD1R), SMULL
// covers columns 0-1 and SMULL2 columns 2-3 of the register, and each
// accumulator lane holds half of one column's sum (k 0-1 or k 2-3): two
// accumulators per 4 columns, summed pairwise (ADDP) after the K loop.
//
// Each kernel runs tiles consecutive R-row tiles of one 16-column panel:
// the accumulators start at the per-column offsets, a whole K loop, then
// the epilogue (scale, residual, optional clamp, round, zero point, ReLU
// floor, narrow, store 16 bytes per row).

const (
	gemm8NR  = 16
	dotMR    = 6
	neon8MR  = 2
	str8Name = "neonGemm8"
	// product register pairs in rotation, and the distance in column
	// blocks from a pair's SMULLs to its SADALPs (neon8Kernel)
	neon8Pairs = 4
	neon8Lag   = 2
)

func dotName(rows int) string   { return fmt.Sprintf("gemmU8_%dx%d_NEONDOT", rows, gemm8NR) }
func neon8Name(rows int) string { return fmt.Sprintf("gemmU8_%dx%d_NEON", rows, gemm8NR) }

// General-purpose registers of the int8 kernels (the fp32 ones where the
// role is the same).
const (
	r8Off   R = 11 // the column offsets
	r8Scale R = 25 // the 16 float32 column scales
	r8T     R = 9  // scratch
	r8K16   R = 21 // k / 16
	r8KRem  R = 22 // (k / 4) % 4
)

// int8Kernel describes one kernel family to the shared skeleton.
type int8Kernel struct {
	name  string
	rows  int
	init  func(a *Asm)      // at the start of each tile: accumulators = offsets
	loop  func(a *Asm)      // 16 k steps
	rem   func(a *Asm)      // 4 k steps
	final func(a *Asm)      // after the K loop: leave the sums in res
	res   func(i, jb int) V // row i, columns 4jb..4jb+3 after final
}

// int8Skeleton writes one kernel: prologue, tile loop, K loops, epilogue.
func int8Skeleton(a *Asm, k int8Kernel) {
	rows := k.rows
	a.Text(k.name, 0, 8)
	a.MOVD("p+0(FP)", rP.String())
	for _, f := range []struct {
		name string
		r    R
	}{{"a", rA0}, {"lda", rLda}, {"b", rBBase}, {"c", rC}, {"ldc", rLdc}, {"res", rRes},
		{"ldres", rLdRes}, {"k", r8K16}, {"tiles", rTiles}, {"off", r8Off}, {"scale", r8Scale}} {
		a.MOVD(a.field(str8Name, f.name, rP), f.r.String())
	}
	a.Comment("astep = rows*lda - k bytes; k/16 main steps, (k/4)%%4 remainder steps")
	a.MOVD(fmt.Sprintf("$%d", rows), rAStep.String())
	a.MUL(rLda, rAStep, rAStep)
	a.SUB(r8K16, rAStep, rAStep)
	a.LSRconst(2, r8K16, r8KRem)
	a.ANDconst(3, r8KRem, r8KRem)
	a.LSRconst(4, r8K16, r8K16)
	for i := 1; i < rows; i++ {
		a.ADD(rLda, rA0+R(i-1), rA0+R(i))
	}

	a.Label("tile")
	a.MOVD(rBBase.String(), rB.String())
	k.init(a)
	a.CBZ(r8K16, "rem")
	a.MOVD(r8K16.String(), rN.String())
	a.Comment("main loop: 16 k steps")
	a.Label("loop16")
	k.loop(a)
	a.SUBSconst(1, rN, rN)
	a.BNE("loop16")

	a.Comment("the remaining k %% 16 in steps of 4")
	a.Label("rem")
	a.CBZ(r8KRem, "epilogue")
	a.MOVD(r8KRem.String(), rN.String())
	a.Label("loop4")
	k.rem(a)
	a.SUBSconst(1, rN, rN)
	a.BNE("loop4")

	a.Label("epilogue")
	if k.final != nil {
		k.final(a)
	}
	requantEpilogue(a, rows, k.res)
	for i := range rows {
		a.ADD(rAStep, rA0+R(i), rA0+R(i))
	}
	a.SUBSconst(1, rTiles, rTiles)
	a.BNE("tile")
	a.RET()
}

// requantEpilogue writes kernels.Requantize for the rows x 16 int32 sums
// in res(i, jb), with V0..V7 as scratch, and stores the bytes. Each float
// operation is a separate instruction (FMUL then FADD, never fused), in
// Requantize's order. The clamp of t to ±65536 only matters when the zero
// point is far outside a byte (see kernels/gemm8_arm64.go): FCVTNS and
// SQADD saturate at the int32 range, which for any other zero point ends
// in the same byte, so the wrapper asks for the clamp only then.
func requantEpilogue(a *Asm, rows int, res func(i, jb int) V) {
	all := func(f func(i, jb int, r V)) {
		for i := range rows {
			for jb := range 4 {
				f(i, jb, res(i, jb))
			}
		}
	}
	a.Comment("t = float32(acc) * Scale")
	a.VLD1(r8Scale, 0, 4)
	all(func(_, jb int, r V) { a.SCVTF(r, r); a.FMUL(r, r, V(jb)) })

	a.Comment("t += float32(int32(res) - ResZero) * ResScale")
	a.CBZ(rRes, "nores")
	a.MOVW(a.field(str8Name, "resZero", rP), r8T.String())
	a.VDUPS(r8T, 0)
	a.MOVW(a.field(str8Name, "resScale", rP), r8T.String())
	a.VDUPS(r8T, 1)
	for i := range rows {
		a.VLD1(rRes, 2, 1)
		a.ADD(rLdRes, rRes, rRes)
		a.UXTLbh(2, 3)
		a.UXTL2bh(2, 4)
		x := [4]V{5, 6, 7, 2}
		a.UXTLhs(3, x[0])
		a.UXTL2hs(3, x[1])
		a.UXTLhs(4, x[2])
		a.UXTL2hs(4, x[3])
		for jb, v := range x {
			a.VSUBS(0, v, v)
			a.SCVTF(v, v)
			a.FMUL(v, v, 1)
			a.FADD(res(i, jb), res(i, jb), v)
		}
	}
	a.Label("nores")

	a.Comment("if clamp: t = min(max(t, -65536), 65536)")
	a.MOVD(a.field(str8Name, "clamp", rP), r8T.String())
	a.CBZ(r8T, "round")
	a.MOVD("$0x47800000", r8T.String()) // 65536.0
	a.VDUPS(r8T, 0)
	a.MOVD("$0xc7800000", r8T.String()) // -65536.0
	a.VDUPS(r8T, 1)
	all(func(_, _ int, r V) { a.FMAX(r, r, 1); a.FMIN(r, r, 0) })
	a.Label("round")
	a.Comment("q = roundHalfEven(t) + ZeroOut, saturating")
	a.MOVW(a.field(str8Name, "zeroOut", rP), r8T.String())
	a.VDUPS(r8T, 2)
	all(func(_, _ int, r V) { a.FCVTNS(r, r); a.SQADD(r, r, 2) })

	a.Comment("c = max(min(max(q, 0), 255), Lo): saturating narrows, then the floor")
	a.MOVW(a.field(str8Name, "lo", rP), r8T.String())
	a.VDUPB(r8T, 3)
	for i := range rows {
		a.SQXTUN(4, res(i, 0))
		a.SQXTUN2(4, res(i, 1))
		a.SQXTUN(5, res(i, 2))
		a.SQXTUN2(5, res(i, 3))
		a.UQXTN(6, 4)
		a.UQXTN2(6, 5)
		a.VUMAXB(3, 6, 6)
		a.VST1B(rC, 6)
		a.ADD(rLdc, rC, rC)
	}
}

// dotKernel writes gemmU8_Rx16_NEONDOT. off holds 16 int32, one per
// column.
func dotKernel(a *Asm, rows int) {
	accLo := V(32 - 4*rows)
	acc := func(i, jb int) V { return accLo + V(4*i+jb) }
	const b0 = V(6) // and V7
	// sdots does one lane of A (4 k) against the 64 bytes of B for it.
	sdots := func(a *Asm, lane int) {
		for half := range 2 {
			a.VLD1Bpost(rB, b0, 2)
			for jj := range 2 {
				for i := range rows {
					a.SDOT(acc(i, 2*half+jj), b0+V(jj), V(i), lane)
				}
			}
		}
	}
	flip := func(a *Asm) {
		for i := range rows {
			a.VEOR3(b0, V(i), V(i))
		}
	}
	int8Skeleton(a, int8Kernel{
		name: dotName(rows),
		rows: rows,
		init: func(a *Asm) {
			for i := range rows {
				a.VLD1(r8Off, acc(i, 0), 4)
			}
		},
		loop: func(a *Asm) {
			a.VMOVIB(0x80, b0)
			for i := range rows {
				a.VLD1Bpost(rA0+R(i), V(i), 1)
			}
			flip(a)
			for lane := range 4 {
				sdots(a, lane)
			}
		},
		rem: func(a *Asm) {
			a.VMOVIB(0x80, b0)
			for i := range rows {
				a.VLD1Rpost(rA0+R(i), V(i))
			}
			flip(a)
			sdots(a, 0)
		},
		res: acc,
	})
}

// neon8Kernel writes gemmU8_Rx16_NEON. off holds 32 int32: column j's
// offset at 2j, zeros at 2j+1, the layout of the accumulator lanes.
//
// The products go through neon8Pairs register pairs in rotation and each
// pair's SADALPs come neon8Lag column blocks after its SMULLs, so that an
// in-order core (A53, A55) does not wait for every product: with 2 rows
// the 32 registers hold 16 accumulators, 4 of B, the 0x80 constant, the
// rows' A and 4 pairs. llvm-mca 14's models (see TestNEON8Schedule) give
// the same cycles per K step on Cortex-A72 as a 3-row kernel without
// rotation, which has no register left for it, and 1.7x the MACs per
// cycle on Cortex-A53.
func neon8Kernel(a *Asm, rows int) {
	accLo := V(32 - 8*rows)
	// Row i, columns 4jb..4jb+3: h=0 holds columns 4jb, 4jb+1 (SMULL),
	// h=1 columns 4jb+2, 4jb+3 (SMULL2), two lanes per column.
	acc := func(i, jb, h int) V { return accLo + V(8*i+2*jb+h) }
	const (
		bFirst = V(0) // V0..V3: one group of B, 16 columns x 4 k
		c80    = V(4)
		aFirst = V(5) // 4 bytes of each row, repeated
	)
	tFirst := aFirst + V(rows)
	if tFirst+2*neon8Pairs > accLo {
		panic(fmt.Sprintf("%d rows leave no room for %d product pairs", rows, neon8Pairs))
	}
	group := func(a *Asm) {
		a.VLD1Bpost(rB, bFirst, 4)
		for i := range rows {
			a.VLD1Rpost(rA0+R(i), aFirst+V(i))
		}
		for i := range rows {
			a.VEOR3(c80, aFirst+V(i), aFirst+V(i))
		}
		units := rows * 4 // (row, column block), row-major
		for u := 0; u < units+neon8Lag; u++ {
			if u < units {
				i, jb := u/4, u%4
				t := tFirst + V(2*(u%neon8Pairs))
				a.SMULL(t, bFirst+V(jb), aFirst+V(i))
				a.SMULL2(t+1, bFirst+V(jb), aFirst+V(i))
			}
			if v := u - neon8Lag; v >= 0 {
				i, jb := v/4, v%4
				t := tFirst + V(2*(v%neon8Pairs))
				a.SADALP(acc(i, jb, 0), t)
				a.SADALP(acc(i, jb, 1), t+1)
			}
		}
	}
	int8Skeleton(a, int8Kernel{
		name: neon8Name(rows),
		rows: rows,
		init: func(a *Asm) {
			for i := range rows {
				a.MOVD(r8Off.String(), r8T.String())
				a.VLD1post(r8T, acc(i, 0, 0), 4)
				a.VLD1(r8T, acc(i, 2, 0), 4)
			}
			a.VMOVIB(0x80, c80)
		},
		loop: func(a *Asm) {
			for range 4 {
				group(a)
			}
		},
		rem: group,
		final: func(a *Asm) {
			a.Comment("sum the two half-columns of each lane pair")
			for i := range rows {
				for jb := range 4 {
					a.VADDPS(acc(i, jb, 1), acc(i, jb, 0), acc(i, jb, 0))
				}
			}
		},
		res: func(i, jb int) V { return acc(i, jb, 0) },
	})
}
