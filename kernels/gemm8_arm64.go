//go:build gc && !purego

package kernels

import (
	"fmt"
	"unsafe"

	"github.com/klauspost/cpuid/v2"
)

// neonGemm8 is the parameter block of the NEON int8 GEMM kernels; the
// assembly reads its fields through go_asm.h. Strides are in bytes.
type neonGemm8 struct {
	a        *uint8 // row 0 of the first tile of A
	lda      uintptr
	b        *int8 // a packed panel: k/4 groups of 16 columns x 4 k
	c        *uint8
	ldc      uintptr
	k        uintptr // a multiple of 4
	tiles    uintptr // >= 1
	off      *int32  // column offsets o[j]: NEONDOT reads o[j] = off[j], NEON o[j] = off[2j] + off[2j+1]
	scale    *float32
	res      *uint8 // residual rows of 16 bytes, or nil
	ldres    uintptr
	resZero  int32
	resScale float32
	zeroOut  int32   // within ±neon8ZeroOutBound
	lo       int32   // 0..255
	clamp    uintptr // 1: clamp t to ±65536 before rounding (needed only for wild zero points)
}

// Each kernel gemmU8_Rx16_NEON[DOT] computes tiles consecutive R-row tiles
// of one 16-column panel: for t < tiles, i < R, j < 16, with row r = t*R+i,
//
//	acc = o[j] + Σ_kk (a[r*lda+kk]-128) * w[kk][j]        (int32, wrapping)
//	c[r*ldc+j] = Requantize(acc, scale[j], res != nil, res[r*ldres+j], resZero, resScale, zeroOut, lo)
//
// where w[kk][j] = b[(kk/4*16+j)*4+kk%4] (PackB8 with NR=16, KG=4) and o
// is read from off as described in neonGemm8; with o[j] = (128-ZeroA)*
// ColSum[j] + Bias[j] this is GemmU8's definition. Without clamp, t is not
// clamped to ±65536 before rounding: FCVTNS and the zero-point addition
// saturate at the int32 range instead, which gives the same byte whenever
// -65280 <= zeroOut <= 65535 (beyond 65536 in either direction, t+zeroOut
// is past 255 or below 0 either way). A kernel reads exactly R*tiles rows
// of A (k bytes each), 16k bytes of b, 16 or 32 values of off, 16 of scale
// and 16 bytes of each res row, and writes 16 bytes per row of c.

// gemmU8_6x16_NEONDOT is the kernel above with SDOT, 6-row tiles.
// Requires ASIMD and ASIMDDP.
//
//go:noescape
func gemmU8_6x16_NEONDOT(p *neonGemm8)

// gemmU8_5x16_NEONDOT is the kernel above with SDOT, 5-row tiles.
// Requires ASIMD and ASIMDDP.
//
//go:noescape
func gemmU8_5x16_NEONDOT(p *neonGemm8)

// gemmU8_4x16_NEONDOT is the kernel above with SDOT, 4-row tiles.
// Requires ASIMD and ASIMDDP.
//
//go:noescape
func gemmU8_4x16_NEONDOT(p *neonGemm8)

// gemmU8_3x16_NEONDOT is the kernel above with SDOT, 3-row tiles.
// Requires ASIMD and ASIMDDP.
//
//go:noescape
func gemmU8_3x16_NEONDOT(p *neonGemm8)

// gemmU8_2x16_NEONDOT is the kernel above with SDOT, 2-row tiles.
// Requires ASIMD and ASIMDDP.
//
//go:noescape
func gemmU8_2x16_NEONDOT(p *neonGemm8)

// gemmU8_1x16_NEONDOT is the kernel above with SDOT, 1-row tiles.
// Requires ASIMD and ASIMDDP.
//
//go:noescape
func gemmU8_1x16_NEONDOT(p *neonGemm8)

// gemmU8_2x16_NEON is the kernel above with SMULL/SMULL2/SADALP, 2-row
// tiles. Requires ASIMD.
//
//go:noescape
func gemmU8_2x16_NEON(p *neonGemm8)

// gemmU8_1x16_NEON is the kernel above with SMULL/SMULL2/SADALP, 1-row
// tiles. Requires ASIMD.
//
//go:noescape
func gemmU8_1x16_NEON(p *neonGemm8)

