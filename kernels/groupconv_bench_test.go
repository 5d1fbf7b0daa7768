package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// gcBenchShape is one grouped 3x3 convolution (pad 1) of ResNeXt-50 32x4d
// at 224x224: input H x W x C (C = Cout), groups, stride.
type gcBenchShape struct{ h, w, c, groups, stride int }

func (s gcBenchShape) String() string {
	return fmt.Sprintf("%dx%dx%d_g%d_s%d", s.h, s.w, s.c, s.groups, s.stride)
}

// gcBenchShapes are ResNeXt-50 32x4d's grouped convolutions: per stage the
// stride-1 layer (3, 3, 5 and 2 of them) and the stride-2 first block of
// stages 2 to 4.
var gcBenchShapes = []gcBenchShape{
	{56, 56, 128, 32, 1},
	{56, 56, 256, 32, 2},
	{28, 28, 256, 32, 1},
	{28, 28, 512, 32, 2},
	{14, 14, 512, 32, 1},
	{14, 14, 1024, 32, 2},
	{7, 7, 1024, 32, 1},
}

func gcBenchGeom(s gcBenchShape) ConvGeom {
	g := ConvGeom{H: s.h, W: s.w, C: s.c, Cout: s.c, KH: 3, KW: 3, StrideH: s.stride, StrideW: s.stride,
		DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1}
	g.OH, g.OW = (s.h-1)/s.stride+1, (s.w-1)/s.stride+1
	return g
}

// gcBenchRun is one way of computing a grouped convolution (the whole
// image, bias and ReLU, one thread), set up on one Set.
type gcBenchRun struct {
	name string
	run  func()
}

// gcBenchRuns sets up GroupConvGemm and GroupConvDirect (its Go code on
// the generic path) for shape s on set.
func gcBenchRuns(set *Set, s gcBenchShape) (g ConvGeom, runs []gcBenchRun) {
	g = gcBenchGeom(s)
	r := rand.New(rand.NewPCG(1, 1))
	in, w := randSlice(r, g.H*g.W*g.C), randSlice(r, 9*g.C/s.groups*g.Cout)
	bias := randSlice(r, g.Cout)
	out := make([]float32, g.Pixels()*g.Cout)
	gw := set.PackGrouped(&g, s.groups, w)
	gsc := make([]float32, GroupConvGemmScratch(&g, &gw))
	gep := &Epilogue{Bias: bias, Relu: true}
	dw := set.PackGroupDirect(&g, s.groups, w)
	dsc := make([]float32, GroupConvDirectScratch(&g, &dw))
	dep := &GroupEpilogue{Bias: bias, Act: ReLU()}
	runs = []gcBenchRun{
		{"gemm", func() { GroupConvGemm(&g, &gw, in, out, gep, 0, g.Pixels(), gsc) }},
		{"direct", func() { GroupConvDirect(&g, &dw, in, out, dep, 0, g.OH, dsc) }},
	}
	return g, runs
}

// BenchmarkGroupConv times, per path and ResNeXt-50 shape, GroupConvGemm
// (gemm) and GroupConvDirect (direct; the Go code on the generic path),
// interleaved: each iteration runs each once.
// GFLOP/s counts 2 FLOPs per multiply-add (OH*OW*Cout*9*C/G), from the
// fastest call of each (robust on a shared machine). Use -benchtime=20x
// or so; BenchmarkGroupConvVsPeak (-tags kernelbench) adds the FMA peak.
func BenchmarkGroupConv(b *testing.B) {
	b.Logf("cpu: %s", CPU())
	for _, set := range groupConvSets() {
		for _, s := range gcBenchShapes {
			b.Run(fmt.Sprintf("%s/%v", set.Name(), s), func(b *testing.B) {
				g, runs := gcBenchRuns(set, s)
				reportBestRates(b, runs, 2*float64(g.Pixels()*g.Cout*9*g.C/s.groups), "-GFLOP/s")
			})
		}
	}
}

// reportBestRates runs the runs in turn b.N times and reports, for each,
// ops per second of its fastest call (robust on a shared machine) in
// units of 1e9, as name+unit.
func reportBestRates(b *testing.B, runs []gcBenchRun, ops float64, unit string) {
	best := make([]time.Duration, len(runs))
	for i := range best {
		best[i] = 1 << 62
	}
	for i := 0; i < b.N; i++ {
		for k, r := range runs {
			t0 := time.Now()
			r.run()
			best[k] = min(best[k], time.Since(t0))
		}
	}
	for k, r := range runs {
		b.ReportMetric(ops/best[k].Seconds()/1e9, r.name+unit)
	}
}
