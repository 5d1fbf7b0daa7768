package quant

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/internal/engine"
	"github.com/edge-resnet/edge-resnet/resnet"

	"github.com/edge-resnet/edge-resnet/kernels"
)

// calibInput is a deterministic calibration or test input.
func calibInput(i int, dst []float32) {
	r := rand.New(rand.NewPCG(uint64(i), 77))
	for k := range dst {
		dst[k] = float32(r.NormFloat64())
	}
}

func quantizeForTest(t *testing.T, g *graph.Graph, n int, opt QuantizeOptions) (*graph.Graph, []LayerQuant) {
	t.Helper()
	q, layers, err := QuantizeGraph(g, n, func(_, i int, dst []float32) error { calibInput(i, dst); return nil }, opt)
	if err != nil {
		t.Fatal(err)
	}
	return q, layers
}

type int8Case struct {
	name string
	cfg  resnet.Config
}

var int8Cases = []int8Case{
	{"resnet18-32px", resnet.Config{Depth: 18, Height: 32, Width: 32, Classes: 100}},
	{"resnet50-32px", resnet.Config{Depth: 50, Height: 32, Width: 32, Classes: 100}},
	{"cifar8-optionA", resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 8, Shortcut: resnet.ShortcutA}},
}

// TestInt8Plan quantizes ResNet-18- and ResNet-50-shaped graphs (and an
// option-A CIFAR net) with a synthetic calibration, and checks that the
// int8 plan runs its layers in int8, stays close to float32, gives
// identical outputs for 1, 2 and 3 threads and allocates nothing.
func TestInt8Plan(t *testing.T) {
	for _, tc := range int8Cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if testing.Short() && !cfg.CIFAR {
				// -short (and arm64 under qemu): the same layers at 16x16.
				cfg.Height, cfg.Width = 16, 16
			}
			g, err := resnet.Build(cfg, resnet.HeInit(3))
			if err != nil {
				t.Fatal(err)
			}
			q, _ := quantizeForTest(t, g, 4, QuantizeOptions{Method: MinMax, Workers: 2})
			p8, err := engine.CompileWith(q, engine.CompileOptions{Precision: engine.Int8})
			if err != nil {
				t.Fatal(err)
			}
			p32, err := engine.Compile(g)
			if err != nil {
				t.Fatal(err)
			}
			convs, int8Convs := 0, 0
			for _, s := range p8.Steps() {
				if s.Op == graph.OpConv {
					convs++
					if strings.HasPrefix(s.Kernel, "int8 ") && (strings.HasSuffix(s.Kernel, "/"+p8.Kernels.Gemm8Name()) || strings.HasPrefix(s.Kernel, "int8 winograd8-f2/")) {
						int8Convs++
					}
				}
			}
			if convs == 0 || int8Convs != convs {
				t.Fatalf("%d of %d convolutions in int8: %v", int8Convs, convs, p8.Steps())
			}
			// Everything stays uint8 from the quantized input to the
			// dequantized output: residual blocks, shortcuts and pooling.
			conversions := 0
			for _, s := range p8.Steps() {
				if s.Op == graph.OpQuantize || s.Op == graph.OpDequantize {
					conversions++
				} else if !strings.HasPrefix(s.Kernel, "int8") {
					t.Errorf("step %s (%v) runs in fp32", s.Name, s.Op)
				}
			}
			if conversions != 2 {
				t.Errorf("%d conversions, want 2 (input and output): %v", conversions, p8.Steps())
			}
			in := make([]float32, g.Input().Size())
			calibInput(1000, in)
			var ref []float32
			for _, threads := range []int{1, 2, 3} {
				e, err := engine.NewExec(p8, threads)
				if err != nil {
					t.Fatal(err)
				}
				out, err := e.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				if ref == nil {
					ref = slices.Clone(out)
				} else if !slices.Equal(out, ref) {
					t.Fatalf("%d threads: output differs from 1 thread", threads)
				}
				if threads == 2 {
					if a := testing.AllocsPerRun(3, func() { e.Run(nil) }); a != 0 {
						t.Errorf("int8 Run allocates %v times", a)
					}
				}
				e.Close()
			}
			e32, _ := engine.NewExec(p32, 1)
			want, _ := e32.Run(in)
			// Cosine similarity of the logits: a broken int8 path gives
			// noise (near 0), a working one stays near 1.
			var dot, n1, n2 float64
			for i := range want {
				dot += float64(want[i]) * float64(ref[i])
				n1 += float64(want[i]) * float64(want[i])
				n2 += float64(ref[i]) * float64(ref[i])
			}
			cos := dot / math.Sqrt(n1*n2)
			t.Logf("int8 vs fp32 cosine %.4f; %v", cos, p8)
			if !(cos > 0.97) {
				t.Errorf("int8 vs fp32 cosine similarity %.4f", cos)
			}
		})
	}
}

