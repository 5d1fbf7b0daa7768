package onnx

import (
	"math"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
)

// opCase is a small model: input "x" [N,C,H,W] (N symbolic), output "y".
type opCase struct {
	name  string
	opset int64
	in    [3]int // C, H, W
	build func(m *tmodel)
	ref   func(x fmap) fmap
	ops   map[graph.Op]int // if set, the exact op counts of the graph
	opt   Options
}

func (tc opCase) model() *tmodel {
	m := newModel(tc.opset)
	m.input(vinfo("x", dtFloat, "N", tc.in[0], tc.in[1], tc.in[2]))
	tc.build(m)
	m.output("y")
	return m
}

func ops(kv ...any) map[graph.Op]int {
	m := map[graph.Op]int{graph.OpInput: 1}
	for k := 0; k < len(kv); k += 2 {
		m[kv[k].(graph.Op)] = kv[k+1].(int)
	}
	return m
}

const int64Max = math.MaxInt64

func opCases() []opCase {
	var cases []opCase
	add := func(c opCase) { cases = append(cases, c) }

	// Convolution.
	{
		w, b := rnd(1, 4*3*3*3), rnd(2, 4)
		add(opCase{name: "conv3x3_pad1_bias", opset: 13, in: [3]int{3, 6, 7},
			build: func(m *tmodel) {
				m.init(tensorF("w", []int{4, 3, 3, 3}, w))
				m.init(tensorF("b", []int{4}, b))
				m.node(node("Conv", "conv", io("x", "w", "b"), io("y"),
					aInts("kernel_shape", 3, 3), aInts("pads", 1, 1, 1, 1), aInts("strides", 1, 1), aInts("dilations", 1, 1), aInt("group", 1)))
			},
			ref: func(x fmap) fmap { return refConv(x, w, 4, 3, 3, b, [2]int{1, 1}, [2]int{1, 1}, [4]int{1, 1, 1, 1}) },
			ops: ops(graph.OpConv, 1)})
	}
	{
		w := rnd(3, 5*3*3*2)
		add(opCase{name: "conv_asym_pads_stride_dilation", opset: 11, in: [3]int{3, 9, 8},
			build: func(m *tmodel) {
				m.init(tensorF("w", []int{5, 3, 3, 2}, w))
				m.node(node("Conv", "", io("x", "w"), io("y"),
					aIntsUnpacked("pads", 0, 1, 2, 0), aInts("strides", 2, 1), aInts("dilations", 2, 1)))
			},
			ref: func(x fmap) fmap { return refConv(x, w, 5, 3, 2, nil, [2]int{2, 1}, [2]int{2, 1}, [4]int{0, 1, 2, 0}) }})
	}
	for _, ap := range []struct {
		mode string
		pads [4]int
	}{{"SAME_UPPER", [4]int{0, 0, 1, 1}}, {"SAME_LOWER", [4]int{1, 1, 0, 0}}, {"VALID", [4]int{}}} {
		w := rnd(4, 2*3*3*3)
		s := 2
		if ap.mode == "VALID" {
			s = 1
		}
		add(opCase{name: "conv_auto_pad_" + ap.mode, opset: 13, in: [3]int{3, 8, 8},
			build: func(m *tmodel) {
				m.init(tensorF("w", []int{2, 3, 3, 3}, w))
				m.node(node("Conv", "c", io("x", "w"), io("y"), aStr("auto_pad", ap.mode), aInts("strides", int64(s), int64(s))))
			},
			ref: func(x fmap) fmap { return refConv(x, w, 2, 3, 3, nil, [2]int{s, s}, [2]int{1, 1}, ap.pads) }})
	}

	// Batch normalization, in the opsets where it differs.
	for _, v := range []struct {
		opset int64
		extra []pb
		outs  []string
	}{
		{9, nil, io("y")},
		{9, nil, io("y", "mean_out", "var_out", "saved_mean", "saved_var")}, // training outputs, unused
		{15, []pb{aInt("training_mode", 0)}, io("y")},
	} {
		g, bb, mu, va := rnd(5, 3), rnd(6, 3), rnd(7, 3), positive(8, 3)
		add(opCase{name: "batchnorm_opset" + itoa(v.opset) + "_outs" + itoa(int64(len(v.outs))), opset: v.opset, in: [3]int{3, 4, 5},
			build: func(m *tmodel) {
				for k, t := range [][]float32{g, bb, mu, va} {
					m.init(tensorF([]string{"g", "b", "m", "v"}[k], []int{3}, t))
				}
				m.node(node("BatchNormalization", "bn", io("x", "g", "b", "m", "v"), v.outs, append(v.extra, aFloat("epsilon", 1e-3), aFloat("momentum", 0.9))...))
			},
			ref: func(x fmap) fmap { return refBN(x, g, bb, mu, va, float64(float32(1e-3))) },
			ops: ops(graph.OpAffine, 1)})
	}

	{
		g, bb, mu, va := rnd(31, 2), rnd(32, 2), rnd(33, 2), positive(34, 2)
		add(opCase{name: "batchnorm_opset7_spatial", opset: 7, in: [3]int{2, 3, 3},
			build: func(m *tmodel) {
				for k, t := range [][]float32{g, bb, mu, va} {
					m.init(tensorF([]string{"g", "b", "m", "v"}[k], []int{2}, t))
				}
				m.node(node("BatchNormalization", "bn", io("x", "g", "b", "m", "v"), io("y"), aInt("spatial", 1)))
			},
			ref: func(x fmap) fmap { return refBN(x, g, bb, mu, va, float64(float32(1e-5))) },
			ops: ops(graph.OpAffine, 1)})
	}

	// ReLU and Clip(min=0).
	add(opCase{name: "relu", opset: 13, in: [3]int{2, 3, 3},
		build: func(m *tmodel) { m.node(node("Relu", "r", io("x"), io("y"))) },
		ref:   refRelu, ops: ops(graph.OpRelu, 1)})
	add(opCase{name: "clip_min0_opset9", opset: 9, in: [3]int{2, 3, 3},
		build: func(m *tmodel) { m.node(node("Clip", "c", io("x"), io("y"), aFloat("min", 0))) },
		ref:   refRelu, ops: ops(graph.OpRelu, 1)})
	add(opCase{name: "clip_min0_opset13", opset: 13, in: [3]int{2, 3, 3},
		build: func(m *tmodel) {
			m.init(scalarF("zero", 0))
			m.node(node("Clip", "c", io("x", "zero", ""), io("y")))
		},
		ref: refRelu, ops: ops(graph.OpRelu, 1)})

	// Pooling.
	add(opCase{name: "maxpool_ceil_pads", opset: 11, in: [3]int{2, 8, 8},
		build: func(m *tmodel) {
			m.node(node("MaxPool", "p", io("x"), io("y"), aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1), aInt("ceil_mode", 1)))
		},
		ref: func(x fmap) fmap {
			return refPool(x, true, [2]int{3, 3}, [2]int{2, 2}, [4]int{1, 1, 1, 1}, true, false)
		},
		ops: ops(graph.OpMaxPool, 1)})
	add(opCase{name: "maxpool_opset9_floor", opset: 9, in: [3]int{2, 7, 9},
		build: func(m *tmodel) {
			m.node(node("MaxPool", "p", io("x"), io("y"), aInts("kernel_shape", 2, 3), aInts("strides", 2, 2)))
		},
		ref: func(x fmap) fmap { return refPool(x, true, [2]int{2, 3}, [2]int{2, 2}, [4]int{}, false, false) }})
	add(opCase{name: "avgpool_exclude_pad", opset: 13, in: [3]int{2, 8, 8},
		build: func(m *tmodel) {
			m.node(node("AveragePool", "p", io("x"), io("y"), aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1)))
		},
		ref: func(x fmap) fmap {
			return refPool(x, false, [2]int{3, 3}, [2]int{2, 2}, [4]int{1, 1, 1, 1}, false, false)
		}})
	add(opCase{name: "avgpool_include_pad_ceil", opset: 13, in: [3]int{2, 7, 7},
		build: func(m *tmodel) {
			m.node(node("AveragePool", "p", io("x"), io("y"), aInts("kernel_shape", 2, 2), aInts("strides", 2, 2), aInts("pads", 0, 0, 1, 1),
				aInt("ceil_mode", 1), aInt("count_include_pad", 1)))
		},
		ref: func(x fmap) fmap {
			return refPool(x, false, [2]int{2, 2}, [2]int{2, 2}, [4]int{0, 0, 1, 1}, true, true)
		}})
	add(opCase{name: "avgpool_same_upper", opset: 13, in: [3]int{2, 7, 7},
		build: func(m *tmodel) {
			m.node(node("AveragePool", "p", io("x"), io("y"), aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aStr("auto_pad", "SAME_UPPER")))
		},
		ref: func(x fmap) fmap {
			return refPool(x, false, [2]int{3, 3}, [2]int{2, 2}, [4]int{1, 1, 1, 1}, false, false)
		}})
	add(opCase{name: "globalmaxpool", opset: 13, in: [3]int{3, 4, 5},
		build: func(m *tmodel) {
			m.node(node("GlobalMaxPool", "p", io("x"), io("p")))
			m.node(node("Flatten", "f", io("p"), io("y")))
		},
		ref: refGMP, ops: ops(graph.OpMaxPool, 1)})

	// Classifier heads.
	{
		w, b := rnd(9, 6*4), rnd(10, 6)
		add(opCase{name: "gap_flatten_gemm_softmax_opset11", opset: 11, in: [3]int{4, 3, 5},
			build: func(m *tmodel) {
				m.init(tensorF("w", []int{6, 4}, w))
				m.init(tensorF("b", []int{6}, b))
				m.node(node("GlobalAveragePool", "gap", io("x"), io("g")))
				m.node(node("Flatten", "flat", io("g"), io("f"), aInt("axis", 1)))
				m.node(node("Gemm", "fc", io("f", "w", "b"), io("l"), aFloat("alpha", 0.5), aFloat("beta", 2), aInt("transB", 1)))
				m.node(node("Softmax", "sm", io("l"), io("y"))) // opset 11: axis defaults to 1
			},
			ref: func(x fmap) fmap {
				return refSoftmax(refGemm(refGAP(x), func(k, o int) float32 { return w[o*4+k] }, 6, b, 0.5, 2))
			},
			ops: ops(graph.OpGlobalAvgPool, 1, graph.OpDense, 1, graph.OpSoftmax, 1)})
	}
	{
		w, b := rnd(11, 4*3), rnd(12, 3)
		add(opCase{name: "gemm_transB0_bias_row", opset: 13, in: [3]int{4, 2, 2},
			build: func(m *tmodel) {
				m.init(tensorF("w", []int{4, 3}, w))
				m.init(tensorF("b", []int{1, 3}, b))
				m.node(node("ReduceMean", "rm", io("x"), io("g"), aInts("axes", 2, 3), aInt("keepdims", 0)))
				m.node(node("Gemm", "fc", io("g", "w", "b"), io("l")))
				m.node(node("Softmax", "sm", io("l"), io("y"), aInt("axis", -1)))
			},
			ref: func(x fmap) fmap {
				return refSoftmax(refGemm(refGAP(x), func(k, o int) float32 { return w[k*3+o] }, 3, b, 1, 1))
			},
			ops: ops(graph.OpGlobalAvgPool, 1, graph.OpDense, 1, graph.OpSoftmax, 1)})
	}
	{
		w, b := rnd(13, 4*6), rnd(14, 6)
		add(opCase{name: "reducemean18_reshape_matmul_add", opset: 18, in: [3]int{4, 3, 3},
			build: func(m *tmodel) {
				m.init(vec1("axes", -1, -2))
				m.init(vec1("shape", 1, -1))
				m.init(tensorF("w", []int{4, 6}, w))
				m.init(tensorF("b", []int{6}, b))
				m.node(node("ReduceMean", "rm", io("x", "axes"), io("g")))
				m.node(node("Reshape", "rs", io("g", "shape"), io("f")))
				m.node(node("MatMul", "mm", io("f", "w"), io("l")))
				m.node(node("Add", "bias", io("b", "l"), io("y")))
			},
			ref: func(x fmap) fmap {
				return refGemm(refGAP(x), func(k, o int) float32 { return w[k*6+o] }, 6, b, 1, 1)
			},
			ops: ops(graph.OpGlobalAvgPool, 1, graph.OpDense, 1)})
		// The MatMul output is read twice: the bias must not be merged.
		add(opCase{name: "matmul_shared_output", opset: 13, in: [3]int{4, 1, 1},
			build: func(m *tmodel) {
				m.init(vec1("shape", 1, -1))
				m.init(tensorF("w", []int{4, 6}, w))
				m.init(tensorF("b", []int{6}, b))
				m.node(node("Reshape", "rs", io("x", "shape"), io("f")))
				m.node(node("MatMul", "mm", io("f", "w"), io("l")))
				m.node(node("Add", "bias", io("l", "b"), io("lb")))
				m.node(node("Add", "sum", io("lb", "l"), io("y")))
			},
			ref: func(x fmap) fmap {
				l := refGemm(x, func(k, o int) float32 { return w[k*6+o] }, 6, nil, 1, 1)
				return refAdd(refMap(l, func(c int, v float64) float64 { return v + float64(b[c]) }), l)
			},
			ops: ops(graph.OpDense, 1, graph.OpAffine, 1, graph.OpAdd, 1)})
		// ... or was read before the Add.
		add(opCase{name: "matmul_read_before_bias", opset: 13, in: [3]int{4, 1, 1},
			build: func(m *tmodel) {
				m.init(vec1("shape", 1, -1))
				m.init(tensorF("w", []int{4, 6}, w))
				m.init(tensorF("b", []int{6}, b))
				m.node(node("Reshape", "rs", io("x", "shape"), io("f")))
				m.node(node("MatMul", "mm", io("f", "w"), io("l")))
				m.node(node("Identity", "id", io("l"), io("l2")))
				m.node(node("Relu", "r", io("l2"), io("r")))
				m.node(node("Add", "bias", io("l", "b"), io("lb")))
				m.node(node("Add", "sum", io("lb", "r"), io("y")))
			},
			ref: func(x fmap) fmap {
				l := refGemm(x, func(k, o int) float32 { return w[k*6+o] }, 6, nil, 1, 1)
				return refAdd(refMap(l, func(c int, v float64) float64 { return v + float64(b[c]) }), refRelu(l))
			},
			ops: ops(graph.OpDense, 1, graph.OpAffine, 1, graph.OpRelu, 1, graph.OpAdd, 1)})
	}

	// Residual add and constant arithmetic.
	{
		w := rnd(15, 3*3*3*3)
		add(opCase{name: "residual_add_relu", opset: 13, in: [3]int{3, 5, 5},
			build: func(m *tmodel) {
				m.init(tensorF("w", []int{3, 3, 3, 3}, w))
				m.node(node("Conv", "c", io("x", "w"), io("c"), aInts("pads", 1, 1, 1, 1)))
				m.node(node("Add", "a", io("c", "x"), io("a")))
				m.node(node("Relu", "r", io("a"), io("y")))
			},
			ref: func(x fmap) fmap {
				return refRelu(refAdd(refConv(x, w, 3, 3, 3, nil, [2]int{1, 1}, [2]int{1, 1}, [4]int{1, 1, 1, 1}), x))
			},
			ops: ops(graph.OpConv, 1, graph.OpAdd, 1, graph.OpRelu, 1)})
	}
	{
		c1, c3 := rnd(16, 3), positive(17, 3)
		add(opCase{name: "affine_constants", opset: 13, in: [3]int{3, 2, 4},
			build: func(m *tmodel) {
				m.init(tensorF("c1", []int{3, 1, 1}, c1))
				m.init(scalarF("c2", 0.25))
				m.init(tensorF("c3", []int{1, 3, 1, 1}, c3))
				m.init(tensorF("c4", []int{1}, []float32{4}))
				m.init(tensorF("c5", []int{1, 1, 1}, []float32{-1.5}))
				m.node(node("Add", "add", io("x", "c1"), io("a")))
				m.node(node("Sub", "rsub", io("c2", "a"), io("b")))
				m.node(node("Mul", "mul", io("b", "c3"), io("c")))
				m.node(node("Div", "div", io("c", "c4"), io("d")))
				m.node(node("Sub", "sub", io("d", "c5"), io("y")))
			},
			ref: func(x fmap) fmap {
				return refMap(x, func(c int, v float64) float64 {
					return (0.25-(v+float64(c1[c])))*float64(c3[c])/4 + 1.5
				})
			},
			ops: ops(graph.OpAffine, 5)})
	}

	// Pad: attribute (opset < 11), input (11+), axes input (18), no-op.
	padRef := func(x fmap) fmap { return refPad(x, [3]int{1, 2, 0}, [3]int{3, 0, 1}, 0.5) }
	add(opCase{name: "pad_opset9_attr", opset: 9, in: [3]int{2, 3, 4},
		build: func(m *tmodel) {
			m.node(node("Pad", "p", io("x"), io("y"), aStr("mode", "constant"), aInts("pads", 0, 1, 2, 0, 0, 3, 0, 1), aFloat("value", 0.5)))
		},
		ref: padRef, ops: ops(graph.OpPad, 1)})
	add(opCase{name: "pad_opset11_input", opset: 11, in: [3]int{2, 3, 4},
		build: func(m *tmodel) {
			m.init(vec1("pads", 0, 1, 2, 0, 0, 3, 0, 1))
			m.init(scalarF("v", 0.5))
			m.node(node("Pad", "p", io("x", "pads", "v"), io("y")))
		},
		ref: padRef, ops: ops(graph.OpPad, 1)})
	add(opCase{name: "pad_opset18_axes_int32", opset: 18, in: [3]int{2, 3, 4},
		build: func(m *tmodel) {
			m.init(tensorI32("pads", []int{6}, []int64{1, 2, 0, 3, 0, 1}))
			m.init(scalarF("v", 0.5))
			m.init(vec1("axes", 1, -2, 3))
			m.node(node("Pad", "p", io("x", "pads", "v", "axes"), io("y")))
		},
		ref: padRef, ops: ops(graph.OpPad, 1)})
	add(opCase{name: "pad_zero_is_dropped", opset: 13, in: [3]int{2, 3, 4},
		build: func(m *tmodel) {
			m.init(vec1("pads", 0, 0, 0, 0, 0, 0, 0, 0))
			m.node(node("Pad", "p", io("x", "pads"), io("p")))
			m.node(node("Relu", "r", io("p"), io("y")))
		},
		ref: refRelu, ops: ops(graph.OpRelu, 1)})

	// Slice: attributes (opset < 10) and inputs with sentinels and steps.
	add(opCase{name: "slice_opset9_attrs", opset: 9, in: [3]int{4, 3, 5},
		build: func(m *tmodel) {
			m.node(node("Slice", "s", io("x"), io("y"), aInts("starts", 1, 0), aInts("ends", 3, 100), aInts("axes", 1, 3)))
		},
		ref: func(x fmap) fmap { return refSlice(x, [3]int{1, 0, 0}, [3]int{3, 3, 5}, [3]int{1, 1, 1}) },
		ops: ops(graph.OpSlice, 1)})
	add(opCase{name: "slice_opset13_steps_sentinels", opset: 13, in: [3]int{5, 7, 6},
		build: func(m *tmodel) {
			m.init(vec1("starts", 1, -3, math.MinInt64))
			m.init(vec1("ends", int64Max, int64Max, -1))
			m.init(vec1("axes", 2, 1, -1))
			m.init(vec1("steps", 2, 1, 3))
			m.node(node("Slice", "s", io("x", "starts", "ends", "axes", "steps"), io("y")))
		},
		ref: func(x fmap) fmap { return refSlice(x, [3]int{2, 1, 0}, [3]int{5, 7, 5}, [3]int{1, 2, 3}) },
		ops: ops(graph.OpSlice, 1)})
	add(opCase{name: "slice_whole_is_dropped", opset: 13, in: [3]int{2, 3, 3},
		build: func(m *tmodel) {
			m.init(vec1("starts", 0))
			m.init(vec1("ends", int64Max))
			m.node(node("Slice", "s", io("x", "starts", "ends"), io("s")))
			m.node(node("Relu", "r", io("s"), io("y")))
		},
		ref: refRelu, ops: ops(graph.OpRelu, 1)})

	// Concat and Split.
	{
		w1, w2 := rnd(18, 2*3), rnd(19, 3*3)
		add(opCase{name: "concat_channels", opset: 13, in: [3]int{3, 4, 4},
			build: func(m *tmodel) {
				m.init(tensorF("w1", []int{2, 3, 1, 1}, w1))
				m.init(tensorF("w2", []int{3, 3, 1, 1}, w2))
				m.node(node("Conv", "c1", io("x", "w1"), io("a")))
				m.node(node("Conv", "c2", io("x", "w2"), io("b")))
				m.node(node("Concat", "cat", io("a", "b", "x"), io("y"), aInt("axis", 1)))
			},
			ref: func(x fmap) fmap {
				one := [2]int{1, 1}
				return refConcat(0, refConv(x, w1, 2, 1, 1, nil, one, one, [4]int{}), refConv(x, w2, 3, 1, 1, nil, one, one, [4]int{}), x)
			},
			ops: ops(graph.OpConv, 2, graph.OpConcat, 1)})
	}
	add(opCase{name: "concat_width_negative_axis", opset: 13, in: [3]int{2, 3, 2},
		build: func(m *tmodel) {
			m.node(node("Relu", "r", io("x"), io("r")))
			m.node(node("Concat", "cat", io("x", "r"), io("y"), aInt("axis", -1)))
		},
		ref: func(x fmap) fmap { return refConcat(2, x, refRelu(x)) }})
	for _, v := range []struct {
		opset int64
		build func(m *tmodel)
	}{
		{11, func(m *tmodel) {
			m.node(node("Split", "sp", io("x"), io("a", "b"), aInt("axis", 1), aInts("split", 2, 1)))
		}},
		{13, func(m *tmodel) {
			m.init(vec1("split", 2, 1))
			m.node(node("Split", "sp", io("x", "split"), io("a", "b"), aInt("axis", -3)))
		}},
		{18, func(m *tmodel) {
			m.node(node("Split", "sp", io("x"), io("a", "b"), aInt("axis", 1), aInt("num_outputs", 2)))
		}},
	} {
		add(opCase{name: "split_opset" + itoa(v.opset), opset: v.opset, in: [3]int{3, 2, 2},
			build: func(m *tmodel) {
				v.build(m)
				m.node(node("Concat", "cat", io("b", "a"), io("y"), aInt("axis", 1)))
			},
			ref: func(x fmap) fmap {
				return refConcat(0, refSlice(x, [3]int{2, 0, 0}, [3]int{3, 2, 2}, [3]int{1, 1, 1}), refSlice(x, [3]int{0, 0, 0}, [3]int{2, 2, 2}, [3]int{1, 1, 1}))
			},
			ops: ops(graph.OpSlice, 2, graph.OpConcat, 1)})
	}

	// Aliases: Identity, Dropout, Cast to float, Flatten of a vector.
	add(opCase{name: "identity_dropout_cast_opset9", opset: 9, in: [3]int{3, 2, 2},
		build: func(m *tmodel) {
			m.node(node("Identity", "i", io("x"), io("i")))
			m.node(node("Dropout", "d", io("i"), io("d", "mask"), aFloat("ratio", 0.3)))
			m.node(node("Cast", "c", io("d"), io("c"), aInt("to", dtFloat)))
			m.node(node("Relu", "r", io("c"), io("y")))
		},
		ref: refRelu, ops: ops(graph.OpRelu, 1)})
	add(opCase{name: "dropout_opset13_inputs", opset: 13, in: [3]int{3, 2, 2},
		build: func(m *tmodel) {
			m.init(scalarF("ratio", 0.5))
			m.init(tensorRaw("train", dtBool, nil, []byte{0}))
			m.node(node("Dropout", "d", io("x", "ratio", "train"), io("d")))
			m.node(node("Relu", "r", io("d"), io("y")))
		},
		ref: refRelu, ops: ops(graph.OpRelu, 1)})
	add(opCase{name: "flatten_feature_map", opset: 13, in: [3]int{3, 2, 4},
		build: func(m *tmodel) { m.node(node("Flatten", "f", io("x"), io("y"))) },
		ref:   flat, ops: ops(graph.OpFlatten, 1)})
	add(opCase{name: "reshape_0_minus1", opset: 13, in: [3]int{3, 2, 4},
		build: func(m *tmodel) {
			m.init(vec1("shape", 0, -1))
			m.node(node("Reshape", "r", io("x", "shape"), io("y")))
		},
		ref: flat, ops: ops(graph.OpFlatten, 1)})
	add(opCase{name: "reshape_identity_and_back", opset: 13, in: [3]int{5, 1, 1},
		build: func(m *tmodel) {
			m.init(vec1("s1", 1, 5, 1, 1))
			m.init(vec1("s2", 1, 5))
			m.init(vec1("s3", 1, 5, 1, 1))
			m.node(node("Reshape", "r1", io("x", "s1"), io("a")))
			m.node(node("Reshape", "r2", io("a", "s2"), io("b")))
			m.node(node("Reshape", "r3", io("b", "s3"), io("c")))
			m.node(node("Relu", "relu", io("c"), io("y")))
		},
		ref: refRelu, ops: ops(graph.OpRelu, 1)})

	// torch's x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat
	// -> Reshape, folded through the known shape of x.
	for _, opset := range []int64{11, 13} {
		add(opCase{name: "view_batch_minus1_opset" + itoa(opset), opset: opset, in: [3]int{3, 2, 2},
			build: func(m *tmodel) {
				m.node(node("Shape", "sh", io("x"), io("shape")))
				m.node(node("Constant", "c0", nil, io("zero"), aTensor("value", tensorI64("", nil, []int64{0}, true))))
				m.node(node("Gather", "g", io("shape", "zero"), io("n"), aInt("axis", 0)))
				if opset < 13 {
					m.node(node("Unsqueeze", "u", io("n"), io("n1"), aInts("axes", 0)))
				} else {
					m.node(node("Constant", "ax", nil, io("axes"), aInts("value_ints", 0)))
					m.node(node("Unsqueeze", "u", io("n", "axes"), io("n1")))
				}
				m.node(node("Constant", "cm1", nil, io("m1"), aInts("value_ints", -1)))
				m.node(node("Concat", "cat", io("n1", "m1"), io("target"), aInt("axis", 0)))
				m.node(node("Reshape", "rs", io("x", "target"), io("y")))
			},
			ref: flat, ops: ops(graph.OpFlatten, 1)})
	}
	// An option-A shortcut whose channel pads are computed from Shape(x):
	// pads = [0, q, 0, 0, 0, q, 0, 0] with q = C - C/2 ... as int64 math.
	add(opCase{name: "fpad_from_shape_subgraph", opset: 13, in: [3]int{4, 4, 4},
		build: func(m *tmodel) {
			m.init(vec1("starts", 0, 0))
			m.init(vec1("ends", int64Max, int64Max))
			m.init(vec1("axes", 2, 3))
			m.init(vec1("steps", 2, 2))
			m.node(node("Slice", "sub", io("x", "starts", "ends", "axes", "steps"), io("s")))
			m.node(node("Shape", "shape", io("s"), io("sh")))
			m.node(node("Constant", "one", nil, io("i1"), aInt("value_int", 1)))
			m.node(node("Gather", "c", io("sh", "i1"), io("c")))
			m.node(node("Constant", "two", nil, io("two"), aTensor("value", tensorI64("", nil, []int64{2}, false))))
			m.node(node("Div", "half", io("c", "two"), io("h")))
			m.node(node("Sub", "q", io("c", "h"), io("q")))
			m.node(node("Mul", "q1", io("q", "i1"), io("q1")))
			m.node(node("Constant", "ax", nil, io("ax"), aInts("value_ints", 0)))
			m.node(node("Unsqueeze", "uq", io("q1", "ax"), io("uq")))
			m.node(node("ConstantOfShape", "z1", io("i1vec"), io("z1"), aTensor("value", tensorI64("", []int{1}, []int64{0}, true))))
			m.init(vec1("i1vec", 1))
			m.init(vec1("three", 3))
			m.node(node("ConstantOfShape", "z3", io("three"), io("z3"), aTensor("value", tensorI64("", []int{1}, []int64{0}, true))))
			m.node(node("Concat", "pads", io("z1", "uq", "z3", "uq", "z1", "z1"), io("pads64"), aInt("axis", 0)))
			m.node(node("Cast", "cast", io("pads64"), io("pads"), aInt("to", dtInt64)))
			m.node(node("Pad", "pad", io("s", "pads", ""), io("y"), aStr("mode", "constant")))
		},
		ref: func(x fmap) fmap {
			return refPad(refSlice(x, [3]int{0, 0, 0}, [3]int{4, 4, 4}, [3]int{1, 2, 2}), [3]int{2, 0, 0}, [3]int{2, 0, 0}, 0)
		},
		ops: ops(graph.OpSlice, 1, graph.OpPad, 1)})

	// Constants: Constant variants and Unsqueeze/Squeeze on constants.
	for _, opset := range []int64{11, 13} {
		c := rnd(20, 3)
		add(opCase{name: "constant_nodes_unsqueeze_opset" + itoa(opset), opset: opset, in: [3]int{3, 2, 2},
			build: func(m *tmodel) {
				m.node(node("Constant", "c", nil, io("c"), aTensor("value", tensorF("", []int{1, 3}, c))))
				if opset < 13 {
					m.node(node("Squeeze", "sq", io("c"), io("c1"), aInts("axes", 0)))
					m.node(node("Unsqueeze", "us", io("c1"), io("c3"), aInts("axes", 1, -1)))
				} else {
					m.init(vec1("a0", 0))
					m.init(vec1("a12", 1, -1))
					m.node(node("Squeeze", "sq", io("c", "a0"), io("c1")))
					m.node(node("Unsqueeze", "us", io("c1", "a12"), io("c3")))
				}
				m.node(node("Constant", "k", nil, io("k"), aFloat("value_float", 3)))
				m.node(node("Mul", "mul", io("x", "c3"), io("a")))
				m.node(node("Mul", "mulk", io("k", "a"), io("y")))
			},
			ref: func(x fmap) fmap { return refMap(x, func(ch int, v float64) float64 { return 3 * v * float64(c[ch]) }) },
			ops: ops(graph.OpAffine, 2)})
	}

	// Weight encodings: float_data packed/unpacked, FLOAT16 raw and
	// int32_data, DOUBLE.
	{
		h := func(v []float32) []float32 { // values exact in binary16
			out := make([]float32, len(v))
			for k, x := range v {
				out[k] = float32(math.Round(float64(x)*256)) / 256
			}
			return out
		}
		w1, b1 := rnd(21, 2*2), rnd(22, 2)
		w2, b2 := h(rnd(23, 2*2)), h(rnd(24, 2))
		w3 := rnd(25, 2*2)
		g, bb, mu, va := h(rnd(26, 2)), h(rnd(27, 2)), h(rnd(28, 2)), h(positive(29, 2))
		one := [2]int{1, 1}
		add(opCase{name: "weight_encodings", opset: 13, in: [3]int{2, 3, 3},
			build: func(m *tmodel) {
				m.init(tensorFData("w1", []int{2, 2, 1, 1}, w1, true))
				m.init(tensorFData("b1", []int{2}, b1, false))
				m.init(tensorH("w2", []int{2, 2, 1, 1}, w2, true))
				m.init(tensorH("b2", []int{2}, b2, false))
				m.init(tensorD("w3", []int{2, 2, 1, 1}, w3))
				m.init(tensorH("g", []int{2}, g, true))
				m.init(tensorH("bb", []int{2}, bb, false))
				m.init(tensorH("mu", []int{2}, mu, true))
				m.init(tensorH("va", []int{2}, va, false))
				m.node(node("Conv", "c1", io("x", "w1", "b1"), io("a")))
				m.node(node("Conv", "c2", io("a", "w2", "b2"), io("b")))
				m.node(node("Conv", "c3", io("b", "w3"), io("c")))
				m.node(node("BatchNormalization", "bn", io("c", "g", "bb", "mu", "va"), io("y")))
			},
			ref: func(x fmap) fmap {
				a := refConv(x, w1, 2, 1, 1, b1, one, one, [4]int{})
				b := refConv(a, w2, 2, 1, 1, b2, one, one, [4]int{})
				c := refConv(b, w3, 2, 1, 1, nil, one, one, [4]int{})
				return refBN(c, g, bb, mu, va, float64(float32(1e-5)))
			}})
	}

	// Spatial sizes from Options.
	{
		w := rnd(30, 2*3*3*3)
		add(opCase{name: "options_override", opset: 13, in: [3]int{3, 8, 8}, opt: Options{Height: 5, Width: 6},
			build: func(m *tmodel) {
				m.init(tensorF("w", []int{2, 3, 3, 3}, w))
				m.node(node("Conv", "c", io("x", "w"), io("y"), aInts("pads", 1, 1, 1, 1), aInts("strides", 2, 2)))
			},
			ref: func(x fmap) fmap { return refConv(x, w, 2, 3, 3, nil, [2]int{2, 2}, [2]int{1, 1}, [4]int{1, 1, 1, 1}) }})
	}
	// An unsupported operator on a branch the output does not use is ignored.
	add(opCase{name: "dead_branch", opset: 13, in: [3]int{2, 2, 2},
		build: func(m *tmodel) {
			m.node(node("LeakyRelu", "unused", io("x"), io("dead")))
			m.node(node("Relu", "r", io("x"), io("y")))
		},
		ref: refRelu, ops: ops(graph.OpRelu, 1)})
	return append(cases, familyCases()...)
}

