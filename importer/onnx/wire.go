package onnx

import (
	"math"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file decodes the parts of the ONNX protobuf schema (onnx.proto) that
// the importer reads, straight from the wire format. Field numbers are those
// of onnx.proto; fields we do not need are skipped, so files written by newer
// exporters still load. Protobuf merge rules apply: a singular scalar that
// appears twice keeps the last value, a singular message that appears twice is
// merged (its repeated fields concatenate), and repeated scalars may be packed
// or not.

// Field numbers from onnx.proto.
const (
	// ModelProto
	fModelIRVersion    = 1
	fModelProducer     = 2
	fModelProducerVer  = 3
	fModelGraph        = 7
	fModelOpsetImport  = 8
	fOpsetDomain       = 1 // OperatorSetIdProto
	fOpsetVersion      = 2 // OperatorSetIdProto
	fGraphNode         = 1 // GraphProto
	fGraphName         = 2
	fGraphInitializer  = 5
	fGraphInput        = 11
	fGraphOutput       = 12
	fGraphSparseInit   = 15
	fNodeInput         = 1 // NodeProto
	fNodeOutput        = 2
	fNodeName          = 3
	fNodeOpType        = 4
	fNodeAttribute     = 5
	fNodeDomain        = 7
	fAttrName          = 1 // AttributeProto
	fAttrF             = 2
	fAttrI             = 3
	fAttrS             = 4
	fAttrT             = 5
	fAttrG             = 6
	fAttrFloats        = 7
	fAttrInts          = 8
	fAttrStrings       = 9
	fAttrTensors       = 10
	fAttrGraphs        = 11
	fAttrTypeProto     = 14
	fAttrTypeProtos    = 15
	fAttrType          = 20
	fAttrRefAttrName   = 21
	fAttrSparseTensor  = 22
	fAttrSparseTensors = 23
	fTensorDims        = 1 // TensorProto
	fTensorDataType    = 2
	fTensorSegment     = 3
	fTensorFloatData   = 4
	fTensorInt32Data   = 5
	fTensorStringData  = 6
	fTensorInt64Data   = 7
	fTensorName        = 8
	fTensorRawData     = 9
	fTensorDoubleData  = 10
	fTensorUint64Data  = 11
	fTensorExternal    = 13
	fTensorLocation    = 14
	fSparseValues      = 1 // SparseTensorProto
	fEntryKey          = 1 // StringStringEntryProto
	fEntryValue        = 2
	fValueInfoName     = 1 // ValueInfoProto
	fValueInfoType     = 2
	fTypeTensor        = 1 // TypeProto
	fTypeSequence      = 4
	fTypeMap           = 5
	fTypeSparseTensor  = 8
	fTypeOptional      = 9
	fTensorTypeElem    = 1 // TypeProto.Tensor
	fTensorTypeShape   = 2
	fShapeDim          = 1 // TensorShapeProto
	fDimValue          = 1 // TensorShapeProto.Dimension
	fDimParam          = 2
)

// AttributeProto.AttributeType values.
const (
	attrFloat   = 1
	attrInt     = 2
	attrString  = 3
	attrTensor  = 4
	attrGraph   = 5
	attrFloats  = 6
	attrInts    = 7
	attrStrings = 8
	attrTensors = 9
	attrGraphs  = 10
)

type modelProto struct {
	irVersion       int64
	producer        string
	producerVersion string
	opsets          []opsetID
	graph           *graphProto
}

type opsetID struct {
	domain  string
	version int64
}

type graphProto struct {
	name       string
	nodes      []*nodeProto
	inits      []*tensorProto
	sparseInit []string // names of sparse initializers, which we do not decode
	inputs     []*valueInfo
	outputs    []*valueInfo
}

type nodeProto struct {
	inputs, outputs []string
	name, opType    string
	domain          string
	attrs           []*attrProto
}

type attrProto struct {
	name    string
	typ     int64
	hasType bool
	f       float32
	i       int64
	s       []byte
	t       *tensorProto
	floats  []float32
	ints    []int64
	nStrs   int // strings are counted, never used
	nTens   int // tensors likewise
	has     uint32
	refAttr string
}

// Bits of attrProto.has: which value field was present on the wire.
const (
	hasF = 1 << iota
	hasI
	hasS
	hasT
	hasG
	hasFloats
	hasInts
	hasStrings
	hasTensors
	hasGraphs
	hasOther // sparse tensors, type protos
)

type tensorProto struct {
	name       string
	dims       []int64
	dataType   int64
	raw        []byte
	hasRaw     bool
	floatData  []float32
	int32Data  []int64 // int32_data, stored widened as on the wire
	int64Data  []int64
	doubleData []float64
	uint64Data []int64 // uint64_data, as the bits of each value
	nStrings   int
	segment    bool
	external   bool
	location   string // external_data "location"
}

type valueInfo struct {
	name     string
	hasType  bool
	isTensor bool
	elemType int64
	hasShape bool
	dims     []dimProto
}

type dimProto struct {
	value    int64
	param    string
	hasValue bool
}

// field is one decoded wire field: val for length-delimited fields, u for
// varint and fixed-width ones.
type field struct {
	num protowire.Number
	typ protowire.Type
	val []byte
	u   uint64
}

// forFields calls fn for every field of the message in b. Groups (never used
// by ONNX) are skipped whole; fn sees them with typ StartGroupType.
func forFields(b []byte, msg string, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return corruptf("%s: bad field tag: %v", msg, protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.u, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.u = uint64(v)
		case protowire.Fixed64Type:
			f.u, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.val, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return corruptf("%s: field %d: %v", msg, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func wrongType(msg string, f field) error {
	return corruptf("%s: field %d has wire type %d, which the ONNX schema does not allow", msg, f.num, f.typ)
}

// Accessors that check the wire type of a field the schema defines.

func (f field) bytes(msg string) ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, wrongType(msg, f)
	}
	return f.val, nil
}

func (f field) str(msg string) (string, error) {
	b, err := f.bytes(msg)
	return string(b), err
}

func (f field) varint(msg string) (uint64, error) {
	if f.typ != protowire.VarintType {
		return 0, wrongType(msg, f)
	}
	return f.u, nil
}

func (f field) int64(msg string) (int64, error) {
	u, err := f.varint(msg)
	return int64(u), err
}

// parser decodes the messages of one file, charging what it allocates to
// the import's budget before allocating it: an empty NodeProto is 2 bytes
// on the wire and over 100 in memory, and a 1-byte packed varint becomes
// 8, so that a small file could otherwise expand into gigabytes.
type parser struct{ mem *budget }

// In-memory sizes charged per decoded element (a slice element and what
// it points to).
var (
	sizeNode   = int64(unsafe.Sizeof(nodeProto{})) + 8
	sizeAttr   = int64(unsafe.Sizeof(attrProto{})) + 8
	sizeTensor = int64(unsafe.Sizeof(tensorProto{})) + 8
	sizeVI     = int64(unsafe.Sizeof(valueInfo{})) + 8
	sizeDim    = int64(unsafe.Sizeof(dimProto{}))
	sizeOpset  = int64(unsafe.Sizeof(opsetID{}))
	sizeString = int64(unsafe.Sizeof(""))
)

func (p *parser) take(n int64, msg string) error {
	if p.mem.take(n) {
		return nil
	}
	return tooLargef("the file's structure needs more than the import's memory budget of %s (exceeded decoding %s messages)", p.mem, msg)
}

// count is how many values a repeated scalar field adds: one, or as many
// as its packed bytes hold (of width bytes each, 0 for varints).
func (f field) count(width int) int64 {
	if f.typ != protowire.BytesType {
		return 1
	}
	if width > 0 {
		return int64(len(f.val) / width)
	}
	n := int64(0)
	for _, c := range f.val {
		if c < 0x80 {
			n++ // the last byte of a varint
		}
	}
	return n
}

// varints appends a repeated varint field, packed or not.
func (p *parser) varints(dst []int64, f field, msg string) ([]int64, error) {
	if err := p.take(8*f.count(0), msg); err != nil {
		return nil, err
	}
	switch f.typ {
	case protowire.VarintType:
		return append(dst, int64(f.u)), nil
	case protowire.BytesType:
		b := f.val
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, corruptf("%s: packed field %d: %v", msg, f.num, protowire.ParseError(n))
			}
			dst = append(dst, int64(v))
			b = b[n:]
		}
		return dst, nil
	}
	return nil, wrongType(msg, f)
}

