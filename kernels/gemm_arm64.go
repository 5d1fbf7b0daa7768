//go:build gc && !purego

package kernels

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/klauspost/cpuid/v2"
)

// neonGemm is the parameter block of the NEON GEMM kernels; the assembly
// reads its fields through go_asm.h, so the offsets follow this struct.
// Strides are in bytes.
type neonGemm struct {
	a     *float32 // row 0 of the first tile of A
	lda   uintptr
	b     *float32 // a packed panel, k*16 values
	c     *float32
	ldc   uintptr
	bias  *float32 // 16 values, or nil
	res   *float32 // residual rows of 16 values, or nil
	ldres uintptr
	k     uintptr
	tiles uintptr // >= 1
	relu  uintptr // 0 or 1
}

// Each kernel gemmF32_Rx16_NEON computes tiles consecutive R-row tiles:
// for t < tiles, i < R, j < 16, with row r = t*R+i,
//
//	c[r*ldc+j] = relu?(sum over kk < k of a[r*lda+kk]*b[kk*16+j] + bias[j] + res[r*ldres+j])
//
// (strides here in elements; the bias and res terms only where those
// pointers are not nil, max(x, 0) only if relu is 1). The sum starts at +0
// and adds one fused multiply-add per term in increasing kk, then bias, then
// res, then max(x, 0) (NaN stays NaN), so every kernel gives the same bits
// for the same row. It reads exactly R*tiles rows of A (k values each),
// k*16 values of b, 16 of bias and of each res row, and writes 16 values
// per row of c. ASIMD is part of every ARMv8-A CPU.

// gemmF32_6x16_NEON is the kernel above for 6-row tiles (24 accumulators).
// Requires ASIMD.
//
//go:noescape
func gemmF32_6x16_NEON(p *neonGemm)

// gemmF32_5x16_NEON is the kernel above for 5-row tiles (20 accumulators).
// Requires ASIMD.
//
//go:noescape
func gemmF32_5x16_NEON(p *neonGemm)

// gemmF32_4x16_NEON is the kernel above for 4-row tiles (16 accumulators).
// Requires ASIMD.
//
//go:noescape
func gemmF32_4x16_NEON(p *neonGemm)

// gemmF32_3x16_NEON is the kernel above for 3-row tiles (12 accumulators).
// Requires ASIMD.
//
//go:noescape
func gemmF32_3x16_NEON(p *neonGemm)

// gemmF32_2x16_NEON is the kernel above for 2-row tiles (8 accumulators).
// Requires ASIMD.
//
//go:noescape
func gemmF32_2x16_NEON(p *neonGemm)

// gemmF32_1x16_NEON is the kernel above for 1-row tiles (4 accumulators).
// Requires ASIMD.
//
//go:noescape
func gemmF32_1x16_NEON(p *neonGemm)

// fmaPeakNEON runs n iterations of 24 independent 4-lane FMLAs on
// registers (192 FLOPs each), for measuring the core's FMA peak.
// Requires ASIMD.
//
//go:noescape
func fmaPeakNEON(n int)

const (
	neonMR = 6
	neonNR = 16
)

// neonKernel runs the r-row kernel. A switch, not a table of func values:
// an indirect call would make p escape to the heap on every call.
func neonKernel(r int, p *neonGemm) {
	switch r {
	case 1:
		gemmF32_1x16_NEON(p)
	case 2:
		gemmF32_2x16_NEON(p)
	case 3:
		gemmF32_3x16_NEON(p)
	case 4:
		gemmF32_4x16_NEON(p)
	case 5:
		gemmF32_5x16_NEON(p)
	case 6:
		gemmF32_6x16_NEON(p)
	default:
		panic("kernels: no NEON kernel for this many rows")
	}
}

// clampRowsNEON clamps rows x n values of src at stride ld (elements)
// into dst: min(max(x, lo), hi) as Go computes it (FMAX, FMIN), NaN
// passing (the vector part of Clamp). n is a positive multiple of 4,
// rows >= 1; dst may be src. ASIMD is part of every ARMv8-A CPU.
//
//go:noescape
func clampRowsNEON(dst, src *float32, rows, n, ld int, lo, hi float32)

var clampNEON = clampReg.add("neon", hasASIMD, &clampImpl{lanes: 4, rows: clampRowsNEON})

// maxWindowNEON sets dst[j] to the maximum of src[y*rowStride+x*pixStride+j]
// over y < kh, x < kw (strides in elements) for j < n, n a positive
// multiple of 4, with maxWindowGo's comparisons (FCMGT, BIT): the same
// bits, NaN and signed zeros included. ASIMD is part of every ARMv8-A CPU.
//
//go:noescape
func maxWindowNEON(dst, src *float32, n, kh, kw, rowStride, pixStride int)

// gemmTileNEON handles any number of rows, so it also serves as the
// row-block entry point: one assembly call per panel.
var gemmNEON = &gemmImpl{name: "gemmF32_6x16_NEON", mr: neonMR, nr: neonNR, tile: gemmTileNEON, rows: gemmTileNEON}

