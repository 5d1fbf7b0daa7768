package onnx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// small is a valid model: x [N,3,8,8] -> Conv -> Relu -> y.
func small(opset int64) *tmodel {
	m := newModel(opset)
	m.input(vinfo("x", dtFloat, "N", 3, 8, 8))
	m.init(tensorF("w", []int{4, 3, 3, 3}, rnd(1, 108)))
	m.node(node("Conv", "conv", io("x", "w"), io("c"), aInts("pads", 1, 1, 1, 1)))
	m.node(node("Relu", "relu", io("c"), io("y")))
	m.output("y")
	return m
}

// withNodes is small with extra nodes between the Relu ("c") and y.
func withNodes(opset int64, f func(m *tmodel)) []byte { return withInput(opset, "N", f) }

// withBatch is withNodes with a fixed batch n.
func withBatch(n int, f func(m *tmodel)) []byte { return withInput(13, n, f) }

func withInput(opset int64, batch any, f func(m *tmodel)) []byte {
	m := newModel(opset)
	m.input(vinfo("x", dtFloat, batch, 3, 8, 8))
	m.init(tensorF("w", []int{4, 3, 3, 3}, rnd(1, 108)))
	m.node(node("Conv", "conv", io("x", "w"), io("c"), aInts("pads", 1, 1, 1, 1)))
	f(m)
	m.output("y")
	return m.bytes()
}

// errorCase is a model that must not import.
type errorCase struct {
	name string
	data []byte
	opt  Options
	want error
	msg  string // a substring of the message
}

