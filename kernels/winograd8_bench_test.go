package kernels

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// BenchmarkWinograd8Layers compares, on the 3x3 layers of the ResNets at
// one thread, the int8 convolution as im2col + GemmU8 (the int8 GEMM of
// the default Set: force one with EDGE_RESNET_KERNELS) with Winograd8 on
// every implementation this CPU runs, and the int16 GEMM of each
// implementation on the im2col matrix (GEMM only: the cost of the same
// multiplies without Winograd's 2.25x saving, for the arithmetic in
// docs/INT8.md). Metrics: "GOP/s" counts 2·9·Cin·Cout per output pixel
// (direct-convolution MACs) whatever the algorithm; "xform-ms" is im2col,
// or the input and output transforms (with the requantization); "gemm-ms"
// the GEMMs (with GemmU8's requantization).
func BenchmarkWinograd8Layers(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	// cpuStart and cpuSince measure the CPU time of the sub-benchmark's
	// thread around its loop (each b.Run is its own goroutine).
	var c0 time.Duration
	cpuStart := func() {
		runtime.LockOSThread()
		c0, _ = threadCPU()
	}
	cpuSince := func() time.Duration {
		c1, ok := threadCPU()
		runtime.UnlockOSThread()
		if !ok {
			return 0
		}
		return c1 - c0
	}
	for _, l := range realLayers {
		g := geom3x3(l.hw, l.hw, l.c, l.c, 1, 1, 1, 1)
		in, q, rq := randConv8(r, &g, 1)
		rq.ZeroA = 0 // post-ReLU activations
		out := make([]uint8, g.OH*g.OW*g.Cout)
		ops := 2 * 9 * float64(l.c*l.c*l.hw*l.hw)
		report := func(b *testing.B, xform, gemmT, cpu time.Duration) {
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec*1e3, "ms")
			b.ReportMetric(ops/sec/1e9, "GOP/s")
			if cpu > 0 {
				csec := cpu.Seconds() / float64(b.N)
				b.ReportMetric(csec*1e3, "cpu-ms")
				b.ReportMetric(ops/csec/1e9, "cpu-GOP/s")
			}
			b.ReportMetric(xform.Seconds()*1e3/float64(b.N), "xform-ms")
			b.ReportMetric(gemmT.Seconds()*1e3/float64(b.N), "gemm-ms")
		}
		b.Run(l.name+"/im2col-gemmU8-"+Best().Gemm8Name(), func(b *testing.B) {
			pb := packConv8(Best(), &g, q)
			scratch := make([]uint8, conv8Rows*pb.K)
			b.ResetTimer()
			cpuStart()
			var xform, gemmT time.Duration
			for i := 0; i < b.N; i++ {
				for b0 := 0; b0 < g.Pixels(); b0 += conv8Rows {
					b1 := min(g.Pixels(), b0+conv8Rows)
					t0 := time.Now()
					im2colU8(&g, in, scratch, pb.K, b0, b1, uint8(rq.ZeroA))
					t1 := time.Now()
					GemmU8(b1-b0, scratch, pb.K, &pb, out[b0*g.Cout:], g.Cout, rq, 0, pb.Panels())
					xform, gemmT = xform+t1.Sub(t0), gemmT+time.Since(t1)
				}
			}
			report(b, xform, gemmT, cpuSince())
		})
		for _, impl := range wino8Reg.usable() {
			b.Run(l.name+"/winograd8-"+impl.name, func(b *testing.B) {
				set := *Best()
				set.wino8 = impl
				w, err := set.NewWinograd8(&g, q)
				if err != nil {
					b.Fatal(err)
				}
				s := w.cut(make([]byte, w.Scratch()))
				b.ResetTimer()
				cpuStart()
				var xform, gemmT time.Duration
				for i := 0; i < b.N; i++ {
					step := w.blockStep(w.Tiles())
					for b0 := 0; b0 < w.Tiles(); b0 += step {
						nt := min(step, w.Tiles()-b0)
						t0 := time.Now()
						w.inputBlock(in, rq.ZeroA, b0, nt, &s)
						t1 := time.Now()
						w.gemmBlock(nt, 0, w.Panels(), &s)
						t2 := time.Now()
						w.outputBlock(out, rq, b0, nt, 0, w.Panels(), &s)
						xform += t1.Sub(t0) + time.Since(t2)
						gemmT += t2.Sub(t1)
					}
				}
				report(b, xform, gemmT, cpuSince())
			})
			b.Run(l.name+"/im2col16-gemmonly-"+impl.name, func(b *testing.B) {
				// The im2col matrix as int16 pairs (K = 9·Cin, even) against
				// the weights packed like U, into int32.
				k2 := 9 * l.c / 2
				nr := impl.nr
				panels := (l.c + nr - 1) / nr
				a := make([]int16, conv8Rows*2*k2)
				for i := range a {
					a[i] = int16(r.IntN(256))
				}
				bp := make([]int16, panels*k2*nr*2)
				for i := range bp {
					bp[i] = int16(q[i%len(q)])
				}
				c := make([]int32, conv8Rows*panels*nr)
				b.ResetTimer()
				cpuStart()
				var gemmT time.Duration
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					for b0 := 0; b0 < g.Pixels(); b0 += conv8Rows {
						m := min(g.Pixels()-b0, conv8Rows)
						for p := 0; p < panels; p++ {
							impl.gemm(m, k2, a, 2*k2, bp[p*k2*nr*2:], c[p*nr:], panels*nr)
						}
					}
					gemmT += time.Since(t0)
				}
				report(b, 0, gemmT, cpuSince())
			})
		}
	}
}

