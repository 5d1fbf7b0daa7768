// Package safetensors imports safetensors files: the format of Hugging
// Face's safetensors library, in which PyTorch state dicts are shared.
//
// A safetensors file holds named tensors and string metadata, no graph.
// Read and ReadFile give its tensors; Build maps a state dict with
// torchvision's parameter names onto a member of the ResNet family
// (resnet.Config) through resnet.Build, which gives the graph.
//
// Every error about a malformed file wraps ErrCorrupt (which wraps
// firmware.ErrCorrupt), every error about a file that does not fit the
// architecture wraps ErrMismatch, and a file over firmware.MaxModelBytes
// is a firmware.ErrTooLarge error. Sizes declared in the file are checked
// against the data it holds before memory is spent on them.
package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/edge-resnet/edge-resnet/firmware"
)

// ErrCorrupt is wrapped by every error about a file that is not a
// well-formed safetensors file. It wraps firmware.ErrCorrupt, so that one
// test, errors.Is(err, firmware.ErrCorrupt), finds damaged model files of
// every kind.
var ErrCorrupt error = corrupt{}

// ErrMismatch is wrapped by every error about tensors that do not fit the
// architecture: missing, of another shape or dtype, or left over.
var ErrMismatch = errors.New("state dict mismatch")

// corrupt is the type of ErrCorrupt.
type corrupt struct{}

func (corrupt) Error() string { return "corrupt safetensors file" }
func (corrupt) Unwrap() error { return firmware.ErrCorrupt }

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func mismatchf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMismatch, fmt.Sprintf(format, args...))
}

// Tensor is one tensor of a safetensors file: its dtype name as the format
// spells it (F32, F16, BF16, F64, I64...), its shape and its little-endian
// bytes (a view of the file's data).
type Tensor struct {
	DType string
	Shape []int
	Data  []byte
}

// floatSizes are the element sizes of the dtypes Float32s converts.
var floatSizes = map[string]int{"F32": 4, "F16": 2, "BF16": 2, "F64": 8}

// Float32s converts a floating-point tensor to float32 (F16 and BF16
// exactly, F64 rounded). Another dtype is an ErrMismatch error, data that
// does not fill the shape an ErrCorrupt error.
func (t Tensor) Float32s() ([]float32, error) {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	size := floatSizes[t.DType]
	if size == 0 {
		return nil, mismatchf("dtype %s is not floating point", t.DType)
	}
	if len(t.Data) != n*size {
		return nil, corruptf("%d bytes for %v %s", len(t.Data), t.Shape, t.DType)
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
