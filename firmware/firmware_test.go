package firmware

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
)

func evalBits(t *testing.T, g *graph.Graph, seed uint64) []uint32 {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0))
	in := make([]float32, g.Input().Size())
	for i := range in {
		in[i] = float32(r.NormFloat64())
	}
	out, err := g.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	bits := make([]uint32, len(out))
	for i, v := range out {
		bits[i] = math.Float32bits(v)
	}
	return bits
}

// checkSame compares a decoded model with the original: deep equality of
// graph and metadata and bit-identical evaluation.
func checkSame(t *testing.T, want, got *Model) {
	t.Helper()
	if !reflect.DeepEqual(want.Graph, got.Graph) {
		for i := range want.Graph.Nodes {
			if i < len(got.Graph.Nodes) && !reflect.DeepEqual(want.Graph.Nodes[i], got.Graph.Nodes[i]) {
				t.Errorf("node %d differs:\nwant %+v\ngot  %+v", i, want.Graph.Nodes[i], got.Graph.Nodes[i])
			}
		}
		t.Fatalf("graphs differ")
	}
	if !reflect.DeepEqual(want.Meta, got.Meta) {
		t.Fatalf("meta differs:\nwant %+v\ngot  %+v", want.Meta, got.Meta)
	}
	for seed := range uint64(3) {
		if w, g := evalBits(t, want.Graph, seed), evalBits(t, got.Graph, seed); !reflect.DeepEqual(w, g) {
			t.Fatalf("Eval differs: %x vs %x", w, g)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	bothParsers(t, func(t *testing.T) {
		for _, m := range []*Model{allOpsModel(), allOpsModel12(), tinyModel()} {
			img := mustEncode(t, m)
			got, err := Decode(img)
			if err != nil {
				t.Fatal(err)
			}
			checkSame(t, m, got)
			if err := Verify(img); err != nil {
				t.Fatal(err)
			}
			// Zero copy: every weight points into the image.
			for i, n := range got.Graph.Nodes {
				for _, w := range weightsOf(n) {
					if !inside(w, img) {
						t.Errorf("node %d %q: weights were copied", i, n.Name)
					}
				}
			}
		}
	})
}

func weightsOf(n *graph.Node) [][]float32 {
	var ws [][]float32
	switch {
	case n.Conv != nil:
		ws = append(ws, n.Conv.Weight, n.Conv.Bias)
	case n.Dense != nil:
		ws = append(ws, n.Dense.Weight, n.Dense.Bias)
	case n.Affine != nil:
		ws = append(ws, n.Affine.Scale, n.Affine.Shift)
	}
	return slicesNonNil(ws)
}

func slicesNonNil(ws [][]float32) [][]float32 {
	out := ws[:0]
	for _, w := range ws {
		if w != nil {
			out = append(out, w)
		}
	}
	return out
}

func TestSharedWeightsStoredOnce(t *testing.T) {
	m := allOpsModel()
	img := mustEncode(t, m)
	got, err := Decode(img)
	if err != nil {
		t.Fatal(err)
	}
	man, _ := split(t, img)
	if n := strings.Count(string(man), `"name":"fc.scale"`); n != 1 {
		t.Errorf("shared tensor listed %d times", n)
	}
	for _, n := range got.Graph.Nodes {
		if n.Op == graph.OpAffine && n.Name == "fc" && &n.Affine.Scale[0] != &n.Affine.Shift[0] {
			t.Errorf("shared weights decoded as two slices")
		}
	}
	for _, name := range []string{`"node11.weight"`, `"fc.weight"`, `"fc.bias"`, `"conv \"stem\" ü.weight"`} {
		if !strings.Contains(string(man), name) {
			t.Errorf("manifest lacks tensor %s", name)
		}
	}
}

func TestEncodeDeterministicAndPure(t *testing.T) {
	m := allOpsModel()
	for _, n := range m.Graph.Nodes[1:] {
		n.Shape = graph.Shape{} // Encode must infer shapes without writing them here
	}
	a := mustEncode(t, m)
	b := mustEncode(t, m)
	if !bytes.Equal(a, b) {
		t.Fatal("Encode is not deterministic")
	}
	for i, n := range m.Graph.Nodes[1:] {
		if n.Shape != (graph.Shape{}) {
			t.Fatalf("Encode modified node %d's shape", i+1)
		}
	}
	var w bytes.Buffer
	if err := Write(&w, m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, w.Bytes()) {
		t.Fatal("Write and Encode differ")
	}
	if !IsImage(a) {
		t.Fatal("not an image")
	}
}

func TestMisalignedInputCopies(t *testing.T) {
	m := allOpsModel()
	img := mustEncode(t, m)
	buf := make([]byte, len(img)+1)
	shifted := buf[1:]
	copy(shifted, img)
	got, err := Decode(shifted)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, m, got)
	for _, n := range got.Graph.Nodes {
		for _, w := range weightsOf(n) {
			if inside(w, buf) {
				t.Fatalf("node %q: misaligned weights used in place", n.Name)
			}
		}
	}
	if err := Verify(shifted); err != nil {
		t.Fatal(err)
	}
}

// TestBigEndianPath runs the portable byte-order code on this machine.
func TestBigEndianPath(t *testing.T) {
	m := allOpsModel()
	native := mustEncode(t, m)
	hostLittleEndian = false
	defer func() { hostLittleEndian = true }()
	portable := mustEncode(t, m)
	if !bytes.Equal(native, portable) {
		t.Fatal("portable encoding differs")
	}
	got, err := Decode(portable)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, m, got)
	for _, n := range got.Graph.Nodes {
		for _, w := range weightsOf(n) {
			if inside(w, portable) {
				t.Fatal("big-endian path aliased the image")
			}
		}
	}
}

