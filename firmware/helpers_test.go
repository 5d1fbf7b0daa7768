package firmware

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

var update = flag.Bool("update", false, "rewrite the golden image and the fuzz seed corpus")

func randWeights(r *rand.Rand, n int) []float32 {
	w := make([]float32, n)
	for i := range w {
		w[i] = float32(r.NormFloat64() * 0.5)
	}
	return w
}

// allOpsModel has every op kind and every attribute with non-default
// values, labels with quotes and non-ASCII text, and two nodes sharing one
// weight slice.
func allOpsModel() *Model {
	r := rand.New(rand.NewPCG(1, 2))
	g := &graph.Graph{}
	add := func(n *graph.Node) int { return g.Add(n) }
	in := add(&graph.Node{Name: "input", Op: graph.OpInput, Shape: graph.Shape{H: 8, W: 8, C: 3}})
	pad := add(&graph.Node{Name: "pad", Op: graph.OpPad, Inputs: []int{in},
		Pad: &graph.PadOp{Before: [3]int{1, 1, 0}, After: [3]int{1, 0, 1}, Value: -0.5}}) // 10x9x4
	w1 := randWeights(r, 3*3*4*6)
	w1[0], w1[1] = float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32 // -0 and a subnormal survive bit for bit
	conv := add(&graph.Node{Name: `conv "stem" ü`, Op: graph.OpConv, Inputs: []int{pad}, Relu: true,
		Conv: &graph.Conv{KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, Pad: graph.Pads{Top: 1, Left: 1, Bottom: 1, Right: 1},
			Cin: 4, Cout: 6, Weight: w1, Bias: randWeights(r, 6)}}) // 10x9x6
	aff := add(&graph.Node{Name: "bn", Op: graph.OpAffine, Inputs: []int{conv},
		Affine: &graph.Affine{Scale: randWeights(r, 6), Shift: randWeights(r, 6)}})
	relu := add(&graph.Node{Name: "relu", Op: graph.OpRelu, Inputs: []int{aff}})
	mp := add(&graph.Node{Name: "maxpool", Op: graph.OpMaxPool, Inputs: []int{relu},
		Pool: &graph.Pool{KH: 3, KW: 3, StrideH: 2, StrideW: 2, Pad: graph.Pads{Top: 1, Left: 1, Bottom: 1, Right: 1}, CeilMode: true}}) // 6x5x6
	res := add(&graph.Node{Name: "dilated+residual", Op: graph.OpConv, Inputs: []int{mp, mp}, Relu: true,
		Conv: &graph.Conv{KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 2, DilW: 2, Pad: graph.Pads{Top: 2, Left: 2, Bottom: 2, Right: 2},
			Cin: 6, Cout: 6, Weight: randWeights(r, 3*3*6*6)}}) // 6x5x6
	sum := add(&graph.Node{Name: "add", Op: graph.OpAdd, Inputs: []int{res, mp}, Relu: true})
	ap := add(&graph.Node{Name: "avgpool", Op: graph.OpAvgPool, Inputs: []int{sum},
		Pool: &graph.Pool{KH: 2, KW: 2, StrideH: 1, StrideW: 1, Pad: graph.Pads{Top: 1, Left: 1}, CountIncludePad: true}}) // 6x5x6
	sl := add(&graph.Node{Name: "slice", Op: graph.OpSlice, Inputs: []int{ap},
		Slice: &graph.SliceOp{Start: [3]int{0, 1, 0}, End: [3]int{6, 5, 6}, Step: [3]int{2, 1, 2}}}) // 3x4x3
	cw := add(&graph.Node{Name: "concat.w", Op: graph.OpConcat, Inputs: []int{sl, sl}, Axis: graph.AxisW}) // 3x8x3
	c1 := add(&graph.Node{Name: "", Op: graph.OpConv, Inputs: []int{cw},                                   // unnamed: tensors get "node11.*"
		Conv: &graph.Conv{KH: 1, KW: 1, StrideH: 2, StrideW: 1, DilH: 1, DilW: 1, Cin: 3, Cout: 4,
			Weight: randWeights(r, 12), Bias: randWeights(r, 4)}}) // 2x8x4
	gap := add(&graph.Node{Name: "gap", Op: graph.OpGlobalAvgPool, Inputs: []int{c1}})                      // 1x1x4
	fl := add(&graph.Node{Name: "flatten", Op: graph.OpFlatten, Inputs: []int{c1}})                         // 1x1x64
	cc := add(&graph.Node{Name: "concat.c", Op: graph.OpConcat, Inputs: []int{gap, fl}, Axis: graph.AxisC}) // 1x1x68
	fc := add(&graph.Node{Name: "fc", Op: graph.OpDense, Inputs: []int{cc}, Relu: true,
		Dense: &graph.Dense{In: 68, Out: 5, Weight: randWeights(r, 68*5), Bias: randWeights(r, 5)}})
	shared := randWeights(r, 5)
	sh := add(&graph.Node{Name: "fc", Op: graph.OpAffine, Inputs: []int{fc}, // duplicate node name on purpose
		Affine: &graph.Affine{Scale: shared, Shift: shared}})
	fc2 := add(&graph.Node{Name: "fc2", Op: graph.OpDense, Inputs: []int{sh},
		Dense: &graph.Dense{In: 5, Out: 5, Weight: randWeights(r, 25)}})
	g.Output = add(&graph.Node{Name: "softmax", Op: graph.OpSoftmax, Inputs: []int{fc2}})
	if err := g.InferShapes(); err != nil {
		panic(err)
	}
	return &Model{Graph: g, Meta: Meta{
		Name:   "all-ops",
		Arch:   "hand-built",
		Labels: []string{"T-shirt/top", `Trouser "slim"`, "Pullover — ü", "日本語", "emoji 🎉 <tag> & \\ back\nslash\t\x01"},
		Preprocess: preprocess.Spec{Resize: 0, Height: 8, Width: 8, Channels: 3, BGR: true, Scale: 1.0 / 255,
			Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}},
		Output:     OutputProbabilities,
		Provenance: map[string]string{"source": "firmware tests", "converter": "edge-resnet", "note": `"quoted" ✓`},
	}}
}