func TestQuantizeGraphOptions(t *testing.T) {
	g, err := resnet.Build(resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 8, Shortcut: resnet.ShortcutA}, resnet.HeInit(4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.CompileWith(g, engine.CompileOptions{Precision: engine.Int8}); err == nil || !strings.Contains(err.Error(), "no int8 data") {
		t.Errorf("int8 plan of a float graph: %v", err)
	}
	f, err := graph.Fuse(g)
	if err != nil {
		t.Fatal(err)
	}
	// Worker count does not change the result.
	a, la := quantizeForTest(t, f, 5, QuantizeOptions{Method: Entropy, Workers: 1})
	b, _ := quantizeForTest(t, f, 5, QuantizeOptions{Method: Entropy, Workers: 3})
	for i := range a.Nodes {
		qa, qb := a.Nodes[i].Quant, b.Nodes[i].Quant
		if (qa == nil) != (qb == nil) || qa != nil && *qa != *qb {
			t.Fatalf("node %d: %v with 1 worker, %v with 3", i, qa, qb)
		}
	}
	// Shared parameters: slices and pads of the option-A shortcut have
	// their input's; ReLU outputs have zero point 0; weights are int8 only.
	for i, n := range a.Nodes {
		if n.Op == graph.OpSlice || n.Op == graph.OpPad || n.Op == graph.OpMaxPool {
			if in := a.Nodes[n.Inputs[0]].Quant; in == nil || n.Quant == nil || *in != *n.Quant {
				t.Errorf("node %d (%v): parameters %v, input's %v", i, n.Op, n.Quant, in)
			}
		}
		if n.Relu && n.Quant != nil && n.Quant.Zero != 0 && la[i].SharedWith < 0 {
			t.Errorf("node %d: ReLU output with zero point %d", i, n.Quant.Zero)
		}
		if n.Op == graph.OpConv && (n.Conv.Quant == nil || n.Conv.Weight != nil) {
			t.Errorf("node %d: conv weights not replaced by int8", i)
		}
	}
	// Keeping the stem in float32.
	stem := slices.IndexFunc(f.Nodes, func(n *graph.Node) bool { return n.Op == graph.OpConv })
	k, _ := quantizeForTest(t, f, 3, QuantizeOptions{Method: MinMax, KeepFP32: []int{stem}})
	if k.Nodes[stem].Conv.Quant != nil || k.Nodes[stem].Conv.Weight == nil {
		t.Error("kept stem has int8 weights")
	}
	p, err := engine.CompileWith(k, engine.CompileOptions{Precision: engine.Int8})
	if err != nil {
		t.Fatal(err)
	}
	steps := p.Steps()
	if !slices.ContainsFunc(steps, func(s engine.StepInfo) bool { return s.Op == graph.OpQuantize }) ||
		!slices.ContainsFunc(steps, func(s engine.StepInfo) bool { return s.Op == graph.OpDequantize }) {
		t.Errorf("no conversions in %v", steps)
	}
	for _, s := range steps {
		if s.Node == stem && s.Op == graph.OpConv && strings.HasPrefix(s.Kernel, "int8") {
			t.Errorf("kept stem runs in int8: %v", s)
		}
	}
	if _, _, err := QuantizeGraph(f, 3, func(_, i int, dst []float32) error { return nil }, QuantizeOptions{KeepFP32: []int{0}}); err == nil {
		t.Error("keeping the input node in float32 accepted")
	}
	// The calibration plan keeps every value: it is checked against the
	// budget before its arena is allocated.
	if _, _, err := QuantizeGraph(f, 3, func(_, i int, dst []float32) error { calibInput(i, dst); return nil },
		QuantizeOptions{MaxBytes: 4 << 10}); !errors.Is(err, engine.ErrBudget) {
		t.Errorf("calibration over a 4 KiB budget: %v, want engine.ErrBudget", err)
	}
}

// TestInt8WeightBits7: 7-bit weights stay in [-63, 63] (each layer
// reaches the bound), every conv and dense gets the narrow int8 kernel
// where the path has one, and the values of the whole network are
// identical on every kernel path, with and without Winograd8.
func TestInt8WeightBits7(t *testing.T) {
	if _, _, err := QuantizeGraph(mustBuild(t, int8Cases[2].cfg), 2, func(_, i int, dst []float32) error { calibInput(i, dst); return nil },
		QuantizeOptions{WeightBits: 6}); err == nil {
		t.Fatal("6-bit weights accepted")
	}
	for _, tc := range []int8Case{int8Cases[2], {"resnet18-16px", resnet.Config{Depth: 18, Height: 16, Width: 16, Classes: 10}}} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := quantizeForTest(t, mustBuild(t, tc.cfg), 3, QuantizeOptions{Method: MinMax, Workers: 2, WeightBits: 7})
			layers := 0
			for _, n := range q.Nodes {
				var qw *graph.QWeights
				if n.Conv != nil {
					qw = n.Conv.Quant
				} else if n.Dense != nil {
					qw = n.Dense.Quant
				}
				if qw == nil {
					continue
				}
				layers++
				lo, hi := slices.Min(qw.Q), slices.Max(qw.Q)
				if lo < -63 || hi > 63 || (lo != -63 && hi != 63) {
					t.Fatalf("%s: weights in [%d, %d], want [-63, 63] reaching a bound", n.Name, lo, hi)
				}
			}
			if layers == 0 {
				t.Fatal("no quantized layers")
			}
			in := make([]float32, q.Input().Size())
			calibInput(1000, in)
			var ref []byte
			for _, ks := range kernels.Sets() {
				path := ks.Name()
				want := ks.Gemm8NarrowName()
				if want == "" {
					want = ks.Gemm8Name()
				}
				for _, wino := range []int{engine.WinogradOff, engine.WinogradAuto} {
					p, err := engine.CompileWith(q, engine.CompileOptions{Precision: engine.Int8, Winograd: wino, KeepValues: true, Kernels: ks})
					if err != nil {
						t.Fatal(err)
					}
					for _, s := range p.Steps() {
						if strings.HasPrefix(s.Kernel, "int8 ") && strings.Contains(s.Kernel, "gemm/") &&
							!strings.HasSuffix(s.Kernel, "gemm/"+want) {
							t.Errorf("%s: step %s runs %s", path, s.Name, s.Kernel)
						}
					}
					got := runInt8Values(t, p, 2, in, false)
					if ref == nil {
						ref = got
					} else if !bytes.Equal(got, ref) {
						t.Fatalf("%s winograd=%d: values differ from the first path's", path, wino)
					}
				}
			}
		})
	}
}

func mustBuild(t *testing.T, cfg resnet.Config) *graph.Graph {
	t.Helper()
	g, err := resnet.Build(cfg, resnet.HeInit(9))
	if err != nil {
		t.Fatal(err)
	}
	return g
}
