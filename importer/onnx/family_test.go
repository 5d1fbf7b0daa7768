package onnx

import (
	"math"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
)

// Tests of what the ResNet family adds to the op mapping: grouped and
// depthwise Conv, Sigmoid, HardSigmoid, HardSwish, Clip, Mul of two
// activations, layout changes (Transpose, Squeeze, Unsqueeze, Reshape),
// NHWC and integer inputs, and a fixed batch.

// refGroupConv is ONNX Conv with group g; w is [M, C/g, kh, kw]: refConv
// of each group's channels, concatenated.
func refGroupConv(x fmap, w []float32, M, g, kh, kw int, bias []float32, s [2]int, p [4]int) fmap {
	cg, mg := x.C/g, M/g
	var parts []fmap
	for k := range g {
		xg := fmap{cg, x.H, x.W, x.v[k*cg*x.H*x.W : (k+1)*cg*x.H*x.W]}
		var bg []float32
		if bias != nil {
			bg = bias[k*mg : (k+1)*mg]
		}
		parts = append(parts, refConv(xg, w[k*mg*cg*kh*kw:(k+1)*mg*cg*kh*kw], mg, kh, kw, bg, s, [2]int{1, 1}, p))
	}
	return refConcat(0, parts...)
}

func refSigmoid(x fmap) fmap {
	return refMap(x, func(_ int, v float64) float64 { return 1 / (1 + math.Exp(-v)) })
}

func refHardSigmoid(x fmap, alpha, beta float64) fmap {
	return refMap(x, func(_ int, v float64) float64 { return math.Max(0, math.Min(1, alpha*v+beta)) })
}

// refHardSwish is PyTorch's definition, x * relu6(x+3) / 6.
func refHardSwish(x fmap) fmap {
	return refMap(x, func(_ int, v float64) float64 { return v * math.Max(0, math.Min(6, v+3)) / 6 })
}

func refClip(x fmap, lo, hi float64) fmap {
	return refMap(x, func(_ int, v float64) float64 { return math.Max(lo, math.Min(hi, v)) })
}

// refMul multiplies x by y, y of x's shape or a per-channel vector.
func refMul(x, y fmap) fmap {
	return refMap(x, func(c int, v float64) float64 { return v * y.v[c%len(y.v)] })
}

func refMulSame(x, y fmap) fmap {
	out := newFmap(x.C, x.H, x.W)
	for k := range out.v {
		out.v[k] = x.v[k] * y.v[k]
	}
	return out
}

