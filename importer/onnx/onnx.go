// Package onnx imports an ONNX model file into a graph.Graph.
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
// into their producers) is left to graph.Fuse.
//
// ONNX activations are NCHW; the graph is NHWC, per sample. ONNX axis 1
// maps to C, 2 to H and 3 to W; axis 0 is the batch N (a fixed N > 1 is
// the graph's Batch; no operator may work across it). A 2-D activation
// [N,K] is the vector Shape{1,1,K}, which has the same memory layout as
// [N,K,1,1]. Transpose, Squeeze, Unsqueeze, Reshape and Flatten of an
// activation are mapped where they are layout changes (layout.go); the
// model input may also be NHWC or an integer tensor (input.go).
//
// Every error wraps ErrUnsupported (a valid model using something this
// importer does not do; ErrTooLarge, a model beyond a size or memory
// limit, is one) or ErrCorrupt (a file that is not valid protobuf or not a
// consistent ONNX model), and names the node, tensor or field at fault.
// Memory is bounded before it is spent: sizes declared in the file are
// checked against the data it holds and against MaxImportBytes first.
package onnx

import (
	"errors"
	"fmt"
	goio "io" // the tests have a helper called io
	"os"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/firmware"
)

// ErrUnsupported is wrapped by every error about a valid model that uses an
// operator, attribute or data type this importer does not handle.
var ErrUnsupported = errors.New("unsupported ONNX model")

// ErrCorrupt is wrapped by every error about a file that is not well-formed
// protobuf or not a consistent ONNX model (for example a tensor whose data
// does not fill its dims). It wraps firmware.ErrCorrupt, so that one test,
// errors.Is(err, firmware.ErrCorrupt), finds damaged model files of both
// kinds.
var ErrCorrupt error = &sentinel{"corrupt ONNX file", []error{firmware.ErrCorrupt}}

// ErrTooLarge is wrapped by the errors about a model that needs more than
// a limit allows: a file larger than firmware.MaxModelBytes, an import
// that needs more than its memory budget (MaxImportBytes), a tensor of
// more than 2^28 elements. It wraps ErrUnsupported (the model may well be
// valid) and firmware.ErrTooLarge.
var ErrTooLarge error = &sentinel{"ONNX model too large", []error{ErrUnsupported, firmware.ErrTooLarge}}

// sentinel is an error value that also is other errors.
type sentinel struct {
	msg string
	is  []error
}

func (s *sentinel) Error() string   { return s.msg }
func (s *sentinel) Unwrap() []error { return s.is }

// Options adjusts the import.
type Options struct {
	// Height, Width override symbolic or fixed spatial input dims (0 = take
	// them from the model; error if symbolic and not given).
	Height, Width int
}

// Info describes the imported model.
type Info struct {
	InputName, OutputName string
	OutputNames           []string // every output, OutputName first
	Opset                 int64    // version of the default ("" / "ai.onnx") operator set
	Producer              string
	ProducerVersion       string
	IRVersion             int64
	OutputIsSoftmax       bool // graph ends in Softmax
	Nodes                 int  // ONNX nodes in the file
	// InputLayout is the layout of the ONNX input: "NCHW", or "NHWC" for
	// an [N,H,W,C] input that the model transposes to NCHW first (see
	// input.go). The graph itself always takes NHWC samples.
	InputLayout string
	// InputType is the ONNX element type of the input, "FLOAT", or
	// "UINT8" (INT8, UINT16, INT16) for an integer input the model casts
	// to FLOAT: the graph takes its values as float32, which is exact.
	InputType string
}

// maxFileSize is the protobuf limit for one message; larger inputs cannot be
// valid ONNX files.
const maxFileSize = 1<<31 - 1

// Import decodes an ONNX model and returns it as a graph whose shapes have
// been inferred.
func Import(data []byte, opt Options) (*graph.Graph, *Info, error) {
	g, info, err := importGuarded(data, opt)
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: %w", err)
	}
	return g, info, nil
}

// ImportFile reads and imports an ONNX file, which may also be a pipe or
// a device. It reads at most firmware.MaxModelBytes (and never more than
// the 2 GiB a protobuf message can hold): a larger regular file is
// refused before it is read, a stream as soon as it passes the limit, and
// data that is not protobuf at its first bytes (see firmware.ReadAll).
// Errors name the file.
func ImportFile(path string, opt Options) (*graph.Graph, *Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: %w", err)
	}
	defer f.Close()
	g, info, err := importReader(f, opt)
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: %s: %w", path, err)
	}
	return g, info, nil
}

// ImportReader reads an ONNX model from r (standard input, a pipe) with
// the limits of ImportFile, and imports it.
func ImportReader(r goio.Reader, opt Options) (*graph.Graph, *Info, error) {
	g, info, err := importReader(r, opt)
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: %w", err)
	}
	return g, info, nil
}

func importReader(r goio.Reader, opt Options) (*graph.Graph, *Info, error) {
	data, err := firmware.ReadAll(r, min(firmware.MaxModelBytes, maxFileSize))
	if err != nil {
		// Classify as this package does (errors.Is still finds the
		// firmware sentinels: ErrCorrupt and ErrTooLarge wrap them).
		switch {
		case errors.Is(err, firmware.ErrTooLarge):
			err = &importError{kind: ErrTooLarge, msg: err.Error()}
		case errors.Is(err, firmware.ErrCorrupt):
			err = &importError{kind: ErrCorrupt, msg: err.Error()}
		}
		return nil, nil, err
	}
	return importGuarded(data, opt)
}

// recoverPanics turns a panic during import into an ErrCorrupt error. It is
// only a last line of defence: every length and index is checked, and the
// fuzz test switches this off so that it finds any panic that escapes.
var recoverPanics = true

func importGuarded(data []byte, opt Options) (g *graph.Graph, info *Info, err error) {
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

func tooLargef(format string, args ...any) error {
	return &importError{kind: ErrTooLarge, msg: fmt.Sprintf(format, args...)}
}