func TestSpecialFloats(t *testing.T) {
	for _, v := range []float32{float32(math.Inf(-1)), float32(math.Inf(1)), float32(math.Copysign(0, -1)), math.MaxFloat32,
		-math.SmallestNonzeroFloat32, 0.1, 1.0 / 3, 16777217, 1e-40} {
		m := tinyModel()
		g := m.Graph
		// Pad the input with v in front of everything.
		g.Nodes = append([]*graph.Node{g.Nodes[0], {Name: "pad", Op: graph.OpPad, Inputs: []int{0},
			Pad: &graph.PadOp{Before: [3]int{1, 0, 0}, Value: v}}}, g.Nodes[1:]...)
		for _, n := range g.Nodes[2:] {
			for k := range n.Inputs {
				n.Inputs[k]++
			}
		}
		g.Output++
		m.Meta.Preprocess.Mean = []float32{v, -v}
		m.Meta.Preprocess.Scale = v
		if err := g.InferShapes(); err != nil {
			t.Fatal(err)
		}
		bothParsers(t, func(t *testing.T) {
			got, err := Decode(mustEncode(t, m))
			if err != nil {
				t.Fatal(err)
			}
			if a, b := math.Float32bits(got.Graph.Nodes[1].Pad.Value), math.Float32bits(v); a != b {
				t.Fatalf("pad value %v (%08x) came back as %08x", v, b, a)
			}
			if a, b := math.Float32bits(got.Meta.Preprocess.Mean[1]), math.Float32bits(-v); a != b {
				t.Fatalf("mean %v came back as %08x", -v, a)
			}
		})
	}
	// NaN has no JSON number; it comes back as a NaN.
	m := tinyModel()
	m.Meta.Preprocess.Scale = float32(math.NaN())
	got, err := Decode(mustEncode(t, m))
	if err != nil || !math.IsNaN(float64(got.Meta.Preprocess.Scale)) {
		t.Fatalf("NaN: %v, %v", got, err)
	}
}

