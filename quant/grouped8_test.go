package quant

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/internal/engine"
	"github.com/edge-resnet/edge-resnet/kernels"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// TestInt8Grouped quantizes a net whose first bottleneck's 3x3 conv is
// depthwise (16 groups of 1; later stages have 2 channels per group) and a
// ResNeXt-style one (groups of 4): depthwise convs run in int8 on
// kernels.Depthwise8, the other groupings on kernels.GroupConv8, with no
// float32 step between the input's quantization and the logits'
// dequantization. Each grouped conv's uint8 output must equal the int8
// definition evaluated in Go on its uint8 input (refInt8Conv), the
// output the same bytes on every kernel path, at 1 and 3 threads and
// batched, and close to fp32.
func TestInt8Grouped(t *testing.T) {
	for name, cfg := range map[string]resnet.Config{
		"depthwise": {Blocks: []int{1, 1, 1, 1}, BaseWidth: 16, Bottleneck: true, Groups: 16, WidthPerGroup: 4, Height: 20, Width: 20, Classes: 10},
		"resnext":   {Blocks: []int{1, 1, 1, 1}, BaseWidth: 16, Bottleneck: true, Groups: 4, WidthPerGroup: 16, Height: 20, Width: 20, Classes: 10},
	} {
		t.Run(name, func(t *testing.T) {
			g, err := resnet.Build(cfg, resnet.HeInit(6))
			if err != nil {
				t.Fatal(err)
			}
			q, _ := quantizeForTest(t, g, 3, QuantizeOptions{Method: MinMax, Workers: 2})
			in := make([]float32, 2*g.Input().Size())
			calibInput(1100, in[:len(in)/2])
			calibInput(1101, in[len(in)/2:])
			var ref []byte
			for _, ks := range kernels.Sets() {
				path := ks.Name()
				p8, err := engine.CompileWith(q, engine.CompileOptions{Precision: engine.Int8, Batch: 2, KeepValues: true, Kernels: ks})
				if err != nil {
					t.Fatal(err)
				}
				checkGroupedSteps(t, p8, name == "depthwise")
				for _, threads := range []int{1, 3} {
					e, _ := engine.NewExec(p8, threads)
					out, err := e.Run(in)
					if err != nil {
						t.Fatal(err)
					}
					checkGroupedValues(t, p8, e)
					got := float32Bytes(out)
					if ref == nil {
						ref = got
						checkClose(t, g, in, out)
					} else if !bytes.Equal(got, ref) {
						t.Fatalf("%s, %d threads: output differs", path, threads)
					}
					e.Close()
				}
			}
		})
	}
}

// checkGroupedSteps checks that every conv of p runs in int8, grouped ones
// on the int8 grouped GEMM and depthwise ones (there are some iff
// depthwise) on the int8 depthwise kernel, and that the only float32
// steps are the input's quantization and the logits' dequantization.
func checkGroupedSteps(t *testing.T, p *engine.Plan, depthwise bool) {
	t.Helper()
	dw, grouped, conversions := 0, 0, 0
	for _, s := range p.Steps() {
		nd := p.Graph.Nodes[s.Node]
		switch {
		case s.Op == graph.OpQuantize || s.Op == graph.OpDequantize:
			conversions++
		case !s.Int8 || !strings.HasPrefix(s.Kernel, "int8 "):
			t.Errorf("%s: step %s (%v) runs in fp32: %s", p.Kernels.Name(), s.Name, s.Op, s.Kernel)
		case s.Op == graph.OpConv && nd.Conv.Groups() > 1:
			c := nd.Conv
			if c.Groups() == c.Cin && c.Cin == c.Cout {
				dw++
				if !strings.HasPrefix(s.Kernel, "int8 depthwise/") {
					t.Errorf("depthwise %s runs on %s", s.Name, s.Kernel)
				}
			} else if grouped++; !strings.HasPrefix(s.Kernel, "int8 grouped gemm/") {
				t.Errorf("grouped %s runs on %s", s.Name, s.Kernel)
			}
		}
	}
	if conversions != 2 || grouped == 0 || depthwise != (dw > 0) {
		t.Fatalf("%s: %d conversions (want 2), %d int8 grouped and %d int8 depthwise steps: %v",
			p.Kernels.Name(), conversions, grouped, dw, p.Steps())
	}
}

