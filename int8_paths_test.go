package edgeresnet

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/edge-resnet/edge-resnet/kernels"
)

var updateInt8Golden = flag.Bool("update-int8-golden", false, "rewrite testdata/int8/*.logits from the generic kernels")

const (
	int8Fixture = "testdata/int8/resnet20_fashion_mnist_int8.ern"
	int8Golden  = "testdata/int8/resnet20_fashion_mnist_int8.logits"
	int8Inputs  = 4
)

// int8TestInput is input k of the golden test: multiples of 1/64 in
// [-2, 2), exact in float32, so every platform feeds identical values.
func int8TestInput(k, n int) []float32 {
	in := make([]float32, n)
	for i := range in {
		in[i] = float32((i*37+k*101)%256)/64 - 2
	}
	return in
}

// TestInt8IdenticalOnEveryPath runs a committed int8 model (the default
// Fashion-MNIST ResNet-20 quantized by `edge-resnet quantize` on 200 test
// images) on every kernel path this CPU has, at 1 and 3 threads, and
// requires outputs bit-identical to the committed ones, which the generic
// path wrote. CI runs it on amd64 and under qemu on arm64 (Cortex-A72:
// neon; -cpu max: neondot), so all int8 kernels of both architectures are
// held to the same bytes.
func TestInt8IdenticalOnEveryPath(t *testing.T) {
	data, err := os.ReadFile(int8Fixture)
	if err != nil {
		t.Fatal(err)
	}
	// One model serves every path: each session packs the weights for
	// its own (WithKernels), side by side.
	m, err := LoadBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	run := func(t *testing.T, path string, threads int) []byte {
		t.Helper()
		s, err := m.NewSession(WithPrecision(PrecisionInt8), WithThreads(threads), WithKernels(path))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Precision() != PrecisionInt8 || s.Kernels() != path {
			t.Fatalf("%s: session precision %v on kernels %s", path, s.Precision(), s.Kernels())
		}
		var buf bytes.Buffer
		for k := range int8Inputs {
			out, err := s.Run(int8TestInput(k, len(s.Input())))
			if err != nil {
				t.Fatal(err)
			}
			binary.Write(&buf, binary.LittleEndian, out)
		}
		return buf.Bytes()
	}
	if *updateInt8Golden {
		if err := os.WriteFile(int8Golden, run(t, "generic", 1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(int8Golden)
	if err != nil {
		t.Fatal(err)
	}
	// The paths run side by side: sessions of one model on different
	// kernel paths share nothing mutable.
	t.Run("paths", func(t *testing.T) {
		for _, path := range kernels.Available() {
			for _, threads := range []int{1, 3} {
				t.Run(fmt.Sprintf("%s/%d", path, threads), func(t *testing.T) {
					t.Parallel()
					if got := run(t, path, threads); !bytes.Equal(got, want) {
						t.Errorf("int8 outputs differ from the generic kernels' (%s)", firstDiff(got, want))
					}
				})
			}
		}
	})
}

// firstDiff describes the first differing float32 of two output dumps.
func firstDiff(a, b []byte) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d bytes vs %d", len(a), len(b))
	}
	for i := 0; i+4 <= len(a); i += 4 {
		x := math.Float32frombits(binary.LittleEndian.Uint32(a[i:]))
		y := math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))
		if x != y {
			return fmt.Sprintf("value %d: %v vs %v", i/4, x, y)
		}
	}
	return "same values"
}
