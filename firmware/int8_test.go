package firmware

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/resnet"
)

// quantizeWeights returns w quantized symmetrically per output channel (the
// last dimension, out channels): scale = max|w|/127, q = round(w/scale).
func quantizeWeights(w []float32, out int) *graph.QWeights {
	q := &graph.QWeights{Q: make([]int8, len(w)), Scale: make([]float32, out)}
	for i, v := range w {
		q.Scale[i%out] = max(q.Scale[i%out], float32(math.Abs(float64(v))))
	}
	for o, m := range q.Scale {
		if m == 0 {
			m = 127 // an all-zero channel: any positive scale works
		}
		q.Scale[o] = m / 127
	}
	for i, v := range w {
		x := math.Round(float64(v / q.Scale[i%out]))
		q.Q[i] = int8(max(-127, min(127, x)))
	}
	return q
}

// quantize gives every conv and dense of g int8 weights (dropping the float
// ones when intOnly) and every node activation parameters. The activation
// values are arbitrary but valid and vary in every bit of the scale and
// over the zero point's range. g is modified in place.
func quantize(g *graph.Graph, intOnly bool) *graph.Graph {
	for i, n := range g.Nodes {
		switch {
		case n.Conv != nil:
			n.Conv.Quant = quantizeWeights(n.Conv.Weight, n.Conv.Cout)
			if intOnly {
				n.Conv.Weight = nil
			}
		case n.Dense != nil:
			n.Dense.Quant = quantizeWeights(n.Dense.Weight, n.Dense.Out)
			if intOnly {
				n.Dense.Weight = nil
			}
		}
		zero := int32(0)
		if !n.Relu {
			zero = int32(i*37) % 256
		}
		n.Quant = &graph.QParams{Scale: float32(1+i) / 97, Zero: zero}
	}
	return g
}

// insideI8 reports whether v's memory lies within buf.
func insideI8(v []int8, buf []byte) bool {
	if len(v) == 0 || len(buf) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	b := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return p >= b && p+uintptr(len(v)) <= b+uintptr(len(buf))
}

func qweightsOf(n *graph.Node) *graph.QWeights {
	switch {
	case n.Conv != nil:
		return n.Conv.Quant
	case n.Dense != nil:
		return n.Dense.Quant
	}
	return nil
}

func headerMinor(img []byte) uint16 { return binary.LittleEndian.Uint16(img[offMinor:]) }

func TestInt8RoundTrip(t *testing.T) {
	cases := []struct {
		name      string
		model     func() *Model
		minor     uint16
		requires  bool
		intWeight bool
	}{
		{"fp32", allOpsModel, 0, false, false},
		{"fp32+int8", func() *Model { m := allOpsModel(); quantize(m.Graph, false); return m }, 1, false, true},
		{"int8-only", func() *Model { m := allOpsModel(); quantize(m.Graph, true); return m }, 1, true, true},
	}
	bothParsers(t, func(t *testing.T) {
		for _, c := range cases {
			m := c.model()
			img := mustEncode(t, m)
			if got := headerMinor(img); got != c.minor {
				t.Errorf("%s: format minor %d, want %d", c.name, got, c.minor)
			}
			man, _ := split(t, img)
			if got := bytes.Contains(man, []byte(`"requires":["int8"]`)); got != c.requires {
				t.Errorf("%s: requires int8 is %v, want %v", c.name, got, c.requires)
			}
			got, err := Decode(img)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			checkSame(t, m, got)
			if err := Verify(img); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			nq := 0
			for i, n := range got.Graph.Nodes {
				if c.name != "fp32" && (n.Quant == nil || *n.Quant != *m.Graph.Nodes[i].Quant) {
					t.Errorf("%s: node %d: activation quant %v, want %v", c.name, i, n.Quant, m.Graph.Nodes[i].Quant)
				}
				q := qweightsOf(n)
				if q == nil {
					continue
				}
				nq++
				// Zero copy also for int8 values and their scales.
				if !insideI8(q.Q, img) || !inside(q.Scale, img) {
					t.Errorf("%s: node %d: int8 weights were copied", c.name, i)
				}
			}
			if want := map[bool]int{false: 0, true: 5}[c.intWeight]; nq != want {
				t.Errorf("%s: %d layers with int8 weights, want %d", c.name, nq, want)
			}
			// Stable: decoding and re-encoding gives the same bytes.
			if again := mustEncode(t, got); !bytes.Equal(again, img) {
				t.Errorf("%s: re-encoding changed the image", c.name)
			}
		}
	})
}