// allOpsModel12 is allOpsModel with what format 1.2 adds: a declared batch
// and, on a branch after the output (allOpsModel's node indices stay), a
// grouped conv, Clip, HardSigmoid, Sigmoid and Mul.
func allOpsModel12() *Model {
	m := allOpsModel()
	g := m.Graph
	r := rand.New(rand.NewPCG(3, 4))
	add := func(n *graph.Node) int { return g.Add(n) }
	sum := 7
	g.Batch = 4
	m.Meta.InputLayout = LayoutNHWC
	g.Extra, g.OutputNames = []int{sum, 1}, []string{"probabilities", "block", "padded ü"}
	gc := add(&graph.Node{Name: "grouped", Op: graph.OpConv, Inputs: []int{sum},
		Conv: &graph.Conv{KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, Pad: graph.Pads{Top: 1, Left: 1, Bottom: 1, Right: 1},
			Cin: 6, Cout: 6, Group: 3, Weight: randWeights(r, 3*3*2*6)}}) // 6x5x6
	clip := add(&graph.Node{Name: "clip", Op: graph.OpClip, Inputs: []int{gc}, Clip: &graph.Clip{Min: -1, Max: 2.5}})
	hs := add(&graph.Node{Name: "hardsigmoid", Op: graph.OpHardSigmoid, Inputs: []int{clip}, HardSigmoid: &graph.HardSigmoid{Alpha: 0.25, Beta: 0.375}})
	sg := add(&graph.Node{Name: "sigmoid", Op: graph.OpSigmoid, Inputs: []int{gc}})
	add(&graph.Node{Name: "mul", Op: graph.OpMul, Inputs: []int{hs, sg}})
	if err := g.InferShapes(); err != nil {
		panic(err)
	}
	return m
}