func itoa(v int64) string {
	if v < 0 {
		return "-" + itoa(-v)
	}
	if v < 10 {
		return string(rune('0' + v))
	}
	return itoa(v/10) + string(rune('0'+v%10))
}

func TestOps(t *testing.T) {
	for k, tc := range opCases() {
		t.Run(tc.name, func(t *testing.T) {
			g, info, err := Import(tc.model().bytes(), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if info.Opset != tc.opset || info.InputName != "x" || info.OutputName != "y" {
				t.Errorf("info = %+v", info)
			}
			if tc.ops != nil {
				if got := countOps(g); !equalOpCounts(got, tc.ops) {
					t.Errorf("op counts = %v, want %v", got, tc.ops)
				}
			}
			in := [3]int{tc.in[0], tc.in[1], tc.in[2]}
			if tc.opt.Height > 0 {
				in[1], in[2] = tc.opt.Height, tc.opt.Width
			}
			x := fmap{in[0], in[1], in[2], nil}
			for _, v := range rnd(uint64(1000+k), in[0]*in[1]*in[2]) {
				x.v = append(x.v, float64(v))
			}
			want := tc.ref(x)
			out, err := g.Eval(x.nhwc())
			if err != nil {
				t.Fatal(err)
			}
			if s := g.OutputShape(); s != (graph.Shape{H: want.H, W: want.W, C: want.C}) {
				t.Fatalf("output shape %v, want %dx%dx%d", s, want.H, want.W, want.C)
			}
			got := fromNHWC(out, want.C, want.H, want.W)
			var scale float64 = 1
			for _, v := range want.v {
				scale = math.Max(scale, math.Abs(v))
			}
			for j := range want.v {
				if d := math.Abs(got.v[j] - want.v[j]); d > 1e-5*scale || math.IsNaN(got.v[j]) {
					t.Fatalf("element %d: got %g, want %g", j, got.v[j], want.v[j])
				}
			}
		})
	}
}