// TestInt8ResNet18 stores a fused ResNet-18 with int8 weights on disk, maps
// it back, and checks the size saving of an int8-only image.
func TestInt8ResNet18(t *testing.T) {
	// Weights do not depend on the input size. Deep equality of the graphs
	// (TestInt8RoundTrip also evaluates) keeps this cheap under qemu.
	cfg := resnet.Config{Depth: 18, Height: 32, Width: 32}
	build := func() *graph.Graph {
		g, err := resnet.Build(cfg, resnet.HeInit(7))
		if err != nil {
			t.Fatal(err)
		}
		if g, err = graph.Fuse(g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	dir := t.TempDir()
	size := map[string]int64{}
	for _, c := range []struct {
		name string
		g    *graph.Graph
	}{
		{"fp32", build()},
		{"both", quantize(build(), false)},
		{"int8", quantize(build(), true)},
	} {
		path := filepath.Join(dir, c.name+".ern")
		if err := WriteFile(path, &Model{Graph: c.g, Meta: Meta{Name: "resnet18", Arch: "resnet18", Output: OutputLogits}}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		size[c.name] = fi.Size()
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.g, f.Graph) {
			t.Fatalf("%s: graph differs after the round trip through the file", c.name)
		}
		// Same bytes again from the decoded model.
		if again := mustEncode(t, f.Model); !bytes.Equal(again, f.data) {
			t.Fatalf("%s: re-encoding the mapped model changed the image", c.name)
		}
		if c.name != "fp32" {
			for i, n := range f.Graph.Nodes {
				if q := qweightsOf(n); q != nil && (!insideI8(q.Q, f.data) || !inside(q.Scale, f.data)) {
					t.Fatalf("%s: node %d: int8 weights not used in place from the mapping", c.name, i)
				}
			}
		}
		f.Close()
	}
	ratio := float64(size["fp32"]) / float64(size["int8"])
	t.Logf("ResNet-18 image: fp32 %d bytes, int8-only %d bytes (%.2fx smaller), both %d bytes", size["fp32"], size["int8"], ratio, size["both"])
	if ratio <= 3.5 {
		t.Errorf("int8-only image is %.2fx smaller than fp32, want > 3.5", ratio)
	}
	if size["both"] <= size["fp32"] {
		t.Errorf("an image with both weights (%d bytes) should be larger than fp32 alone (%d)", size["both"], size["fp32"])
	}
}

// int8Image is allOpsModel with int8-only weights and activation quant.
func int8Image(t testing.TB) []byte {
	m := allOpsModel()
	quantize(m.Graph, true)
	return mustEncode(t, m)
}

// blobTensor returns the bytes of the named tensor inside img, for edits.
func blobTensor(t testing.TB, img []byte, name string) []byte {
	t.Helper()
	h, err := parseHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	man, err := parseManifest(img[h.manifestOff : h.manifestOff+h.manifestLen])
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range man.Tensors {
		if tt.Name == name {
			return img[h.blobOff+int(tt.Offset) : h.blobOff+int(tt.Offset+tt.NBytes)]
		}
	}
	t.Fatalf("no tensor %q", name)
	return nil
}

// editBlob changes tensor bytes of a copy of img and re-signs it.
func editBlob(t testing.TB, img []byte, name string, edit func(b []byte)) []byte {
	d := bytes.Clone(img)
	edit(blobTensor(t, d, name))
	return resign(d)
}

func putF32(b []byte, v float32) { binary.LittleEndian.PutUint32(b, math.Float32bits(v)) }

// TestInt8Corrupt: damaged int8 content is reported, naming the node,
// never a panic.
func TestInt8Corrupt(t *testing.T) {
	img := int8Image(t)
	const stem = `conv "stem" ü`
	conv := func(m map[string]any) map[string]any { return jnode(m, 2)["conv"].(map[string]any) }
	tensor := func(m map[string]any, name string) map[string]any {
		for _, v := range m["tensors"].([]any) {
			if tt := v.(map[string]any); tt["name"] == name {
				return tt
			}
		}
		panic("no tensor " + name)
	}
	quant := func(i int, k string, v any) func(m map[string]any) {
		return func(m map[string]any) { jnode(m, i)["quant"].(map[string]any)[k] = v }
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"i8 length", editManifest(t, img, func(m map[string]any) {
			tt := tensor(m, stem+".weight_i8")
			tt["shape"], tt["nbytes"] = []any{10}, 10
		}), `node 2 "conv \"stem\" ü": tensor "conv \"stem\" ü.weight_i8" has 10 values, want 216 (3x3x4x6)`},
		{"scale length", editManifest(t, img, func(m map[string]any) {
			tt := tensor(m, stem+".weight_scale")
			tt["shape"], tt["nbytes"] = []any{5}, 20
		}), `node 2 "conv \"stem\" ü": tensor "conv \"stem\" ü.weight_scale" has 5 values, want 6 (6)`},
		{"f32 where i8 is wanted", editManifest(t, img, func(m map[string]any) { conv(m)["weight_i8"] = stem + ".bias" }),
			`node 2 "conv \"stem\" ü": conv.weight_i8: tensor "conv \"stem\" ü.bias" is f32, want i8`},
		{"i8 where f32 is wanted (bias)", editManifest(t, img, func(m map[string]any) { conv(m)["bias"] = stem + ".weight_i8" }),
			`conv.bias: tensor "conv \"stem\" ü.weight_i8" is i8, want f32`},
		{"i8 where f32 is wanted (weight)", editManifest(t, img, func(m map[string]any) { conv(m)["weight"] = stem + ".weight_i8" }),
			`conv.weight: tensor "conv \"stem\" ü.weight_i8" is i8, want f32`},
		{"i8 where f32 is wanted (scale)", editManifest(t, img, func(m map[string]any) { conv(m)["weight_scale"] = stem + ".weight_i8" }),
			`conv.weight_scale: tensor "conv \"stem\" ü.weight_i8" is i8, want f32`},
		{"u8 dtype", editManifest(t, img, func(m map[string]any) { tensor(m, stem+".weight_i8")["dtype"] = "u8" }),
			`is u8, want i8`},
		{"missing both weights", editManifest(t, img, func(m map[string]any) {
			delete(conv(m), "weight_i8")
			delete(conv(m), "weight_scale")
		}), `node 2 "conv \"stem\" ü": conv.weight is missing`},
		{"scale without values", editManifest(t, img, func(m map[string]any) { delete(conv(m), "weight_i8") }),
			`node 2 "conv \"stem\" ü": conv.weight_scale is given without weight_i8`},
		{"values without scale", editManifest(t, img, func(m map[string]any) { delete(jnode(m, 15)["dense"].(map[string]any), "weight_scale") }),
			`node 15 "fc": dense.weight_i8 is given without weight_scale`},
		{"int8 weights on a pool", editManifest(t, img, func(m map[string]any) {
			jnode(m, 5)["conv"] = map[string]any{"weight_i8": stem + ".weight_i8", "weight_scale": stem + ".weight_scale"}
		}), `node 5 "maxpool": int8 weights in a "conv" object, which op MaxPool does not read`},
		{"int8 weights on an affine", editManifest(t, img, func(m map[string]any) {
			jnode(m, 3)["dense"] = map[string]any{"weight_i8": "fc.weight_i8", "weight_scale": "fc.weight_scale"}
		}), `node 3 "bn": int8 weights in a "dense" object, which op Affine does not read`},
		{"no requires", editManifest(t, img, func(m map[string]any) { delete(m, "requires") }),
			`node 2 "conv \"stem\" ü": int8-only weights, but the image does not list "int8" in "requires"`},
		{"-128", editBlob(t, img, stem+".weight_i8", func(b []byte) { b[7] = 0x80 }),
			`node 2 "conv \"stem\" ü" (Conv): int8 weights: value 7 is -128`},
		{"scale 0", editBlob(t, img, stem+".weight_scale", func(b []byte) { putF32(b[4:], 0) }),
			`node 2 "conv \"stem\" ü" (Conv): int8 weights: scale of output channel 1 is 0`},
		{"scale < 0", editBlob(t, img, "fc.weight_scale", func(b []byte) { putF32(b, -0.5) }),
			`node 15 "fc" (Dense): int8 weights: scale of output channel 0 is -0.5`},
		{"scale NaN", editBlob(t, img, "fc2.weight_scale", func(b []byte) { putF32(b[16:], float32(math.NaN())) }),
			`node 17 "fc2" (Dense): int8 weights: scale of output channel 4 is NaN`},
		{"scale Inf", editBlob(t, img, stem+".weight_scale", func(b []byte) { putF32(b, float32(math.Inf(1))) }),
			`scale of output channel 0 is +Inf`},
		{"act scale 0", editManifest(t, img, quant(4, "scale", 0)), `node 4 "relu" (Relu): activation quantization scale 0 zero point`},
		{"act scale < 0", editManifest(t, img, quant(4, "scale", -1e-3)), `activation quantization scale -0.001`},
		{"act scale NaN", editManifest(t, img, quant(7, "scale", "NaN")), `node 7 "add" (Add): activation quantization scale NaN`},
		{"act scale Inf", editManifest(t, img, quant(7, "scale", "Infinity")), `activation quantization scale +Inf`},
		{"act scale huge", editManifest(t, img, quant(7, "scale", 1e39)), `graph.nodes[7].quant.scale: number out of float32 range`},
		{"act scale missing", editManifest(t, img, func(m map[string]any) { delete(jnode(m, 6)["quant"].(map[string]any), "scale") }),
			`node 6 "dilated+residual" (Conv): activation quantization scale 0`},
		{"zero 256", editManifest(t, img, quant(1, "zero", 256)), `node 1 "pad": quant.zero = 256 is outside [0, 255]`},
		{"zero -1", editManifest(t, img, quant(1, "zero", -1)), `quant.zero = -1 is outside [0, 255]`},
		{"zero wraps int32", editManifest(t, img, quant(1, "zero", int64(1<<32))), `quant.zero = 4294967296 is outside [0, 255]`},
		{"zero fraction", editManifest(t, img, quant(1, "zero", 1.5)), `graph.nodes[1].quant.zero: want an integer`},
		{"quant not an object", editManifest(t, img, func(m map[string]any) { jnode(m, 1)["quant"] = []any{0.5, 3} }),
			`graph.nodes[1].quant: want object, got array`},
	}
	bothParsers(t, func(t *testing.T) {
		for _, c := range cases {
			err := decodeErr(t, c.data)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s:\n got %v\nwant ErrCorrupt containing %s", c.name, err, c.want)
			}
		}
	})
}