// TestF32Text checks the float32 text of the writer on many random bit
// patterns: both parsers read a number as float64 (strconv.ParseFloat, or
// an exact int64 conversion for integer literals) and round to float32.
func TestF32Text(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	n := 1 << 20
	if testing.Short() {
		n = 1 << 14
	}
	for k := range n {
		f := math.Float32frombits(r.Uint32())
		if math.IsNaN(float64(f)) {
			continue
		}
		s := string(appendF32(nil, f))
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Float32bits(float32(v)) != math.Float32bits(f) {
			t.Fatalf("%v (%08x) written as %s reads back as %v", f, math.Float32bits(f), s, v)
		}
		if k%1024 == 0 { // the full reader path, less often
			root, err := parseStd([]byte(`{"v":` + s + `}`))
			if err != nil {
				t.Fatal(err)
			}
			var rd mreader
			fields, _ := root.fields()
			if got := rd.f32(fields, "v", nil); math.Float32bits(float32(got)) != math.Float32bits(f) || rd.err != nil {
				t.Fatalf("%v written as %s reads back as %v (%v)", f, s, got, rd.err)
			}
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	bad := func(name string, edit func(m *Model), want string) {
		t.Run(name, func(t *testing.T) {
			m := tinyModel()
			edit(m)
			_, err := Encode(m)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v, want an error containing %q", err, want)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "m.img")
			if err := WriteFile(path, m); err == nil {
				t.Fatal("WriteFile accepted it")
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Fatalf("WriteFile left %v behind", ents)
			}
		})
	}
	bad("nil graph", func(m *Model) { m.Graph = nil }, "no graph")
	bad("bad graph", func(m *Model) { m.Graph.Nodes[1].Conv.Cin = 5 }, "invalid graph")
	bad("nil node", func(m *Model) { m.Graph.Nodes[2] = nil }, "nil")
	bad("label utf8", func(m *Model) { m.Meta.Labels[1] = "\xff" }, "UTF-8")
	bad("node name utf8", func(m *Model) { m.Graph.Nodes[1].Name = "a\xc0" }, "UTF-8")
	bad("labels", func(m *Model) { m.Meta.Labels = []string{"one"} }, "1 labels for 2 outputs")
	bad("preprocess", func(m *Model) { m.Meta.Preprocess.Height = 3 }, "the graph takes")
	bad("output kind", func(m *Model) { m.Meta.Output = "odds" }, "output kind")
	bad("fused clip", func(m *Model) { m.Graph.Nodes[1].Clamp = &graph.Clip{Min: 0, Max: 6} }, "fused Clip")
	if math.MaxInt > math.MaxInt32 {
		bad("int32 range", func(m *Model) {
			big := int64(math.MaxInt32) + 1 // a variable: the constant would not compile for 32-bit targets
			g := m.Graph
			g.Nodes = append(g.Nodes, &graph.Node{Op: graph.OpSlice, Inputs: []int{3},
				Slice: &graph.SliceOp{End: [3]int{1, 1, 2}, Step: [3]int{1, 1, int(big)}}})
			g.Output = 4
			m.Meta.Labels = nil
		}, "out of range")
	}
	if _, err := Encode(nil); err == nil {
		t.Fatal("Encode(nil) succeeded")
	}
}

func TestWriteFileOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.ern")
	m := allOpsModel()
	if err := WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	disk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(disk, mustEncode(t, m)) {
		t.Fatal("file differs from Encode")
	}
	bothParsers(t, func(t *testing.T) {
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		checkSame(t, m, f.Model)
		for _, n := range f.Graph.Nodes {
			for _, w := range weightsOf(n) {
				if !inside(w, f.data) {
					t.Fatalf("node %q: weights not in the mapping", n.Name)
				}
			}
		}
		if mapped := f.unmap != nil; mapped != (runtime.GOOS == "linux" || runtime.GOOS == "darwin" || runtime.GOOS == "freebsd") {
			t.Errorf("mapped = %v on %s", mapped, runtime.GOOS)
		}

		// Replacing the file while it is open must not disturb the mapping.
		m2 := tinyModel()
		if err := WriteFile(path, m2); err != nil {
			t.Fatal(err)
		}
		checkSame(t, m, f.Model)
		f2, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		checkSame(t, m2, f2.Model)

		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if f.Model != nil {
			t.Fatal("Close left the model reachable")
		}
		if err := f.Close(); err != nil {
			t.Fatal("second Close:", err)
		}
		f2.Close()
		if err := WriteFile(path, m); err != nil { // restore for the other parser
			t.Fatal(err)
		}
	})
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("directory holds %v, want only the image", ents)
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode())
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.ern")
	if _, err := Open(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing file: %v", err)
	}
	for name, data := range map[string][]byte{
		"empty":   nil,
		"short":   []byte("EDGERN"),
		"onnx":    bytes.Repeat([]byte{0x08, 0x07}, 100),
		"corrupt": func() []byte { b := mustEncode(t, tinyModel()); b[len(b)-1] ^= 1; return b }(),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir.ern"), tinyModel()); err == nil || !strings.Contains(err.Error(), "dir.ern") {
		t.Errorf("WriteFile into a missing directory: %v", err)
	}
}

func TestIsImage(t *testing.T) {
	img := mustEncode(t, tinyModel())
	if !IsImage(img[:8]) || !IsImage(img) {
		t.Fatal("image not recognised")
	}
	for _, p := range [][]byte{nil, img[:7], []byte("\x08\x07\x12\x07pytorch"), []byte("EDGERN\x00\x1b")} {
		if IsImage(p) {
			t.Errorf("IsImage(%q) = true", p)
		}
	}
}

// TestGolden pins the byte layout of format 1: the committed image must
// decode, and re-encoding it must reproduce it exactly.
func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "tiny-v1.ern")
	if *update {
		if err := WriteFile(path, tinyModel()); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(golden)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, tinyModel(), m)
	if again := mustEncode(t, m); !bytes.Equal(again, golden) {
		t.Fatal("re-encoding the golden image changed its bytes: the format changed (bump the version) or the writer is no longer deterministic")
	}
}