// The arm64 paths: neon, and neondot, which differs only where an SDOT
// implementation is registered (the int8 GEMM).
var (
	_ = definePath("neon", 10, hasASIMD, "neon", levelGeneric)
	_ = definePath("neondot", 20, hasASIMDDP, "neondot", "neon", levelGeneric)

	_ = gemmReg.add("neon", hasASIMD, gemmNEON)
	_ = gemm8Reg.add("neon", hasASIMD, gemm8NEON)
	_ = maxPoolReg.add("neon", hasASIMD, maxPoolImpl{maxWindowNEON, 4})
	_ = maxPool8Reg.add("neon", hasASIMD, maxPool8Impl{maxWindow8NEON, 16})
	_ = quantReg.add("neon", hasASIMD, quantImpl{quantizeNEON, dequantizeNEON, 16})
	_ = add8Reg.add("neon", hasASIMD, add8Impl{add8NEONCall, 16})
)

func hasASIMD() bool { return cpuid.CPU.Supports(cpuid.ASIMD) }

// cpuSummary names the CPU and the features the arm64 paths look at.
func cpuSummary() string {
	var have []string
	for _, f := range []struct {
		name string
		id   cpuid.FeatureID
	}{{"ASIMD", cpuid.ASIMD}, {"ASIMDDP", cpuid.ASIMDDP}, {"FP", cpuid.FP}} {
		if cpuid.CPU.Supports(f.id) {
			have = append(have, f.name)
		}
	}
	name := cpuid.CPU.BrandName
	if name == "" {
		name = "arm64"
	}
	return name + " [" + strings.Join(have, " ") + "]"
}

func gemmTileNEON(m, n, k int, a []float32, lda int, b []float32, c []float32, ldc int, ep Epilogue) {
	gemmRowsNEON(m, n, k, a, lda, b, c, ldc, &ep)
}

// gemmRowsNEON is gemmImpl.tile for any m >= 1: the 6-row tiles of one
// panel in one assembly call, then one call for the remaining rows, so
// the Go-to-assembly cost is paid per panel rather than per tile. A panel
// narrower than 16 (n < 16) goes through gemmNarrowNEON. The lengths are
// checked here because the assembly trusts them.
func gemmRowsNEON(m, n, k int, a []float32, lda int, b []float32, c []float32, ldc int, ep *Epilogue) {
	if m < 1 || n < 1 || n > neonNR || k < 0 || lda < 0 || ldc < 0 || ep.LdRes < 0 ||
		len(a) < (m-1)*lda+k || len(b) < k*neonNR || len(c) < (m-1)*ldc+n ||
		(ep.Bias != nil && len(ep.Bias) < n) || (ep.Res != nil && len(ep.Res) < (m-1)*ep.LdRes+n) {
		panic(fmt.Sprintf("kernels: NEON GEMM: bad tile m=%d n=%d k=%d lda=%d ldc=%d", m, n, k, lda, ldc))
	}
	if n < neonNR {
		gemmNarrowNEON(m, n, k, a, lda, b, c, ldc, ep)
		return
	}
	p := neonGemm{
		a: unsafe.SliceData(a), lda: uintptr(lda) * 4,
		b: unsafe.SliceData(b),
		c: unsafe.SliceData(c), ldc: uintptr(ldc) * 4,
		bias: unsafe.SliceData(ep.Bias),
		res:  unsafe.SliceData(ep.Res), ldres: uintptr(ep.LdRes) * 4,
		k: uintptr(k),
	}
	if ep.Relu {
		p.relu = 1
	}
	full := m / neonMR
	if full > 0 {
		p.tiles = uintptr(full)
		gemmF32_6x16_NEON(&p)
	}
	if r := m - full*neonMR; r > 0 {
		i := full * neonMR
		p.a = unsafe.SliceData(a[i*lda:])
		p.c = unsafe.SliceData(c[i*ldc:])
		if ep.Res != nil {
			p.res = unsafe.SliceData(ep.Res[i*ep.LdRes:])
		}
		p.tiles = 1
		neonKernel(r, &p)
	}
}

// gemmNarrowNEON does a panel whose last columns are padding (n < 16):
// the kernels write whole 16-wide rows and read 16 bias and residual
// values, so they compute into a scratch tile and the epilogue is applied
// here, in the kernels' order, to the n real columns.
func gemmNarrowNEON(m, n, k int, a []float32, lda int, b []float32, c []float32, ldc int, ep *Epilogue) {
	var tmp [neonMR * neonNR]float32
	p := neonGemm{lda: uintptr(lda) * 4, b: unsafe.SliceData(b), c: &tmp[0], ldc: neonNR * 4, k: uintptr(k), tiles: 1}
	for i0 := 0; i0 < m; i0 += neonMR {
		r := min(neonMR, m-i0)
		p.a = unsafe.SliceData(a[i0*lda:])
		neonKernel(r, &p)
		for i := range r {
			row := c[(i0+i)*ldc : (i0+i)*ldc+n]
			for j := range row {
				v := tmp[i*neonNR+j]
				if ep.Bias != nil {
					v += ep.Bias[j]
				}
				if ep.Res != nil {
					v += ep.Res[(i0+i)*ep.LdRes+j]
				}
				if ep.Relu {
					v = max(v, 0)
				}
				row[j] = v
			}
		}
	}
}
