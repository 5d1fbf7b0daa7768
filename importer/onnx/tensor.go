package onnx

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// TensorProto.DataType values.
const (
	dtUndefined = 0
	dtFloat     = 1
	dtUint8     = 2
	dtInt8      = 3
	dtUint16    = 4
	dtInt16     = 5
	dtInt32     = 6
	dtInt64     = 7
	dtString    = 8
	dtBool      = 9
	dtFloat16   = 10
	dtDouble    = 11
	dtUint32    = 12
	dtUint64    = 13
	dtBfloat16  = 16
)

var dtNames = map[int64]string{
	dtUndefined: "UNDEFINED", dtFloat: "FLOAT", dtUint8: "UINT8", dtInt8: "INT8", dtUint16: "UINT16",
	dtInt16: "INT16", dtInt32: "INT32", dtInt64: "INT64", dtString: "STRING", dtBool: "BOOL",
	dtFloat16: "FLOAT16", dtDouble: "DOUBLE", dtUint32: "UINT32", dtUint64: "UINT64",
	14: "COMPLEX64", 15: "COMPLEX128", dtBfloat16: "BFLOAT16",
}

func dtName(dt int64) string {
	if s, ok := dtNames[dt]; ok {
		return s
	}
	return fmt.Sprintf("data type %d", dt)
}

func isFloatType(dt int64) bool {
	return dt == dtFloat || dt == dtDouble || dt == dtFloat16 || dt == dtBfloat16
}

func isIntType(dt int64) bool {
	switch dt {
	case dtUint8, dtInt8, dtUint16, dtInt16, dtInt32, dtInt64, dtBool, dtUint32, dtUint64:
		return true
	}
	return false
}

// maxTensorElements bounds every tensor, stored or computed, so that a
// hostile dims list cannot make us allocate gigabytes.
const maxTensorElements = 1 << 28

// maxDimValue bounds each dimension of a tensor, even of an empty one, so
// that index arithmetic stays far from overflow.
const maxDimValue = maxTensorElements

// tensor is a constant: an initializer, a Constant's value or a folded
// result. Floating types are held as float32 (what the runtime computes in)
// and integer and bool types as int64, so the constant evaluator needs only
// two code paths. Exactly one of f and i is used, chosen by dtype.
type tensor struct {
	dtype int64
	dims  []int
	f     []float32
	i     []int64
}

func (t *tensor) isFloat() bool { return isFloatType(t.dtype) }

func (t *tensor) size() int {
	if t.isFloat() {
		return len(t.f)
	}
	return len(t.i)
}

// float returns element k as float64 whatever the type.
func (t *tensor) float(k int) float64 {
	if t.isFloat() {
		return float64(t.f[k])
	}
	return float64(t.i[k])
}

// int returns element k as int64 whatever the type (floats truncate,
// saturating so the conversion is defined for every value).
func (t *tensor) int(k int) int64 {
	if t.isFloat() {
		return floatToInt(float64(t.f[k]))
	}
	return t.i[k]
}

func floatToInt(v float64) int64 {
	switch {
	case v != v:
		return 0
	case v >= math.MaxInt64:
		return math.MaxInt64
	case v <= math.MinInt64:
		return math.MinInt64
	}
	return int64(v)
}

func (t *tensor) floats() []float32 {
	if t.isFloat() {
		return t.f
	}
	out := make([]float32, len(t.i))
	for k, v := range t.i {
		out[k] = float32(v)
	}
	return out
}

func (t *tensor) ints() []int64 {
	if !t.isFloat() {
		return t.i
	}
	out := make([]int64, len(t.f))
	for k := range t.f {
		out[k] = t.int(k)
	}
	return out
}

func (t *tensor) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s%v", dtName(t.dtype), t.dims)
	return sb.String()
}

// newTensor allocates a tensor of the given type and dims, checking the size.
func newTensor(dt int64, dims []int) (*tensor, error) {
	n, err := numElements(dims)
	if err != nil {
		return nil, err
	}
	return allocTensor(dt, dims, n), nil
}

// allocTensor allocates a tensor of n elements (numElements(dims)).
func allocTensor(dt int64, dims []int, n int) *tensor {
	t := &tensor{dtype: dt, dims: dims}
	if isFloatType(dt) {
		t.f = make([]float32, n)
	} else {
		t.i = make([]int64, n)
	}
	return t
}