func TestErrors(t *testing.T) {
	cases := []errorCase{
		{"empty", nil, Options{}, ErrCorrupt, "no graph"},
		{"bad_tag", []byte{0x00}, Options{}, ErrCorrupt, "ModelProto: bad field tag"},
		{"bad_varint", pb{}.varint(1, 7).append(0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), Options{}, ErrCorrupt, "ModelProto"},
		{"length_past_end", pb{}.append(0x3a, 0x10, 0x01), Options{}, ErrCorrupt, "ModelProto"},
		{"graph_as_varint", pb{}.varint(7, 1), Options{}, ErrCorrupt, "ModelProto: field 7 has wire type 0"},
		{"ir_version_as_bytes", pb{}.str(1, "7"), Options{}, ErrCorrupt, "field 1 has wire type 2"},
		{"node_as_fixed32", pb{}.msg(7, pb{}.fixed32(1, 0)), Options{}, ErrCorrupt, "GraphProto: field 1 has wire type 5"},
		{"attr_ints_as_fixed64", withNodes(13, func(m *tmodel) {
			m.node(node("Relu", "r", io("c"), io("y"), pb{}.str(1, "foo").fixed64(8, 1)))
		}), Options{}, ErrCorrupt, "AttributeProto: field 8 has wire type 1"},
		{"packed_floats_bad_length", withNodes(13, func(m *tmodel) {
			m.node(node("Relu", "r", io("c"), io("y"), pb{}.str(1, "foo").bytes(7, []byte{1, 2, 3})))
		}), Options{}, ErrCorrupt, "not a multiple of 4"},
		{"stray_end_group", pb{}.append(0x0c), Options{}, ErrCorrupt, "ModelProto"},
		{"no_opset", func() []byte { m := small(13); m.opset = 0; return pb{}.msg(7, m.graph()) }(), Options{}, ErrUnsupported, "operator set"},
		{"opset_too_old", small(6).bytes(), Options{}, ErrUnsupported, "opset 6 is not supported"},
		{"opset_too_new", small(30).bytes(), Options{}, ErrUnsupported, "opset 30 is not supported"},

		{"unknown_op", withNodes(13, func(m *tmodel) { m.node(node("FancyOp", "weird", io("c"), io("y"))) }), Options{},
			ErrUnsupported, `node 1 "weird" (FancyOp): operator FancyOp is not supported`},
		{"unnamed_node", withNodes(13, func(m *tmodel) { m.node(node("FancyOp", "", io("c"), io("y"))) }), Options{},
			ErrUnsupported, `node 1 "FancyOp#1" (FancyOp)`},
		{"input_5d", func() []byte {
			m := small(13)
			m.inputs[0] = vinfo("x", dtFloat, 1, 3, 4, 8, 8)
			return m.bytes()
		}(), Options{}, ErrUnsupported, `input "x" has rank 5 ([1,3,4,8,8])`},
		{"external_data", func() []byte {
			m := small(13)
			m.inits[0] = pb{}.packedVarints(1, []int64{4, 3, 3, 3}).varint(2, dtFloat).str(8, "w").
				msg(13, pb{}.str(1, "location").str(2, "weights.bin")).varint(14, 1)
			return m.bytes()
		}(), Options{}, ErrUnsupported, `node 0 "conv" (Conv): initializer "w" keeps its data externally in "weights.bin"`},
		{"raw_data_short", func() []byte {
			m := small(13)
			m.inits[0] = tensorRaw("w", dtFloat, []int{4, 3, 3, 3}, make([]byte, 100))
			return m.bytes()
		}(), Options{}, ErrCorrupt, `node 0 "conv" (Conv): initializer "w" declares 108 FLOAT values (432 B) but raw_data holds 100 bytes`},
		{"typed_data_short", func() []byte {
			m := small(13)
			m.inits[0] = tensorFData("w", []int{4, 3, 3, 3}, make([]float32, 10), true)
			return m.bytes()
		}(), Options{}, ErrCorrupt, `initializer "w" declares 108 FLOAT values but float_data holds 10`},
		{"negative_dim", func() []byte {
			m := small(13)
			m.inits[0] = tensorRaw("w", dtFloat, []int{4, -3, 3, 3}, nil)
			return m.bytes()
		}(), Options{}, ErrCorrupt, "negative dimension"},
		{"huge_dims", func() []byte {
			m := small(13)
			m.inits[0] = pb{}.packedVarints(1, []int64{1 << 40, 1 << 40}).varint(2, dtFloat).str(8, "w")
			return m.bytes()
		}(), Options{}, ErrCorrupt, "declares more than 2^63 (dims [1099511627776 1099511627776]) FLOAT values but float_data holds 0"},
		{"huge_product", func() []byte {
			m := small(13)
			m.inits[0] = pb{}.packedVarints(1, []int64{1 << 20, 1 << 20}).varint(2, dtFloat).str(8, "w")
			return m.bytes()
		}(), Options{}, ErrCorrupt, "declares 1099511627776 FLOAT values but float_data holds 0"},
		{"string_weight", func() []byte {
			m := small(13)
			m.inits[0] = pb{}.packedVarints(1, []int64{1}).varint(2, dtString).str(8, "w").str(6, "hi")
			return m.bytes()
		}(), Options{}, ErrUnsupported, "type STRING"},
		{"not_sorted", func() []byte {
			m := small(13)
			m.nodes[0], m.nodes[1] = m.nodes[1], m.nodes[0]
			return m.bytes()
		}(), Options{}, ErrCorrupt, "not in topological order"},
		{"undefined_input", withNodes(13, func(m *tmodel) { m.node(node("Add", "a", io("c", "nowhere"), io("y"))) }), Options{},
			ErrCorrupt, `input "nowhere" is not defined`},
		{"defined_twice", withNodes(13, func(m *tmodel) {
			m.node(node("Relu", "a", io("c"), io("y")))
			m.node(node("Relu", "b", io("c"), io("y")))
		}), Options{}, ErrCorrupt, `output "y" is defined twice`},
		{"symbolic_height", func() []byte {
			m := small(13)
			m.inputs[0] = vinfo("x", dtFloat, "N", 3, "H", "W")
			return m.bytes()
		}(), Options{}, ErrUnsupported, "set Options.Height"},
		{"batch_too_large", func() []byte {
			m := small(13)
			m.inputs[0] = vinfo("x", dtFloat, 100000, 3, 8, 8)
			return m.bytes()
		}(), Options{}, ErrUnsupported, "batch size 100000; at most 65536"},
		{"int_input", func() []byte {
			m := small(13)
			m.inputs[0] = vinfo("x", dtInt64, 1, 3, 8, 8)
			return m.bytes()
		}(), Options{}, ErrUnsupported, "type INT64"},
		{"two_inputs", func() []byte {
			m := small(13)
			m.input(vinfo("x2", dtFloat, 1, 3, 8, 8))
			return m.bytes()
		}(), Options{}, ErrUnsupported, `2 inputs ["x" "x2"]`},
		{"negative_option", small(13).bytes(), Options{Height: -1}, ErrUnsupported, "Options"},
		{"output_constant", withNodes(13, func(m *tmodel) {
			m.node(node("Constant", "k", nil, io("y"), aInt("value_int", 1)))
		}), Options{}, ErrUnsupported, "constant that does not depend on the input"},
		{"other_domain", withNodes(13, func(m *tmodel) {
			m.node(node("Relu", "r", io("c"), io("y")).str(7, "com.microsoft"))
		}), Options{}, ErrUnsupported, `domain "com.microsoft"`},
		{"clip_empty", withNodes(13, func(m *tmodel) {
			m.init(scalarF("lo", 6))
			m.init(scalarF("hi", 0))
			m.node(node("Clip", "r6", io("c", "lo", "hi"), io("y")))
		}), Options{}, ErrUnsupported, "Clip(min=6, max=0) is not supported (the bounds are not an interval)"},
		{"mul_activations_broadcast", withNodes(13, func(m *tmodel) {
			m.node(node("GlobalAveragePool", "g", io("c"), io("g")))
			m.node(node("Flatten", "f", io("g"), io("f")))
			m.node(node("Mul", "m", io("c", "f"), io("y")))
		}), Options{}, ErrUnsupported, "Mul of activations of shapes [1 4 8 8] and [1 4] is not supported"},
		{"div_const_by_act", withNodes(13, func(m *tmodel) {
			m.init(scalarF("one", 1))
			m.node(node("Div", "d", io("one", "c"), io("y")))
		}), Options{}, ErrUnsupported, "dividing a constant by an activation"},
		{"broadcast_not_per_channel", withNodes(13, func(m *tmodel) {
			m.init(tensorF("k", []int{8}, make([]float32, 8)))
			m.node(node("Add", "a", io("c", "k"), io("y")))
		}), Options{}, ErrUnsupported, "does not broadcast per channel"},
		{"reshape_unsupported", withNodes(13, func(m *tmodel) {
			m.init(vec1("s", 1, 32, 8))
			m.node(node("Reshape", "rs", io("c", "s"), io("y")))
		}), Options{}, ErrUnsupported, "Reshape of [1 4 8 8] to [1 32 8] is not supported"},
		{"pad_reflect", withNodes(13, func(m *tmodel) {
			m.init(vec1("p", 0, 0, 1, 1, 0, 0, 1, 1))
			m.node(node("Pad", "p", io("c", "p"), io("y"), aStr("mode", "reflect")))
		}), Options{}, ErrUnsupported, `mode="reflect"`},
		{"pad_batch", withNodes(13, func(m *tmodel) {
			m.init(vec1("p", 1, 0, 0, 0, 0, 0, 0, 0))
			m.node(node("Pad", "p", io("c", "p"), io("y")))
		}), Options{}, ErrUnsupported, "batch axis"},
		{"pad_negative", withNodes(13, func(m *tmodel) {
			m.init(vec1("p", 0, 0, -1, 0, 0, 0, 0, 0))
			m.node(node("Pad", "p", io("c", "p"), io("y")))
		}), Options{}, ErrUnsupported, "negative pads"},
		{"pad_not_constant", withNodes(13, func(m *tmodel) {
			m.node(node("Pad", "p", io("c", "c"), io("y")))
		}), Options{}, ErrUnsupported, "must be a constant"},
		{"slice_negative_step", withNodes(13, func(m *tmodel) {
			m.init(vec1("s", -1))
			m.init(vec1("e", -100))
			m.init(vec1("a", 1))
			m.init(vec1("st", -1))
			m.node(node("Slice", "sl", io("c", "s", "e", "a", "st"), io("y")))
		}), Options{}, ErrUnsupported, "negative steps"},
		{"softmax_feature_map", withNodes(13, func(m *tmodel) {
			m.node(node("Softmax", "sm", io("c"), io("y"), aInt("axis", 1)))
		}), Options{}, ErrUnsupported, "only over the channels of a vector"},
		{"gemm_on_feature_map", withNodes(13, func(m *tmodel) {
			m.init(tensorF("fw", []int{4, 2}, make([]float32, 8)))
			m.node(node("Gemm", "fc", io("c", "fw"), io("y")))
		}), Options{}, ErrUnsupported, "flatten it to [1,K] first"},
		{"gemm_transA", withNodes(13, func(m *tmodel) {
			m.node(node("GlobalAveragePool", "g", io("c"), io("g")))
			m.node(node("Flatten", "f", io("g"), io("f")))
			m.init(tensorF("fw", []int{4, 2}, make([]float32, 8)))
			m.node(node("Gemm", "fc", io("f", "fw"), io("y"), aInt("transA", 1)))
		}), Options{}, ErrUnsupported, "transA=1"},
		{"weight_from_activation", withNodes(13, func(m *tmodel) {
			m.node(node("Conv", "c2", io("c", "c"), io("y")))
		}), Options{}, ErrUnsupported, "must be a constant"},
		{"conv_channels_mismatch", withNodes(13, func(m *tmodel) {
			m.init(tensorF("w2", []int{2, 3, 1, 1}, make([]float32, 6)))
			m.node(node("Conv", "c2", io("c", "w2"), io("y")))
		}), Options{}, ErrCorrupt, "takes 3 input channels, the input has 4"},
		{"conv_kernel_too_big", withNodes(13, func(m *tmodel) {
			m.init(tensorF("w2", []int{1, 4, 9, 9}, make([]float32, 324)))
			m.node(node("Conv", "c2", io("c", "w2"), io("y")))
		}), Options{}, ErrUnsupported, "output would be empty"},
		{"bn_training_mode", withNodes(15, func(m *tmodel) {
			for _, n := range []string{"g", "b", "mu", "v"} {
				m.init(tensorF(n, []int{4}, positive(2, 4)))
			}
			m.node(node("BatchNormalization", "bn", io("c", "g", "b", "mu", "v"), io("y"), aInt("training_mode", 1)))
		}), Options{}, ErrUnsupported, "training_mode=1"},
		{"bn_spatial0_opset8", withNodes(8, func(m *tmodel) {
			for _, n := range []string{"g", "b", "mu", "v"} {
				m.init(tensorF(n, []int{4}, positive(2, 4)))
			}
			m.node(node("BatchNormalization", "bn", io("c", "g", "b", "mu", "v"), io("y"), aInt("spatial", 0)))
		}), Options{}, ErrUnsupported, "spatial=0"},
		{"bn_training_output_used", withNodes(9, func(m *tmodel) {
			for _, n := range []string{"g", "b", "mu", "v"} {
				m.init(tensorF(n, []int{4}, positive(2, 4)))
			}
			m.node(node("BatchNormalization", "bn", io("c", "g", "b", "mu", "v"), io("bn", "rm")))
			m.node(node("Add", "a", io("bn", "rm"), io("y")))
		}), Options{}, ErrUnsupported, `input "rm": output 1 of node 1 "bn" (BatchNormalization) is not supported`},
		{"maxpool_dilation", withNodes(13, func(m *tmodel) {
			m.node(node("MaxPool", "mp", io("c"), io("y"), aInts("kernel_shape", 2, 2), aInts("dilations", 2, 2)))
		}), Options{}, ErrUnsupported, "dilations=[2 2]"},
		{"maxpool_storage_order", withNodes(13, func(m *tmodel) {
			m.node(node("MaxPool", "mp", io("c"), io("y"), aInts("kernel_shape", 2, 2), aInt("storage_order", 1)))
		}), Options{}, ErrUnsupported, "storage_order=1"},
		{"attr_wrong_type", withNodes(13, func(m *tmodel) {
			m.node(node("MaxPool", "mp", io("c"), io("y"), aFloat("kernel_shape", 2)))
		}), Options{}, ErrCorrupt, "attribute kernel_shape has type FLOAT, want INTS"},
		{"sparse_initializer_used", func() []byte {
			m := small(13)
			m.inits = nil
			g := m.graph().msg(15, pb{}.msg(1, tensorF("w", []int{1}, []float32{1})))
			return pb{}.varint(1, 7).msg(7, g).msg(8, pb{}.varint(2, 13))
		}(), Options{}, ErrUnsupported, `sparse initializer "w"`},
		{"squeeze_on_activation", withNodes(13, func(m *tmodel) {
			m.node(node("Squeeze", "sq", io("c"), io("y")))
		}), Options{}, ErrUnsupported, "Squeeze of the activation [1 4 8 8] to [4 8 8] is not supported"},
	}
	cases = append(cases, familyErrorCases()...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, info, err := Import(tc.data, tc.opt)
			if err == nil {
				t.Fatalf("no error; graph with %d nodes, info %+v", len(g.Nodes), info)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q does not wrap %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "onnx: ") {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
		})
	}
}

