package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// dwBenchShapes are the 3x3 depthwise layers of MobileNet-style depthwise
// residual nets at 224x224 (pad 1), as H, W, C, stride.
var dwBenchShapes = [][4]int{
	{112, 112, 32, 1},
	{112, 112, 64, 2},
	{56, 56, 128, 1},
	{56, 56, 128, 2},
	{28, 28, 256, 1},
	{28, 28, 256, 2},
	{14, 14, 512, 1},
	{14, 14, 512, 2},
	{7, 7, 1024, 1},
}

// dwTailShapes are 3x3 depthwise layers whose channel count is not a
// multiple of 16 (C = 8, 24, 40: a 16-lane path leaves 8 channels over),
// as in small nets (the depthwise_res fixture's 16x16x8 layer) and
// MobileNet v2/v3 (24 and 40 channels).
var dwTailShapes = [][4]int{
	{16, 16, 8, 1},
	{56, 56, 8, 1},
	{56, 56, 24, 1},
	{56, 56, 24, 2},
	{28, 28, 40, 1},
	{28, 28, 40, 2},
}

func dwBenchGeom(s [4]int) DepthwiseGeom {
	g := DepthwiseGeom{H: s[0], W: s[1], C: s[2], KH: 3, KW: 3, StrideH: s[3], StrideW: s[3], DilH: 1, DilW: 1,
		PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	g.SetOutput()
	return g
}

// BenchmarkDepthwise3x3 times DepthwiseConv (bias + ReLU6, one thread, the
// whole image per call) on each path; GFLOP/s counts 2 FLOPs per
// multiply-add of OH*OW*C*9, best-GFLOP/s is the fastest call's (robust
// on a shared machine).
func BenchmarkDepthwise3x3(b *testing.B) {
	b.Logf("cpu: %s", CPU())
	for _, set := range depthwiseSets() {
		for _, s := range dwBenchShapes {
			g := dwBenchGeom(s)
			b.Run(fmt.Sprintf("%s/%dx%dx%d_s%d", set.Name(), g.H, g.W, g.C, g.StrideH), func(b *testing.B) {
				benchDepthwise32(b, set, &g)
			})
		}
	}
}

// BenchmarkDepthwise8 times Depthwise8 (bias, ReLU) on the same layers;
// GOP/s counts 2 operations per multiply-add.
func BenchmarkDepthwise8(b *testing.B) {
	for _, set := range depthwiseSets() {
		for _, s := range dwBenchShapes {
			g := dwBenchGeom(s)
			b.Run(fmt.Sprintf("%s/%dx%dx%d_s%d", set.Name(), g.H, g.W, g.C, g.StrideH), func(b *testing.B) {
				benchDepthwise8(b, set, &g)
			})
		}
	}
}

// BenchmarkDepthwiseTail times DepthwiseConv and Depthwise8 as the two
// benchmarks above on dwTailShapes, whose channels do not fill the
// 16-lane vectors.
func BenchmarkDepthwiseTail(b *testing.B) {
	b.Logf("cpu: %s", CPU())
	for _, set := range depthwiseSets() {
		for _, s := range dwTailShapes {
			g := dwBenchGeom(s)
			name := fmt.Sprintf("%s/%dx%dx%d_s%d", set.Name(), g.H, g.W, g.C, g.StrideH)
			b.Run("fp32/"+name, func(b *testing.B) { benchDepthwise32(b, set, &g) })
			b.Run("int8/"+name, func(b *testing.B) { benchDepthwise8(b, set, &g) })
		}
	}
}

// benchDepthwise32 times DepthwiseConv on g (bias + ReLU6).
func benchDepthwise32(b *testing.B, set *Set, g *DepthwiseGeom) {
	r := rand.New(rand.NewPCG(1, 1))
	in, w := randSlice(r, g.H*g.W*g.C), randSlice(r, 9*g.C)
	out := make([]float32, g.OH*g.OW*g.C)
	ep := &DepthwiseEpilogue{Bias: randSlice(r, g.C), Act: ReLU6()}
	best := time.Duration(1 << 62)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		set.DepthwiseConv(g, in, w, out, ep, 0, g.OH)
		best = min(best, time.Since(t0))
	}
	b.ReportMetric(2*float64(g.MACs())*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(2*float64(g.MACs())/best.Seconds()/1e9, "best-GFLOP/s")
}

// benchDepthwise8 times Depthwise8 on g (bias, ReLU).
func benchDepthwise8(b *testing.B, set *Set, g *DepthwiseGeom) {
	r := rand.New(rand.NewPCG(1, 1))
	in, w := randU8(r, g.H*g.W*g.C), make([]int8, 9*g.C)
	for i := range w {
		w[i] = int8(r.IntN(255) - 127)
	}
	out := make([]uint8, g.OH*g.OW*g.C)
	rq := &Requant{ZeroA: 7, Bias: make([]int32, g.C), Scale: make([]float32, g.C), ZeroOut: 3, Lo: 3}
	for i := range rq.Scale {
		rq.Scale[i] = 1.0 / 4096
	}
	best := time.Duration(1 << 62)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		set.Depthwise8(g, in, w, out, rq, 255, 0, g.OH)
		best = min(best, time.Since(t0))
	}
	b.ReportMetric(2*float64(g.MACs())*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
	b.ReportMetric(2*float64(g.MACs())/best.Seconds()/1e9, "best-GOP/s")
}