// TestInt8Versions: the "requires" policy of docs/FORMAT.md §4.
func TestInt8Versions(t *testing.T) {
	img := int8Image(t)
	bothParsers(t, func(t *testing.T) {
		// Unknown features are refused, also next to known ones.
		err := decodeErr(t, editManifest(t, img, func(m map[string]any) { m["requires"] = []any{"int8", "int4"} }))
		if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), `requires feature "int4"`) {
			t.Errorf("unknown feature: %v", err)
		}
		// An unknown dtype referenced as int8 weights is a newer writer.
		err = decodeErr(t, editManifest(t, img, func(m map[string]any) {
			for _, v := range m["tensors"].([]any) {
				if tt := v.(map[string]any); tt["name"] == "fc.weight_i8" {
					tt["dtype"] = "i4x2"
				}
			}
		}))
		if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), `node 15 "fc": tensor "fc.weight_i8" has dtype "i4x2"`) {
			t.Errorf("unknown dtype: %v", err)
		}
		// "int8" listed by an image that does not need it is harmless.
		fp := mustEncode(t, allOpsModel())
		if _, err := Decode(editManifest(t, fp, func(m map[string]any) { m["requires"] = []any{"int8"} })); err != nil {
			t.Errorf("fp32 image listing int8: %v", err)
		}
	})
	// A reader without int8 support (what 1.0 readers do): the int8-only
	// image is refused as a version problem, while an image that keeps its
	// float weights still loads, its int8 keys ignored as unknown.
	delete(knownFeatures, featureInt8)
	defer func() { knownFeatures[featureInt8] = true }()
	err := decodeErr(t, img)
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), `requires feature "int8"`) {
		t.Errorf("int8-only image on a reader without int8: %v", err)
	}
	m := allOpsModel()
	quantize(m.Graph, false)
	if _, err := Decode(mustEncode(t, m)); err != nil {
		t.Errorf("image with float and int8 weights on a reader without int8: %v", err)
	}
}

