package main

// The row-tile structure shared by the GEMM microkernels: fp32 (gemm.go),
// int8 (gemm8.go) and the int16 GEMM of the int8 Winograd (wino8.go). One
// call does rows [0, m) of one packed B panel in tiles of mr rows; each tile
// runs the whole K loop with its accumulators in registers, then its
// epilogue or store. A partial last tile runs a K loop that touches only
// its rows, so no row of A past m is read.

import (
	"fmt"

	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// General-purpose registers of the tile loop. A rows are addressed as
// grp[g] + j*lda (j = 0, 1, 2), one base register per group of three rows,
// so a 14-row tile needs five bases and one index instead of fourteen
// pointers.
var (
	rA    = reg.RSI // row 0 of the current tile
	rLda  = reg.RDX // lda in bytes
	rC    = reg.R11 // row 0 of the current output tile
	rRes  = reg.R12 // row 0 of the current residual tile (fp32, int8)
	rLdc  = reg.R12 // ldc in bytes (the int16 GEMM, which has no residual)
	rM    = reg.R13 // rows left, including the current tile
	rK    = reg.R14 // k steps
	grp   = []reg.GPPhysical{reg.RAX, reg.RBX, reg.RCX, reg.R8, reg.R9}
	rB    = reg.RDI // B panel cursor in the K loop
	rKK   = reg.R10 // K loop counter; rows of the tile in the epilogue
	rMask = reg.R9  // AVX2 mask pointer (only live outside the K loop, reloaded)
)

// rowTiles emits the tile loop of a microkernel. At entry rM holds m >= 1,
// rA row 0 of A and rLda its stride in bytes. Each pass dispatches on the
// rows left to a copy of tile(h) for h = mr, ..., 1 (h = mr while mr or
// more rows are left; labels <name>_m<h>), continues at the label join,
// runs after (the epilogue, if any), then moves rA by mr rows and the
// other row pointers by next.
func rowTiles(c *build.Context, l func(string) string, mr int, tile func(h int), join string, after, next func()) {
	rows := func(h int) operand.LabelRef { return operand.LabelRef(l(fmt.Sprint("m", h))) }
	c.Label(l("tile"))
	c.CMPQ(rM, operand.U32(mr))
	c.JAE(rows(mr))
	for h := 1; h < mr; h++ {
		c.CMPQ(rM, operand.U32(h))
		c.JE(rows(h))
	}
	for h := mr; h >= 1; h-- {
		c.Label(string(rows(h)))
		tile(h)
		c.JMP(operand.LabelRef(l(join)))
	}
	c.Label(l(join))
	after()

	// Next tile.
	c.SUBQ(operand.U32(mr), rM)
	c.JLE(operand.LabelRef(l("done")))
	c.IMUL3Q(operand.U32(mr), rLda, reg.RAX)
	c.ADDQ(reg.RAX, rA)
	next()
	c.JMP(operand.LabelRef(l("tile")))

	c.Label(l("done"))
	c.VZEROUPPER()
	c.RET()
}

// stepParam adds mul times the int argument param to r (through AX).
func stepParam(c *build.Context, param string, mul int, r reg.GPPhysical) {
	c.Load(c.Param(param), reg.RAX)
	c.IMUL3Q(operand.U32(mul), reg.RAX, reg.RAX)
	c.ADDQ(reg.RAX, r)
}

// columnMasks sets the opmasks of an AVX-512 kernel's nv column vectors
// from the argument n: bit j of the n-bit mask enables column j. Uses AX
// and CX.
func columnMasks(c *build.Context, nv int) {
	c.Load(c.Param("n"), reg.RCX)
	c.MOVQ(operand.U32(1), reg.RAX)
	c.SHLQ(reg.CL, reg.RAX)
	c.DECQ(reg.RAX)
	for v := 0; v < nv; v++ {
		if v > 0 {
			c.SHRQ(operand.U8(16), reg.RAX)
		}
		c.KMOVW(reg.EAX, masks[v])
	}
}

// tileKLoop emits the K loop of an h-row tile (rK k steps; labels start
// with l). It points one base register per three rows of A at the tile
// and rB at the panel (argument b); each k step u of the loop body runs
// loadB(u), which loads B's step (at rB + u*bstep), prefetches B pf bytes
// ahead (pf > 0, unrolled loops only), then row(i, a) for each row i,
// whose 4 bytes of A for the step are at a. A advances 4 bytes and B
// bstep bytes per k step. Partial tiles (h < mr) are not unrolled: they
// are rare, so their code stays short.
func tileKLoop(c *build.Context, l string, h, mr, unroll, bstep, pf int, loadB func(u int), row func(i int, a operand.Mem)) {
	tileKLoopA(c, rows3, l, h, mr, unroll, bstep, pf, loadB, row)
}

// aRows is how a tile's K loop addresses its rows of A: per rows from each
// base register of grp, row j of a base at base + j*lda (scaled, with
// odd[o] = o*lda for the odd o < per, set by the caller), and the number
// of k steps read from kSrc.
type aRows struct {
	per  int
	odd  map[int]reg.GPPhysical
	kSrc operand.Op
}

// rows3 is the layout of the 14-row and shorter tiles: three rows per
// base (base, base+lda, base+2*lda), k in rK.
var rows3 = aRows{per: 3, odd: map[int]reg.GPPhysical{1: rLda}, kSrc: rK}

// tileKLoopA is tileKLoop with the A layout ar.
func tileKLoopA(c *build.Context, ar aRows, l string, h, mr, unroll, bstep, pf int, loadB func(u int), row func(i int, a operand.Mem)) {
	if h < mr {
		unroll = 1
	}
	groups := (h + ar.per - 1) / ar.per
	if groups > len(grp) {
		panic(fmt.Sprintf("tileKLoop: %d rows need %d base registers", h, groups))
	}
	c.MOVQ(rA, grp[0])
	for g := 1; g < groups; g++ {
		c.LEAQ(scaled(grp[g-1], ar.per-1, ar.odd), grp[g])
		c.ADDQ(rLda, grp[g])
	}
	c.Load(c.Param("b"), rB)
	step := func(u int) {
		loadB(u)
		if pf > 0 && unroll > 1 {
			// Prefetches never fault, so running past the panel is fine.
			for off := 0; off < bstep; off += 64 {
				c.PREFETCHT0(operand.Mem{Base: rB, Disp: pf + u*bstep + off})
			}
		}
		for i := 0; i < h; i++ {
			a := scaled(grp[i/ar.per], i%ar.per, ar.odd)
			a.Disp = 4 * u
			row(i, a)
		}
	}
	advance := func(u int) {
		for g := 0; g < groups; g++ {
			c.ADDQ(operand.U32(4*u), grp[g])
		}
		c.ADDQ(operand.U32(u*bstep), rB)
	}
	kLoop(c, ar.kSrc, l, unroll, step, advance)
}

// kLoop emits the K loop of a microkernel: kSrc (a register or the
// argument) iterations of step, unroll at a time (unroll a power of two)
// then one at a time, with advance(u) moving the operand pointers past u
// iterations. rKK is the counter.
func kLoop(c *build.Context, kSrc operand.Op, l string, unroll int, step, advance func(int)) {
	if unroll > 1 {
		shift := 0
		for 1<<shift < unroll {
			shift++
		}
		c.MOVQ(kSrc, rKK)
		c.SHRQ(operand.U8(shift), rKK)
		c.JZ(operand.LabelRef(l + "rem"))
		c.Label(l + "loop")
		for u := 0; u < unroll; u++ {
			step(u)
		}
		advance(unroll)
		c.DECQ(rKK)
		c.JNZ(operand.LabelRef(l + "loop"))
		c.Label(l + "rem")
		c.MOVQ(kSrc, rKK)
		c.ANDQ(operand.U32(unroll-1), rKK)
	} else {
		c.MOVQ(kSrc, rKK)
		c.TESTQ(rKK, rKK)
	}
	c.JZ(operand.LabelRef(l + "end"))
	c.Label(l + "one")
	step(0)
	advance(1)
	c.DECQ(rKK)
	c.JNZ(operand.LabelRef(l + "one"))
	c.Label(l + "end")
}

// scaled returns base + j*s for 0 <= j <= 8 (and a few more), where odd[k]
// holds k*s for the odd factor k of j = k·2^e, used with scale 2^e:
// x*3 is (odd[3]*1), x*6 (odd[3]*2), x*4 (odd[1]*4).
func scaled(base reg.GPPhysical, j int, odd map[int]reg.GPPhysical) operand.Mem {
	m := operand.Mem{Base: base}
	if j == 0 {
		return m
	}
	scale := 1
	for j%2 == 0 {
		j, scale = j/2, scale*2
	}
	r, ok := odd[j]
	if !ok || scale > 8 {
		panic(fmt.Sprintf("scaled: no register for %d*%d", j, scale))
	}
	m.Index, m.Scale = r, uint8(scale)
	return m
}