// familyCases are run by TestOps with the other op cases.
func familyCases() []opCase {
	var cases []opCase
	add := func(c opCase) { cases = append(cases, c) }
	{
		w, b := rnd(11, 6*2*3*3), rnd(12, 6)
		add(opCase{name: "conv_group2", opset: 13, in: [3]int{4, 6, 7},
			build: func(m *tmodel) {
				m.init(tensorF("w", []int{6, 2, 3, 3}, w))
				m.init(tensorF("b", []int{6}, b))
				m.node(node("Conv", "c", io("x", "w", "b"), io("y"), aInts("pads", 1, 1, 1, 1), aInt("group", 2)))
			},
			ref: func(x fmap) fmap { return refGroupConv(x, w, 6, 2, 3, 3, b, [2]int{1, 1}, [4]int{1, 1, 1, 1}) },
			ops: ops(graph.OpConv, 1)})
	}
	{
		w := rnd(13, 5*1*3*3)
		add(opCase{name: "conv_depthwise_stride2", opset: 11, in: [3]int{5, 7, 8},
			build: func(m *tmodel) {
				m.init(tensorF("w", []int{5, 1, 3, 3}, w))
				m.node(node("Conv", "dw", io("x", "w"), io("y"), aInts("pads", 1, 1, 1, 1), aInts("strides", 2, 2), aInt("group", 5)))
			},
			ref: func(x fmap) fmap { return refGroupConv(x, w, 5, 5, 3, 3, nil, [2]int{2, 2}, [4]int{1, 1, 1, 1}) }})
	}
	{
		w := rnd(14, 6*1*3*3)
		add(opCase{name: "conv_depthwise_multiplier2", opset: 13, in: [3]int{3, 5, 5},
			build: func(m *tmodel) {
				m.init(tensorF("w", []int{6, 1, 3, 3}, w))
				m.node(node("Conv", "dw", io("x", "w"), io("y"), aInt("group", 3)))
			},
			ref: func(x fmap) fmap { return refGroupConv(x, w, 6, 3, 3, 3, nil, [2]int{1, 1}, [4]int{}) }})
	}
	add(opCase{name: "sigmoid", opset: 13, in: [3]int{3, 4, 5},
		build: func(m *tmodel) { m.node(node("Sigmoid", "s", io("x"), io("y"))) },
		ref:   refSigmoid, ops: ops(graph.OpSigmoid, 1)})
	add(opCase{name: "hardsigmoid_default", opset: 13, in: [3]int{3, 4, 5},
		build: func(m *tmodel) { m.node(node("HardSigmoid", "h", io("x"), io("y"))) },
		ref:   func(x fmap) fmap { return refHardSigmoid(x, 0.2, 0.5) }, ops: ops(graph.OpHardSigmoid, 1)})
	add(opCase{name: "hardsigmoid_attrs", opset: 13, in: [3]int{3, 4, 5},
		build: func(m *tmodel) {
			m.node(node("HardSigmoid", "h", io("x"), io("y"), aFloat("alpha", 0.75), aFloat("beta", 0.25)))
		},
		ref: func(x fmap) fmap { return refHardSigmoid(x, 0.75, 0.25) }})
	add(opCase{name: "hardswish", opset: 14, in: [3]int{3, 4, 5},
		build: func(m *tmodel) {
			m.init(scalarF("k", 4))
			m.node(node("Mul", "scale", io("x", "k"), io("x4"))) // reach the flat parts
			m.node(node("HardSwish", "h", io("x4"), io("y")))
		},
		ref: func(x fmap) fmap { return refHardSwish(refMap(x, func(_ int, v float64) float64 { return 4 * v })) },
		ops: ops(graph.OpAffine, 1, graph.OpHardSigmoid, 1, graph.OpMul, 1)})
	add(opCase{name: "clip_relu6_attrs", opset: 10, in: [3]int{3, 4, 5},
		build: func(m *tmodel) {
			m.init(scalarF("k", 8))
			m.node(node("Mul", "scale", io("x", "k"), io("x8")))
			m.node(node("Clip", "c", io("x8"), io("y"), aFloat("min", 0), aFloat("max", 6)))
		},
		ref: func(x fmap) fmap { return refClip(refMap(x, func(_ int, v float64) float64 { return 8 * v }), 0, 6) },
		ops: ops(graph.OpAffine, 1, graph.OpClip, 1)})
	add(opCase{name: "clip_max_only_input", opset: 13, in: [3]int{3, 4, 5},
		build: func(m *tmodel) {
			m.init(scalarF("hi", 0.25))
			m.node(node("Clip", "c", io("x", "", "hi"), io("y")))
		},
		ref: func(x fmap) fmap { return refClip(x, math.Inf(-1), 0.25) }, ops: ops(graph.OpClip, 1)})
	add(opCase{name: "clip_unbounded_is_identity", opset: 12, in: [3]int{2, 2, 2},
		build: func(m *tmodel) {
			m.node(node("Clip", "c", io("x"), io("c")))
			m.node(node("Relu", "r", io("c"), io("y")))
		},
		ref: refRelu, ops: ops(graph.OpRelu, 1)})
	add(opCase{name: "silu_mul_same_shape", opset: 13, in: [3]int{3, 4, 5},
		build: func(m *tmodel) {
			m.node(node("Sigmoid", "s", io("x"), io("s")))
			m.node(node("Mul", "m", io("x", "s"), io("y")))
		},
		ref: func(x fmap) fmap { return refMulSame(x, refSigmoid(x)) }, ops: ops(graph.OpSigmoid, 1, graph.OpMul, 1)})
	return append(cases, familySECases()...)
}

