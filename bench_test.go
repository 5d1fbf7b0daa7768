package edgeresnet

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"

	"github.com/edge-resnet/edge-resnet/internal/engine"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/kernels"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// benchModel builds a torchvision-layout ResNet with random He weights, so
// `go test -bench .` needs no files.
// wino is the EDGE_RESNET_WINOGRAD setting to compile with ("": auto).
func benchModel(b *testing.B, depth int, wino string) *Model {
	g, err := resnet.Build(resnet.Config{Depth: depth}, resnet.HeInit(1))
	if err != nil {
		b.Fatal(err)
	}
	b.Setenv(engine.EnvWinograd, wino)
	m, err := FromModel(&firmware.Model{Graph: g})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func graphMACs(g *graph.Graph) int64 {
	var macs int64
	for i := range g.Nodes {
		macs += g.MACs(i)
	}
	return macs
}

// BenchmarkResNet measures batch-1 224x224 latency of ResNet-18 and -50
// at 1 thread and at all CPUs, reporting ms/image and GFLOP/s (2 FLOPs per
// multiply-accumulate, counted as direct convolution). Each model runs
// with 3x3 convs as im2col+GEMM ("wino=off") and under the automatic
// Winograd policy ("wino=auto", or the EDGE_RESNET_WINOGRAD setting), so
// one run gives the ratio.
func BenchmarkResNet(b *testing.B) {
	b.Logf("kernels: %s", kernels.Selection())
	env := os.Getenv(engine.EnvWinograd)
	for _, depth := range []int{18, 50} {
		for _, wino := range []string{"off", env} {
			m := benchModel(b, depth, wino)
			if wino == "" {
				wino = "auto"
			}
			benchThreads(b, m, fmt.Sprintf("resnet%d/wino=%s", depth, wino))
		}
	}
}

func benchThreads(b *testing.B, m *Model, name string) {
	flops := 2 * float64(graphMACs(m.Graph()))
	for _, threads := range uniqueInts(1, runtime.GOMAXPROCS(0)) {
		b.Run(fmt.Sprintf("%s/threads=%d", name, threads), func(b *testing.B) {
			s := warmSession(b, m, WithThreads(threads))
			defer s.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Run(nil); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec*1e3, "ms/image")
			b.ReportMetric(flops/sec/1e9, "GFLOP/s")
		})
	}
}

func uniqueInts(v ...int) []int {
	var out []int
	for _, x := range v {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}

// BenchmarkBatch measures ResNet-18 (224x224, all CPUs) at batch 1 and 8,
// reporting images/s: a batch runs 1x1 convolutions and the classifier as
// one GEMM over all its images.
func BenchmarkBatch(b *testing.B) {
	m := benchModel(b, 18, "")
	for _, batch := range []int{1, 8} {
		b.Run(fmt.Sprintf("resnet18/batch=%d", batch), func(b *testing.B) {
			s := warmSession(b, m, WithBatch(batch))
			defer s.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.RunBatch(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// warmSession is a session of m with a fixed random input (every image
// of its batch) that has run once.
func warmSession(b *testing.B, m *Model, opts ...SessionOption) *Session {
	s, err := m.NewSession(opts...)
	if err != nil {
		b.Fatal(err)
	}
	in := s.Input()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range in {
		in[i] = float32(r.NormFloat64())
	}
	if _, err := s.RunBatch(s.Batch()); err != nil {
		b.Fatal(err)
	}
	return s
}
