package graph

import (
	"fmt"
	"strings"
)

// Precision is the arithmetic a model runs in. It is the one precision
// type of edge-resnet: sessions, plans and the CLI all use it.
type Precision uint8

const (
	PrecisionAuto Precision = iota // int8 when the model has int8 data, else fp32
	PrecisionFP32
	PrecisionInt8
)

func (p Precision) String() string {
	switch p {
	case PrecisionAuto:
		return "auto"
	case PrecisionFP32:
		return "fp32"
	case PrecisionInt8:
		return "int8"
	}
	return fmt.Sprintf("Precision(%d)", uint8(p))
}

// ParsePrecision reads "fp32", "int8" or "auto" (or "").
func ParsePrecision(s string) (Precision, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "":
		return PrecisionAuto, nil
	case "fp32":
		return PrecisionFP32, nil
	case "int8":
		return PrecisionInt8, nil
	}
	return 0, fmt.Errorf("precision %q (want fp32, int8 or auto)", s)
}
