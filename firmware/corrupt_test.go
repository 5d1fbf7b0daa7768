package firmware

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
)

// decodeErr decodes and checks that Decode and Verify agree.
func decodeErr(t *testing.T, data []byte) error {
	t.Helper()
	_, err := Decode(data)
	verr := Verify(data)
	if (err == nil) != (verr == nil) || (err != nil && err.Error() != verr.Error()) {
		t.Fatalf("Decode says %v, Verify says %v", err, verr)
	}
	return err
}

func TestTruncation(t *testing.T) {
	for _, m := range []*Model{tinyModel(), allOpsModel(), allOpsModel12()} {
		img := mustEncode(t, m)
		for n := range len(img) {
			err := decodeErr(t, img[:n])
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("truncated to %d of %d bytes: %v", n, len(img), err)
			}
		}
		// And one byte too many.
		if err := decodeErr(t, append(img[:len(img):len(img)], 0)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "trailing") {
			t.Fatalf("appended byte: %v", err)
		}
	}
}

func TestByteFlips(t *testing.T) {
	img := mustEncode(t, tinyModel())
	for i := range img {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			d := append([]byte(nil), img...)
			d[i] ^= mask
			if err := decodeErr(t, d); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d ^ %#x: %v", i, mask, err)
			}
		}
	}
}

func TestHeaderChecks(t *testing.T) {
	img := mustEncode(t, tinyModel())
	patch := func(off int, v uint64, size int) []byte {
		d := append([]byte(nil), img...)
		switch size {
		case 2:
			binary.LittleEndian.PutUint16(d[off:], uint16(v))
		case 4:
			binary.LittleEndian.PutUint32(d[off:], uint32(v))
		case 8:
			binary.LittleEndian.PutUint64(d[off:], v)
		}
		return resign(d)
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"version 0", patch(offMajor, 0, 2), "version 0.0"},
		{"header size", func() []byte { d := append([]byte(nil), img...); d[offHeaderSize] = 60; return d }(), "header size 60"},
		{"manifest in header", patch(offManifestOff, 8, 8), "overlaps the 64-byte header"},
		{"manifest huge", patch(offManifestLen, 1<<40, 8), "manifest length"},
		{"manifest into blob", patch(offManifestLen, 2000, 8), "overlaps the blob"},
		{"blob unaligned", patch(offBlobOff, 1000, 8), "not a multiple of 64"},
		{"blob past end", patch(offBlobOff, 1<<62, 8), "truncated"},
		{"blob length", patch(offBlobLen, 1<<63, 8), "truncated"},
		{"short manifest", patch(offManifestLen, 10, 8), "not valid JSON"},
	} {
		if c.data == nil {
			t.Fatalf("%s: could not resign", c.name)
		}
		err := decodeErr(t, c.data)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrCorrupt containing %q", c.name, err, c.want)
		}
	}
}

func TestFutureVersions(t *testing.T) {
	img := mustEncode(t, tinyModel())
	setHeaderVersion := func(d []byte, major, minor uint16) []byte {
		binary.LittleEndian.PutUint16(d[offMajor:], major)
		binary.LittleEndian.PutUint16(d[offMinor:], minor)
		return resign(d)
	}
	bothParsers(t, func(t *testing.T) {
		// A newer major version is refused from the header alone, whatever follows.
		future := setHeaderVersion(append([]byte(nil), img...), 2, 0)
		future = append(future[:headerSize], []byte("an entirely different layout")...)
		if err := decodeErr(t, resign(future)); !errors.Is(err, ErrVersion) || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "2.0 is newer") {
			t.Errorf("major 2 header: %v", err)
		}
		for _, c := range []struct {
			name string
			edit func(m map[string]any)
			want string
		}{
			{"manifest major", func(m map[string]any) { m["format_version"] = 2; m["graph"] = "new layout" }, "manifest format version 2.0"},
			{"requires", func(m map[string]any) { m["requires"] = []any{"packed-weights"} }, `requires feature "packed-weights"`},
			{"unknown op", func(m map[string]any) { jnode(m, 2)["op"] = "Gelu" }, `op "Gelu" is unknown`},
			{"unknown dtype", func(m map[string]any) { jtensor(m, 0)["dtype"] = "bf16" }, `dtype "bf16"`},
		} {
			err := decodeErr(t, editManifest(t, img, c.edit))
			if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: got %v, want ErrVersion containing %q", c.name, err, c.want)
			}
		}

		// A newer minor version with fields this reader does not know loads.
		newer := editManifest(t, img, func(m map[string]any) {
			m["format_minor"] = 7
			m["signature"] = map[string]any{"alg": "ed25519", "sig": "..."}
			jnode(m, 1)["sparsity"] = map[string]any{"ratio": 0.5, "block": 3, "nested": []any{[]any{1, 2}, nil}}
			jnode(m, 1)["conv"].(map[string]any)["packing"] = "none"
			jtensor(m, 0)["layout"] = "hwio"
			// A tensor of a dtype this reader does not know, which no node uses.
			last := jtensor(m, len(m["tensors"].([]any))-1)
			m["tensors"] = append(m["tensors"].([]any), map[string]any{"name": "c.weight.packed", "dtype": "f16x8",
				"shape": []any{7}, "offset": mustInt(last["offset"]) + 64, "nbytes": 14})
			m["meta"].(map[string]any)["license"] = "MIT"
		})
		man, blob := split(t, newer)
		newer = setHeaderVersion(assemble(man, append(bytes.Clone(blob), make([]byte, 256+14-len(blob))...)), 1, 7)
		got, err := Decode(newer)
		if err != nil {
			t.Fatalf("minor 7 with extra fields: %v", err)
		}
		checkSame(t, tinyModel(), got)
	})
}

