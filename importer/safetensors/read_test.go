package safetensors

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/firmware"
)

// file assembles a safetensors file from its JSON header and data.
func file(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestRead(t *testing.T) {
	data := make([]byte, 0, 26)
	for _, v := range []float32{1, -2.5, 3} {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	data = binary.LittleEndian.AppendUint16(data, 0x3c00) // F16 1.0
	data = binary.LittleEndian.AppendUint16(data, 0xc000) // F16 -2.0
	data = binary.LittleEndian.AppendUint16(data, 0x3f80) // BF16 1.0
	data = binary.LittleEndian.AppendUint64(data, math.Float64bits(0.5))
	header := `{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},` +
		`"h":{"dtype":"F16","shape":[2],"data_offsets":[12,16]},` +
		`"b":{"dtype":"BF16","shape":[1],"data_offsets":[16,18]},` +
		`"d":{"dtype":"F64","shape":[],"data_offsets":[18,26]},` +
		`"__metadata__":{"arch":"x"}}   ` // padded with spaces, as the library does
	ts, meta, err := Read(file(header, data))
	if err != nil {
		t.Fatal(err)
	}
	if meta["arch"] != "x" || len(ts) != 4 {
		t.Fatalf("meta %v, %d tensors", meta, len(ts))
	}
	for name, want := range map[string][]float32{"w": {1, -2.5, 3}, "h": {1, -2}, "b": {1}, "d": {0.5}} {
		got, err := ts[name].Float32s()
		if err != nil || len(got) != len(want) {
			t.Fatalf("%s: %v %v", name, got, err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s[%d] = %v, want %v", name, i, got[i], want[i])
			}
		}
	}
	bad := map[string]string{
		`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}`:                                                      "shape [4] of F32",
		`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,1200]}}`:                                                    "outside the 26-byte data",
		`{"w":{"dtype":"X9","shape":[3],"data_offsets":[0,12]}}`:                                                       `unknown dtype "X9"`,
		`{"w":{"dtype":"F32","shape":[-3],"data_offsets":[0,12]}}`:                                                     "bad shape",
		`{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,12]}}`:                                                    "bad shape",
		`{"w":{"dtype":"F32","shape":["3"],"data_offsets":[0,12]}}`:                                                    "bad shape",
		`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`: `"w" and "v" overlap`,
		`{"w":{"dtype":"F32","shape":[3]}}`:                                                                            "no data_offsets",
		`{"w":{"shape":[3],"data_offsets":[0,12]}}`:                                                                    "no dtype",
		`{"w":{"dtype":"F32","shape":null,"data_offsets":[0,12]}}`:                                                     "no shape",
		`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0]}}`:                                                         "two entries",
		`{"w":7}`:                  "not an object",
		`{"__metadata__":{"a":1}}`: `metadata "a" is not a string`,
		`[1,2]`:                    "not a JSON object",
		`{"w":`:                    "not valid JSON",
		`{} {}`:                    "data after the object",
		"{\"\xff\":1}":             "UTF-8",
	}
	for h, msg := range bad {
		_, _, err := Read(file(h, data))
		if !errors.Is(err, ErrCorrupt) || !errors.Is(err, firmware.ErrCorrupt) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want ErrCorrupt with %q", h, err, msg)
		}
	}
	full := file(header, data)
	for n := 0; n < len(full); n++ {
		if _, _, err := Read(full[:n]); !errors.Is(err, ErrCorrupt) { // and no panic
			t.Fatalf("%d of %d bytes: %v", n, len(full), err)
		}
	}
}

func TestFloat32sErrors(t *testing.T) {
	if _, err := (Tensor{DType: "I64", Shape: []int{1}, Data: make([]byte, 8)}).Float32s(); !errors.Is(err, ErrMismatch) {
		t.Errorf("I64: %v, want ErrMismatch", err)
	}
	if _, err := (Tensor{DType: "F32", Shape: []int{2}, Data: make([]byte, 4)}).Float32s(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short data: %v, want ErrCorrupt", err)
	}
}

func TestHalfToFloat(t *testing.T) {
	for h, want := range map[uint16]float32{
		0x0000: 0, 0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0001: 0x1p-24, 0x03ff: 0x3ffp-24,
		0x7c00: float32(math.Inf(1)), 0xfc00: float32(math.Inf(-1)),
	} {
		if got := halfToFloat(h); got != want {
			t.Errorf("halfToFloat(%#04x) = %g, want %g", h, got, want)
		}
	}
	if f := halfToFloat(0x7e00); f == f {
		t.Errorf("halfToFloat(NaN) = %g", f)
	}
}

func FuzzRead(f *testing.F) {
	f.Add(file(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, []byte{0, 0, 128, 63}))
	f.Add(file(`{"__metadata__":{"a":"b"}}`, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, _, err := Read(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("not ErrCorrupt: %v", err)
			}
			return
		}
		for name, x := range ts {
			if _, err := x.Float32s(); err != nil && !errors.Is(err, ErrMismatch) {
				t.Fatalf("%s: %v", name, err)
			}
		}
	})
}