// numElements is the product of dims, refusing negative dims and products
// above maxTensorElements.
func numElements(dims []int) (int, error) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, corruptf("tensor dims %v are negative", dims)
		}
		if d > maxDimValue {
			return 0, tooLargef("tensor dims %v: %d is more than %d", dims, d, maxDimValue)
		}
		n *= int64(d) // both factors <= 2^28, so no overflow
		if n > maxTensorElements {
			return 0, tooLargef("tensor dims %v exceed %d elements", dims, maxTensorElements)
		}
	}
	return int(n), nil
}

// decodeTensor converts a TensorProto (what names it in errors: an
// initializer, a Constant's value) into a tensor. Before it allocates
// anything it checks that the data the file holds fill exactly the dims
// (so that a tensor cannot declare more than the file holds) and charges
// the result to the import's budget.
func (b *builder) decodeTensor(tp *tensorProto, what string) (*tensor, error) {
	width, err := checkStorage(tp, what)
	if err != nil {
		return nil, err
	}
	declared, err := declaredCount(tp, what)
	if err != nil {
		return nil, err
	}
	if err := checkDataLength(tp, what, declared, width); err != nil {
		return nil, err
	}
	dims := make([]int, len(tp.dims))
	for k, d := range tp.dims {
		if d > maxDimValue {
			return nil, tooLargef("%s: dimension %d is too large", what, d)
		}
		dims[k] = int(d)
	}
	n, err := numElements(dims)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	dt := tp.dataType
	if err := b.mem.charge(int64(n)*elemBytes(dt), fmt.Sprintf("%s (%s %v)", what, dtName(dt), dims)); err != nil {
		return nil, err
	}
	t := allocTensor(dt, dims, n)
	if tp.hasRaw {
		decodeRaw(t, tp.raw)
	} else {
		decodeTyped(t, tp)
	}
	return t, nil
}

// checkStorage refuses what the importer does not read (external data,
// segments, types it has no use for) and returns the width of an element
// in raw_data.
func checkStorage(tp *tensorProto, what string) (width int, err error) {
	if tp.external {
		loc := ""
		if tp.location != "" {
			loc = fmt.Sprintf(" in %q", tp.location)
		}
		return 0, unsupportedf("%s keeps its data externally%s (data_location=EXTERNAL); external data is not supported, save the model with the weights inside the file", what, loc)
	}
	if tp.segment {
		return 0, unsupportedf("%s is segmented; segmented tensors are not supported", what)
	}
	switch tp.dataType {
	case dtFloat, dtInt32, dtUint32:
		return 4, nil
	case dtDouble, dtInt64, dtUint64:
		return 8, nil
	case dtFloat16, dtBfloat16, dtInt16, dtUint16:
		return 2, nil
	case dtInt8, dtUint8, dtBool:
		return 1, nil
	}
	return 0, unsupportedf("%s has type %s, which is not supported", what, dtName(tp.dataType))
}

// declaredCount is the element count the dims declare, computed without
// overflow: -1 for more than int64 holds (unless a dim is 0).
func declaredCount(tp *tensorProto, what string) (int64, error) {
	declared := int64(1)
	for _, d := range tp.dims {
		if d < 0 {
			return 0, corruptf("%s has negative dimension %d in dims %v", what, d, tp.dims)
		}
		if declared >= 0 {
			if hi, lo := bits.Mul64(uint64(declared), uint64(d)); hi != 0 || lo > math.MaxInt64 {
				declared = -1
			} else {
				declared = int64(lo)
			}
		}
	}
	if slices.Contains(tp.dims, 0) {
		declared = 0
	}
	return declared, nil
}

// checkDataLength checks that the data the file holds, raw or in the typed
// field of the type, are exactly the declared count.
func checkDataLength(tp *tensorProto, what string, declared int64, width int) error {
	dt := tp.dataType
	if tp.hasRaw {
		if n := int64(len(tp.raw)); declared < 0 || n%int64(width) != 0 || n/int64(width) != declared {
			return corruptf("%s declares %s %s values (%s) but raw_data holds %d bytes",
				what, countString(declared, tp.dims), dtName(dt), bytesString(declared, width), len(tp.raw))
		}
		return nil
	}
	var field string
	var have int64
	switch dt {
	case dtFloat:
		field, have = "float_data", int64(len(tp.floatData))
	case dtDouble:
		field, have = "double_data", int64(len(tp.doubleData))
	case dtInt64:
		field, have = "int64_data", int64(len(tp.int64Data))
	case dtUint32, dtUint64:
		field, have = "uint64_data", int64(len(tp.uint64Data))
	default: // the types stored in int32_data
		field, have = "int32_data", int64(len(tp.int32Data))
	}
	if declared != have {
		return corruptf("%s declares %s %s values but %s holds %d", what, countString(declared, tp.dims), dtName(dt), field, have)
	}
	return nil
}

