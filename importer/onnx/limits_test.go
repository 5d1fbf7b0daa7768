package onnx

import (
	"bytes"
	"errors"
	goio "io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/firmware"
)

// hostileCase is a small file that declares far more than it holds, or
// asks constant folding or the decoder for far more memory than it is
// worth. Each must fail with a clean error before the memory is spent.
type hostileCase struct {
	name     string
	data     []byte
	maxBytes int64 // MaxImportBytes for the case (0: the default)
	want     error
	msg      string
}

func hostileCases() []hostileCase {
	// use makes the constant k an input of the graph's output.
	use := func(m *tmodel) { m.node(node("Add", "use", io("c", "k"), io("y"))) }
	withK := func(f func(m *tmodel)) []byte {
		return withNodes(13, func(m *tmodel) { f(m); use(m) })
	}
	raw8 := make([]byte, 8)
	many := func(n int, v int64) []int64 {
		s := make([]int64, n)
		for k := range s {
			s[k] = v
		}
		return s
	}
	return []hostileCase{
		// Initializers whose data do not fill their dims.
		{name: "short_initializer", data: withK(func(m *tmodel) {
			m.init(tensorRaw("k", dtInt64, []int{1 << 28}, raw8))
		}), want: ErrCorrupt, msg: `node 1 "use" (Add): initializer "k" declares 268435456 INT64 values (2.0 GiB) but raw_data holds 8 bytes`},
		{name: "short_float_weight", data: func() []byte {
			m := small(13)
			m.inits[0] = tensorRaw("w", dtFloat, []int{1 << 14, 1 << 14, 1, 1}, raw8)
			return m.bytes()
		}(), want: ErrCorrupt, msg: `node 0 "conv" (Conv): initializer "w" declares 268435456 FLOAT values (1.0 GiB) but raw_data holds 8 bytes`},
		{name: "short_int64_data", data: withK(func(m *tmodel) {
			m.init(pb{}.packedVarints(1, []int64{1 << 28}).varint(2, dtInt64).str(8, "k").packedVarints(7, []int64{1}))
		}), want: ErrCorrupt, msg: `initializer "k" declares 268435456 INT64 values but int64_data holds 1`},
		{name: "short_int32_data_int8", data: withK(func(m *tmodel) {
			m.init(pb{}.packedVarints(1, []int64{1 << 20, 1 << 20}).varint(2, dtInt8).str(8, "k").packedVarints(5, []int64{1, 2}))
		}), want: ErrCorrupt, msg: `initializer "k" declares 1099511627776 INT8 values but int32_data holds 2`},
		{name: "overflowing_dims", data: withK(func(m *tmodel) {
			m.init(pb{}.packedVarints(1, []int64{1 << 62, 1 << 62, 4}).varint(2, dtBool).str(8, "k").bytes(9, raw8))
		}), want: ErrCorrupt, msg: `declares more than 2^63 (dims [4611686018427387904 4611686018427387904 4]) BOOL values (more than 8 EiB) but raw_data holds 8 bytes`},
		{name: "size_wraps_around", data: withK(func(m *tmodel) { // 2^62 values of 8 bytes: 0 mod 2^64
			m.init(pb{}.packedVarints(1, []int64{1 << 31, 1 << 31}).varint(2, dtInt64).str(8, "k").bytes(9, nil))
		}), want: ErrCorrupt, msg: `declares 4611686018427387904 INT64 values (more than 8 EiB) but raw_data holds 0 bytes`},
		{name: "short_constant_value", data: withK(func(m *tmodel) {
			m.node(node("Constant", "big", nil, io("k"), aTensor("value", tensorRaw("v", dtFloat, []int{1 << 28}, raw8))))
		}), want: ErrCorrupt, msg: `node 1 "big" (Constant): attribute value declares 268435456 FLOAT values (1.0 GiB) but raw_data holds 8 bytes`},
		{name: "short_constant_of_shape_value", data: withK(func(m *tmodel) {
			m.init(vec1("s", 2))
			m.node(node("ConstantOfShape", "cos", io("s"), io("k"), aTensor("value", tensorRaw("v", dtFloat, []int{1 << 20}, raw8))))
		}), want: ErrCorrupt, msg: `(ConstantOfShape): attribute value declares 1048576 FLOAT values (4.0 MiB) but raw_data holds 8 bytes`},

		// Constant folding that would make huge tensors from tiny ones.
		{name: "huge_constant_of_shape", data: withK(func(m *tmodel) {
			m.init(vec1("s", 1<<14, 1<<14))
			m.node(node("ConstantOfShape", "cos", io("s"), io("k")))
		}), want: ErrTooLarge, msg: `node 1 "cos" (ConstantOfShape): the folded result, FLOAT [16384 16384], needs 1.0 GiB, more than the 16.0 MiB left of the import's memory budget of 16.0 MiB (16.0 MiB + 16 B per byte of the 647-byte file; at most onnx.MaxImportBytes, 1.0 GiB)`},
		{name: "constant_of_shape_over_2p28", data: withK(func(m *tmodel) {
			m.init(vec1("s", 1<<16, 1<<16))
			m.node(node("ConstantOfShape", "cos", io("s"), io("k")))
		}), want: ErrTooLarge, msg: `node 1 "cos" (ConstantOfShape): tensor dims [65536 65536] exceed 268435456 elements`},
		{name: "huge_expand", data: withK(func(m *tmodel) {
			m.init(scalarF("one", 1))
			m.init(vec1("s", 1<<13, 1<<13))
			m.node(node("Expand", "ex", io("one", "s"), io("k")))
		}), want: ErrTooLarge, msg: `node 1 "ex" (Expand): the folded result, FLOAT [8192 8192], needs 256.0 MiB`},
		{name: "huge_tile", data: withK(func(m *tmodel) {
			m.init(tensorF("t", []int{1}, []float32{1}))
			m.init(vec1("r", 1<<27))
			m.node(node("Tile", "tile", io("t", "r"), io("k")))
		}), want: ErrTooLarge, msg: `node 1 "tile" (Tile): the folded result, FLOAT [134217728], needs 512.0 MiB`},
		{name: "huge_range", data: withK(func(m *tmodel) {
			m.init(tensorI64("a", nil, []int64{0}, true))
			m.init(tensorI64("b", nil, []int64{1 << 27}, true))
			m.init(tensorI64("d", nil, []int64{1}, true))
			m.node(node("Range", "rg", io("a", "b", "d"), io("k")))
		}), want: ErrTooLarge, msg: `node 1 "rg" (Range): the folded result, INT64 [134217728], needs 1.0 GiB`},
		{name: "folds_add_up", data: withK(func(m *tmodel) {
			// Each of 8 ConstantOfShape is within the budget; together not.
			m.init(vec1("s", 1<<10, 1<<10))
			prev := ""
			for k := range 8 {
				out := "k" + string(rune('a'+k))
				m.node(node("ConstantOfShape", "cos"+out, io("s"), io(out)))
				if prev != "" {
					m.node(node("Add", "sum"+out, io(prev, out), io(out+"s")))
					out += "s"
				}
				prev = out
			}
			m.node(node("Identity", "last", io(prev), io("k")))
		}), want: ErrTooLarge, msg: `more than the `},
		{name: "reshape_to_huge", data: withK(func(m *tmodel) {
			m.init(tensorF("t", []int{1}, []float32{1}))
			m.init(vec1("s", 1<<20, 1<<20))
			m.node(node("Reshape", "rs", io("t", "s"), io("k")))
		}), want: ErrCorrupt, msg: `node 1 "rs" (Reshape): shape [1048576 1048576] does not match 1 elements`},

		// Structures that take far more memory than wire bytes, under a
		// small MaxImportBytes.
		{name: "long_attribute_list", maxBytes: 1 << 20, data: withNodes(13, func(m *tmodel) {
			m.node(node("Relu", "r", io("c"), io("y"), aInts("junk", many(200_000, 1)...)))
		}), want: ErrTooLarge, msg: `the file's structure needs more than the import's memory budget of 1.0 MiB (onnx.MaxImportBytes) (exceeded decoding AttributeProto messages)`},
		{name: "many_empty_nodes", maxBytes: 1 << 20, data: func() []byte {
			m := small(13)
			for range 50_000 {
				m.node(pb{})
			}
			return m.bytes()
		}(), want: ErrTooLarge, msg: `(exceeded decoding NodeProto messages)`},
		{name: "long_int64_data", maxBytes: 1 << 20, data: withK(func(m *tmodel) {
			m.init(pb{}.packedVarints(1, []int64{200_000}).varint(2, dtInt64).str(8, "k").packedVarints(7, many(200_000, 1)))
		}), want: ErrTooLarge, msg: `(exceeded decoding TensorProto messages)`},
	}
}

