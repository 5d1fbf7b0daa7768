package onnx

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// A tiny protobuf writer for building ONNX models in tests, written against
// the same field numbers as the reader but independently of it.

type pb []byte

func (b pb) varint(num int, v int64) pb {
	b = protowire.AppendTag(b, protowire.Number(num), protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func (b pb) bytes(num int, v []byte) pb {
	b = protowire.AppendTag(b, protowire.Number(num), protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func (b pb) str(num int, s string) pb { return b.bytes(num, []byte(s)) }

func (b pb) msg(num int, m pb) pb { return b.bytes(num, m) }

func (b pb) fixed32(num int, v uint32) pb {
	b = protowire.AppendTag(b, protowire.Number(num), protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

func (b pb) fixed64(num int, v uint64) pb {
	b = protowire.AppendTag(b, protowire.Number(num), protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func (b pb) packedVarints(num int, vs []int64) pb {
	var p []byte
	for _, v := range vs {
		p = protowire.AppendVarint(p, uint64(v))
	}
	return b.bytes(num, p)
}

func (b pb) packedFloats(num int, vs []float32) pb {
	var p []byte
	for _, v := range vs {
		p = binary.LittleEndian.AppendUint32(p, math.Float32bits(v))
	}
	return b.bytes(num, p)
}

// ONNX messages.

// tmodel is a model under construction.
type tmodel struct {
	opset     int64
	irVersion int64
	inputs    []pb // ValueInfoProto
	outputs   []pb
	inits     []pb // TensorProto
	nodes     []pb // NodeProto
}

func newModel(opset int64) *tmodel { return &tmodel{opset: opset, irVersion: 7} }

func (m *tmodel) graph() pb {
	var g pb
	for _, n := range m.nodes {
		g = g.msg(1, n)
	}
	g = g.str(2, "test")
	for _, t := range m.inits {
		g = g.msg(5, t)
	}
	for _, v := range m.inputs {
		g = g.msg(11, v)
	}
	for _, v := range m.outputs {
		g = g.msg(12, v)
	}
	return g
}

func (m *tmodel) bytes() []byte {
	var b pb
	b = b.varint(1, m.irVersion)
	b = b.str(2, "edge-resnet-test")
	b = b.str(3, "0")
	b = b.msg(7, m.graph())
	b = b.msg(8, pb{}.str(1, "").varint(2, m.opset))
	return b
}

func (m *tmodel) node(n pb)          { m.nodes = append(m.nodes, n) }
func (m *tmodel) init(t pb)          { m.inits = append(m.inits, t) }
func (m *tmodel) input(v pb)         { m.inputs = append(m.inputs, v) }
func (m *tmodel) output(name string) { m.outputs = append(m.outputs, vinfo(name, dtFloat)) }

// vinfo is a tensor ValueInfoProto; dims are ints (dim_value) or strings
// (dim_param). With no dims the shape is left out.
func vinfo(name string, elem int64, dims ...any) pb {
	tt := pb{}.varint(1, elem)
	if len(dims) > 0 {
		var shape pb
		for _, d := range dims {
			switch d := d.(type) {
			case int:
				shape = shape.msg(1, pb{}.varint(1, int64(d)))
			case string:
				shape = shape.msg(1, pb{}.str(2, d))
			}
		}
		tt = tt.msg(2, shape)
	}
	return pb{}.str(1, name).msg(2, pb{}.msg(1, tt))
}

func dims64(dims []int) []int64 {
	out := make([]int64, len(dims))
	for k, d := range dims {
		out[k] = int64(d)
	}
	return out
}

// tensorF is a FLOAT tensor in raw_data.
func tensorF(name string, dims []int, vals []float32) pb {
	var raw []byte
	for _, v := range vals {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	return pb{}.packedVarints(1, dims64(dims)).varint(2, dtFloat).str(8, name).bytes(9, raw)
}

// tensorFData is a FLOAT tensor in float_data, packed or not.
func tensorFData(name string, dims []int, vals []float32, packed bool) pb {
	t := pb{}
	for _, d := range dims {
		t = t.varint(1, int64(d)) // unpacked dims
	}
	t = t.varint(2, dtFloat).str(8, name)
	if packed {
		return t.packedFloats(4, vals)
	}
	for _, v := range vals {
		t = t.fixed32(4, math.Float32bits(v))
	}
	return t
}

// tensorD is a DOUBLE tensor in double_data (unpacked).
func tensorD(name string, dims []int, vals []float32) pb {
	t := pb{}.packedVarints(1, dims64(dims)).varint(2, dtDouble).str(8, name)
	for _, v := range vals {
		t = t.fixed64(10, math.Float64bits(float64(v)))
	}
	return t
}

// tensorH is a FLOAT16 tensor, in raw_data or in int32_data.
func tensorH(name string, dims []int, vals []float32, raw bool) pb {
	t := pb{}.packedVarints(1, dims64(dims)).varint(2, dtFloat16).str(8, name)
	if raw {
		var r []byte
		for _, v := range vals {
			r = binary.LittleEndian.AppendUint16(r, floatToHalf(v))
		}
		return t.bytes(9, r)
	}
	hs := make([]int64, len(vals))
	for k, v := range vals {
		hs[k] = int64(floatToHalf(v))
	}
	return t.packedVarints(5, hs)
}

// floatToHalf converts values that are exactly representable in binary16
// (the tests use only those).
func floatToHalf(f float32) uint16 {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int(bits>>23&0xff) - 127 + 15
	mant := bits & 0x7fffff
	switch {
	case f == 0:
		return sign
	case exp <= 0: // subnormal half
		return sign | uint16((mant|0x800000)>>uint(14-exp))
	}
	return sign | uint16(exp)<<10 | uint16(mant>>13)
}

// tensorI64 is an INT64 tensor in raw_data, or in int64_data unpacked.
func tensorI64(name string, dims []int, vals []int64, raw bool) pb {
	t := pb{}.packedVarints(1, dims64(dims)).varint(2, dtInt64).str(8, name)
	if raw {
		var r []byte
		for _, v := range vals {
			r = binary.LittleEndian.AppendUint64(r, uint64(v))
		}
		return t.bytes(9, r)
	}
	for _, v := range vals {
		t = t.varint(7, v)
	}
	return t
}

// tensorI32 is an INT32 tensor in int32_data (packed).
func tensorI32(name string, dims []int, vals []int64) pb {
	return pb{}.packedVarints(1, dims64(dims)).varint(2, dtInt32).str(8, name).packedVarints(5, vals)
}

// tensorRaw is a tensor of any type with the given raw bytes.
func tensorRaw(name string, dt int64, dims []int, raw []byte) pb {
	return pb{}.packedVarints(1, dims64(dims)).varint(2, dt).str(8, name).bytes(9, raw)
}

// vec1 is a 1-D INT64 tensor.
func vec1(name string, vals ...int64) pb { return tensorI64(name, []int{len(vals)}, vals, true) }

// scalarF is a 0-D FLOAT tensor.
func scalarF(name string, v float32) pb { return tensorF(name, nil, []float32{v}) }

func node(op, name string, ins, outs []string, attrs ...pb) pb {
	n := pb{}
	for _, in := range ins {
		n = n.str(1, in)
	}
	for _, o := range outs {
		n = n.str(2, o)
	}
	if name != "" {
		n = n.str(3, name)
	}
	n = n.str(4, op)
	for _, a := range attrs {
		n = n.msg(5, a)
	}
	return n
}

// io builds the ins/outs lists of node.
func io(names ...string) []string { return names }

func aInt(name string, v int64) pb { return pb{}.str(1, name).varint(20, attrInt).varint(3, v) }

func aFloat(name string, v float32) pb {
	return pb{}.str(1, name).varint(20, attrFloat).fixed32(2, math.Float32bits(v))
}

func aStr(name, v string) pb { return pb{}.str(1, name).varint(20, attrString).str(4, v) }

func aInts(name string, vs ...int64) pb {
	return pb{}.str(1, name).varint(20, attrInts).packedVarints(8, vs)
}

// aIntsUnpacked writes INTS as repeated varints.
func aIntsUnpacked(name string, vs ...int64) pb {
	a := pb{}.str(1, name).varint(20, attrInts)
	for _, v := range vs {
		a = a.varint(8, v)
	}
	return a
}

func aFloats(name string, vs ...float32) pb {
	return pb{}.str(1, name).varint(20, attrFloats).packedFloats(7, vs)
}

func aTensor(name string, t pb) pb { return pb{}.str(1, name).varint(20, attrTensor).msg(5, t) }