const (
	neon8NR   = 16
	neon8KG   = 4
	neon8MR   = 2
	neonDotMR = 6
	// neon8CallMACs and neonDotCallMACs bound the work of one assembly
	// call (which cannot be preempted), whole tiles at least: 2^18
	// multiply-adds are about 0.02 ms on a Cortex-A72 (7 MACs per cycle at
	// 1.8 GHz) and 0.1 ms on an A53 (2.3 at 1.2 GHz); 2^20 with SDOT about
	// 0.015 ms on an A76 (29 at 2.4 GHz). Estimates, see docs/INT8.md.
	neon8CallMACs   = 1 << 18
	neonDotCallMACs = 1 << 20
	// neon8ZeroOutBound: the kernels add the zero point in int32 to a
	// rounded value within ±65536; a zero point beyond ±2^17 saturates
	// every output exactly as it would unclamped, so it is clamped there.
	neon8ZeroOutBound = 1 << 17
)

// maxWindow8NEON is maxWindow8Go for n a positive multiple of 16 (UMAX on
// 16-byte vectors).
//
//go:noescape
func maxWindow8NEON(dst, src *uint8, n, kh, kw, rowStride, pixStride int)

// quantizeNEON is quantizeGo for n a positive multiple of 16, bit-exact
// (see asm/arm64/elem8.go).
//
//go:noescape
func quantizeNEON(dst *uint8, src *float32, n int, scale float32, zero int32)

// dequantizeNEON is dequantizeGo for n a positive multiple of 16.
//
//go:noescape
func dequantizeNEON(dst *float32, src *uint8, n int, scale float32, zero int32)

// add8NEON is add8Go for n a positive multiple of 16; p points to an
// Add8Params (finite sums) whose Lo is clamped to [0, 255] (see
// add8NEONCall).
//
//go:noescape
func add8NEON(dst, a, b *uint8, n int, p *int32)

// add8NEONCall runs add8NEON with Lo clamped to [0, 255], which it applies
// to the narrowed bytes: clamp(max(q, Lo)) = max(clamp(q), clamp(Lo)).
func add8NEONCall(dst, a, b *uint8, n int, p *Add8Params) {
	q := *p
	q.Lo = min(max(q.Lo, 0), 255)
	add8NEON(dst, a, b, n, &q.ZeroA)
}

var (
	gemm8NEON    = &gemm8Impl{name: "gemmU8_2x16_NEON", mr: neon8MR, nr: neon8NR, kg: neon8KG, rows: gemm8RowsNEON}
	gemm8NEONDOT = &gemm8Impl{name: "gemmU8_6x16_NEONDOT", mr: neonDotMR, nr: neon8NR, kg: neon8KG, rows: gemm8RowsNEONDOT}
)

// The SDOT int8 GEMM; every other primitive of the neondot path is neon's.
var _ = gemm8Reg.add("neondot", hasASIMDDP, gemm8NEONDOT)

func hasASIMDDP() bool { return cpuid.CPU.Supports(cpuid.ASIMD, cpuid.ASIMDDP) }

// neon8Kernel runs the r-row kernel of one family. A switch, not a table
// of func values: an indirect call would make p escape to the heap.
func neon8Kernel(dot bool, r int, p *neonGemm8) {
	if dot {
		switch r {
		case 1:
			gemmU8_1x16_NEONDOT(p)
		case 2:
			gemmU8_2x16_NEONDOT(p)
		case 3:
			gemmU8_3x16_NEONDOT(p)
		case 4:
			gemmU8_4x16_NEONDOT(p)
		case 5:
			gemmU8_5x16_NEONDOT(p)
		case 6:
			gemmU8_6x16_NEONDOT(p)
		default:
			panic("kernels: no NEONDOT int8 kernel for this many rows")
		}
		return
	}
	switch r {
	case 1:
		gemmU8_1x16_NEON(p)
	case 2:
		gemmU8_2x16_NEON(p)
	default:
		panic("kernels: no NEON int8 kernel for this many rows")
	}
}

func gemm8RowsNEON(m, n, k int, a []uint8, lda int, b []int8, colSum []int32, c []uint8, ldc int, rq Requant) {
	gemm8RowsARM64(false, m, n, k, a, lda, b, colSum, c, ldc, rq)
}

func gemm8RowsNEONDOT(m, n, k int, a []uint8, lda int, b []int8, colSum []int32, c []uint8, ldc int, rq Requant) {
	gemm8RowsARM64(true, m, n, k, a, lda, b, colSum, c, ldc, rq)
}