// floats appends a repeated float (fixed32) field, packed or not.
func (p *parser) floats(dst []float32, f field, msg string) ([]float32, error) {
	return fixed(p, dst, f, msg, "float", func(u uint64) float32 { return math.Float32frombits(uint32(u)) })
}

// doubles appends a repeated double (fixed64) field, packed or not.
func (p *parser) doubles(dst []float64, f field, msg string) ([]float64, error) {
	return fixed(p, dst, f, msg, "double", math.Float64frombits)
}

// fixed appends a repeated fixed-width field of 4-byte (float32) or
// 8-byte (float64) values, packed or not.
func fixed[T float32 | float64](p *parser, dst []T, f field, msg, kind string, conv func(uint64) T) ([]T, error) {
	width, wt := 4, protowire.Fixed32Type
	if unsafe.Sizeof(T(0)) == 8 {
		width, wt = 8, protowire.Fixed64Type
	}
	switch f.typ {
	case wt:
	case protowire.BytesType:
		if len(f.val)%width != 0 {
			return nil, corruptf("%s: packed %s field %d has %d bytes, not a multiple of %d", msg, kind, f.num, len(f.val), width)
		}
	default:
		return nil, wrongType(msg, f)
	}
	if err := p.take(int64(width)*f.count(width), msg); err != nil {
		return nil, err
	}
	if f.typ == wt {
		return append(dst, conv(f.u)), nil
	}
	for b := f.val; len(b) > 0; b = b[width:] {
		u := uint64(le32(b))
		if width == 8 {
			u = le64(b)
		}
		dst = append(dst, conv(u))
	}
	return dst, nil
}