// checkGroupedValues compares the value of each grouped (not depthwise)
// conv of p, after a run of e (KeepValues), with refInt8Conv on the
// values of its inputs.
func checkGroupedValues(t *testing.T, p *engine.Plan, e *engine.Exec) {
	t.Helper()
	for i, nd := range p.Graph.Nodes {
		c := nd.Conv
		if nd.Op != graph.OpConv || c.Groups() == 1 || c.Groups() == c.Cin && c.Cin == c.Cout {
			continue
		}
		var res []byte
		if len(nd.Inputs) == 2 {
			res = e.ValueBytes(nd.Inputs[1])
		}
		want := refInt8Conv(p.Graph, i, e.ValueBytes(nd.Inputs[0]), res)
		if got := e.ValueBytes(i); !bytes.Equal(got, want) {
			t.Fatalf("%s: grouped conv %s differs from the int8 definition (%d bytes)", p.Kernels.Name(), nd.Name, len(want))
		}
	}
}

// refInt8Conv is the int8 definition of conv node i of the quantized
// graph q (docs/INT8.md), in direct loops over every sample of x (uint8
// with its input's parameters; res the residual's, or nil): int32 sums of
// (x - zIn)·w over the group's taps inside the input plus the bias in
// accumulator units, round(bias/(sIn·sW)), then kernels.Requantize with
// Scale = sIn·sW/sOut (float64, rounded to float32), the residual's
// sRes/sOut and a ReLU's floor at the output's zero point.
func refInt8Conv(q *graph.Graph, i int, x, res []byte) []byte {
	nd := q.Nodes[i]
	c, xs, os := nd.Conv, q.Nodes[nd.Inputs[0]].Shape, nd.Shape
	qIn, qOut := *q.Nodes[nd.Inputs[0]].Quant, *nd.Quant
	var qRes graph.QParams
	if res != nil {
		qRes = *q.Nodes[nd.Inputs[1]].Quant
	}
	lo := int32(0)
	if nd.Relu {
		lo = qOut.Zero
	}
	cig, cog := c.GroupIn(), c.Cout/c.Groups()
	out := make([]byte, len(x)/xs.Size()*os.Size())
	for j := range out {
		b, p, co := j/os.Size(), j%os.Size()/os.C, j%os.C
		sx := x[b*xs.Size():]
		acc := int32(0)
		sw := float64(qIn.Scale) * float64(c.Quant.Scale[co])
		if c.Bias != nil {
			acc = int32(min(max(math.RoundToEven(float64(c.Bias[co])/sw), math.MinInt32), math.MaxInt32))
		}
		for kh := range c.KH {
			for kw := range c.KW {
				ih, iw := p/os.W*c.StrideH-c.Pad.Top+kh*c.DilH, p%os.W*c.StrideW-c.Pad.Left+kw*c.DilW
				if ih < 0 || ih >= xs.H || iw < 0 || iw >= xs.W {
					continue
				}
				for ci := range cig {
					v := int32(sx[(ih*xs.W+iw)*xs.C+co/cog*cig+ci]) - qIn.Zero
					acc += v * int32(c.Quant.Q[((kh*c.KW+kw)*cig+ci)*c.Cout+co])
				}
			}
		}
		var r byte
		if res != nil {
			r = res[j]
		}
		out[j] = kernels.Requantize(acc, float32(sw/float64(qOut.Scale)), res != nil, r, qRes.Zero,
			float32(float64(qRes.Scale)/float64(qOut.Scale)), qOut.Zero, lo)
	}
	return out
}

func float32Bytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		u := math.Float32bits(x)
		b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
	}
	return b
}

// checkClose compares int8 logits with the float graph's by cosine
// similarity.
func checkClose(t *testing.T, g interface {
	Eval([]float32) ([]float32, error)
}, in, got []float32) {
	t.Helper()
	want, err := g.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	var dot, n1, n2 float64
	for i := range want {
		dot += float64(want[i]) * float64(got[i])
		n1 += float64(want[i]) * float64(want[i])
		n2 += float64(got[i]) * float64(got[i])
	}
	if cos := dot / math.Sqrt(n1*n2); !(cos > 0.97) {
		t.Errorf("int8 vs fp32 cosine similarity %.4f", cos)
	}
}
