//go:build gc && !purego

package kernels

import (
	"sync"

	"github.com/klauspost/cpuid/v2"
)

// gemmU8_32x32_AMX computes rows [0, m) of one packed 32-column panel (the
// layout of PackedB8 with NR = 32, KG = 4: K group g of column j at
// b[(g*32+j)*4:], which is the VNNI layout of AMX B tiles, 16 columns by
// K/4 rows at a stride of 128 bytes) with TDPBUSD, and writes columns
// [0, n) of c requantized as the other int8 kernels (see
// gemm8_amd64.go; ep points to a gemm8Epi). Blocks of 32 rows run the
// whole K on a 2x2 block of 16x16 int32 tiles, which then go to one half
// of scr (2 x 32 rows of 32 int32); the AVX-512 requantization of a block
// runs from its half during the next block's K loop (the last block's
// after it). cfg points to the four tile configurations of amxConfigs.
// The function loads a tile configuration first and releases the tiles
// (TILERELEASE) before it returns, so no tile state outlives the call.
// Requires AVX512F, AVX512BW, AVX512DQ, AMX-TILE, AMX-INT8, and the OS's
// permission (amxPermitted).
//
//go:noescape
func gemmU8_32x32_AMX(m, n, k int, a *uint8, lda int, b *int8, c *uint8, ldc int, res *uint8, ldres int, ep *int32, cfg *uint8, scr *int32)

// amxConfigs are the LDTILECFG blocks of one call: [0] whole blocks of 32
// rows and 64-byte K chunks, [1] whole blocks and the last k%64 bytes of K,
// [2] and [3] the same for the last block of m%32 rows. Tiles: 0-3 the C
// accumulators (rows 0-15 and 16-31 by columns 0-15 and 16-31), 4 and 5
// the A rows 0-15 and 16-31, 6 and 7 the B columns 0-15 and 16-31. A block
// of at most 16 rows runs its rows 16-31 on rows 0-15 again (the kernel
// points tile 5 at them) rather than configure zero-row tiles.
type amxConfigs [4][64]byte

// set fills the configurations for mt = m%32 (0: none) and kt = k%64.
func (c *amxConfigs) set(mt, kt int) {
	if mt == 0 {
		mt = 32
	}
	if kt == 0 {
		kt = 64
	}
	for i, rows := range [2]int{32, mt} {
		r0, r1 := min(rows, 16), rows-16
		if rows <= 16 {
			r1 = rows
		}
		for j, kb := range [2]int{64, kt} {
			cfg := &c[2*i+j]
			*cfg = [64]byte{0: 1} // palette 1, start_row 0
			colsb := [8]int{64, 64, 64, 64, kb, kb, 64, 64}
			trows := [8]int{r0, r0, r1, r1, r0, r1, kb / 4, kb / 4}
			for t := range 8 {
				cfg[16+2*t] = byte(colsb[t])
				cfg[48+t] = byte(trows[t])
			}
		}
	}
}

// amxCallMACs bounds the work of one AMX call like gemm8CallMACs: TDPBUSD
// does about 7x the multiply-adds per second of VPDPBUSD zmm, so the same
// call time allows 8x the work.
const amxCallMACs = 8 * gemm8CallMACs

// amxRows is the rows function of the AMX kernel. Panels are packed
// exactly as for gemmU8_14x32_AVX512VNNI, which runs them where it is
// faster (amxSlower) and if the OS refuses the tiles (only possible for a
// Set built before the refusal).
func amxRows(m, n, k int, a []uint8, lda int, b []int8, colSum []int32, c []uint8, ldc int, rq Requant) {
	if amxSlower(m, k) || !amxPermitted() {
		gemm8VNNI512.rows(m, n, k, a, lda, b, colSum, c, ldc, rq)
		return
	}
	amxTiles(m, n, k, a, lda, b, colSum, c, ldc, rq)
}

