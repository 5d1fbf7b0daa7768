// Package firmware reads and writes the edge-resnet model image: one file
// holding a network graph (BatchNorm already folded), its weights, labels,
// preprocessing and provenance. See docs/FORMAT.md for the layout.
package firmware

import (
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/preprocess"
)

// Output kinds: what the graph's output means.
const (
	OutputLogits        = "logits"        // raw scores; classify applies softmax
	OutputProbabilities = "probabilities" // the graph ends in a softmax
)

// Meta is everything in a model image besides the graph.
type Meta struct {
	Name       string            `json:"name"`       // short human name, e.g. "resnet20-fashion-mnist"
	Arch       string            `json:"arch"`       // e.g. "resnet50", "cifar-resnet20", or "onnx" for imported graphs
	Labels     []string          `json:"labels"`     // class names by index; may be empty
	Preprocess preprocess.Spec   `json:"preprocess"` // how an image becomes the input
	Output     string            `json:"output"`     // OutputLogits or OutputProbabilities
	Provenance map[string]string `json:"provenance"` // source file, converter version, date, ...
	// InputLayout is how the model's source lays out a tensor input:
	// LayoutNCHW (PyTorch, ONNX; "" means it) or LayoutNHWC (Keras-style
	// graphs): the layout .npy inputs come in. The graph itself is NHWC.
	InputLayout string `json:"input_layout,omitempty"`
}

// The tensor input layouts of Meta.InputLayout.
const (
	LayoutNCHW = "NCHW"
	LayoutNHWC = "NHWC"
)

// Model is a graph with its metadata.
type Model struct {
	Graph *graph.Graph
	Meta  Meta
}