func TestHostileModels(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			if tc.maxBytes > 0 {
				defer func(old int64) { MaxImportBytes = old }(MaxImportBytes)
				MaxImportBytes = tc.maxBytes
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			g, _, err := Import(tc.data, Options{})
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("imported a graph of %d nodes", len(g.Nodes))
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q\nwant %v containing %q", err, tc.want, tc.msg)
			}
			// Nothing large was allocated: the budget of a small file is
			// 16 MiB plus 16 B per byte, and the checks come first.
			if d := after.TotalAlloc - before.TotalAlloc; d > 64<<20 {
				t.Errorf("allocated %d MiB (%d-byte file)", d>>20, len(tc.data))
			}
		})
	}
}

// The sentinels classify for callers of package firmware too.
func TestSentinels(t *testing.T) {
	for _, c := range []struct {
		err  error
		is   []error
		isnt []error
	}{
		{ErrCorrupt, []error{firmware.ErrCorrupt}, []error{ErrUnsupported, firmware.ErrTooLarge}},
		{ErrTooLarge, []error{ErrUnsupported, firmware.ErrTooLarge}, []error{ErrCorrupt, firmware.ErrCorrupt}},
		{corruptf("x"), []error{ErrCorrupt, firmware.ErrCorrupt}, []error{ErrUnsupported}},
		{tooLargef("x"), []error{ErrTooLarge, ErrUnsupported, firmware.ErrTooLarge}, []error{ErrCorrupt}},
	} {
		for _, e := range c.is {
			if !errors.Is(c.err, e) {
				t.Errorf("%v is not %v", c.err, e)
			}
		}
		for _, e := range c.isnt {
			if errors.Is(c.err, e) {
				t.Errorf("%v is %v", c.err, e)
			}
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// ImportFile and ImportReader read at most firmware.MaxModelBytes, and
// stop at the first bytes of what is not protobuf.
func TestImportReadLimits(t *testing.T) {
	model := small(13).bytes()
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(path, model, 0o644); err != nil {
		t.Fatal(err)
	}
	hide := func(r goio.Reader) goio.Reader { return struct{ goio.Reader }{r} } // not an *os.File
	cases := []struct {
		name  string
		run   func() error
		limit int64
		want  error
		msg   string
	}{
		{name: "reader", run: func() error { _, _, err := ImportReader(hide(bytes.NewReader(model)), Options{}); return err }},
		{name: "file", run: func() error { _, _, err := ImportFile(path, Options{}); return err }},
		{name: "reader over the limit", limit: 100, want: ErrTooLarge, msg: "onnx: model too large: ",
			run: func() error { _, _, err := ImportReader(hide(bytes.NewReader(model)), Options{}); return err }},
		{name: "file over the limit", limit: 100, want: ErrTooLarge, msg: "onnx: " + path + ": model too large: the file is",
			run: func() error { _, _, err := ImportFile(path, Options{}); return err }},
		{name: "zeros", want: ErrCorrupt, msg: "neither a model image nor an ONNX file",
			run: func() error { _, _, err := ImportReader(zeros{}, Options{}); return err }},
		{name: "zero device", want: ErrCorrupt, msg: "onnx: /dev/zero: neither a model image nor an ONNX file",
			run: func() error {
				if runtime.GOOS != "linux" {
					return corruptf("neither a model image nor an ONNX file (skipped: no /dev/zero)")
				}
				_, _, err := ImportFile("/dev/zero", Options{})
				return err
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.limit > 0 {
				defer func(old int64) { firmware.MaxModelBytes = old }(firmware.MaxModelBytes)
				firmware.MaxModelBytes = tc.limit
			}
			err := tc.run()
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q\nwant %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
}