// BenchmarkWinograd8Gemm is the int16 GEMM alone on operands that stay in
// cache (one panel, a block of rows), reporting GMAC/s (int16 products).
func BenchmarkWinograd8Gemm(b *testing.B) {
	for _, impl := range wino8Reg.usable()[1:] {
		for _, k2 := range []int{32, 128, 256} {
			m := impl.mr * 6
			nr := impl.nr
			a := make([]int16, m*2*k2)
			bp := make([]int16, k2*nr*2)
			c := make([]int32, m*nr)
			b.Run(fmt.Sprintf("%s/m=%d/k=%d", impl.name, m, 2*k2), func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				c0, _ := threadCPU()
				for i := 0; i < b.N; i++ {
					impl.gemm(m, k2, a, 2*k2, bp, c, nr)
				}
				macs := float64(m*nr*2*k2) * float64(b.N)
				b.ReportMetric(macs/b.Elapsed().Seconds()/1e9, "GMAC/s")
				if c1, ok := threadCPU(); ok {
					b.ReportMetric(macs/(c1-c0).Seconds()/1e9, "cpu-GMAC/s")
				}
			})
		}
	}
}

// BenchmarkWinograd8Cold runs Winograd8 on the layers with the caches
// flushed before each run (a 64 MiB buffer written in between, outside the
// timing), as in a network where each layer's weights come from DRAM once
// per image: cold cpu-ms minus the warm figure of BenchmarkWinograd8Layers
// is the cost of streaming U (3.6x the bytes of the int8 weights).
func BenchmarkWinograd8Cold(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	flush := make([]byte, 64<<20)
	for _, l := range realLayers[:4] {
		g := geom3x3(l.hw, l.hw, l.c, l.c, 1, 1, 1, 1)
		in, q, rq := randConv8(r, &g, 1)
		rq.ZeroA = 0
		out := make([]uint8, g.OH*g.OW*g.Cout)
		ops := 2 * 9 * float64(l.c*l.c*l.hw*l.hw)
		for _, impl := range wino8Reg.usable()[1:] {
			b.Run(l.name+"/winograd8-"+impl.name, func(b *testing.B) {
				set := *Best()
				set.wino8 = impl
				w, err := set.NewWinograd8(&g, q)
				if err != nil {
					b.Fatal(err)
				}
				scratch := make([]byte, w.Scratch())
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var cpu time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					for j := 0; j < len(flush); j += 64 {
						flush[j]++
					}
					b.StartTimer()
					c0, _ := threadCPU()
					w.Run(in, out, rq, 0, w.Tiles(), 0, w.Panels(), scratch)
					c1, _ := threadCPU()
					cpu += c1 - c0
				}
				if cpu > 0 {
					csec := cpu.Seconds() / float64(b.N)
					b.ReportMetric(csec*1e3, "cpu-ms")
					b.ReportMetric(ops/csec/1e9, "cpu-GOP/s")
				}
			})
		}
	}
}
