package quant

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/internal/engine"
	"github.com/edge-resnet/edge-resnet/kernels"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// TestInt8Grouped quantizes a net whose first bottleneck's 3x3 conv is
// depthwise (16 groups of 1; later stages have 2 channels per group) and a
// ResNeXt-style one (groups of 4): depthwise convs run in int8
// (kernels.Depthwise8), other groupings in float32 between conversions.
// The output must be the same bytes on every kernel path, at 1 to 3
// threads and batched, and close to fp32.
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
				p8, err := engine.CompileWith(q, engine.CompileOptions{Precision: engine.Int8, Batch: 2, Kernels: ks})
				if err != nil {
					t.Fatal(err)
				}
				dw := 0
				for _, s := range p8.Steps() {
					if strings.HasPrefix(s.Kernel, "int8 depthwise/") {
						dw++
					}
				}
				if (name == "depthwise") != (dw > 0) {
					t.Fatalf("%s: %d int8 depthwise steps: %v", path, dw, p8.Steps())
				}
				for _, threads := range []int{1, 3} {
					e, _ := engine.NewExec(p8, threads)
					out, err := e.Run(in)
					if err != nil {
						t.Fatal(err)
					}
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
