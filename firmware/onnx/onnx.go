// Package onnx imports an ONNX model file into a resnet.Graph.
//
// The file is decoded with protowire against the field numbers of
// onnx.proto (no generated code). The importer walks the ONNX nodes in their
// topological order and builds a plain graph: every activation operator
// becomes a resnet node (BatchNormalization and constant Add/Sub/Mul/Div
// become OpAffine, Gemm and MatMul become OpDense, and so on), aliases
// (Identity, Dropout, Flatten/Reshape/Pad that change nothing) emit nothing,
// and every node whose inputs are all constant — including Shape of an
// activation, whose shape is known at import time — is evaluated by a small
// constant evaluator. Fusion (BatchNorm into Conv, ReLU and residual adds
// into their producers) is left to resnet.Fuse.
//
// ONNX activations are NCHW with batch 1; the graph is NHWC. ONNX axis 1
// maps to C, 2 to H and 3 to W. A 2-D activation [1,K] is the vector
// Shape{1,1,K}, which has the same memory layout as [1,K,1,1].
//
// Every error wraps ErrUnsupported (a valid model using something this
// importer does not do) or ErrCorrupt (a file that is not valid protobuf or
// not a consistent ONNX model), and names the node, tensor or field at fault.
package onnx

import (
	"errors"
	"fmt"
	"os"

	"github.com/edge-resnet/edge-resnet/resnet"
)

// ErrUnsupported is wrapped by every error about a valid model that uses an
// operator, attribute or data type this importer does not handle.
var ErrUnsupported = errors.New("unsupported ONNX model")

// ErrCorrupt is wrapped by every error about a file that is not well-formed
// protobuf or not a consistent ONNX model.
var ErrCorrupt = errors.New("corrupt ONNX file")

// Options adjusts the import.
type Options struct {
	// Height, Width override symbolic or fixed spatial input dims (0 = take
	// them from the model; error if symbolic and not given).
	Height, Width int
}

// Info describes the imported model.
type Info struct {
	InputName, OutputName string
	Opset                 int64 // version of the default ("" / "ai.onnx") operator set
	Producer              string
	ProducerVersion       string
	IRVersion             int64
	OutputIsSoftmax       bool // graph ends in Softmax
	Nodes                 int  // ONNX nodes in the file
}

// maxFileSize is the protobuf limit for one message; larger inputs cannot be
// valid ONNX files.
const maxFileSize = 1<<31 - 1

// Import decodes an ONNX model and returns it as a graph whose shapes have
// been inferred.
func Import(data []byte, opt Options) (*resnet.Graph, *Info, error) {
	g, info, err := importGuarded(data, opt)
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: %w", err)
	}
	return g, info, nil
}

// ImportFile reads and imports an ONNX file. Errors name the file.
func ImportFile(path string, opt Options) (*resnet.Graph, *Info, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: %w", err)
	}
	if st.Size() > maxFileSize {
		return nil, nil, fmt.Errorf("onnx: %s: %w", path, unsupportedf("file is %d bytes, more than the 2 GiB a protobuf message can hold", st.Size()))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: %w", err)
	}
	g, info, err := importGuarded(data, opt)
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: %s: %w", path, err)
	}
	return g, info, nil
}

// recoverPanics turns a panic during import into an ErrCorrupt error. It is
// only a last line of defence: every length and index is checked, and the
// fuzz test switches this off so that it finds any panic that escapes.
var recoverPanics = true

func importGuarded(data []byte, opt Options) (g *resnet.Graph, info *Info, err error) {
	if recoverPanics {
		defer func() {
			if r := recover(); r != nil {
				g, info = nil, nil
				err = corruptf("internal error while importing: %v", r)
			}
		}()
	}
	return importModel(data, opt)
}

// importError carries a message and the sentinel it wraps, so that messages
// read naturally ("node 3 ... : group=2 is not supported") while errors.Is
// still finds ErrUnsupported or ErrCorrupt.
type importError struct {
	kind error
	msg  string
}

func (e *importError) Error() string { return e.msg }
func (e *importError) Unwrap() error { return e.kind }

func unsupportedf(format string, args ...any) error {
	return &importError{kind: ErrUnsupported, msg: fmt.Sprintf(format, args...)}
}

func corruptf(format string, args ...any) error {
	return &importError{kind: ErrCorrupt, msg: fmt.Sprintf(format, args...)}
}