// strs appends a repeated string field.
func (p *parser) strs(dst []string, f field, msg string) ([]string, error) {
	b, err := f.bytes(msg)
	if err != nil {
		return nil, err
	}
	if err := p.take(sizeString+int64(len(b)), msg); err != nil {
		return nil, err
	}
	return append(dst, string(b)), nil
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func le64(b []byte) uint64 {
	return uint64(le32(b)) | uint64(le32(b[4:]))<<32
}

func (p *parser) model(b []byte) (*modelProto, error) {
	const msg = "ModelProto"
	m := &modelProto{}
	err := forFields(b, msg, func(f field) error {
		var err error
		switch f.num {
		case fModelIRVersion:
			m.irVersion, err = f.int64(msg)
		case fModelProducer:
			m.producer, err = f.str(msg)
		case fModelProducerVer:
			m.producerVersion, err = f.str(msg)
		case fModelGraph:
			var v []byte
			if v, err = f.bytes(msg); err == nil {
				if m.graph == nil {
					m.graph = &graphProto{}
				}
				err = p.graph(v, m.graph)
			}
		case fModelOpsetImport:
			var v []byte
			if v, err = f.bytes(msg); err == nil {
				if err = p.take(sizeOpset, msg); err == nil {
					var o opsetID
					o, err = parseOpset(v)
					m.opsets = append(m.opsets, o)
				}
			}
		}
		return err
	})
	return m, err
}

func parseOpset(b []byte) (opsetID, error) {
	const msg = "OperatorSetIdProto"
	var o opsetID
	err := forFields(b, msg, func(f field) error {
		var err error
		switch f.num {
		case fOpsetDomain:
			o.domain, err = f.str(msg)
		case fOpsetVersion:
			o.version, err = f.int64(msg)
		}
		return err
	})
	return o, err
}

func (p *parser) graph(b []byte, g *graphProto) error {
	const msg = "GraphProto"
	return forFields(b, msg, func(f field) error {
		var err error
		var v []byte
		switch f.num {
		case fGraphName:
			g.name, err = f.str(msg)
		case fGraphNode:
			if v, err = f.bytes(msg); err == nil {
				var n *nodeProto
				if n, err = p.node(v); err == nil {
					g.nodes = append(g.nodes, n)
				}
			}
		case fGraphInitializer:
			if v, err = f.bytes(msg); err == nil {
				var t *tensorProto
				if t, err = p.tensor(v); err == nil {
					g.inits = append(g.inits, t)
				}
			}
		case fGraphSparseInit:
			if v, err = f.bytes(msg); err == nil {
				var name string
				if name, err = p.sparseName(v); err == nil {
					if err = p.take(sizeString+int64(len(name)), msg); err == nil {
						g.sparseInit = append(g.sparseInit, name)
					}
				}
			}
		case fGraphInput, fGraphOutput:
			if v, err = f.bytes(msg); err == nil {
				var vi *valueInfo
				if vi, err = p.valueInfo(v); err != nil {
					return err
				}
				if f.num == fGraphInput {
					g.inputs = append(g.inputs, vi)
				} else {
					g.outputs = append(g.outputs, vi)
				}
			}
		}
		return err
	})
}

func (p *parser) node(b []byte) (*nodeProto, error) {
	const msg = "NodeProto"
	if err := p.take(sizeNode, msg); err != nil {
		return nil, err
	}
	n := &nodeProto{}
	err := forFields(b, msg, func(f field) error {
		var err error
		switch f.num {
		case fNodeInput:
			n.inputs, err = p.strs(n.inputs, f, msg)
		case fNodeOutput:
			n.outputs, err = p.strs(n.outputs, f, msg)
		case fNodeName:
			n.name, err = f.str(msg)
		case fNodeOpType:
			n.opType, err = f.str(msg)
		case fNodeDomain:
			n.domain, err = f.str(msg)
		case fNodeAttribute:
			var v []byte
			if v, err = f.bytes(msg); err == nil {
				var a *attrProto
				if a, err = p.attr(v); err == nil {
					n.attrs = append(n.attrs, a)
				}
			}
		}
		return err
	})
	return n, err
}

func (p *parser) attr(b []byte) (*attrProto, error) {
	const msg = "AttributeProto"
	if err := p.take(sizeAttr, msg); err != nil {
		return nil, err
	}
	a := &attrProto{}
	err := forFields(b, msg, func(f field) error {
		var err error
		switch f.num {
		case fAttrName:
			a.name, err = f.str(msg)
		case fAttrRefAttrName:
			a.refAttr, err = f.str(msg)
		case fAttrType:
			a.typ, err = f.int64(msg)
			a.hasType = true
		case fAttrF:
			if f.typ != protowire.Fixed32Type {
				return wrongType(msg, f)
			}
			a.f = math.Float32frombits(uint32(f.u))
			a.has |= hasF
		case fAttrI:
			a.i, err = f.int64(msg)
			a.has |= hasI
		case fAttrS:
			a.s, err = f.bytes(msg)
			a.has |= hasS
		case fAttrT:
			var v []byte
			if v, err = f.bytes(msg); err == nil {
				a.t, err = p.tensor(v)
			}
			a.has |= hasT
		case fAttrG:
			_, err = f.bytes(msg)
			a.has |= hasG
		case fAttrFloats:
			a.floats, err = p.floats(a.floats, f, msg)
			a.has |= hasFloats
		case fAttrInts:
			a.ints, err = p.varints(a.ints, f, msg)
			a.has |= hasInts
		case fAttrStrings:
			_, err = f.bytes(msg)
			a.nStrs++
			a.has |= hasStrings
		case fAttrTensors:
			_, err = f.bytes(msg)
			a.nTens++
			a.has |= hasTensors
		case fAttrGraphs:
			_, err = f.bytes(msg)
			a.has |= hasGraphs
		case fAttrSparseTensor, fAttrSparseTensors, fAttrTypeProto, fAttrTypeProtos:
			_, err = f.bytes(msg)
			a.has |= hasOther
		}
		return err
	})
	return a, err
}

// tensor decodes a TensorProto. raw_data is not copied; typed data fields
// are, charged to the budget. Whether the data fill the dims is checked
// when the tensor is used (builder.decodeTensor), before anything more is
// allocated.
func (p *parser) tensor(b []byte) (*tensorProto, error) {
	const msg = "TensorProto"
	if err := p.take(sizeTensor, msg); err != nil {
		return nil, err
	}
	t := &tensorProto{}
	err := forFields(b, msg, func(f field) error {
		var err error
		switch f.num {
		case fTensorDims:
			t.dims, err = p.varints(t.dims, f, msg)
		case fTensorDataType:
			t.dataType, err = f.int64(msg)
		case fTensorSegment:
			_, err = f.bytes(msg)
			t.segment = true
		case fTensorFloatData:
			t.floatData, err = p.floats(t.floatData, f, msg)
		case fTensorInt32Data:
			t.int32Data, err = p.varints(t.int32Data, f, msg)
		case fTensorStringData:
			_, err = f.bytes(msg)
			t.nStrings++
		case fTensorInt64Data:
			t.int64Data, err = p.varints(t.int64Data, f, msg)
		case fTensorName:
			t.name, err = f.str(msg)
		case fTensorRawData:
			t.raw, err = f.bytes(msg)
			t.hasRaw = true
		case fTensorDoubleData:
			t.doubleData, err = p.doubles(t.doubleData, f, msg)
		case fTensorUint64Data:
			t.uint64Data, err = p.varints(t.uint64Data, f, msg)
		case fTensorExternal:
			var v []byte
			if v, err = f.bytes(msg); err == nil {
				var k, val string
				k, val, err = parseEntry(v)
				if k == "location" {
					t.location = val
				}
				t.external = true
			}
		case fTensorLocation:
			var u uint64
			u, err = f.varint(msg)
			if u == 1 { // DataLocation EXTERNAL
				t.external = true
			}
		}
		return err
	})
	return t, err
}

func parseEntry(b []byte) (key, value string, err error) {
	const msg = "StringStringEntryProto"
	err = forFields(b, msg, func(f field) error {
		var err error
		switch f.num {
		case fEntryKey:
			key, err = f.str(msg)
		case fEntryValue:
			value, err = f.str(msg)
		}
		return err
	})
	return key, value, err
}

// sparseName returns the name of a SparseTensorProto, which is the name of
// its values tensor.
func (p *parser) sparseName(b []byte) (string, error) {
	const msg = "SparseTensorProto"
	var name string
	err := forFields(b, msg, func(f field) error {
		if f.num != fSparseValues {
			return nil
		}
		v, err := f.bytes(msg)
		if err != nil {
			return err
		}
		t, err := p.tensor(v)
		if err != nil {
			return err
		}
		name = t.name
		return nil
	})
	return name, err
}

func (p *parser) valueInfo(b []byte) (*valueInfo, error) {
	const msg = "ValueInfoProto"
	if err := p.take(sizeVI, msg); err != nil {
		return nil, err
	}
	vi := &valueInfo{}
	err := forFields(b, msg, func(f field) error {
		var err error
		switch f.num {
		case fValueInfoName:
			vi.name, err = f.str(msg)
		case fValueInfoType:
			var v []byte
			if v, err = f.bytes(msg); err == nil {
				vi.hasType = true
				err = p.typeProto(v, vi)
			}
		}
		return err
	})
	return vi, err
}

func (p *parser) typeProto(b []byte, vi *valueInfo) error {
	const msg = "TypeProto"
	return forFields(b, msg, func(f field) error {
		switch f.num {
		case fTypeTensor:
			v, err := f.bytes(msg)
			if err != nil {
				return err
			}
			vi.isTensor = true
			return p.tensorType(v, vi)
		case fTypeSequence, fTypeMap, fTypeSparseTensor, fTypeOptional:
			vi.isTensor = false
		}
		return nil
	})
}

func (p *parser) tensorType(b []byte, vi *valueInfo) error {
	const msg = "TypeProto.Tensor"
	return forFields(b, msg, func(f field) error {
		var err error
		switch f.num {
		case fTensorTypeElem:
			vi.elemType, err = f.int64(msg)
		case fTensorTypeShape:
			var v []byte
			if v, err = f.bytes(msg); err == nil {
				vi.hasShape = true
				err = forFields(v, "TensorShapeProto", func(f field) error {
					if f.num != fShapeDim {
						return nil
					}
					v, err := f.bytes("TensorShapeProto")
					if err != nil {
						return err
					}
					if err := p.take(sizeDim, "TensorShapeProto"); err != nil {
						return err
					}
					d, err := parseDim(v)
					vi.dims = append(vi.dims, d)
					return err
				})
			}
		}
		return err
	})
}

func parseDim(b []byte) (dimProto, error) {
	const msg = "TensorShapeProto.Dimension"
	var d dimProto
	err := forFields(b, msg, func(f field) error {
		var err error
		switch f.num {
		case fDimValue:
			d.value, err = f.int64(msg)
			d.hasValue, d.param = true, ""
		case fDimParam:
			d.param, err = f.str(msg)
			d.hasValue = false
		}
		return err
	})
	return d, err
}
