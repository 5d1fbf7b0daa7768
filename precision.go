package edgeresnet

import (
	"fmt"

	"github.com/edge-resnet/edge-resnet/graph"
)

// Precision is the arithmetic a session runs (graph.Precision, the one
// precision type of every package).
type Precision = graph.Precision

const (
	PrecisionAuto = graph.PrecisionAuto // int8 when the model has int8 data, else fp32
	PrecisionFP32 = graph.PrecisionFP32
	PrecisionInt8 = graph.PrecisionInt8
)

// ParsePrecision reads "fp32", "int8" or "auto"; other text is ErrInput.
func ParsePrecision(s string) (Precision, error) {
	p, err := graph.ParsePrecision(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInput, err)
	}
	return p, nil
}
