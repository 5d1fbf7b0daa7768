package onnx

import "fmt"

// Attribute access. Getters return the default when the attribute is absent
// and an ErrCorrupt error when it has another type.

func (n *nodeProto) attr(name string) *attrProto {
	for _, a := range n.attrs {
		if a.name == name {
			return a
		}
	}
	return nil
}

var attrTypeNames = map[int64]string{
	attrFloat: "FLOAT", attrInt: "INT", attrString: "STRING", attrTensor: "TENSOR", attrGraph: "GRAPH",
	attrFloats: "FLOATS", attrInts: "INTS", attrStrings: "STRINGS", attrTensors: "TENSORS", attrGraphs: "GRAPHS",
}

// kind is the attribute's type: its type field, or for IR version 1 files
// (which have none) the value field that is present.
func (a *attrProto) kind() int64 {
	if a.hasType {
		return a.typ
	}
	for _, c := range []struct {
		bit uint32
		typ int64
	}{{hasF, attrFloat}, {hasI, attrInt}, {hasS, attrString}, {hasT, attrTensor}, {hasG, attrGraph},
		{hasFloats, attrFloats}, {hasInts, attrInts}, {hasStrings, attrStrings}, {hasTensors, attrTensors}, {hasGraphs, attrGraphs}} {
		if a.has&c.bit != 0 {
			return c.typ
		}
	}
	return 0
}

// typed returns the attribute if present, checking its type.
func (n *nodeProto) typed(name string, want int64) (*attrProto, error) {
	a := n.attr(name)
	if a == nil {
		return nil, nil
	}
	if a.refAttr != "" {
		return nil, unsupportedf("attribute %s refers to a function attribute (%q)", name, a.refAttr)
	}
	if k := a.kind(); k != want {
		got, ok := attrTypeNames[k]
		if !ok {
			got = fmt.Sprintf("type %d", k)
		}
		return nil, corruptf("attribute %s has type %s, want %s", name, got, attrTypeNames[want])
	}
	return a, nil
}

func (n *nodeProto) getInt(name string, def int64) (int64, error) {
	a, err := n.typed(name, attrInt)
	if a == nil {
		return def, err
	}
	return a.i, nil
}

func (n *nodeProto) getFloat(name string, def float32) (float32, error) {
	a, err := n.typed(name, attrFloat)
	if a == nil {
		return def, err
	}
	return a.f, nil
}

func (n *nodeProto) getString(name, def string) (string, error) {
	a, err := n.typed(name, attrString)
	if a == nil {
		return def, err
	}
	return string(a.s), nil
}

func (n *nodeProto) getInts(name string) ([]int64, bool, error) {
	a, err := n.typed(name, attrInts)
	if a == nil {
		return nil, false, err
	}
	return a.ints, true, nil
}

func (n *nodeProto) getFloats(name string) ([]float32, bool, error) {
	a, err := n.typed(name, attrFloats)
	if a == nil {
		return nil, false, err
	}
	return a.floats, true, nil
}

func (n *nodeProto) getTensor(name string) (*tensorProto, bool, error) {
	a, err := n.typed(name, attrTensor)
	if a == nil {
		return nil, false, err
	}
	if a.t == nil {
		return nil, false, corruptf("attribute %s has no tensor", name)
	}
	return a.t, true, nil
}
