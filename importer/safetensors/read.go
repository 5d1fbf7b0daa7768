package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/edge-resnet/edge-resnet/firmware"
)

// dtypeSizes are the element sizes of the dtypes the format defines.
var dtypeSizes = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}

// maxHeaderBytes caps the JSON header, as the safetensors library does.
const maxHeaderBytes = 100 << 20

// Read parses a safetensors file held in data: an 8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and
// [begin, end) byte range in the data that follows, and an optional
// "__metadata__" object of strings, which is returned as the map of
// strings. Tensors alias data. Every range is checked; a malformed file
// is an ErrCorrupt error, never a panic.
func Read(data []byte) (map[string]Tensor, map[string]string, error) {
	if len(data) < 8 {
		return nil, nil, corruptf("%d bytes, shorter than the header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if !headerLen(n, int64(len(data)-8)) {
		return nil, nil, corruptf("header of %d bytes in a %d-byte file", n, len(data))
	}
	fields, err := parseHeader(data[8 : 8+n])
	if err != nil {
		return nil, nil, err
	}
	blob := data[8+n:]
	tensors := map[string]Tensor{}
	meta := map[string]string{}
	type span struct {
		begin, end int
		name       string
	}
	var spans []span
	for name, v := range fields {
		f, ok := v.(map[string]any)
		if !ok {
			return nil, nil, corruptf("entry %q is not an object", name)
		}
		if name == "__metadata__" {
			for k, mv := range f {
				if meta[k], ok = mv.(string); !ok {
					return nil, nil, corruptf("metadata %q is not a string", k)
				}
			}
			continue
		}
		t, b, e, err := entry(name, f, len(blob))
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
			return nil, nil, corruptf("tensors %q and %q overlap", spans[i-1].name, spans[i].name)
		}
	}
	return tensors, meta, nil
}

// headerLen reports whether a header of n bytes is possible in front of
// rest bytes.
func headerLen(n uint64, rest int64) bool {
	return n >= 2 && n <= maxHeaderBytes && rest >= 0 && n <= uint64(rest)
}

// parseHeader parses the JSON header, an object (numbers as json.Number).
func parseHeader(b []byte) (map[string]any, error) {
	// encoding/json would replace bad bytes in names with U+FFFD.
	if !utf8.Valid(b) {
		return nil, corruptf("header is not valid UTF-8")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, corruptf("header is not valid JSON: %v", err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, corruptf("header is not valid JSON: data after the object at byte %d", d.InputOffset())
	}
	fields, ok := v.(map[string]any)
	if !ok {
		return nil, corruptf("header is not a JSON object")
	}
	return fields, nil
}

// entry checks one tensor's header entry against the blobLen bytes of
// data, and returns the tensor (without data) and its byte range.
func entry(name string, f map[string]any, blobLen int) (Tensor, int, int, error) {
	var t Tensor
	bad := func(format string, args ...any) (Tensor, int, int, error) {
		return t, 0, 0, corruptf("tensor %q: %s", name, fmt.Sprintf(format, args...))
	}
	var ok bool
	if t.DType, ok = f["dtype"].(string); !ok {
		return bad("no dtype")
	}
	size, ok := dtypeSizes[t.DType]
	if !ok {
		return bad("unknown dtype %q", t.DType)
	}
	dims, ok := f["shape"].([]any)
	if !ok {
		return bad("no shape")
	}
	count := int64(1)
	for _, d := range dims {
		v, ok := integer(d)
		if !ok || v < 0 || v > 1<<31 {
			return bad("bad shape")
		}
		count *= v
		if count > int64(blobLen) {
			return bad("shape %v larger than the file", t.Shape)
		}
		t.Shape = append(t.Shape, int(v))
	}
	offs, ok := f["data_offsets"].([]any)
	if !ok {
		return bad("no data_offsets")
	}
	if len(offs) != 2 {
		return bad("data_offsets must have two entries")
	}
	b, ok1 := integer(offs[0])
	e, ok2 := integer(offs[1])
	if !ok1 || !ok2 || b < 0 || e < b || e > int64(blobLen) {
		return bad("data_offsets [%v, %v] outside the %d-byte data", offs[0], offs[1], blobLen)
	}
	if e-b != count*int64(size) {
		return bad("%d bytes for shape %v of %s", e-b, t.Shape, t.DType)
	}
	return t, int(b), int(e), nil
}

// integer is a JSON number written as an integer.
func integer(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

// ReadFile is Read on a file, which may also be a pipe or a device; errors
// name it. It reads at most firmware.MaxModelBytes: a larger regular file
// is refused before it is read, a stream as soon as it passes the limit
// (both firmware.ErrTooLarge errors), and a stream whose header length is
// impossible (/dev/zero) is not read past it.
func ReadFile(path string) (map[string]Tensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	t, m, err := read(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, m, nil
}

// read reads a safetensors file from r with the limits of ReadFile.
func read(r io.Reader) (map[string]Tensor, map[string]string, error) {
	limit := firmware.MaxModelBytes
	data, err := firmware.ReadCapped(r, limit, 8, func(head []byte) bool {
		return headerLen(binary.LittleEndian.Uint64(head), limit-8)
	})
	if err != nil {
		return nil, nil, err
	}
	return Read(data)
}