// TestInt8SharedQuantTensors: int8 slices shared between layers are stored
// once and come back shared; a scale tensor that is also a bias works in
// Decode and Verify alike.
func TestInt8SharedQuantTensors(t *testing.T) {
	m := allOpsModel()
	quantize(m.Graph, true)
	fc2 := m.Graph.Nodes[17].Dense
	fc2.Bias = fc2.Quant.Scale // positive values, len 5: valid as both
	img := mustEncode(t, m)
	man, _ := split(t, img)
	// The bias is written first and names the shared tensor.
	if !strings.Contains(string(man), `"bias":"fc2.bias","weight_i8":"fc2.weight_i8","weight_scale":"fc2.bias"`) ||
		strings.Contains(string(man), `"fc2.weight_scale"`) {
		t.Fatalf("the scales that share the bias's slice were not stored once:\n%s", man)
	}
	// Verify on a misaligned copy reads scales for real.
	shifted := make([]byte, len(img)+1)[1:]
	copy(shifted, img)
	if err := Verify(shifted); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(shifted)
	if err != nil {
		t.Fatal(err)
	}
	d := got.Graph.Nodes[17].Dense
	if &d.Bias[0] != &d.Quant.Scale[0] || !slices.Equal(d.Bias, fc2.Bias) {
		t.Fatal("shared bias/scale decoded as two slices or with other values")
	}
}
