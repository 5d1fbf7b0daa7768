//go:build gc && !purego

package kernels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/klauspost/cpuid/v2"
)

func init() {
	if hasAMX() {
		extraGemm8 = append(extraGemm8, amxTilesSet)
		wantGemm8 = append(wantGemm8, amxTilesName)
	}
}

const amxTilesName = "gemmU8_32x32_AMX (tiles only)"

// amxTilesSet is the amx path with a gemm8Impl that runs every call on
// the tiles, without amxSlower's choice of the VNNI kernel, so that the
// batteries reach the kernel's tails at small M and K.
func amxTilesSet() *Set {
	s, err := ForPath("amx")
	if err != nil {
		panic(err)
	}
	raw := *s.gemm8
	raw.name, raw.rows = amxTilesName, amxTiles
	c := *s
	c.gemm8 = &raw
	return &c
}

// needAMX skips a test of the AMX kernel where it cannot run, saying why.
func needAMX(t testing.TB) {
	t.Helper()
	switch {
	case !cpuid.CPU.Supports(cpuid.AMXTILE, cpuid.AMXINT8):
		t.Skipf("CPU lacks AMX-TILE/AMX-INT8 (%s): the AMX int8 GEMM is untested here", CPU())
	case !hasAMX():
		t.Skipf("the OS refused the AMX tile state (%v): the AMX int8 GEMM is untested here", amxRequest())
	}
}

// TestAMXOffered: the amx path exists exactly where the CPU and the OS
// allow it, and is then the default (unless EDGE_RESNET_KERNELS says
// otherwise).
func TestAMXOffered(t *testing.T) {
	want := cpuid.CPU.Supports(cpuid.AVX512DQ, cpuid.AMXTILE, cpuid.AMXINT8) && hasAVX512VNNI() && amxRequest() == nil
	if got := slices.Contains(Available(), "amx"); got != want {
		t.Fatalf("amx available = %v, want %v (%s)", got, want, CPU())
	}
	if want && Sets()[0].Name() != "amx" {
		t.Errorf("best path %s, want amx", Sets()[0])
	}
}

// TestAMXConfigs checks the tile configurations against the rules of
// TDPBUSD (C rows = A rows, A bytes per row = 4 B rows, B and C 64 bytes
// wide) and the reads they allow: A tiles never wider than what is left
// of K, never more rows than the block has.
func TestAMXConfigs(t *testing.T) {
	for _, mt := range []int{0, 1, 15, 16, 17, 31} {
		for _, kt := range []int{0, 4, 60} {
			var c amxConfigs
			c.set(mt, kt)
			for i, cfg := range c {
				rows, kb := 32, 64
				if i >= 2 && mt != 0 {
					rows = mt
				}
				if i%2 == 1 && kt != 0 {
					kb = kt
				}
				col := func(t int) int { return int(cfg[16+2*t]) | int(cfg[17+2*t])<<8 }
				row := func(t int) int { return int(cfg[48+t]) }
				if cfg[0] != 1 || col(4) != kb || col(5) != kb || row(6) != kb/4 || row(7) != kb/4 {
					t.Errorf("mt=%d kt=%d cfg %d: palette %d, A %d/%d bytes, B %d/%d rows; want 1, %d, %d",
						mt, kt, i, cfg[0], col(4), col(5), row(6), row(7), kb, kb/4)
				}
				hi := rows // rows 16-31 of a block of at most 16: rows 0-15 again
				if rows > 16 {
					hi = rows - 16
				}
				if row(0) != row(4) || row(1) != row(4) || row(2) != row(5) || row(3) != row(5) ||
					row(4) != min(rows, 16) || row(5) != hi {
					t.Errorf("mt=%d kt=%d cfg %d: rows %v for a block of %d", mt, kt, i, cfg[48:56], rows)
				}
				for tl := 0; tl < 8; tl++ {
					if tl != 4 && tl != 5 && col(tl) != 64 {
						t.Errorf("mt=%d kt=%d cfg %d: tile %d is %d bytes wide", mt, kt, i, tl, col(tl))
					}
				}
			}
		}
	}
}