// decodeTyped fills t from the typed field of tp's type (checked to hold
// exactly t's elements).
func decodeTyped(t *tensor, tp *tensorProto) {
	switch dt := tp.dataType; dt {
	case dtFloat:
		copy(t.f, tp.floatData)
	case dtDouble:
		for k, v := range tp.doubleData {
			t.f[k] = float32(v)
		}
	case dtInt64:
		copy(t.i, tp.int64Data)
	case dtUint64:
		copy(t.i, tp.uint64Data)
	case dtUint32:
		for k, v := range tp.uint64Data {
			t.i[k] = int64(uint32(v))
		}
	default:
		for k, v := range tp.int32Data {
			switch dt {
			case dtFloat16:
				t.f[k] = halfToFloat(uint16(v))
			case dtBfloat16:
				t.f[k] = math.Float32frombits(uint32(uint16(v)) << 16)
			default:
				t.i[k] = wrapInt(v, dt)
			}
		}
	}
}

// elemBytes is the memory an element of type dt takes in a tensor.
func elemBytes(dt int64) int64 {
	if isFloatType(dt) {
		return 4
	}
	return 8
}

// countString prints a declared element count (-1: too many to count).
func countString(n int64, dims []int64) string {
	if n < 0 {
		return fmt.Sprintf("more than 2^63 (dims %v)", dims)
	}
	return fmt.Sprint(n)
}

// bytesString prints the size of n elements of width bytes.
func bytesString(n int64, width int) string {
	if n < 0 || n > math.MaxInt64/int64(width) {
		return "more than 8 EiB"
	}
	return fmtBytes(n * int64(width))
}

func decodeRaw(t *tensor, raw []byte) {
	switch t.dtype {
	case dtFloat:
		for k := range t.f {
			t.f[k] = math.Float32frombits(le32(raw[4*k:]))
		}
	case dtDouble:
		for k := range t.f {
			t.f[k] = float32(math.Float64frombits(le64(raw[8*k:])))
		}
	case dtFloat16:
		for k := range t.f {
			t.f[k] = halfToFloat(uint16(raw[2*k]) | uint16(raw[2*k+1])<<8)
		}
	case dtBfloat16:
		for k := range t.f {
			t.f[k] = math.Float32frombits((uint32(raw[2*k]) | uint32(raw[2*k+1])<<8) << 16)
		}
	case dtInt64, dtUint64:
		for k := range t.i {
			t.i[k] = int64(le64(raw[8*k:]))
		}
	case dtInt32:
		for k := range t.i {
			t.i[k] = int64(int32(le32(raw[4*k:])))
		}
	case dtUint32:
		for k := range t.i {
			t.i[k] = int64(le32(raw[4*k:]))
		}
	case dtInt16:
		for k := range t.i {
			t.i[k] = int64(int16(uint16(raw[2*k]) | uint16(raw[2*k+1])<<8))
		}
	case dtUint16:
		for k := range t.i {
			t.i[k] = int64(uint16(raw[2*k]) | uint16(raw[2*k+1])<<8)
		}
	case dtInt8:
		for k := range t.i {
			t.i[k] = int64(int8(raw[k]))
		}
	case dtUint8:
		for k := range t.i {
			t.i[k] = int64(raw[k])
		}
	case dtBool:
		for k := range t.i {
			if raw[k] != 0 {
				t.i[k] = 1
			}
		}
	}
}

// wrapInt reduces v to the range of the integer type dt, as a C cast does.
func wrapInt(v int64, dt int64) int64 {
	switch dt {
	case dtInt8:
		return int64(int8(v))
	case dtUint8:
		return int64(uint8(v))
	case dtInt16:
		return int64(int16(v))
	case dtUint16:
		return int64(uint16(v))
	case dtInt32:
		return int64(int32(v))
	case dtUint32:
		return int64(uint32(v))
	case dtBool:
		if v != 0 {
			return 1
		}
		return 0
	}
	return v
}

// halfToFloat converts IEEE 754 binary16 bits to float32 (exactly: every
// half is representable).
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	}
	// Subnormal half: value = mant * 2^-24, which is a normal float32.
	f := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}