// TestManifestChecks edits the manifest of a valid image and re-signs it,
// so each case reaches the check it is about rather than the CRC.
func TestManifestChecks(t *testing.T) {
	img := mustEncode(t, allOpsModel())
	// Tensors of allOpsModel in blob order: 0 "conv \"stem\" ü.weight", 1 its bias, 2 "bn.scale", ...
	cases := []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"missing tensor", func(m map[string]any) { jnode(m, 2)["conv"].(map[string]any)["weight"] = "nope" },
			`node 2 "conv \"stem\" ü": conv.weight refers to tensor "nope", which is not in the tensor table`},
		{"missing weight", func(m map[string]any) { delete(jnode(m, 15)["dense"].(map[string]any), "weight") }, `node 15 "fc": dense.weight is missing`},
		{"oversized tensor", func(m map[string]any) {
			tt := jtensor(m, 2)
			tt["shape"], tt["nbytes"] = []any{6000}, 24000
		}, `tensor "bn.scale": bytes [`},
		{"offset past blob", func(m map[string]any) { jtensor(m, 1)["offset"] = int64(1 << 40) }, `tensor "conv \"stem\" ü.bias": bytes [1099511627776,`},
		{"negative offset", func(m map[string]any) { jtensor(m, 1)["offset"] = -64 }, `tensor "conv \"stem\" ü.bias": offset -64`},
		{"misaligned", func(m map[string]any) {
			jtensor(m, 2)["offset"] = json.Number(fmt.Sprint(mustInt(jtensor(m, 2)["offset"]) + 4))
		},
			`tensor "bn.scale": offset`},
		{"overlap", func(m map[string]any) { jtensor(m, 3)["offset"] = jtensor(m, 2)["offset"] }, `"bn.scale" [`},
		{"element count", func(m map[string]any) {
			tt := jtensor(m, 0)
			tt["shape"], tt["nbytes"] = []any{10}, 40
		}, `node 2 "conv \"stem\" ü": tensor "conv \"stem\" ü.weight" has 10 values, want 216 (3x3x4x6)`},
		{"dtype", func(m map[string]any) {
			tt := jtensor(m, 1)
			tt["dtype"], tt["nbytes"] = "i8", 6
		}, `tensor "conv \"stem\" ü.bias" is i8, want f32`},
		{"nbytes vs shape", func(m map[string]any) { jtensor(m, 1)["nbytes"] = 25 }, `tensor "conv \"stem\" ü.bias": nbytes is 25, but f32[6] needs 24`},
		{"zero dimension", func(m map[string]any) { jtensor(m, 1)["shape"] = []any{6, 0} }, `tensor "conv \"stem\" ü.bias": dimension 1 is 0`},
		{"duplicate tensor", func(m map[string]any) { jtensor(m, 1)["name"] = jtensor(m, 0)["name"] }, `listed twice`},
		{"unnamed tensor", func(m map[string]any) { jtensor(m, 1)["name"] = "" }, `tensors[1] has no name`},
		{"affine mismatch", func(m map[string]any) { jnode(m, 3)["affine"].(map[string]any)["shift"] = jtensor(m, 0)["name"] }, `has 216 values, want 6`},
		{"shape inference", func(m map[string]any) { jnode(m, 7)["inputs"] = []any{6, 0} }, `invalid graph: node 7 "add" (Add): operand shapes differ`},
		{"forward input", func(m map[string]any) { jnode(m, 4)["inputs"] = []any{5} }, "is not an earlier node"},
		{"declared shape", func(m map[string]any) { jnode(m, 4)["shape"] = []any{1, 2, 3} }, `node 4 "relu": manifest says shape [1 2 3], the graph gives 10x9x6`},
		{"input shape", func(m map[string]any) { delete(jnode(m, 0), "shape") }, "needs a shape"},
		{"int32 range", func(m map[string]any) { jnode(m, 5)["pool"].(map[string]any)["kh"] = int64(1 << 32) }, "pool.kh = 4294967296 is out of range"},
		{"no conv attrs", func(m map[string]any) { delete(jnode(m, 2), "conv") }, `Conv node without "conv" attributes`},
		{"no op", func(m map[string]any) { delete(jnode(m, 2), "op") }, "no op"},
		{"bad axis", func(m map[string]any) { jnode(m, 10)["concat"] = map[string]any{"axis": "N"} }, `concat.axis "N" is not H, W or C`},
		{"pad arity", func(m map[string]any) { jnode(m, 1)["pad"].(map[string]any)["before"] = []any{1} }, "pad.before has 1 values, want 3"},
		{"output index", func(m map[string]any) { m["graph"].(map[string]any)["output"] = 99 }, "output index 99"},
		{"no nodes", func(m map[string]any) { m["graph"].(map[string]any)["nodes"] = []any{} }, "graph has no nodes"},
		{"labels", func(m map[string]any) { m["meta"].(map[string]any)["labels"] = []any{"a"} }, "1 labels for 5 outputs"},
		{"preprocess", func(m map[string]any) { m["meta"].(map[string]any)["preprocess"].(map[string]any)["width"] = 9 }, "preprocessing makes 8x9x3"},
		{"preprocess range", func(m map[string]any) {
			m["meta"].(map[string]any)["preprocess"].(map[string]any)["resize"] = int64(-1 << 40)
		}, "meta.preprocess.resize"},
		{"type", func(m map[string]any) { jnode(m, 2)["conv"].(map[string]any)["kh"] = "3" }, "graph.nodes[2].conv.kh: want number, got string"},
		{"float int", func(m map[string]any) { jnode(m, 2)["conv"].(map[string]any)["kh"] = 3.5 }, "graph.nodes[2].conv.kh: want an integer"},
		{"float range", func(m map[string]any) { jnode(m, 1)["pad"].(map[string]any)["value"] = 1e300 }, "graph.nodes[1].pad.value: number out of float32 range"},
		{"float string", func(m map[string]any) { jnode(m, 1)["pad"].(map[string]any)["value"] = "nan" }, `want a number, got string "nan"`},
		{"version mismatch", func(m map[string]any) { m["format_minor"] = 3 }, "manifest says format 1.3, header says 1.0"},
		{"not an object", func(m map[string]any) { m["meta"] = []any{} }, "meta: want object, got array"},
		{"provenance", func(m map[string]any) { m["meta"].(map[string]any)["provenance"] = map[string]any{"b": 1, "a": true} }, `meta.provenance["a"]: want string, got boolean`},
	}
	bothParsers(t, func(t *testing.T) {
		for _, c := range cases {
			err := decodeErr(t, editManifest(t, img, c.edit))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s:\n got %v\nwant ErrCorrupt containing %s", c.name, err, c.want)
			}
		}
		if err := decodeErr(t, editManifest(t, img, cases[14].edit)); !errors.Is(err, graph.ErrInvalid) {
			t.Errorf("shape inference errors should also wrap graph.ErrInvalid: %v", err)
		}
	})

	man, blob := split(t, img)
	for _, c := range []struct {
		name     string
		manifest string
		want     string
	}{
		{"syntax", string(man[:len(man)-1]), "not valid JSON"},
		{"utf8", strings.Replace(string(man), "T-shirt", "T-\xffshirt", 1), "not valid UTF-8"},
		{"trailing", string(man) + " {}", "data after the top-level value"},
		{"array", "[]", "manifest: want object, got array"},
		{"null", "null", "manifest: want object, got null"},
	} {
		bothParsers(t, func(t *testing.T) {
			err := decodeErr(t, assemble([]byte(c.manifest), blob))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: got %v, want %q", c.name, err, c.want)
			}
		})
	}
}

func mustInt(v any) int64 {
	n, err := v.(json.Number).Int64()
	if err != nil {
		panic(err)
	}
	return n
}

// TestErrorMessage pins the shape of a typical message.
func TestErrorMessage(t *testing.T) {
	img := editManifest(t, mustEncode(t, allOpsModel()), func(m map[string]any) {
		tt := jtensor(m, 0)
		tt["shape"], tt["nbytes"] = []any{100}, 400
	})
	_, err := Decode(img)
	want := `firmware: node 2 "conv \"stem\" ü": tensor "conv \"stem\" ü.weight" has 100 values, want 216 (3x3x4x6): corrupt model image`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}