// gemm8RowsARM64 is gemm8Impl.rows for both kernel families: the full
// tiles in calls of bounded work (neon8CallMACs), then one call for the
// remaining rows with the kernel of that many rows. A panel narrower than
// 16 goes through gemm8NarrowARM64. The lengths are checked here because the
// assembly trusts them.
func gemm8RowsARM64(dot bool, m, n, k int, a []uint8, lda int, b []int8, colSum []int32, c []uint8, ldc int, rq Requant) {
	if m < 1 || n < 1 || n > neon8NR || k < 0 || k%neon8KG != 0 || lda < k || ldc < n || rq.LdRes < 0 ||
		len(a) < (m-1)*lda+k || len(b) < k*neon8NR || len(colSum) < n || len(c) < (m-1)*ldc+n ||
		len(rq.Scale) < n || (rq.Bias != nil && len(rq.Bias) < n) ||
		(rq.Res != nil && len(rq.Res) < (m-1)*rq.LdRes+n) || rq.Lo < 0 || rq.Lo > 255 {
		panic(fmt.Sprintf("kernels: NEON int8 GEMM: bad tile m=%d n=%d k=%d lda=%d ldc=%d", m, n, k, lda, ldc))
	}
	mr := neon8MR
	if dot {
		mr = neonDotMR
	}
	var off [2 * neon8NR]int32
	var scale [neon8NR]float32
	for j := range n {
		o := (128 - rq.ZeroA) * colSum[j]
		if rq.Bias != nil {
			o += rq.Bias[j]
		}
		if dot {
			off[j] = o
		} else {
			off[2*j] = o // and off[2j+1] = 0: the lanes of one column
		}
		scale[j] = rq.Scale[j]
	}
	p := neonGemm8{
		lda: uintptr(lda), b: unsafe.SliceData(b), k: uintptr(k),
		off: &off[0], scale: &scale[0],
		resZero: rq.ResZero, resScale: rq.ResScale,
		zeroOut: min(max(rq.ZeroOut, -neon8ZeroOutBound), neon8ZeroOutBound), lo: rq.Lo,
	}
	if rq.ZeroOut < -65280 || rq.ZeroOut > 65535 {
		p.clamp = 1
	}
	if n < neon8NR {
		gemm8NarrowARM64(dot, mr, m, n, a, lda, c, ldc, &rq, p)
		return
	}
	p.ldc = uintptr(ldc)
	p.ldres = uintptr(rq.LdRes)
	callMACs := neon8CallMACs
	if dot {
		callMACs = neonDotCallMACs
	}
	perCall := max(1, callMACs/(mr*neon8NR*max(k, 1)))
	full := m / mr
	for t := 0; t < m; {
		rows, tiles := mr, min(perCall, full-t/mr)
		if t >= full*mr {
			rows, tiles = m-t, 1
		}
		p.a = unsafe.SliceData(a[t*lda:])
		p.c = unsafe.SliceData(c[t*ldc:])
		if rq.Res != nil {
			p.res = unsafe.SliceData(rq.Res[t*rq.LdRes:])
		}
		p.tiles = uintptr(tiles)
		neon8Kernel(dot, rows, &p)
		t += rows * tiles
	}
}

// gemm8NarrowARM64 does a panel whose last columns are padding (n < 16):
// the kernels read and write 16 bytes per row, so the residual rows are
// copied into a scratch tile and the outputs computed into another, of
// which the n real columns are copied out. p is a copy: pointing a field
// of the caller's block at these locals would move them to the heap.
func gemm8NarrowARM64(dot bool, mr, m, n int, a []uint8, lda int, c []uint8, ldc int, rq *Requant, p neonGemm8) {
	var tmp, tmpRes [neonDotMR * neon8NR]uint8
	p.c, p.ldc, p.tiles = &tmp[0], neon8NR, 1
	if rq.Res != nil {
		p.res, p.ldres = &tmpRes[0], neon8NR
	}
	for i0 := 0; i0 < m; i0 += mr {
		r := min(mr, m-i0)
		if rq.Res != nil {
			for i := range r {
				copy(tmpRes[i*neon8NR:i*neon8NR+n], rq.Res[(i0+i)*rq.LdRes:])
			}
		}
		p.a = unsafe.SliceData(a[i0*lda:])
		neon8Kernel(dot, r, &p)
		for i := range r {
			copy(c[(i0+i)*ldc:(i0+i)*ldc+n], tmp[i*neon8NR:])
		}
	}
}
