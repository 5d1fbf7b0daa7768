package main

import "fmt"

// maxWindow writes maxWindowNEON(dst, src *float32, n, kh, kw, rowStride,
// pixStride int) into gemm_arm64.s: for j < n (a positive multiple of 4),
// dst[j] = src[j], then for y < kh, x < kw in order, with
// v = src[y*rowStride + x*pixStride + j] (strides in elements),
// dst[j] = v if v > dst[j]: FCMGT then BIT, Go's comparison exactly (a
// NaN never replaces, a NaN first stays, equal zeros keep the first),
// where FMAX would differ.
func maxWindow(a *Asm) {
	maxWindowKernel(a, "maxWindowNEON", 4, 2, a.VLD1, a.VST1post, func(nv int) {
		for i := V(0); i < V(nv); i++ {
			a.word(fcmgtS4(8+i, 4+i, i))
		}
		for i := V(0); i < V(nv); i++ {
			a.word(bit16B(i, 4+i, 8+i))
		}
	})
}

// maxWindowKernel writes a max pooling window kernel of the signature
// above on elements of 16/lanes bytes (strides shifted left by shift into
// bytes): groups of four vectors stay in registers (V0-V3) over the whole
// window, then single vectors finish. combine(nv) folds V4.. (the window
// element just loaded by load) into V0..; it may use V8-V11.
func maxWindowKernel(a *Asm, name string, lanes, shift int, load, store func(R, V, int), combine func(nv int)) {
	const (
		dst, src, n    R = 0, 1, 2
		kh, kw         R = 3, 4
		rowStr, pixStr R = 5, 6
		row, p, y, x   R = 7, 8, 9, 10
	)
	a.Text(name, 0, 56)
	for i, arg := range []string{"dst", "src", "n", "kh", "kw", "rowStride", "pixStride"} {
		a.MOVD(fmt.Sprintf("%s+%d(FP)", arg, 8*i), R(i).String())
	}
	if shift > 0 {
		a.LSLconst(shift, rowStr, rowStr)
		a.LSLconst(shift, pixStr, pixStr)
	}
	groupsThenSingles(a, n, lanes, func(tag string, nv int) {
		load(src, 0, nv)
		a.MOVD(src.String(), row.String())
		a.MOVD(kh.String(), y.String())
		a.Label(tag + "y")
		a.MOVD(row.String(), p.String())
		a.MOVD(kw.String(), x.String())
		a.Label(tag + "x")
		load(p, 4, nv)
		combine(nv)
		a.ADD(pixStr, p, p)
		a.SUBSconst(1, x, x)
		a.BNE(tag + "x")
		a.ADD(rowStr, row, row)
		a.SUBSconst(1, y, y)
		a.BNE(tag + "y")
		store(dst, 0, nv)
		a.ADDconst(16*nv, src, src)
	})
	a.RET()
}

// groupsThenSingles emits body("g", 4) while n (in elements, lanes per
// vector) has four vectors left, then body("s", 1) while it has one, and
// the label done after them.
func groupsThenSingles(a *Asm, n R, lanes int, body func(tag string, nv int)) {
	a.Label("groups")
	a.CMPconst(4*lanes, n)
	a.BLT("singles")
	body("g", 4)
	a.SUBSconst(4*lanes, n, n)
	a.B("groups")
	a.Label("singles")
	a.CBZ(n, "done")
	body("s", 1)
	a.SUBSconst(lanes, n, n)
	a.B("singles")
	a.Label("done")
}

// fcmgtS4 is FCMGT Vd.4S, Vn.4S, Vm.4S: all ones where Vn > Vm (false if
// either is NaN). "Three same", U=1, size=1:0, opcode 11100.
func fcmgtS4(d, n, m V) Enc {
	return Enc{threeSameFP(0x6ea0e400, d, n, m), fmt.Sprintf("fcmgt v%d.4s, v%d.4s, v%d.4s", d, n, m)}
}

// bit16B is BIT Vd.16B, Vn.16B, Vm.16B: the bits of Vn where Vm is set
// into Vd (Vd = Vd AND NOT Vm OR Vn AND Vm).
func bit16B(d, n, m V) Enc {
	return Enc{threeSameFP(0x6ea01c00, d, n, m), fmt.Sprintf("bit v%d.16b, v%d.16b, v%d.16b", d, n, m)}
}