// amxSlower reports the calls that gemmU8_14x32_AVX512VNNI does faster
// (BenchmarkGemm8AMX on the Xeon of bench/README.md, AMX over VNNI, three
// runs): a few rows, where a 32-row block computes mostly padding and the
// tile setup is not repaid (m 1-4: 0.68-0.79x; m 8: 0.96-1.05x; m 16:
// 1.30-1.43x), and a short K with a tail, which costs each block a second
// configuration and a round trip of the accumulators through the scratch
// (k 84: 0.70-0.74x; 148, the stem: 0.92-1.00x; 276: 1.41-1.58x; 128, no
// tail: 2.13-2.23x).
func amxSlower(m, k int) bool { return m <= amxMinRows || k%64 != 0 && k < amxMinTailK }

const (
	amxMinRows  = 8
	amxMinTailK = 192
)

// amxTiles runs rows [0, m) of a panel on gemmU8_32x32_AMX.
func amxTiles(m, n, k int, a []uint8, lda int, b []int8, colSum []int32, c []uint8, ldc int, rq Requant) {
	var ep gemm8Epi
	ep.fill(n, colSum, &rq)
	var cfg amxConfigs
	cfg.set(m%32, k%64)
	var scr [2 * 32 * 32]int32
	chunk := max(32, amxCallMACs/(k*32)/32*32) // a multiple of 32: only the last call has a partial block
	ldres := rq.LdRes
	if rq.Res == nil {
		ldres = 0
	}
	for i0 := 0; i0 < m; i0 += chunk {
		mm := min(chunk, m-i0)
		var res *uint8
		if rq.Res != nil {
			res = &rq.Res[i0*rq.LdRes]
		}
		gemmU8_32x32_AMX(mm, n, k, &a[i0*lda], lda, &b[0], &c[i0*ldc], ldc, res, ldres, &ep.corr[0], &cfg[0][0], &scr[0])
	}
}

var (
	amxOnce sync.Once
	amxOK   bool
)

// amxPermitted asks the OS, once per process, for the AMX tile state
// (amxRequest) and reports whether it was granted.
func amxPermitted() bool {
	amxOnce.Do(func() { amxOK = amxRequest() == nil })
	return amxOK
}

// hasAMX reports whether the amx path can run: AMX-TILE and AMX-INT8, the
// AVX-512 of its epilogue (DQ: VRANGEPS) and of the avx512vnni path below
// it, and the OS's permission, asked here the first time: while the
// package resolves its paths at init, before any AMX instruction runs.
func hasAMX() bool {
	return hasAVX512VNNI() && cpuid.CPU.Supports(cpuid.AVX512DQ, cpuid.AMXTILE, cpuid.AMXINT8) && amxPermitted()
}

// gemm8AMX shares its packed layout (NR = 32, KG = 4) with gemm8VNNI512,
// whose rows it falls back to.
var gemm8AMX = &gemm8Impl{name: "gemmU8_32x32_AMX", mr: 32, nr: 32, kg: 4, rows: amxRows, im2colBytes: amxIm2colBytes}

// amxIm2colBytes: Conv8 calls the AMX kernel on blocks of 512 KiB of
// im2col rows rather than 64 KiB, so that a call has several 32-row blocks
// (one at K >= 1152 with 64 KiB) and requantizes all but the last during
// the next one's K loop, and configures the tiles less often. Measured on
// the Xeon of bench/README.md (best of 2-3 interleaved runs of 20, 1
// thread): ResNet-50 int8 10.76-11.09 ms at 64 KiB, 10.1-10.6 at 128-256,
// 9.5-10.2 at 512; ResNet-18 5.0-5.3 -> 4.3-4.9 ms; 1 and 2 MiB no better.
const amxIm2colBytes = 512 << 10

var (
	_ = gemm8Reg.add("amx", hasAMX, gemm8AMX)
	// amx: the avx512vnni path with the AMX int8 GEMM.
	_ = definePath("amx", 40, hasAMX, "amx", "avx512vnni", "avx512", "avx2", levelGeneric)
)