// TestAMXGuarded runs the AMX kernel with A, the weights and the residual
// ending on an inaccessible page, for every K tail and the M tails around
// the 16-row tile, so that a tile load reading past any of them crashes.
func TestAMXGuarded(t *testing.T) {
	needAMX(t)
	s := amxTilesSet()
	r := rand.New(rand.NewPCG(12, 1))
	for _, m := range []int{1, 15, 16, 17, 31, 32, 33, 48, 63} {
		for _, k := range []int{4, 60, 64, 68, 124, 128, 148, 576} {
			n := 32 + m%7
			a := guardedBytes(t, (m-1)*k+k)
			for i := range a {
				a[i] = uint8(r.IntN(256))
			}
			w := make([]int8, k*n)
			for i := range w {
				w[i] = int8(r.IntN(256) - 128)
			}
			rq := Requant{ZeroA: 9, Scale: make([]float32, n), ZeroOut: 7, Res: guardedBytes(t, (m-1)*n+n), LdRes: n, ResZero: 3, ResScale: 0.5}
			for j := range rq.Scale {
				rq.Scale[j] = 1e-3
			}
			pb := s.PackB8(w, k, n)
			pb.Data = slices.Clip(pb.Data) // the last panel ends at the slice's end
			guarded := guardedBytes(t, len(pb.Data))
			for i, v := range pb.Data {
				guarded[i] = uint8(v)
			}
			pb.Data = unsafeInt8(guarded)
			c := make([]uint8, m*n)
			GemmU8(m, a, k, &pb, c, n, &rq, 0, pb.Panels())
			if want := refGemmU8(m, n, k, a, k, w, &rq); !slices.Equal(c, want) {
				t.Fatalf("m=%d k=%d n=%d: differs from the definition", m, k, n)
			}
		}
	}
}

// unsafeInt8 views b as int8 values.
func unsafeInt8(b []byte) []int8 {
	return unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
}

// Per-core peaks of the Intel Xeon family 6 model 167 (Emerald Rapids)
// of bench/README.md, best iteration of BenchmarkVNNIPeak (VPDPBUSD zmm)
// and BenchmarkAMXPeak (four TDPBUSD), -tags kernelbench, 2026-12-07, the
// same in three runs (issue 12 had measured 663 and about 4,500).
const (
	peakVNNIGOPs = 856
	peakAMXGOPs  = 6327
)

// amxBenchShapes are the GEMMs of ResNet-18 and ResNet-50 at 224x224
// (M output pixels, K = kh*kw*Cin padded to 4, N output channels), and
// the fully connected layer.
var amxBenchShapes = []struct{ m, k, n int }{
	{12544, 148, 64}, // stem 7x7/2 through im2col (K tail 20)
	{3136, 576, 64},  // ResNet-18 conv2_x 3x3
	{3136, 64, 256},  // ResNet-50 conv2_x 1x1 expand
	{3136, 256, 64},  // ResNet-50 conv2_x 1x1 reduce
	{784, 1152, 128}, // conv3_x 3x3
	{784, 512, 128},  // ResNet-50 conv3_x 1x1 reduce
	{196, 2304, 256}, // conv4_x 3x3
	{196, 1024, 256}, // ResNet-50 conv4_x 1x1 reduce
	{49, 4608, 512},  // conv5_x 3x3
	{49, 2048, 512},  // ResNet-50 conv5_x 1x1 reduce
	{1, 2048, 1000},  // ResNet-50 fc
	// Few rows (the fc at small batches, small maps), K tails.
	{2, 2048, 512}, {4, 2048, 512}, {8, 2048, 512}, {16, 2048, 512}, {32, 2048, 512},
	{3136, 148, 64}, {3136, 276, 64}, {3136, 84, 64}, {3136, 128, 64},
}

// BenchmarkGemm8AMX times the AMX kernel and the AVX512-VNNI one on the
// same shapes and data, alternating calls and keeping the best time of
// each, so that the ratio holds on a shared machine. Reports GOP/s, the
// share of each peak above, and AMX's speed-up. -benchtime=50x or so.
func BenchmarkGemm8AMX(b *testing.B) {
	needAMX(b)
	b.Logf("cpu: %s", CPU())
	for _, sz := range amxBenchShapes {
		m, k, n := sz.m, sz.k, sz.n
		b.Run(fmt.Sprintf("m%d_k%d_n%d", m, k, n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			a := randU8(r, m*k)
			w := make([]int8, k*n)
			for i := range w {
				w[i] = int8(r.IntN(255) - 127)
			}
			rq := &Requant{ZeroA: 3, Scale: make([]float32, n), Bias: make([]int32, n)}
			for j := range rq.Scale {
				rq.Scale[j] = 1e-4
			}
			pAMX, pVNNI := packB8(w, k, n, amxTilesSet().gemm8), packB8(w, k, n, gemm8VNNI512)
			c := make([]uint8, m*n)
			var best [2]time.Duration
			for i := range best {
				best[i] = 1 << 62
			}
			for i := 0; i < b.N; i++ {
				for j, p := range []*PackedB8{&pAMX, &pVNNI} {
					t0 := time.Now()
					GemmU8(m, a, k, p, c, n, rq, 0, p.Panels())
					best[j] = min(best[j], time.Since(t0))
				}
			}
			ops := 2 * float64(m*n*k)
			amx, vnni := ops/best[0].Seconds()/1e9, ops/best[1].Seconds()/1e9
			b.ReportMetric(amx, "AMX-GOP/s")
			b.ReportMetric(100*amx/peakAMXGOPs, "AMX-%peak")
			b.ReportMetric(vnni, "VNNI-GOP/s")
			b.ReportMetric(100*vnni/peakVNNIGOPs, "VNNI-%peak")
			b.ReportMetric(amx/vnni, "x-VNNI")
		})
	}
}