func (b pb) append(v ...byte) pb { return append(b, v...) }

// TestTruncated imports every prefix of a model: each must fail cleanly.
func TestTruncated(t *testing.T) {
	for _, tc := range opCases()[:12] {
		data := tc.model().bytes()
		for n := range len(data) {
			_, _, err := importModel(data[:n], Options{})
			if err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes imported", tc.name, n, len(data))
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("%s: prefix of %d bytes: %v wraps no sentinel", tc.name, n, err)
			}
		}
	}
}

func TestImportFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := ImportFile(filepath.Join(dir, "missing.onnx"), Options{}); err == nil || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.onnx")
	if err := os.WriteFile(bad, []byte{0x3a, 0x10}, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := ImportFile(bad, Options{})
	if !errors.Is(err, ErrCorrupt) || !strings.HasPrefix(err.Error(), "onnx: "+bad+": ") {
		t.Errorf("bad file: %v", err)
	}
	good := filepath.Join(dir, "good.onnx")
	if err := os.WriteFile(good, small(13).bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if g, info, err := ImportFile(good, Options{}); err != nil || len(g.Nodes) != 3 || info.Nodes != 2 || info.Producer != "edge-resnet-test" {
		t.Errorf("good file: %v %+v", err, info)
	}
}

// TestOldStyleInputs: exporters before IR 4 list every initializer as a
// graph input too; those are weights, not model inputs.
func TestOldStyleInputs(t *testing.T) {
	m := small(9)
	m.irVersion = 3
	m.input(vinfo("w", dtFloat, 4, 3, 3, 3))
	g, info, err := Import(m.bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if info.InputName != "x" || info.IRVersion != 3 || len(g.Nodes) != 3 {
		t.Errorf("info %+v, %d nodes", info, len(g.Nodes))
	}
}

// TestAttributeWithoutType: IR version 1 attributes have no type field;
// the importer infers it from the value present.
func TestAttributeWithoutType(t *testing.T) {
	m := newModel(9)
	m.input(vinfo("x", dtFloat, 1, 2, 6, 6))
	m.node(node("MaxPool", "mp", io("x"), io("y"), pb{}.str(1, "kernel_shape").packedVarints(8, []int64{2, 2}), pb{}.str(1, "strides").varint(8, 2).varint(8, 2)))
	m.output("y")
	g, _, err := Import(m.bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p := g.Nodes[1].Pool; p.KH != 2 || p.StrideW != 2 || g.OutputShape().H != 3 {
		t.Errorf("pool %+v shape %v", p, g.OutputShape())
	}
}
