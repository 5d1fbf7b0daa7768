package onnx

import (
	"fmt"

	"github.com/edge-resnet/edge-resnet/arena"
)

// MaxImportBytes bounds the memory one import may allocate besides the
// file itself: the decoded protobuf structure (nodes, attributes, typed
// tensor data), initializers and Constant values as they are decoded, and
// every tensor constant folding makes (ConstantOfShape, Expand, Tile,
// Range, Cast, ...). 1 GiB holds the weights of every ResNet: those of
// ResNet-152 (240 MB in float32) even twice over, as a float16 file's
// weights are after a folded Cast, and those of Wide ResNet-101-2 (about
// 510 MB). Raise it for larger models.
//
// A smaller file gets less: budgetBase plus budgetPerByte per byte of the
// file, so that a few hundred bytes cannot ask for gigabytes (a file
// stores every value it holds, so 16 bytes of memory per byte of file
// covers decoding any of them: at most 8 per byte for INT8 data widened
// to int64, and the structure's overhead).
var MaxImportBytes int64 = 1 << 30

const (
	budgetBase    = 16 << 20
	budgetPerByte = 16
)

// budget is what one import may still allocate, in bytes.
type budget struct {
	left, limit int64
	fileSize    int
}

func newBudget(fileSize int) *budget {
	limit := min(MaxImportBytes, budgetBase+budgetPerByte*int64(fileSize))
	return &budget{left: limit, limit: limit, fileSize: fileSize}
}

// take charges n bytes if they are left.
func (b *budget) take(n int64) bool {
	if n < 0 || n > b.left {
		return false
	}
	b.left -= n
	return true
}

// charge takes n bytes for what, or returns an ErrTooLarge error that
// names what and the budget.
func (b *budget) charge(n int64, what string) error {
	if b.take(n) {
		return nil
	}
	return tooLargef("%s needs %s, more than the %s left of the import's memory budget of %s", what, fmtBytes(n), fmtBytes(b.left), b)
}

// String describes the budget: its size and where that comes from.
func (b *budget) String() string {
	if b.limit == MaxImportBytes {
		return fmt.Sprintf("%s (onnx.MaxImportBytes)", fmtBytes(b.limit))
	}
	return fmt.Sprintf("%s (%s + %d B per byte of the %d-byte file; at most onnx.MaxImportBytes, %s)",
		fmtBytes(b.limit), fmtBytes(budgetBase), budgetPerByte, b.fileSize, fmtBytes(MaxImportBytes))
}

// fmtBytes prints a byte count for messages.
func fmtBytes(n int64) string { return arena.FormatBytes(n) }
