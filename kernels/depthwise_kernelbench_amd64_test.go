//go:build gc && !purego && kernelbench

package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkDepthwiseVsPeak interleaves the FMA-peak loop and one
// depthwise layer (bias + ReLU6, one thread) per iteration and reports the
// best time of each as GFLOP/s and the layer's share of the peak, which
// holds on a machine shared with other jobs (like BenchmarkGemmVsPeak).
// Use -benchtime=200x or so:
//
//	go test -tags kernelbench -run '^$' -bench DepthwiseVsPeak -benchtime 200x ./kernels
func BenchmarkDepthwiseVsPeak(b *testing.B) {
	for _, set := range depthwiseSets() {
		var peak func(int)
		var peakFlops float64
		switch set.Name() {
		case "avx2":
			peak, peakFlops = fmaPeakAVX2, 12*8*2
		case "avx512":
			peak, peakFlops = fmaPeakAVX512, 12*16*2
		default:
			continue
		}
		for _, s := range dwBenchShapes {
			g := dwBenchGeom(s)
			b.Run(fmt.Sprintf("%s/%dx%dx%d_s%d", set.Name(), g.H, g.W, g.C, g.StrideH), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 1))
				in, w := randSlice(r, g.H*g.W*g.C), randSlice(r, 9*g.C)
				out := make([]float32, g.OH*g.OW*g.C)
				ep := &DepthwiseEpilogue{Bias: randSlice(r, g.C), Act: ReLU6()}
				const iters = 1 << 12
				bestPeak, bestDw := time.Duration(1<<62), time.Duration(1<<62)
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					peak(iters)
					t1 := time.Now()
					set.DepthwiseConv(&g, in, w, out, ep, 0, g.OH)
					t2 := time.Now()
					bestPeak, bestDw = min(bestPeak, t1.Sub(t0)), min(bestDw, t2.Sub(t1))
				}
				pk := peakFlops * iters / bestPeak.Seconds() / 1e9
				d := 2 * float64(g.MACs()) / bestDw.Seconds() / 1e9
				b.ReportMetric(d, "GFLOP/s")
				b.ReportMetric(pk, "peak-GFLOP/s")
				b.ReportMetric(100*d/pk, "%peak")
			})
		}
	}
}
