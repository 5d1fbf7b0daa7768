package engine

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// relu6Nets are the networks of BenchmarkClipFolding: torchvision's
// ResNet-18 (224x224) and the CIFAR ResNet-20 with every ReLU a ReLU6, and
// MobileNet v1 0.5 (224x224: depthwise and 1x1 convs, each with BatchNorm
// folded and ReLU6), random weights.
var relu6Nets = []struct {
	name  string
	build func() (*graph.Graph, error)
}{
	{"resnet18", func() (*graph.Graph, error) { return relu6ResNet(resnet.Config{Depth: 18}) }},
	{"cifar-resnet20", func() (*graph.Graph, error) { return relu6ResNet(resnet.Config{CIFAR: true, Depth: 20}) }},
	{"mobilenet-v1-0.5", func() (*graph.Graph, error) { return mobileNetV1(224, 0.5), nil }},
}

func relu6ResNet(cfg resnet.Config) (*graph.Graph, error) {
	g, err := resnet.Build(cfg, resnet.HeInit(1))
	if err != nil {
		return nil, err
	}
	for _, n := range g.Nodes {
		if n.Op == graph.OpRelu {
			n.Op, n.Clip = graph.OpClip, &graph.Clip{Max: 6}
		}
	}
	return g, nil
}

// mobileNetV1 is MobileNet v1 at the given width multiplier on h x h
// inputs, with ReLU6 after every conv.
func mobileNetV1(h int, width float64) *graph.Graph {
	r := rand.New(rand.NewPCG(1, 2))
	w := func(n, fan int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * math.Sqrt(2/float64(fan)))
		}
		return v
	}
	g := &graph.Graph{}
	x := g.Add(&graph.Node{Name: "in", Op: graph.OpInput, Shape: graph.Shape{H: h, W: h, C: 3}})
	conv := func(x, k, s, cin, cout, groups int) int {
		c := g.Add(&graph.Node{Name: "conv", Op: graph.OpConv, Inputs: []int{x}, Conv: &graph.Conv{KH: k, KW: k, StrideH: s, StrideW: s, DilH: 1, DilW: 1,
			Pad: graph.Pads{Top: k / 2, Left: k / 2, Bottom: k / 2, Right: k / 2}, Cin: cin, Cout: cout, Group: groups,
			Weight: w(k*k*cin/groups*cout, k*k*cin/groups), Bias: w(cout, 1)}})
		return g.Add(&graph.Node{Name: "relu6", Op: graph.OpClip, Inputs: []int{c}, Clip: &graph.Clip{Max: 6}})
	}
	ch := func(c int) int { return int(float64(c) * width) }
	c := ch(32)
	x = conv(x, 3, 2, 3, c, 1)
	for _, b := range [][2]int{{64, 1}, {128, 2}, {128, 1}, {256, 2}, {256, 1}, {512, 2}, {512, 1}, {512, 1}, {512, 1}, {512, 1}, {512, 1}, {1024, 2}, {1024, 1}} {
		x = conv(x, 3, b[1], c, c, c)
		x = conv(x, 1, 1, c, ch(b[0]), 1)
		c = ch(b[0])
	}
	x = g.Add(&graph.Node{Name: "pool", Op: graph.OpGlobalAvgPool, Inputs: []int{x}})
	g.Output = g.Add(&graph.Node{Name: "fc", Op: graph.OpDense, Inputs: []int{x}, Dense: &graph.Dense{In: c, Out: 1000, Weight: w(c*1000, c), Bias: w(1000, 1)}})
	return g
}

// BenchmarkClipFolding runs the ReLU6 networks at 1 thread with their
// Clips folded into the layers before them (plans' default) and run as
// steps of their own (as before), alternating the two plans every
// iteration so that both see the same machine load. It reports each
// plan's fastest run (min-ms), its sum over steps of each step's fastest
// time (steps-ms, which contention from other processes inflates less)
// and the ratios folded/steps (-benchtime 30x gives 30 runs of each).
func BenchmarkClipFolding(b *testing.B) {
	for _, net := range relu6Nets {
		b.Run(net.name, func(b *testing.B) {
			g, err := net.build()
			if err != nil {
				b.Fatal(err)
			}
			var ex [2]*Exec
			var best [2]time.Duration
			var steps [2][]time.Duration
			for i, clipSteps := range []bool{true, false} {
				p, err := CompileWith(g, CompileOptions{clipSteps: clipSteps})
				if err != nil {
					b.Fatal(err)
				}
				ex[i], _ = NewExec(p, 1)
				defer ex[i].Close()
				best[i] = math.MaxInt64
				steps[i] = make([]time.Duration, len(p.steps))
				for k := range steps[i] {
					steps[i][k] = math.MaxInt64
				}
			}
			in := randInput(rand.New(rand.NewPCG(1, 2)), g.Input().Size())
			times := make([]time.Duration, max(len(steps[0]), len(steps[1])))
			for b.Loop() {
				for i, e := range ex {
					t0 := time.Now()
					e.RunProfile(in, times[:len(steps[i])])
					best[i] = min(best[i], time.Since(t0))
					for k, t := range times[:len(steps[i])] {
						steps[i][k] = min(steps[i][k], t)
					}
				}
			}
			var sum [2]time.Duration
			for i := range sum {
				for _, t := range steps[i] {
					sum[i] += t
				}
			}
			ms := func(d time.Duration) float64 { return d.Seconds() * 1e3 }
			b.ReportMetric(ms(best[0]), "steps-min-ms")
			b.ReportMetric(ms(best[1]), "folded-min-ms")
			b.ReportMetric(ms(best[1])/ms(best[0]), "folded/steps")
			b.ReportMetric(ms(sum[0]), "steps-stepsum-ms")
			b.ReportMetric(ms(sum[1]), "folded-stepsum-ms")
			b.ReportMetric(ms(sum[1])/ms(sum[0]), "folded/steps-stepsum")
		})
	}
}