// tinyModel is the smallest useful classifier: conv 1x1, pool, dense.
// Its weights come from a formula, not a random generator, so that the
// golden image does not depend on math/rand's algorithms.
func tinyModel() *Model {
	ramp := func(n int, a, b float32) []float32 {
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(a*float32(i)) + b // the conversion stops arm64 from fusing into an FMA, which rounds differently
		}
		return w
	}
	g := &graph.Graph{}
	in := g.Add(&graph.Node{Name: "x", Op: graph.OpInput, Shape: graph.Shape{H: 2, W: 2, C: 2}})
	c := g.Add(&graph.Node{Name: "c", Op: graph.OpConv, Inputs: []int{in}, Relu: true,
		Conv: &graph.Conv{KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, Cin: 2, Cout: 3, Weight: ramp(6, 0.25, -0.5), Bias: ramp(3, -0.125, 0.1)}})
	p := g.Add(&graph.Node{Name: "p", Op: graph.OpGlobalAvgPool, Inputs: []int{c}})
	g.Output = g.Add(&graph.Node{Name: "fc", Op: graph.OpDense, Inputs: []int{p},
		Dense: &graph.Dense{In: 3, Out: 2, Weight: ramp(6, -0.3, 0.7), Bias: ramp(2, 1, -0.5)}})
	if err := g.InferShapes(); err != nil {
		panic(err)
	}
	return &Model{Graph: g, Meta: Meta{Name: "tiny", Arch: "test", Labels: []string{"no", "yes"}, Output: OutputLogits,
		Preprocess: preprocess.Spec{Height: 2, Width: 2, Channels: 2, Scale: 1}}}
}

func mustEncode(t testing.TB, m *Model) []byte {
	t.Helper()
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resign recomputes both CRCs of an image-like buffer (a copy), so that
// edits reach the checks behind them. It returns nil when the header is too
// broken to know where the CRCs go.
func resign(data []byte) []byte {
	if len(data) < offHeaderSize+4 || !IsImage(data) {
		return nil
	}
	hs := int(binary.LittleEndian.Uint32(data[offHeaderSize:]))
	if hs < headerSize || hs > maxHeaderSize || hs%8 != 0 || len(data) < hs {
		return nil
	}
	d := bytes.Clone(data)
	binary.LittleEndian.PutUint32(d[offPayloadCRC:], crc32.Checksum(d[hs:], castagnoli))
	binary.LittleEndian.PutUint32(d[hs-4:], crc32.Checksum(d[:hs-4], castagnoli))
	return d
}

// assemble builds a correctly signed format 1.0 image from raw manifest
// and blob bytes.
func assemble(manifest, blob []byte) []byte { return assembleMinor(0, manifest, blob) }

// assembleMinor is assemble with the header's minor version.
func assembleMinor(minor uint16, manifest, blob []byte) []byte {
	blobOff := alignUp(headerSize + int64(len(manifest)))
	out := make([]byte, blobOff+int64(len(blob)))
	copy(out[headerSize:], manifest)
	copy(out[blobOff:], blob)
	putHeader(out, minor, int64(len(manifest)), blobOff, int64(len(blob)), crc32.Checksum(out[headerSize:], castagnoli))
	return out
}

// split returns the manifest and blob of a valid image.
func split(t testing.TB, img []byte) (manifest, blob []byte) {
	t.Helper()
	h, err := parseHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	return img[h.manifestOff : h.manifestOff+h.manifestLen], img[h.blobOff:]
}

// editManifest rewrites the manifest of img through a generic JSON tree and
// re-assembles a correctly signed image with the same blob.
func editManifest(t testing.TB, img []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	man, blob := split(t, img)
	d := json.NewDecoder(bytes.NewReader(man))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return assembleMinor(binary.LittleEndian.Uint16(img[offMinor:]), out, blob)
}

// Accessors for editManifest callbacks.
func jnode(m map[string]any, i int) map[string]any {
	return m["graph"].(map[string]any)["nodes"].([]any)[i].(map[string]any)
}

func jtensor(m map[string]any, i int) map[string]any {
	return m["tensors"].([]any)[i].(map[string]any)
}

// inside reports whether v's memory lies within buf.
func inside(v []float32, buf []byte) bool {
	if len(v) == 0 || len(buf) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	b := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return p >= b && p+uintptr(4*len(v)) <= b+uintptr(len(buf))
}

// bothParsers runs f once per manifest parser available here.
func bothParsers(t *testing.T, f func(t *testing.T)) {
	t.Run("std", func(t *testing.T) {
		t.Setenv(envJSON, "std")
		f(t)
	})
	t.Run("simdjson", func(t *testing.T) {
		if !simdAvailable {
			t.Skip("simdjson-go not available on this CPU/build")
		}
		t.Setenv(envJSON, "")
		f(t)
	})
}
