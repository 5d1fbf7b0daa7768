package firmware

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
)

// SafeTensor is one tensor of a safetensors file: its dtype name as the
// format spells it (F32, F16, BF16, F64, I64...), its shape and its
// little-endian bytes (a view of the file's data).
type SafeTensor struct {
	DType string
	Shape []int
	Data  []byte
}

// Float32s converts a floating-point tensor to float32 (F16 and BF16
// exactly, F64 rounded).
func (t SafeTensor) Float32s() ([]float32, error) {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	size := map[string]int{"F32": 4, "F16": 2, "BF16": 2, "F64": 8}[t.DType]
	if size == 0 {
		return nil, fmt.Errorf("dtype %s is not floating point", t.DType)
	}
	if len(t.Data) != n*size {
		return nil, fmt.Errorf("%d bytes for %v %s", len(t.Data), t.Shape, t.DType)
	}
	out := make([]float32, n)
	for i := range out {
		b := t.Data[i*size:]
		switch t.DType {
		case "F32":
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b))
		case "F64":
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b)))
		case "BF16":
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16)
		case "F16":
			out[i] = halfToFloat(binary.LittleEndian.Uint16(b))
		}
	}
	return out, nil
}

// halfToFloat converts an IEEE 754 binary16 value exactly.
func halfToFloat(h uint16) float32 {
	sign := float32(1)
	if h&0x8000 != 0 {
		sign = -1
	}
	exp, frac := int(h>>10&0x1f), float64(h&0x3ff)
	switch exp {
	case 0:
		return sign * float32(math.Ldexp(frac, -24))
	case 31:
		if frac != 0 {
			return float32(math.NaN())
		}
		return sign * float32(math.Inf(1))
	}
	return sign * float32(math.Ldexp(1024+frac, exp-25))
}

// safetensorsDTypes are the element sizes of the dtypes the format defines.
var safetensorsDTypes = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}

// ReadSafetensors parses a safetensors file held in data: an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype,
// shape and [begin, end) byte range in the data that follows, and an
// optional "__metadata__" object of strings. Tensors alias data. Every
// range is checked; a malformed file is an ErrCorrupt error, never a panic.
func ReadSafetensors(data []byte) (map[string]SafeTensor, map[string]string, error) {
	if len(data) < 8 {
		return nil, nil, corruptf("safetensors: %d bytes, shorter than the header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if !safetensorsHeaderLen(n, int64(len(data)-8)) {
		return nil, nil, corruptf("safetensors: header of %d bytes in a %d-byte file", n, len(data))
	}
	root, err := parseJSON(data[8:8+n], "safetensors header")
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors header: %w", err)
	}
	fields, err := root.fields()
	if err != nil || root.kind() != jsonObject {
		return nil, nil, corruptf("safetensors: header is not a JSON object")
	}
	blob := data[8+n:]
	tensors := map[string]SafeTensor{}
	meta := map[string]string{}
	type span struct {
		begin, end int
		name       string
	}
	var spans []span
	for name, v := range fields {
		f, err := v.fields()
		if err != nil || v.kind() != jsonObject {
			return nil, nil, corruptf("safetensors: entry %q is not an object", name)
		}
		if name == "__metadata__" {
			for k, mv := range f {
				s, err := mv.str()
				if err != nil || mv.kind() != jsonString {
					return nil, nil, corruptf("safetensors: metadata %q is not a string", k)
				}
				meta[k] = s
			}
			continue
		}
		t, b, e, err := safeTensorEntry(name, f, len(blob))
		if err != nil {
			return nil, nil, err
		}
		t.Data = blob[b:e]
		tensors[name] = t
		spans = append(spans, span{b, e, name})
	}
	slices.SortFunc(spans, func(a, b span) int { return a.begin - b.begin })
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return nil, nil, corruptf("safetensors: tensors %q and %q overlap", spans[i-1].name, spans[i].name)
		}
	}
	return tensors, meta, nil
}

func safeTensorEntry(name string, f map[string]jsonValue, blobLen int) (SafeTensor, int, int, error) {
	var t SafeTensor
	bad := func(format string, args ...any) (SafeTensor, int, int, error) {
		return t, 0, 0, corruptf("safetensors: tensor %q: %s", name, fmt.Sprintf(format, args...))
	}
	dt, ok := f["dtype"]
	if !ok || dt.kind() != jsonString {
		return bad("no dtype")
	}
	t.DType, _ = dt.str()
	size, ok := safetensorsDTypes[t.DType]
	if !ok {
		return bad("unknown dtype %q", t.DType)
	}
	shape, ok := f["shape"]
	if !ok || shape.kind() != jsonArray {
		return bad("no shape")
	}
	dims, _ := shape.elems()
	count := int64(1)
	for _, d := range dims {
		v, ok := d.integer()
		if !ok || v < 0 || v > 1<<31 {
			return bad("bad shape")
		}
		count *= v
		if count > int64(blobLen) {
			return bad("shape %v larger than the file", t.Shape)
		}
		t.Shape = append(t.Shape, int(v))
	}
	offs, ok := f["data_offsets"]
	if !ok || offs.kind() != jsonArray {
		return bad("no data_offsets")
	}
	o, _ := offs.elems()
	if len(o) != 2 {
		return bad("data_offsets must have two entries")
	}
	b, ok1 := o[0].integer()
	e, ok2 := o[1].integer()
	if !ok1 || !ok2 || b < 0 || e < b || e > int64(blobLen) {
		return bad("data_offsets [%d, %d] outside the %d-byte data", b, e, blobLen)
	}
	if e-b != count*int64(size) {
		return bad("%d bytes for shape %v of %s", e-b, t.Shape, t.DType)
	}
	return t, int(b), int(e), nil
}

// safetensorsHeaderLen reports whether a safetensors header of n bytes
// is possible in front of rest bytes: JSON of at most 100 MiB.
func safetensorsHeaderLen(n uint64, rest int64) bool {
	return n >= 2 && n <= 100<<20 && rest >= 0 && n <= uint64(rest)
}

// ReadSafetensorsFile is ReadSafetensors on a file; errors name it. Like
// Open it reads pipes and devices too, at most MaxModelBytes.
func ReadSafetensorsFile(path string) (map[string]SafeTensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := readModel(f, MaxModelBytes, safetensorsData)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	t, m, err := ReadSafetensors(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, m, nil
}
