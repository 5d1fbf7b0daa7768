//go:build gc && !purego

package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// The asm paths must be offered wherever cpuid says the CPU can run them;
// forEachGemm fails if one was not exercised.
func init() {
	if hasAVX2() {
		wantPaths = append(wantPaths, "avx2")
	}
	if hasAVX512() {
		wantPaths = append(wantPaths, "avx512")
	}
}

// BenchmarkFMAPeak measures the core's fp32 FMA throughput on registers
// only: the ceiling the GEMM kernels are compared with.
func BenchmarkFMAPeak(b *testing.B) {
	for _, p := range []struct {
		name  string
		ok    bool
		flops float64 // per iteration
		f     func(int)
	}{
		{"avx2", hasAVX2(), 12 * 8 * 2, fmaPeakAVX2},
		{"avx512", hasAVX512(), 12 * 16 * 2, fmaPeakAVX512},
	} {
		b.Run(p.name, func(b *testing.B) {
			if !p.ok {
				b.Skip("not supported by this CPU")
			}
			const iters = 1 << 16
			for i := 0; i < b.N; i++ {
				p.f(iters)
			}
			b.ReportMetric(p.flops*iters*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGemmVsPeak interleaves the FMA-peak loop and one GEMM per
// iteration and reports the best time of each, so that the ratio holds on a
// machine shared with other jobs (contention only ever slows a run down).
// Use -benchtime=200x or so.
func BenchmarkGemmVsPeak(b *testing.B) {
	for _, p := range paths {
		var peak func(int)
		var peakFlops float64
		switch p.name {
		case "avx2":
			peak, peakFlops = fmaPeakAVX2, 12*8*2
		case "avx512":
			peak, peakFlops = fmaPeakAVX512, 12*16*2
		default:
			continue
		}
		for _, sz := range gemmBenchShapes {
			m, n, k := sz[0], sz[1], sz[2]
			b.Run(fmt.Sprintf("%s/m%d_n%d_k%d", p.name, m, n, k), func(b *testing.B) {
				saved := gemm
				gemm = p.gemm
				defer func() { gemm = saved }()
				r := rand.New(rand.NewPCG(1, 1))
				a, w := randSlice(r, m*k), randSlice(r, k*n)
				pb := PackB(w, k, n)
				c := make([]float32, m*n)
				ep := &Epilogue{Bias: randSlice(r, n), Relu: true}
				const iters = 1 << 12
				bestPeak, bestGemm := time.Duration(1<<62), time.Duration(1<<62)
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					peak(iters)
					t1 := time.Now()
					Gemm(m, a, k, &pb, c, n, ep, 0, pb.Panels())
					t2 := time.Now()
					bestPeak, bestGemm = min(bestPeak, t1.Sub(t0)), min(bestGemm, t2.Sub(t1))
				}
				pk := peakFlops * iters / bestPeak.Seconds() / 1e9
				g := 2 * float64(m*n*k) / bestGemm.Seconds() / 1e9
				b.ReportMetric(g, "GFLOP/s")
				b.ReportMetric(pk, "peak-GFLOP/s")
				b.ReportMetric(100*g/pk, "%peak")
			})
		}
	}
}
