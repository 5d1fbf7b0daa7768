//go:build gc && !purego && kernelbench

package kernels

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkGroupConvVsPeak interleaves the FMA-peak loop, GroupConvGemm
// and GroupConvDirect (bias + ReLU, one thread) per iteration on each
// ResNeXt-50 shape and reports the best time of each as GFLOP/s and as a
// share of the peak, which holds on a machine shared with other jobs
// (like BenchmarkDepthwiseVsPeak). Use -benchtime=50x or so:
//
//	go test -tags kernelbench -run '^$' -bench GroupConvVsPeak -benchtime 50x ./kernels
func BenchmarkGroupConvVsPeak(b *testing.B) {
	for _, set := range groupConvSets() {
		var peak func(int)
		var peakFlops float64
		switch set.Name() {
		case "avx2":
			peak, peakFlops = fmaPeakAVX2, 12*8*2
		case "avx512", "avx512vnni":
			peak, peakFlops = fmaPeakAVX512, 12*16*2
		default:
			continue
		}
		for _, s := range gcBenchShapes {
			b.Run(fmt.Sprintf("%s/%v", set.Name(), s), func(b *testing.B) {
				g, runs := gcBenchRuns(set, s)
				const iters = 1 << 12
				bestPeak := time.Duration(1 << 62)
				best := []time.Duration{1 << 62, 1 << 62}
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					peak(iters)
					bestPeak = min(bestPeak, time.Since(t0))
					for k, r := range runs {
						t0 := time.Now()
						r.run()
						best[k] = min(best[k], time.Since(t0))
					}
				}
				pk := peakFlops * iters / bestPeak.Seconds() / 1e9
				flops := 2 * float64(g.Pixels()*g.Cout*9*g.C/s.groups)
				b.ReportMetric(pk, "peak-GFLOP/s")
				for k, r := range runs {
					d := flops / best[k].Seconds() / 1e9
					b.ReportMetric(d, r.name+"-GFLOP/s")
					b.ReportMetric(100*d/pk, r.name+"-%peak")
				}
			})
		}
	}
}