// familySECases: squeeze-and-excitation and the layout changes of heads.
func familySECases() []opCase {
	var cases []opCase
	add := func(c opCase) { cases = append(cases, c) }
	w1, w2 := rnd(21, 4*2), rnd(22, 2*4)
	excite := func(x fmap) fmap {
		s := refGAP(x)
		h := refRelu(refGemm(s, func(k, o int) float32 { return w1[o*4+k] }, 2, nil, 1, 1))
		return refSigmoid(refGemm(h, func(k, o int) float32 { return w2[o*2+k] }, 4, nil, 1, 1))
	}
	se := func(name string, opset int64, in [3]int, build func(m *tmodel), ops map[graph.Op]int) {
		add(opCase{name: name, opset: opset, in: in, build: build, ops: ops,
			ref: func(x fmap) fmap { return refMul(x, excite(x)) }})
	}
	// GAP -> Squeeze -> Gemm -> Relu -> Gemm -> Sigmoid -> Unsqueeze -> Mul.
	for _, opset := range []int64{11, 13} {
		se("se_squeeze_fc_opset"+itoa(opset), opset, [3]int{4, 5, 6}, func(m *tmodel) {
			m.node(node("GlobalAveragePool", "gap", io("x"), io("g")))
			if opset < 13 {
				m.node(node("Squeeze", "sq", io("g"), io("v"), aInts("axes", 2, 3)))
			} else {
				m.init(vec1("axes", 3, -2))
				m.node(node("Squeeze", "sq", io("g", "axes"), io("v")))
			}
			excitation(m, "v", "s", false, w1, w2)
			if opset < 13 {
				m.node(node("Unsqueeze", "usq", io("s"), io("s4"), aInts("axes", 2, 3)))
			} else {
				m.init(vec1("axes2", -1, 2))
				m.node(node("Unsqueeze", "usq", io("s", "axes2"), io("s4")))
			}
			m.node(node("Mul", "m", io("s4", "x"), io("y")))
		}, ops(graph.OpGlobalAvgPool, 1, graph.OpDense, 2, graph.OpRelu, 1, graph.OpSigmoid, 1, graph.OpMul, 1))
	}
	// GAP -> Flatten -> Gemm ... -> Reshape [N,C,1,1] -> Mul (the view of
	// SE code), and a Transpose of a vector that moves nothing.
	se("se_reshape_transpose", 13, [3]int{4, 3, 3}, func(m *tmodel) {
		m.init(vec1("shape", 0, -1, 1, 1))
		m.node(node("GlobalAveragePool", "gap", io("x"), io("g")))
		m.node(node("Transpose", "t", io("g"), io("gt"), aInts("perm", 0, 1, 3, 2)))
		m.node(node("Flatten", "f", io("gt"), io("v")))
		excitation(m, "v", "s", false, w1, w2)
		m.node(node("Reshape", "rs", io("s", "shape"), io("s4")))
		m.node(node("Mul", "m", io("x", "s4"), io("y")))
	}, nil)
	// x * s.expand_as(x): Expand (shape from Shape(x)) then Mul of one shape.
	se("se_expand_as", 13, [3]int{4, 3, 5}, func(m *tmodel) {
		m.node(node("GlobalAveragePool", "gap", io("x"), io("g")))
		excitation(m, "g", "s", true, w1, w2)
		m.node(node("Shape", "shape", io("x"), io("xs")))
		m.node(node("Expand", "ex", io("s", "xs"), io("se")))
		m.node(node("Mul", "m", io("x", "se"), io("y")))
	}, ops(graph.OpGlobalAvgPool, 1, graph.OpConv, 2, graph.OpRelu, 1, graph.OpSigmoid, 1, graph.OpMul, 1))
	// Reshape of a feature map to [N,K,1,1] flattens it.
	add(opCase{name: "reshape_to_n_k_1_1", opset: 13, in: [3]int{2, 2, 3},
		build: func(m *tmodel) {
			m.init(vec1("shape", 1, -1, 1, 1))
			m.node(node("Reshape", "rs", io("x", "shape"), io("y")))
		},
		ref: flat, ops: ops(graph.OpFlatten, 1)})
	return cases
}

