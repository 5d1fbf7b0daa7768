package edgeresnet

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/internal/engine"
	"github.com/edge-resnet/edge-resnet/kernels"
	"github.com/edge-resnet/edge-resnet/quant"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// BenchmarkResNeXtInt8 runs ResNeXt-50 32x4d (224x224, He weights,
// MinMax calibration on 2 random inputs) in int8 at batch 1 and 1 thread,
// quantized twice from the same graph: "fp32" keeps its grouped 3x3
// convolutions in float32 between a dequantization and a quantization
// (QuantizeOptions.KeepFP32: the plans before kernels.GroupConv8), "int8"
// runs them on GroupConv8. Each iteration runs both once, alternating
// which goes first; it reports each one's median latency, their ratio,
// and from the steps' fastest times their sum (steps-ms), the grouped
// convolutions' time and GOP/s (2 operations per multiply-add) and the
// conversions (for fp32 those around the grouped convolutions, and for
// both the input's and the logits'); -v logs each grouped layer. -benchtime=20x -count=3 gives three interleaved rounds.
func BenchmarkResNeXtInt8(b *testing.B) {
	b.Logf("kernels: %s; cpu: %s", kernels.Selection(), kernels.CPU())
	cfg, err := resnet.ParseArch("resnext50_32x4d")
	if err != nil {
		b.Fatal(err)
	}
	g, err := resnet.Build(cfg, resnet.HeInit(1))
	if err != nil {
		b.Fatal(err)
	}
	f, err := graph.Fuse(g)
	if err != nil {
		b.Fatal(err)
	}
	var grouped []int
	for i, nd := range f.Nodes {
		if nd.Op == graph.OpConv && nd.Conv.Groups() > 1 {
			grouped = append(grouped, i)
		}
	}
	runs := []*resnextRun{
		newResNeXtRun(b, "fp32", f, grouped),
		newResNeXtRun(b, "int8", f, nil),
	}
	for i := 0; i < b.N; i++ {
		for k := range runs {
			runs[(i+k)%len(runs)].run(b)
		}
	}
	for _, r := range runs {
		r.report(b)
	}
	b.ReportMetric(runs[1].median()/runs[0].median(), "int8/fp32")
}

// resnextRun is one quantization of BenchmarkResNeXtInt8 with its session
// and timings.
type resnextRun struct {
	name      string
	s         *Session
	steps     []engine.StepInfo
	times     []time.Duration // this run's steps
	best      []time.Duration // the steps' fastest
	latencies []float64       // ms
}

func newResNeXtRun(b *testing.B, name string, f *graph.Graph, keep []int) *resnextRun {
	input := func(_, i int, dst []float32) error {
		r := rand.New(rand.NewPCG(uint64(i), 7))
		for k := range dst {
			dst[k] = float32(r.NormFloat64())
		}
		return nil
	}
	q, _, err := quant.QuantizeGraph(f, 2, input, quant.QuantizeOptions{Method: quant.MinMax, KeepFP32: keep})
	if err != nil {
		b.Fatal(err)
	}
	m, err := FromModel(&firmware.Model{Graph: q})
	if err != nil {
		b.Fatal(err)
	}
	s := warmSession(b, m, WithPrecision(PrecisionInt8), WithThreads(1))
	steps := s.plan.Steps()
	r := &resnextRun{name: name, s: s, steps: steps, times: make([]time.Duration, len(steps)), best: make([]time.Duration, len(steps))}
	for i := range r.best {
		r.best[i] = 1 << 62
	}
	return r
}

func (r *resnextRun) run(b *testing.B) {
	t0 := time.Now()
	if err := r.s.RunProfile(r.times); err != nil {
		b.Fatal(err)
	}
	r.latencies = append(r.latencies, float64(time.Since(t0))/1e6)
	for j, t := range r.times {
		r.best[j] = min(r.best[j], t)
	}
}

func (r *resnextRun) median() float64 {
	v := slices.Sorted(slices.Values(r.latencies))
	return v[len(v)/2]
}

// report gives the median latency and, from the steps' fastest times,
// the grouped convolutions' and (their float32 form) the conversions'.
func (r *resnextRun) report(b *testing.B) {
	var grouped, conv, all time.Duration
	var macs int64
	g := r.s.plan.Graph
	for j, st := range r.steps {
		all += r.best[j]
		switch {
		case st.Op == graph.OpQuantize || st.Op == graph.OpDequantize:
			conv += r.best[j]
		case st.Op == graph.OpConv && g.Nodes[st.Node].Conv.Groups() > 1:
			grouped += r.best[j]
			macs += st.MACs
			in := g.Nodes[g.Nodes[st.Node].Inputs[0]].Shape
			b.Logf("%s %-16s %3dx%3dx%4d /%d  %.3f ms  %6.1f GOP/s  %s", r.name, st.Name, in.H, in.W, in.C,
				g.Nodes[st.Node].Conv.StrideH, r.best[j].Seconds()*1e3, 2*float64(st.MACs)/r.best[j].Seconds()/1e9, st.Kernel)
		}
	}
	b.ReportMetric(r.median(), r.name+"-ms")
	b.ReportMetric(all.Seconds()*1e3, r.name+"-steps-ms")
	b.ReportMetric(grouped.Seconds()*1e3, r.name+"-grouped-ms")
	b.ReportMetric(2*float64(macs)/grouped.Seconds()/1e9, r.name+"-grouped-GOP/s")
	b.ReportMetric(conv.Seconds()*1e3, r.name+"-conversions-ms")
}
