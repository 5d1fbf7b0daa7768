package firmware

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

func safetensorsFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestReadSafetensors(t *testing.T) {
	data := make([]byte, 0, 24)
	for _, v := range []float32{1, -2.5, 3} {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	data = binary.LittleEndian.AppendUint16(data, 0x3c00) // F16 1.0
	data = binary.LittleEndian.AppendUint16(data, 0xc000) // F16 -2.0
	data = binary.LittleEndian.AppendUint16(data, 0x3f80) // BF16 1.0
	header := `{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},` +
		`"h":{"dtype":"F16","shape":[2],"data_offsets":[12,16]},` +
		`"b":{"dtype":"BF16","shape":[1],"data_offsets":[16,18]},` +
		`"__metadata__":{"arch":"x"}}`
	ts, meta, err := ReadSafetensors(safetensorsFile(header, data))
	if err != nil {
		t.Fatal(err)
	}
	if meta["arch"] != "x" || len(ts) != 3 {
		t.Fatalf("meta %v, %d tensors", meta, len(ts))
	}
	for name, want := range map[string][]float32{"w": {1, -2.5, 3}, "h": {1, -2}, "b": {1}} {
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
	bad := []string{
		`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}`,                                                      // size mismatch
		`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,1200]}}`,                                                    // past the end
		`{"w":{"dtype":"X9","shape":[3],"data_offsets":[0,12]}}`,                                                       // unknown dtype
		`{"w":{"dtype":"F32","shape":[-3],"data_offsets":[0,12]}}`,                                                     // negative dim
		`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, // overlap
		`{"w":{"dtype":"F32","shape":[3]}}`,                                                                            // no offsets
		`[1,2]`,
		`{"w":`,
	}
	for _, h := range bad {
		if _, _, err := ReadSafetensors(safetensorsFile(h, data)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: want ErrCorrupt, got %v", h, err)
		}
	}
	full := safetensorsFile(header, data)
	for n := 0; n < len(full); n++ {
		ReadSafetensors(full[:n]) // must not panic
	}
}

func FuzzReadSafetensors(f *testing.F) {
	f.Add(safetensorsFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, []byte{0, 0, 128, 63}))
	f.Add(safetensorsFile(`{"__metadata__":{"a":"b"}}`, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, _, err := ReadSafetensors(b)
		if err != nil {
			return
		}
		for _, x := range ts {
			x.Float32s()
		}
	})
}