// excitation adds in -> fc1 (4 -> 2) -> Relu -> fc2 (2 -> 4) -> Sigmoid ->
// out, the FCs Gemms (transB) or 1x1 Convs.
func excitation(m *tmodel, in, out string, conv bool, w1, w2 []float32) {
	op, d1, d2, attrs := "Gemm", []int{2, 4}, []int{4, 2}, []pb{aInt("transB", 1)}
	if conv {
		op, d1, d2, attrs = "Conv", []int{2, 4, 1, 1}, []int{4, 2, 1, 1}, nil
	}
	m.init(tensorF("w1", d1, w1))
	m.init(tensorF("w2", d2, w2))
	m.node(node(op, "fc1", io(in, "w1"), io("h"), attrs...))
	m.node(node("Relu", "r", io("h"), io("hr")))
	m.node(node(op, "fc2", io("hr", "w2"), io("e"), attrs...))
	m.node(node("Sigmoid", "s", io("e"), io(out)))
}

// TestNHWCInput: an [N,H,W,C] input transposed to NCHW first, as float or
// as UINT8 cast to float before or after the Transpose.
func TestNHWCInput(t *testing.T) {
	const H, W, C, M = 5, 6, 3, 4
	w := rnd(31, M*C*3*3)
	conv := node("Conv", "conv", io("t", "w"), io("y"), aInts("pads", 1, 1, 1, 1))
	cases := []struct {
		name   string
		dt     int64
		layout string
		nodes  []pb
	}{
		{"float", dtFloat, LayoutNHWC, []pb{node("Transpose", "tr", io("x"), io("t"), aInts("perm", 0, 3, 1, 2))}},
		{"uint8_cast_first", dtUint8, LayoutNHWC, []pb{
			node("Cast", "cast", io("x"), io("xf"), aInt("to", dtFloat)),
			node("Identity", "id", io("xf"), io("xi")),
			node("Transpose", "tr", io("xi"), io("t"), aInts("perm", 0, 3, 1, 2))}},
		{"uint8_transpose_first", dtUint8, LayoutNHWC, []pb{
			node("Transpose", "tr", io("x"), io("xt"), aInts("perm", 0, 3, 1, 2)),
			node("Cast", "cast", io("xt"), io("t"), aInt("to", dtFloat))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newModel(13)
			m.input(vinfo("x", tc.dt, "N", H, W, C))
			m.init(tensorF("w", []int{M, C, 3, 3}, w))
			for _, n := range tc.nodes {
				m.node(n)
			}
			m.node(conv)
			m.output("y")
			g, info, err := Import(m.bytes(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if info.InputLayout != tc.layout || info.InputType != dtName(tc.dt) {
				t.Errorf("info %+v", info)
			}
			if c := countOps(g); !equalOpCounts(c, ops(graph.OpConv, 1)) || g.Input() != (graph.Shape{H: H, W: W, C: C}) {
				t.Fatalf("ops %v, input %v", c, g.Input())
			}
			// The ONNX input, row-major [1,H,W,C], is the graph's NHWC input.
			in := rnd(32, H*W*C)
			for k := range in {
				in[k] = float32(math.Round(float64(in[k]+1) * 100)) // 0..200, as uint8 holds
			}
			x := fromNHWC(in, C, H, W)
			checkEval(t, g, in, refConv(x, w, M, 3, 3, nil, [2]int{1, 1}, [2]int{1, 1}, [4]int{1, 1, 1, 1}))
		})
	}
}

// TestUint8NCHWInput: a UINT8 NCHW input cast to float.
func TestUint8NCHWInput(t *testing.T) {
	m := newModel(9)
	m.input(vinfo("x", dtUint8, 1, 2, 3, 4))
	m.node(node("Cast", "cast", io("x"), io("xf"), aInt("to", dtFloat)))
	m.init(scalarF("k", 1.0/255))
	m.node(node("Mul", "norm", io("xf", "k"), io("y")))
	m.output("y")
	g, info, err := Import(m.bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if info.InputLayout != LayoutNCHW || info.InputType != "UINT8" {
		t.Errorf("info %+v", info)
	}
	x := fmap{2, 3, 4, nil}
	for k := range 24 {
		x.v = append(x.v, float64(k*10))
	}
	checkEval(t, g, x.nhwc(), refMap(x, func(_ int, v float64) float64 { return v * float64(float32(1.0/255)) }))
}

// checkEval compares g.Eval(in) (NHWC) with want.
func checkEval(t *testing.T, g *graph.Graph, in []float32, want fmap) {
	t.Helper()
	out, err := g.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	if s := g.OutputShape(); s != (graph.Shape{H: want.H, W: want.W, C: want.C}) {
		t.Fatalf("output shape %v, want %dx%dx%d", s, want.H, want.W, want.C)
	}
	got := fromNHWC(out, want.C, want.H, want.W)
	for j := range want.v {
		if d := math.Abs(got.v[j] - want.v[j]); !(d <= 1e-5*math.Max(1, math.Abs(want.v[j]))) {
			t.Fatalf("element %d: got %g, want %g", j, got.v[j], want.v[j])
		}
	}
}

// TestFixedBatch: a fixed batch of 3 is the graph's Batch; Reshape to
// [N,-1] (a constant and the Shape subgraph PyTorch exports for
// x.view(x.size(0), -1)), Flatten and Gemm with M = N work per sample.
func TestFixedBatch(t *testing.T) {
	const N, C, H, W, K = 3, 2, 4, 5, 3
	wc, wf := rnd(41, 4*C*3*3), rnd(42, 4*2*2*K)
	heads := map[string]func(m *tmodel){
		"reshape_const": func(m *tmodel) {
			m.init(vec1("shape", N, -1))
			m.node(node("Reshape", "rs", io("p", "shape"), io("v")))
		},
		"reshape_shape_of": func(m *tmodel) {
			m.init(vec1("zero", 0))
			m.init(vec1("minus1", -1))
			m.node(node("Shape", "sh", io("p"), io("s")))
			m.node(node("Gather", "ga", io("s", "zero"), io("n")))
			m.node(node("Concat", "cat", io("n", "minus1"), io("shape"), aInt("axis", 0)))
			m.node(node("Reshape", "rs", io("p", "shape"), io("v")))
		},
		"flatten": func(m *tmodel) { m.node(node("Flatten", "f", io("p"), io("v"))) },
	}
	for name, head := range heads {
		t.Run(name, func(t *testing.T) {
			m := newModel(13)
			m.input(vinfo("x", dtFloat, N, C, H, W))
			m.init(tensorF("wc", []int{4, C, 3, 3}, wc))
			m.init(tensorF("wf", []int{4 * 2 * 2, K}, wf))
			m.node(node("Conv", "conv", io("x", "wc"), io("c"), aInts("pads", 1, 1, 1, 1)))
			m.node(node("MaxPool", "mp", io("c"), io("p"), aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)))
			head(m)
			m.node(node("Gemm", "fc", io("v", "wf"), io("y")))
			m.output("y")
			g, _, err := Import(m.bytes(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if g.Batch != N || g.Input() != (graph.Shape{H: H, W: W, C: C}) || g.OutputShape() != (graph.Shape{H: 1, W: 1, C: K}) {
				t.Fatalf("batch %d, input %v, output %v", g.Batch, g.Input(), g.OutputShape())
			}
			var in []float32
			var want []float64
			for n := range N {
				x := fmap{C, H, W, nil}
				for _, v := range rnd(uint64(50+n), C*H*W) {
					x.v = append(x.v, float64(v))
				}
				in = append(in, x.nhwc()...)
				p := refPool(refConv(x, wc, 4, 3, 3, nil, [2]int{1, 1}, [2]int{1, 1}, [4]int{1, 1, 1, 1}), true, [2]int{2, 2}, [2]int{2, 2}, [4]int{}, false, false)
				y := refGemm(flat(p), func(k, o int) float32 { return wf[k*K+o] }, K, nil, 1, 1)
				want = append(want, y.v...)
			}
			out, err := g.Eval(in)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != N*K {
				t.Fatalf("%d outputs, want %d", len(out), N*K)
			}
			for j := range want {
				if d := math.Abs(float64(out[j]) - want[j]); d > 1e-5 {
					t.Fatalf("value %d: got %g, want %g", j, out[j], want[j])
				}
			}
		})
	}
}

// groupConv is x [1,4,8,8] -> Conv (weight of dims w, group) -> y.
func groupConv(w []int, group int64) []byte {
	m := newModel(13)
	m.input(vinfo("x", dtFloat, 1, 4, 8, 8))
	m.init(tensorF("w", w, rnd(1, w[0]*w[1]*w[2]*w[3])))
	m.node(node("Conv", "grouped", io("x", "w"), io("y"), aInt("group", group)))
	m.output("y")
	return m.bytes()
}

// familyErrorCases are run by TestErrors: what the family's mapping
// refuses, and where batches, layouts and integer inputs stop.
func familyErrorCases() []errorCase {
	return []errorCase{
		{"group_conv_mismatch", groupConv([]int{4, 3, 3, 3}, 2), Options{}, ErrCorrupt,
			`node 0 "grouped" (Conv): weight "w" takes 3 input channels in each of 2 groups, the input has 4`},
		{"group_conv_cout", groupConv([]int{3, 2, 3, 3}, 2), Options{}, ErrCorrupt, "3 output channels, which 2 groups do not divide"},
		{"group_conv_too_many", groupConv([]int{4, 1, 3, 3}, 5), Options{}, ErrCorrupt, "group=5 does not fit an input of 4 channels"},
		{"flatten_across_batch", func() []byte {
			m := small(13)
			m.inputs[0] = vinfo("x", dtFloat, 2, 3, 8, 8)
			m.nodes[1] = node("Flatten", "f", io("c"), io("y"), aInt("axis", 0))
			return m.bytes()
		}(), Options{}, ErrUnsupported, "Flatten with axis=0 of [2 4 8 8] gives [1,512], not [N,K] for the batch N=2"},
		{"reshape_across_batch", withBatch(2, func(m *tmodel) {
			m.init(vec1("s", 1, -1))
			m.node(node("Reshape", "rs", io("c", "s"), io("y")))
		}), Options{}, ErrUnsupported, "Reshape of [2 4 8 8] to [1 512] is not supported"},
		{"concat_batch", withBatch(2, func(m *tmodel) {
			m.node(node("Concat", "cat", io("c", "c"), io("y"), aInt("axis", 0)))
		}), Options{}, ErrUnsupported, "concatenating along the batch axis"},
		{"clip_nan", withNodes(10, func(m *tmodel) {
			m.node(node("Clip", "c", io("c"), io("y"), aFloat("min", float32(math.NaN()))))
		}), Options{}, ErrUnsupported, "Clip(min=NaN"},
		{"div_activations", withNodes(13, func(m *tmodel) { m.node(node("Div", "d", io("c", "c"), io("y"))) }), Options{},
			ErrUnsupported, "Div of two activations"},
		{"hardsigmoid_inf", withNodes(13, func(m *tmodel) {
			m.node(node("HardSigmoid", "hs", io("c"), io("y"), aFloat("alpha", float32(math.Inf(1)))))
		}), Options{}, ErrUnsupported, "want finite values"},
		{"transpose_moves_values", withNodes(13, func(m *tmodel) {
			m.node(node("Transpose", "t", io("c"), io("y"), aInts("perm", 0, 1, 3, 2)))
		}), Options{}, ErrUnsupported, `node 1 "t" (Transpose): Transpose with perm [0 1 3 2] of the activation [1 4 8 8] moves values`},
		{"transpose_nhwc_input_also_used", func() []byte {
			m := small(13)
			m.inputs[0] = vinfo("x", dtFloat, 1, 8, 8, 3)
			m.nodes[0] = node("Transpose", "t", io("x"), io("t"), aInts("perm", 0, 3, 1, 2))
			m.nodes[1] = node("Add", "a", io("t", "x"), io("y"))
			return m.bytes()
		}(), Options{}, ErrUnsupported, `node 0 "t" (Transpose): Transpose with perm [0 3 1 2] of the activation [1 8 8 3] moves values`},
		{"uint8_input_computed", func() []byte {
			m := small(13)
			m.inputs[0] = vinfo("x", dtUint8, 1, 3, 8, 8)
			return m.bytes()
		}(), Options{}, ErrUnsupported, `input "x" has type UINT8: only a Cast to FLOAT may compute with it, and node 0 "conv" (Conv) reads it`},
		{"uint8_input_cast_to_int", func() []byte {
			m := small(13)
			m.inputs[0] = vinfo("x", dtUint8, 1, 3, 8, 8)
			m.nodes[0] = node("Conv", "conv", io("xf", "w"), io("c"), aInts("pads", 1, 1, 1, 1))
			m.nodes = append([]pb{node("Cast", "cast", io("x"), io("xf"), aInt("to", dtInt32))}, m.nodes...)
			return m.bytes()
		}(), Options{}, ErrUnsupported, `node 0 "cast" (Cast) reads it`},
		{"int32_input", func() []byte {
			m := small(13)
			m.inputs[0] = vinfo("x", dtInt32, 1, 3, 8, 8)
			return m.bytes()
		}(), Options{}, ErrUnsupported, "type INT32; only FLOAT inputs (and UINT8, INT8, UINT16, INT16 inputs cast to FLOAT)"},
		{"unsqueeze_on_activation", withNodes(11, func(m *tmodel) {
			m.node(node("Unsqueeze", "usq", io("c"), io("y"), aInts("axes", 0)))
		}), Options{}, ErrUnsupported, "Unsqueeze of the activation [1 4 8 8] to [1 1 4 8 8] is not supported"},
		{"expand_read_by_add", withNodes(13, func(m *tmodel) {
			m.node(node("GlobalAveragePool", "g", io("c"), io("g")))
			m.init(vec1("s", 1, 4, 8, 8))
			m.node(node("Expand", "ex", io("g", "s"), io("e")))
			m.node(node("Add", "a", io("c", "e"), io("y")))
		}), Options{}, ErrUnsupported, `node 3 "a" (Add): input 1 is an Expand of an activation, which only Mul may read`},
		{"expand_feature_map", withNodes(13, func(m *tmodel) {
			m.init(vec1("s", 2, 1, 4, 8, 8))
			m.node(node("Expand", "ex", io("c", "s"), io("y")))
		}), Options{}, ErrUnsupported, "Expand of the activation [1 4 8 8] to [2 1 4 8 8] is not supported"},
		{"expand_output", withNodes(13, func(m *tmodel) {
			m.node(node("GlobalAveragePool", "g", io("c"), io("g")))
			m.init(vec1("s", 1, 4, 8, 8))
			m.node(node("Expand", "ex", io("g", "s"), io("y")))
		}), Options{}, ErrUnsupported, `output "y" is an Expand of an activation`},
		{"gather_on_activation", withNodes(13, func(m *tmodel) {
			m.init(vec1("i", 0))
			m.node(node("Gather", "g", io("c", "i"), io("y")))
		}), Options{}, ErrUnsupported, "only supported on constants"},
	}
}
