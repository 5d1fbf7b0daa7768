package onnx

import (
	"fmt"
	"math"

	"github.com/edge-resnet/edge-resnet/graph"
)

// The mapping of ONNX operators on activations to resnet nodes.

func one(v *value, err error) ([]*value, error) {
	if err != nil {
		return nil, err
	}
	return []*value{v}, nil
}

// activationOp maps a node with at least one activation input.
func (b *builder) activationOp(ins []*value) ([]*value, error) {
	op := b.n.opType
	if f := activationOps[op]; f != nil {
		return f(b, ins)
	}
	switch op {
	case "Gather", "Tile", "Where", "Equal", "ConstantOfShape", "Range":
		return nil, unsupportedf("%s is only supported on constants, and input %v depends on the model input", op, b.n.inputs)
	}
	return nil, unsupportedf("operator %s is not supported", op)
}

type opFunc = func(b *builder, ins []*value) ([]*value, error)

// activationOps are the operators mapped on activations, by op type.
var activationOps map[string]opFunc

func init() {
	single := func(f func(*builder, []*value) (*value, error)) opFunc {
		return func(b *builder, ins []*value) ([]*value, error) { return one(f(b, ins)) }
	}
	activationOps = map[string]opFunc{
		"Conv":               single((*builder).conv),
		"BatchNormalization": single((*builder).batchNorm),
		"Relu":               single((*builder).relu),
		"Sigmoid":            single((*builder).sigmoid),
		"HardSigmoid":        single((*builder).hardSigmoid),
		"HardSwish":          single((*builder).hardSwish),
		"Clip":               single((*builder).clip),
		"Add":                single((*builder).arith),
		"Sub":                single((*builder).arith),
		"Mul":                single((*builder).arith),
		"Div":                single((*builder).arith),
		"MaxPool":            single((*builder).pool),
		"AveragePool":        single((*builder).pool),
		"GlobalAveragePool":  single((*builder).globalPool),
		"GlobalMaxPool":      single((*builder).globalPool),
		"ReduceMean":         single((*builder).reduceMean),
		"Flatten":            single((*builder).flatten),
		"Reshape":            single((*builder).reshape),
		"Squeeze":            single((*builder).squeezeAct),
		"Unsqueeze":          single((*builder).squeezeAct),
		"Transpose":          single((*builder).transposeAct),
		"Gemm":               single((*builder).dense),
		"MatMul":             single((*builder).dense),
		"Pad":                single((*builder).pad),
		"Slice":              single((*builder).slice),
		"Concat":             single((*builder).concat),
		"Split":              (*builder).split,
		"Identity":           single((*builder).identity),
		"Dropout":            single((*builder).dropout),
		"Softmax":            single((*builder).softmax),
		"Cast":               single((*builder).castAct),
		"Expand":             single((*builder).expandAct),
	}
}

func (b *builder) identity(ins []*value) (*value, error) { return b.act(ins, 0) }

// castAct: an activation is float32, so only a Cast to FLOAT is supported;
// on an integer model input it is where the values become floats.
func (b *builder) castAct(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	to, err := b.n.getInt("to", 0)
	if err != nil {
		return nil, err
	}
	if to != dtFloat {
		return nil, unsupportedf("casting an activation to %s is not supported", dtName(to))
	}
	if x.raw&rawInt != 0 {
		y := *x
		y.raw &^= rawInt
		return &y, nil
	}
	return x, nil
}

// spatialPair reads a 2-element INTS attribute (kernel_shape, strides,
// dilations), with def when absent, each value in 1..max.
func (b *builder) spatialPair(name string, def int, max int) ([2]int, bool, error) {
	v, ok, err := b.n.getInts(name)
	if err != nil {
		return [2]int{}, false, err
	}
	if !ok {
		return [2]int{def, def}, false, nil
	}
	if len(v) != 2 {
		return [2]int{}, false, unsupportedf("%s=%v: only 2-D (two values) is supported", name, v)
	}
	for _, x := range v {
		if x < 1 {
			return [2]int{}, false, corruptf("%s=%v must be positive", name, v)
		}
		if x > int64(max) {
			return [2]int{}, false, unsupportedf("%s=%v is larger than %d", name, v, max)
		}
	}
	return [2]int{int(v[0]), int(v[1])}, true, nil
}

// windowPads resolves pads and auto_pad of Conv and pooling into
// [top, left, bottom, right] for an input of in (H, W).
func (b *builder) windowPads(in, k, stride, dil [2]int) (graph.Pads, error) {
	autoPad, err := b.n.getString("auto_pad", "NOTSET")
	if err != nil {
		return graph.Pads{}, err
	}
	pads, havePads, err := b.n.getInts("pads")
	if err != nil {
		return graph.Pads{}, err
	}
	var p [4]int
	switch autoPad {
	case "NOTSET", "":
		if havePads {
			if len(pads) != 4 {
				return graph.Pads{}, unsupportedf("pads=%v: only 2-D (four values) is supported", pads)
			}
			for j, v := range pads {
				if v < 0 {
					return graph.Pads{}, unsupportedf("negative pads=%v are not supported", pads)
				}
				if v > maxDim {
					return graph.Pads{}, unsupportedf("pads=%v are too large", pads)
				}
				p[j] = int(v)
			}
		}
	case "VALID":
	case "SAME_UPPER", "SAME_LOWER":
		// Output = ceil(in/stride); the odd pixel of padding goes after
		// (SAME_UPPER) or before (SAME_LOWER).
		for a := range 2 {
			out := (in[a] + stride[a] - 1) / stride[a]
			total := max(0, (out-1)*stride[a]+(k[a]-1)*dil[a]+1-in[a])
			small, big := total/2, total-total/2
			if autoPad == "SAME_UPPER" {
				p[a], p[a+2] = small, big
			} else {
				p[a], p[a+2] = big, small
			}
		}
	default:
		return graph.Pads{}, unsupportedf("auto_pad=%q is not supported", autoPad)
	}
	return graph.Pads{Top: p[0], Left: p[1], Bottom: p[2], Right: p[3]}, nil
}

func (b *builder) conv(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	if x.rank != 4 {
		return nil, unsupportedf("Conv of a %d-D input is not supported", x.rank)
	}
	c, err := b.convWeight(ins, x.shape.C)
	if err != nil {
		return nil, err
	}
	kh, kw := c.KH, c.KW
	ks, haveKS, err := b.spatialPair("kernel_shape", 1, maxConvWindow)
	if err != nil {
		return nil, err
	}
	if haveKS && (ks[0] != kh || ks[1] != kw) {
		return nil, corruptf("kernel_shape=%v disagrees with weight shape [%d %d %d %d]", ks, c.Cout, c.GroupIn(), kh, kw)
	}
	strides, _, err := b.spatialPair("strides", 1, maxConvWindow)
	if err != nil {
		return nil, err
	}
	dil, _, err := b.spatialPair("dilations", 1, maxConvWindow)
	if err != nil {
		return nil, err
	}
	pads, err := b.windowPads([2]int{x.shape.H, x.shape.W}, [2]int{kh, kw}, strides, dil)
	if err != nil {
		return nil, err
	}
	c.StrideH, c.StrideW, c.DilH, c.DilW, c.Pad = strides[0], strides[1], dil[0], dil[1], pads
	bias, err := b.floatConst(ins, 2, "bias", true)
	if err != nil {
		return nil, err
	}
	if bias != nil {
		if bias.size() != c.Cout {
			return nil, corruptf("bias %q has %d values, want %d", b.n.inputs[2], bias.size(), c.Cout)
		}
		c.Bias = append([]float32(nil), bias.f...)
	}
	s := graph.Shape{
		H: graph.WindowOut(x.shape.H, kh, strides[0], dil[0], pads.Top, pads.Bottom, false),
		W: graph.WindowOut(x.shape.W, kw, strides[1], dil[1], pads.Left, pads.Right, false),
		C: c.Cout,
	}
	return b.emit(&graph.Node{Op: graph.OpConv, Inputs: []int{x.node}, Conv: c}, 4, s)
}

// convWeight reads a Conv's weight [Cout, Cin/group, kh, kw] and group for
// an input of cin channels: the Conv with its kernel, channels, groups and
// HWIO weights set.
func (b *builder) convWeight(ins []*value, cin int) (*graph.Conv, error) {
	w, err := b.floatConst(ins, 1, "weight", false)
	if err != nil {
		return nil, err
	}
	if len(w.dims) != 4 {
		return nil, unsupportedf("weight %q has shape %v; only 2-D convolution (a 4-D weight) is supported", b.n.inputs[1], w.dims)
	}
	group, err := b.n.getInt("group", 1)
	if err != nil {
		return nil, err
	}
	if group < 1 || group > int64(cin) {
		return nil, corruptf("group=%d does not fit an input of %d channels", group, cin)
	}
	g := int(group)
	cout, cig, kh, kw := w.dims[0], w.dims[1], w.dims[2], w.dims[3]
	if cig*g != cin {
		if g > 1 {
			return nil, corruptf("weight %q takes %d input channels in each of %d groups, the input has %d", b.n.inputs[1], cig, g, cin)
		}
		return nil, corruptf("weight %q takes %d input channels, the input has %d", b.n.inputs[1], cig, cin)
	}
	if cout < 1 || kh < 1 || kw < 1 {
		return nil, corruptf("weight %q has shape %v", b.n.inputs[1], w.dims)
	}
	if cout%g != 0 {
		return nil, corruptf("weight %q has %d output channels, which %d groups do not divide", b.n.inputs[1], cout, g)
	}
	if kh > maxConvWindow || kw > maxConvWindow || cout > maxDim {
		return nil, unsupportedf("weight shape %v is too large", w.dims)
	}
	c := &graph.Conv{KH: kh, KW: kw, Cin: cin, Cout: cout, Weight: graph.OIHWToHWIO(w.f, cout, cig, kh, kw)}
	if g > 1 {
		c.Group = g
	}
	return c, nil
}

func (b *builder) batchNorm(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	if b.opset < 9 {
		spatial, err := b.n.getInt("spatial", 1)
		if err != nil {
			return nil, err
		}
		if spatial != 1 {
			return nil, unsupportedf("spatial=%d is not supported", spatial)
		}
	}
	if b.opset >= 14 {
		tm, err := b.n.getInt("training_mode", 0)
		if err != nil {
			return nil, err
		}
		if tm != 0 {
			return nil, unsupportedf("training_mode=%d is not supported (inference only)", tm)
		}
	}
	eps, err := b.n.getFloat("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	C := x.shape.C
	var p [4]*tensor
	for k, what := range [4]string{"scale", "bias", "mean", "variance"} {
		if p[k], err = b.floatConst(ins, k+1, what, false); err != nil {
			return nil, err
		}
		if p[k].size() != C {
			return nil, corruptf("%s %q has %d values, the input has %d channels", what, b.n.inputs[k+1], p[k].size(), C)
		}
	}
	a := &graph.Affine{Scale: make([]float32, C), Shift: make([]float32, C)}
	for c := range C {
		v := float64(p[3].f[c]) + float64(eps)
		if !(v > 0) {
			return nil, corruptf("variance+epsilon of channel %d is %g, not positive", c, v)
		}
		scale := float64(p[0].f[c]) / math.Sqrt(v)
		a.Scale[c] = float32(scale)
		a.Shift[c] = float32(float64(p[1].f[c]) - float64(p[2].f[c])*scale)
	}
	return b.emit(&graph.Node{Op: graph.OpAffine, Inputs: []int{x.node}, Affine: a}, x.rank, x.shape)
}

// perChannel returns, for a constant c that numpy-broadcasts over the
// activation x without growing it and varies at most along the channel
// axis, its value for each channel.
func perChannel(x *value, c *tensor) ([]float64, error) {
	xd := x.dims()
	if len(c.dims) > len(xd) {
		return nil, unsupportedf("a constant of shape %v would broadcast the activation %v to a higher rank", c.dims, xd)
	}
	perC := false
	for k, d := range c.dims {
		axis := len(xd) - len(c.dims) + k
		switch {
		case d == 1:
		case axis == 1 && d == xd[1]:
			perC = true
		default:
			return nil, unsupportedf("a constant of shape %v does not broadcast per channel over the activation %v", c.dims, xd)
		}
	}
	out := make([]float64, x.shape.C)
	for k := range out {
		if perC {
			out[k] = c.float(k)
		} else {
			out[k] = c.float(0)
		}
	}
	return out, nil
}

func (b *builder) arith(ins []*value) (*value, error) {
	op := b.n.opType
	if len(ins) != 2 || ins[0] == nil || ins[1] == nil {
		return nil, corruptf("%s wants 2 inputs, has %d", op, len(ins))
	}
	if ins[0].kind == vAct && ins[1].kind == vAct {
		return b.twoActivations(ins[0], ins[1])
	}
	xi := 0
	if ins[0].kind != vAct {
		xi = 1
	}
	x := ins[xi]
	c, err := b.constant(ins, 1-xi, "operand", false)
	if err != nil {
		return nil, err
	}
	vec, err := perChannel(x, c)
	if err != nil {
		return nil, err
	}
	C := x.shape.C
	scale, shift := make([]float64, C), make([]float64, C)
	for k := range C {
		scale[k] = 1
	}
	switch {
	case op == "Add":
		copy(shift, vec)
		// MatMul followed by Add of a bias is a Dense with bias: merge when
		// nothing else reads the MatMul's output, before or after.
		if nd := b.g.Nodes[x.node]; nd.Op == graph.OpDense && b.users[x.node] == 0 && b.refs[x.node] == 0 {
			d := nd.Dense
			if d.Bias == nil {
				d.Bias = make([]float32, d.Out)
			}
			for o := range d.Bias {
				d.Bias[o] = float32(float64(d.Bias[o]) + vec[o])
			}
			return x, nil
		}
	case op == "Sub" && xi == 0: // x - c
		for k := range C {
			shift[k] = -vec[k]
		}
	case op == "Sub": // c - x
		for k := range C {
			scale[k], shift[k] = -1, vec[k]
		}
	case op == "Mul":
		copy(scale, vec)
	case op == "Div" && xi == 0: // x / c
		for k := range C {
			scale[k] = 1 / vec[k]
		}
	default:
		return nil, unsupportedf("dividing a constant by an activation is not supported")
	}
	a := &graph.Affine{Scale: make([]float32, C), Shift: make([]float32, C)}
	for k := range C {
		a.Scale[k], a.Shift[k] = float32(scale[k]), float32(shift[k])
	}
	return b.emit(&graph.Node{Op: graph.OpAffine, Inputs: []int{x.node}, Affine: a}, x.rank, x.shape)
}

// twoActivations maps Add and Mul of two activations.
func (b *builder) twoActivations(x, y *value) (*value, error) {
	switch op := b.n.opType; op {
	case "Mul":
		return b.mulActivations(x, y)
	case "Add":
		if !equalInts(x.dims(), y.dims()) {
			return nil, unsupportedf("adding activations of shapes %v and %v (broadcasting) is not supported", x.dims(), y.dims())
		}
		return b.emit(&graph.Node{Op: graph.OpAdd, Inputs: []int{x.node, y.node}}, x.rank, x.shape)
	default:
		return nil, unsupportedf("%s of two activations is not supported", op)
	}
}

func (b *builder) pool(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	if x.rank != 4 {
		return nil, unsupportedf("pooling a %d-D input is not supported", x.rank)
	}
	k, ok, err := b.spatialPair("kernel_shape", 1, maxPoolWindow)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, corruptf("kernel_shape is missing")
	}
	strides, _, err := b.spatialPair("strides", 1, maxPoolWindow)
	if err != nil {
		return nil, err
	}
	if dil, ok, err := b.n.getInts("dilations"); err != nil {
		return nil, err
	} else if ok {
		for _, d := range dil {
			if d != 1 {
				return nil, unsupportedf("dilations=%v are not supported", dil)
			}
		}
	}
	pads, err := b.windowPads([2]int{x.shape.H, x.shape.W}, k, strides, [2]int{1, 1})
	if err != nil {
		return nil, err
	}
	if pads.Top >= k[0] || pads.Bottom >= k[0] || pads.Left >= k[1] || pads.Right >= k[1] {
		return nil, unsupportedf("pads %+v not smaller than the window %v are not supported", pads, k)
	}
	ceil, err := b.n.getInt("ceil_mode", 0)
	if err != nil {
		return nil, err
	}
	// With auto_pad the output size is fixed by the padding rule itself.
	if ap, _ := b.n.getString("auto_pad", "NOTSET"); ap != "NOTSET" && ap != "" {
		ceil = 0
	}
	p := &graph.Pool{KH: k[0], KW: k[1], StrideH: strides[0], StrideW: strides[1], Pad: pads, CeilMode: ceil != 0}
	op := graph.OpAvgPool
	if b.n.opType == "MaxPool" {
		op = graph.OpMaxPool
		so, err := b.n.getInt("storage_order", 0)
		if err != nil {
			return nil, err
		}
		if so != 0 {
			return nil, unsupportedf("storage_order=%d is not supported", so)
		}
	} else {
		cip, err := b.n.getInt("count_include_pad", 0)
		if err != nil {
			return nil, err
		}
		p.CountIncludePad = cip != 0
	}
	s := graph.Shape{
		H: graph.WindowOut(x.shape.H, p.KH, p.StrideH, 1, pads.Top, pads.Bottom, p.CeilMode),
		W: graph.WindowOut(x.shape.W, p.KW, p.StrideW, 1, pads.Left, pads.Right, p.CeilMode),
		C: x.shape.C,
	}
	return b.emit(&graph.Node{Op: op, Inputs: []int{x.node}, Pool: p}, 4, s)
}

func (b *builder) globalPool(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	if x.rank != 4 {
		return nil, unsupportedf("global pooling of a %d-D input is not supported", x.rank)
	}
	s := graph.Shape{H: 1, W: 1, C: x.shape.C}
	if b.n.opType == "GlobalAveragePool" {
		return b.emit(&graph.Node{Op: graph.OpGlobalAvgPool, Inputs: []int{x.node}}, 4, s)
	}
	if x.shape.H > maxPoolWindow || x.shape.W > maxPoolWindow {
		return nil, unsupportedf("global max pooling over %dx%d is larger than %d", x.shape.H, x.shape.W, maxPoolWindow)
	}
	p := &graph.Pool{KH: x.shape.H, KW: x.shape.W, StrideH: 1, StrideW: 1}
	return b.emit(&graph.Node{Op: graph.OpMaxPool, Inputs: []int{x.node}, Pool: p}, 4, s)
}

// reduceMean over H and W is global average pooling (as TensorFlow exports it).
func (b *builder) reduceMean(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	axes, ok, err := b.reduceAxes(ins)
	if err != nil {
		return nil, err
	}
	keep, err := b.n.getInt("keepdims", 1)
	if err != nil {
		return nil, err
	}
	if x.rank == 4 && ok && len(axes) == 2 {
		a0, e0 := normAxis(axes[0], 4)
		a1, e1 := normAxis(axes[1], 4)
		if e0 == nil && e1 == nil && min(a0, a1) == 2 && max(a0, a1) == 3 {
			rank := 4
			if keep == 0 {
				rank = 2
			}
			return b.emit(&graph.Node{Op: graph.OpGlobalAvgPool, Inputs: []int{x.node}}, rank, graph.Shape{H: 1, W: 1, C: x.shape.C})
		}
	}
	return nil, unsupportedf("ReduceMean over axes %v of a %d-D activation is not supported (only over H and W)", axes, x.rank)
}

// reduceAxes reads the axes of a Reduce* node: an attribute before the
// opset that moved them to the second input (13 for ReduceSum, 18 for the
// others). ok is false when no axes are given.
func (b *builder) reduceAxes(ins []*value) (axes []int64, ok bool, err error) {
	inputFrom := int64(18)
	if b.n.opType == "ReduceSum" {
		inputFrom = 13
	}
	return b.intsMovedToInput(ins, 1, "axes", inputFrom)
}

// intsMovedToInput reads a list of integers that is an attribute before
// opset `from` and the optional input k from then on (Reduce* axes,
// Squeeze/Unsqueeze axes, Split sizes). ok is false when it is absent.
func (b *builder) intsMovedToInput(ins []*value, k int, name string, from int64) (v []int64, ok bool, err error) {
	if b.opset < from {
		return b.n.getInts(name)
	}
	t, err := b.constant(ins, k, name, true)
	if err != nil || t == nil {
		return nil, false, err
	}
	return t.ints(), true, nil
}

func normAxis(a int64, rank int) (int, error) {
	if a < -int64(rank) || a >= int64(rank) {
		return 0, corruptf("axis %d out of range for rank %d", a, rank)
	}
	if a < 0 {
		a += int64(rank)
	}
	return int(a), nil
}

// maxReshapeDim bounds the dims and element count Reshape works with: above
// every tensor (2^28) and activation (2^29), and small enough that products
// of two fit in an int64.
const maxReshapeDim = 1 << 30

// reshapeTarget resolves the 0 and -1 entries of a Reshape shape.
func reshapeTarget(in []int, shape []int64, allowZero bool) ([]int, error) {
	n := int64(1)
	for _, d := range in {
		n *= int64(d)
	}
	out := make([]int, len(shape))
	infer, known := -1, int64(1)
	for k, s := range shape {
		switch {
		case s == -1:
			if infer >= 0 {
				return nil, corruptf("shape %v has more than one -1", shape)
			}
			infer = k
			continue
		case s == 0 && !allowZero:
			if k >= len(in) {
				return nil, corruptf("shape %v copies dimension %d, the input %v has no such dimension", shape, k, in)
			}
			out[k] = in[k]
		case s < 0 || s > maxReshapeDim:
			return nil, corruptf("shape %v has an invalid dimension %d", shape, s)
		default:
			out[k] = int(s)
		}
		known *= int64(out[k])
		if known > maxReshapeDim {
			return nil, corruptf("shape %v does not match %d elements", shape, n)
		}
	}
	if infer >= 0 {
		if known == 0 || n%known != 0 {
			return nil, corruptf("cannot reshape %v (%d elements) to %v", in, n, shape)
		}
		out[infer] = int(n / known)
		known = n
	}
	if known != n {
		return nil, corruptf("cannot reshape %v (%d elements) to %v", in, n, shape)
	}
	return out, nil
}

// dense maps Gemm and MatMul with a constant right operand.
func (b *builder) dense(ins []*value) (*value, error) {
	op := b.n.opType
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	if x.rank != 2 {
		return nil, unsupportedf("%s of a %d-D activation %v is not supported (flatten it to [1,K] first)", op, x.rank, x.dims())
	}
	w, err := b.floatConst(ins, 1, "weight", false)
	if err != nil {
		return nil, err
	}
	if len(w.dims) != 2 {
		return nil, unsupportedf("weight %q has shape %v; want a matrix", b.n.inputs[1], w.dims)
	}
	g := gemmOpts{alpha: 1, beta: 1} // MatMul's
	if op == "Gemm" {
		if g, err = b.readGemmOpts(ins); err != nil {
			return nil, err
		}
	}
	K := x.shape.C
	rows, cols := w.dims[0], w.dims[1]
	N := cols
	if g.transB != 0 {
		rows, N = cols, rows
	}
	if rows != K {
		return nil, corruptf("weight %q has shape %v (transB=%d), which does not take %d inputs", b.n.inputs[1], w.dims, g.transB, K)
	}
	if N < 1 || N > maxDim {
		return nil, unsupportedf("weight %q has shape %v, %d outputs are not supported", b.n.inputs[1], w.dims, N)
	}
	d := &graph.Dense{In: K, Out: N, Weight: denseWeight(w, K, N, g)}
	if g.bias != nil && g.beta != 0 {
		if d.Bias, err = b.denseBias(g.bias, N, g.beta); err != nil {
			return nil, err
		}
	}
	return b.emit(&graph.Node{Op: graph.OpDense, Inputs: []int{x.node}, Dense: d}, 2, graph.Shape{H: 1, W: 1, C: N})
}

// gemmOpts are Gemm's attributes and its optional third input C (bias).
type gemmOpts struct {
	transB      int64
	alpha, beta float32
	bias        *tensor
}

// readGemmOpts reads Gemm's attributes (refusing a transposed A) and bias.
func (b *builder) readGemmOpts(ins []*value) (gemmOpts, error) {
	var g gemmOpts
	transA, err := b.n.getInt("transA", 0)
	if err != nil {
		return g, err
	}
	if transA != 0 {
		return g, unsupportedf("transA=%d is not supported", transA)
	}
	if g.transB, err = b.n.getInt("transB", 0); err != nil {
		return g, err
	}
	if g.alpha, err = b.n.getFloat("alpha", 1); err != nil {
		return g, err
	}
	if g.beta, err = b.n.getFloat("beta", 1); err != nil {
		return g, err
	}
	if g.bias, err = b.floatConst(ins, 2, "bias", true); err != nil {
		return g, err
	}
	return g, nil
}

// denseWeight is w as the K x N matrix of graph.Dense, transposed if
// transB and scaled by alpha (rounded once, from the float64 product).
func denseWeight(w *tensor, K, N int, g gemmOpts) []float32 {
	out := make([]float32, K*N)
	for k := range K {
		for o := range N {
			v := w.f[k*N+o]
			if g.transB != 0 {
				v = w.f[o*K+k]
			}
			if g.alpha != 1 {
				v = float32(float64(g.alpha) * float64(v))
			}
			out[k*N+o] = v
		}
	}
	return out
}

// denseBias is Gemm's C, a scalar or a row of N, broadcast to N and
// scaled by beta; other shapes are refused.
func (b *builder) denseBias(bias *tensor, N int, beta float32) ([]float32, error) {
	ok := bias.size() == 1 || bias.size() == N
	for k, v := range bias.dims {
		if v != 1 && k != len(bias.dims)-1 {
			ok = false
		}
	}
	if !ok || len(bias.dims) > 2 {
		return nil, unsupportedf("bias %q of shape %v does not broadcast to [1,%d]", b.n.inputs[2], bias.dims, N)
	}
	out := make([]float32, N)
	for o := range N {
		v := bias.f[0]
		if bias.size() == N {
			v = bias.f[o]
		}
		if beta != 1 {
			v = float32(float64(beta) * float64(v))
		}
		out[o] = v
	}
	return out, nil
}

// onnxToAxis maps an ONNX axis of an activation of the given rank to a
// resnet axis; ok is false for the batch axis.
func onnxToAxis(axis, rank int) (graph.Axis, bool) {
	if rank == 2 {
		return graph.AxisC, axis == 1
	}
	switch axis {
	case 1:
		return graph.AxisC, true
	case 2:
		return graph.AxisH, true
	case 3:
		return graph.AxisW, true
	}
	return 0, false
}

func shapeDims(s graph.Shape) [3]int { return [3]int{s.H, s.W, s.C} }

func dimsShape(d [3]int) graph.Shape { return graph.Shape{H: d[0], W: d[1], C: d[2]} }

// pad maps a constant-mode Pad of an activation along H, W or C.
func (b *builder) pad(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	mode, err := b.n.getString("mode", "constant")
	if err != nil {
		return nil, err
	}
	if mode != "constant" {
		return nil, unsupportedf("mode=%q is not supported (only constant)", mode)
	}
	var pads []int64
	var value float64
	var axesT *tensor
	if b.opset < 11 {
		pads, value, err = b.padAttrs()
	} else {
		pads, value, axesT, err = b.padInputs(ins)
	}
	if err != nil {
		return nil, err
	}
	r := x.rank
	axes, err := padAxes(axesT, r)
	if err != nil {
		return nil, err
	}
	if len(pads) != 2*len(axes) {
		return nil, corruptf("pads %v have %d values, want %d", pads, len(pads), 2*len(axes))
	}
	p := &graph.PadOp{Value: float32(value)}
	out := shapeDims(x.shape)
	if err := padSides(p, &out, pads, axes, r); err != nil {
		return nil, err
	}
	if p.Before == [3]int{} && p.After == [3]int{} {
		return x, nil // a no-op Pad
	}
	return b.emit(&graph.Node{Op: graph.OpPad, Inputs: []int{x.node}, Pad: p}, r, dimsShape(out))
}

// padAttrs reads Pad's pads and value before opset 11, when they were
// attributes.
func (b *builder) padAttrs() (pads []int64, value float64, err error) {
	pads, ok, err := b.n.getInts("pads")
	if err != nil {
		return nil, 0, err
	} else if !ok {
		return nil, 0, corruptf("pads attribute is missing")
	}
	v, err := b.n.getFloat("value", 0)
	if err != nil {
		return nil, 0, err
	}
	return pads, float64(v), nil
}

// padInputs reads Pad's pads, constant_value and axes since opset 11,
// when they are (constant) inputs; the last two are optional.
func (b *builder) padInputs(ins []*value) (pads []int64, value float64, axesT *tensor, err error) {
	pt, err := b.constant(ins, 1, "pads", false)
	if err != nil {
		return nil, 0, nil, err
	}
	pads = pt.ints()
	cv, err := b.constant(ins, 2, "constant_value", true)
	if err != nil {
		return nil, 0, nil, err
	}
	if cv != nil {
		if cv.size() != 1 {
			return nil, 0, nil, corruptf("constant_value has %d values, want 1", cv.size())
		}
		value = cv.float(0)
	}
	if axesT, err = b.constant(ins, 3, "axes", true); err != nil {
		return nil, 0, nil, err
	}
	return pads, value, axesT, nil
}

// padAxes lists the axes that pads apply to, in their order: axesT's
// (normalized, none repeated), or every axis of the rank when absent.
func padAxes(axesT *tensor, r int) ([]int, error) {
	axes := make([]int, r)
	for k := range axes {
		axes[k] = k
	}
	if axesT == nil {
		return axes, nil
	}
	axes = axes[:0]
	seen := make([]bool, r)
	for _, a := range axesT.ints() {
		ax, err := normAxis(a, r)
		if err != nil {
			return nil, err
		}
		if seen[ax] {
			return nil, corruptf("axes %v repeat axis %d", axesT.ints(), a)
		}
		seen[ax] = true
		axes = append(axes, ax)
	}
	return axes, nil
}

// padSides sets p's padding before and after each padded axis and grows
// out (the output's H, W, C) by it. Cropping (negative pads) and padding
// the batch axis are not supported.
func padSides(p *graph.PadOp, out *[3]int, pads []int64, axes []int, r int) error {
	for k, ax := range axes {
		before, after := pads[k], pads[k+len(axes)]
		if before == 0 && after == 0 {
			continue
		}
		if before < 0 || after < 0 {
			return unsupportedf("negative pads %v (cropping) are not supported", pads)
		}
		ra, ok := onnxToAxis(ax, r)
		if !ok {
			return unsupportedf("padding the batch axis (pads %v) is not supported", pads)
		}
		if before > maxDim || after > maxDim {
			return unsupportedf("pads %v are too large", pads)
		}
		p.Before[ra], p.After[ra] = int(before), int(after)
		out[ra] += int(before + after)
	}
	return nil
}

// sliceRange clamps one axis of a Slice like the ONNX spec (which also
// turns the INT64_MAX/INT64_MIN "to the end" sentinels into the bounds) and
// returns the first index and the element count.
func sliceRange(start, end, step int64, dim int) (first, count int) {
	d := int64(dim)
	if start < 0 {
		start += d
	}
	if end < 0 {
		end += d
	}
	if step > 0 {
		start = min(max(start, 0), d)
		end = min(max(end, 0), d)
		if end <= start {
			return int(start), 0
		}
		// Written so that a step near INT64_MAX cannot overflow.
		return int(start), int((end-start-1)/step + 1)
	}
	start = min(max(start, 0), d-1)
	end = min(max(end, -1), d-1)
	if start <= end {
		return int(start), 0
	}
	if step == math.MinInt64 { // -step would overflow; one element anyway
		return int(start), 1
	}
	return int(start), int((start-end-1)/(-step) + 1)
}

// sliceParams reads starts, ends, axes and steps (attributes before opset
// 10, inputs after) and returns them per axis of a tensor of rank r, with
// defaults for the axes not sliced.
func (b *builder) sliceParams(ins []*value, r int) (starts, ends, steps []int64, sliced []bool, err error) {
	var st, en, ax, sp []int64
	var haveAxes, haveSteps bool
	if b.opset < 10 {
		var ok bool
		if st, ok, err = b.n.getInts("starts"); err != nil || !ok {
			return nil, nil, nil, nil, errOr(err, corruptf("starts attribute is missing"))
		}
		if en, ok, err = b.n.getInts("ends"); err != nil || !ok {
			return nil, nil, nil, nil, errOr(err, corruptf("ends attribute is missing"))
		}
		if ax, haveAxes, err = b.n.getInts("axes"); err != nil {
			return nil, nil, nil, nil, err
		}
	} else {
		var t [4]*tensor
		for k, what := range [4]string{"starts", "ends", "axes", "steps"} {
			if t[k], err = b.constant(ins, k+1, what, k >= 2); err != nil {
				return nil, nil, nil, nil, err
			}
		}
		st, en = t[0].ints(), t[1].ints()
		if t[2] != nil {
			ax, haveAxes = t[2].ints(), true
		}
		if t[3] != nil {
			sp, haveSteps = t[3].ints(), true
		}
	}
	if len(st) != len(en) || (haveAxes && len(ax) != len(st)) || (haveSteps && len(sp) != len(st)) {
		return nil, nil, nil, nil, corruptf("starts %v, ends %v, axes %v and steps %v differ in length", st, en, ax, sp)
	}
	if !haveAxes && len(st) > r {
		return nil, nil, nil, nil, corruptf("%d starts for a rank-%d tensor", len(st), r)
	}
	starts, ends, steps, sliced = make([]int64, r), make([]int64, r), make([]int64, r), make([]bool, r)
	for a := range r {
		starts[a], ends[a], steps[a] = 0, math.MaxInt64, 1
	}
	for k := range st {
		a := k
		if haveAxes {
			if a, err = normAxis(ax[k], r); err != nil {
				return nil, nil, nil, nil, err
			}
		}
		if sliced[a] {
			return nil, nil, nil, nil, corruptf("axes %v repeat axis %d", ax, a)
		}
		sliced[a] = true
		starts[a], ends[a] = st[k], en[k]
		if haveSteps {
			if sp[k] == 0 {
				return nil, nil, nil, nil, corruptf("steps %v contain 0", sp)
			}
			steps[a] = sp[k]
		}
	}
	return starts, ends, steps, sliced, nil
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

func (b *builder) slice(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	d := x.dims()
	starts, ends, steps, sliced, err := b.sliceParams(ins, len(d))
	if err != nil {
		return nil, err
	}
	dims := shapeDims(x.shape)
	sl := &graph.SliceOp{End: dims, Step: [3]int{1, 1, 1}}
	identity := true
	for a := range d {
		if !sliced[a] {
			continue
		}
		if steps[a] < 0 {
			return nil, unsupportedf("negative steps %d on an activation are not supported", steps[a])
		}
		first, count := sliceRange(starts[a], ends[a], steps[a], d[a])
		if count == 0 {
			return nil, unsupportedf("the slice of axis %d (%d:%d:%d of %d) is empty", a, starts[a], ends[a], steps[a], d[a])
		}
		if first == 0 && count == d[a] {
			continue // the whole axis
		}
		ra, ok := onnxToAxis(a, len(d))
		if !ok {
			return nil, unsupportedf("slicing the batch axis is not supported")
		}
		step := int(min(steps[a], int64(d[a])))
		sl.Start[ra], sl.Step[ra] = first, step
		sl.End[ra] = first + (count-1)*step + 1
		dims[ra] = count
		identity = false
	}
	if identity {
		return x, nil
	}
	return b.emit(&graph.Node{Op: graph.OpSlice, Inputs: []int{x.node}, Slice: sl}, x.rank, dimsShape(dims))
}

func (b *builder) concat(ins []*value) (*value, error) {
	if len(ins) == 0 {
		return nil, corruptf("Concat has no inputs")
	}
	for k, v := range ins {
		if v == nil {
			return nil, corruptf("input %d is missing", k)
		}
		if v.kind != vAct {
			return nil, unsupportedf("concatenating the constant %q with activations is not supported", b.n.inputs[k])
		}
	}
	axis, err := b.n.getInt("axis", math.MinInt64)
	if err != nil {
		return nil, err
	}
	if axis == math.MinInt64 {
		return nil, corruptf("axis attribute is missing")
	}
	x := ins[0]
	a, err := normAxis(axis, x.rank)
	if err != nil {
		return nil, err
	}
	ra, ok := onnxToAxis(a, x.rank)
	if !ok {
		return nil, unsupportedf("concatenating along the batch axis is not supported")
	}
	if len(ins) == 1 {
		return x, nil
	}
	out := shapeDims(x.shape)
	nodes := []int{x.node}
	for k, v := range ins[1:] {
		if v.rank != x.rank {
			return nil, corruptf("input %d has rank %d, input 0 has rank %d", k+1, v.rank, x.rank)
		}
		s := shapeDims(v.shape)
		for j := range 3 {
			if j != int(ra) && s[j] != out[j] {
				return nil, corruptf("input %d has shape %v, input 0 has %v", k+1, v.dims(), x.dims())
			}
		}
		out[ra] += s[ra]
		if out[ra] > maxDim {
			return nil, unsupportedf("the concatenation is too large")
		}
		nodes = append(nodes, v.node)
	}
	return b.emit(&graph.Node{Op: graph.OpConcat, Inputs: nodes, Axis: ra}, x.rank, dimsShape(out))
}

// splitSizes returns the part sizes of a Split along an axis of length dim.
func (b *builder) splitSizes(ins []*value, dim int) ([]int, error) {
	split, ok, err := b.intsMovedToInput(ins, 1, "split", 13)
	if err != nil {
		return nil, err
	}
	nOut := len(b.n.outputs)
	if ok {
		if len(split) != nOut {
			return nil, corruptf("split %v has %d parts for %d outputs", split, len(split), nOut)
		}
		sizes := make([]int, len(split))
		total := int64(0)
		for k, s := range split {
			if s < 0 || s > int64(dim) {
				return nil, corruptf("split %v does not fit a dimension of %d", split, dim)
			}
			total += s
			sizes[k] = int(s)
		}
		if total != int64(dim) {
			return nil, corruptf("split %v does not add up to %d", split, dim)
		}
		return sizes, nil
	}
	parts := int64(nOut)
	if b.opset >= 18 {
		if parts, err = b.n.getInt("num_outputs", int64(nOut)); err != nil {
			return nil, err
		}
		if parts != int64(nOut) {
			return nil, corruptf("num_outputs=%d but the node has %d outputs", parts, nOut)
		}
	}
	if parts < 1 {
		return nil, corruptf("Split has no outputs")
	}
	// Equal parts; from opset 18 the last may be smaller.
	chunk := (int64(dim) + parts - 1) / parts
	if b.opset < 18 {
		if int64(dim)%parts != 0 {
			return nil, corruptf("cannot split %d into %d equal parts", dim, parts)
		}
		chunk = int64(dim) / parts
	}
	sizes := make([]int, parts)
	left := int64(dim)
	for k := range sizes {
		s := min(chunk, left)
		sizes[k] = int(s)
		left -= s
	}
	return sizes, nil
}

func (b *builder) split(ins []*value) ([]*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	axis, err := b.n.getInt("axis", 0)
	if err != nil {
		return nil, err
	}
	a, err := normAxis(axis, x.rank)
	if err != nil {
		return nil, err
	}
	ra, ok := onnxToAxis(a, x.rank)
	if !ok {
		return nil, unsupportedf("splitting the batch axis is not supported")
	}
	dims := shapeDims(x.shape)
	sizes, err := b.splitSizes(ins, dims[ra])
	if err != nil {
		return nil, err
	}
	outs := make([]*value, len(sizes))
	off := 0
	for k, s := range sizes {
		if b.n.outputs[k] == "" {
			off += s
			continue
		}
		if s == dims[ra] {
			outs[k] = x // the whole axis
			continue
		}
		sl := &graph.SliceOp{End: dims, Step: [3]int{1, 1, 1}}
		sl.Start[ra], sl.End[ra] = off, off+s
		od := dims
		od[ra] = s
		nd := &graph.Node{Name: fmt.Sprintf("%s:%d", b.nodeName(), k), Op: graph.OpSlice, Inputs: []int{x.node}, Slice: sl}
		if outs[k], err = b.emit(nd, x.rank, dimsShape(od)); err != nil {
			return nil, fmt.Errorf("output %d: %w", k, err)
		}
		off += s
	}
	return outs, nil
}

func (b *builder) dropout(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	if err := b.dropoutInference(ins); err != nil {
		return nil, err
	}
	return x, nil
}

// dropoutInference refuses a Dropout in training mode (its training_mode
// input, from opset 12), which is random unless its ratio is 0; in
// inference it is an identity, on activations and constants alike.
func (b *builder) dropoutInference(ins []*value) error {
	if b.opset < 12 {
		return nil
	}
	tm, err := b.constant(ins, 2, "training_mode", true)
	if err != nil || tm == nil || tm.size() == 0 || tm.int(0) == 0 {
		return err
	}
	ratio, err := b.constant(ins, 1, "ratio", true)
	if err != nil {
		return err
	}
	if ratio != nil && ratio.size() == 1 && ratio.float(0) == 0 {
		return nil // drops nothing
	}
	return unsupportedf("training_mode=true is not supported (inference only)")
}

func (b *builder) softmax(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	def := int64(-1)
	if b.opset < 13 {
		def = 1 // and the input is coerced to 2-D at axis
	}
	axis, err := b.n.getInt("axis", def)
	if err != nil {
		return nil, err
	}
	a, err := normAxis(axis, x.rank)
	if err != nil {
		return nil, err
	}
	if a != 1 || !x.isVector() {
		return nil, unsupportedf("Softmax over axis %d of %v is not supported (only over the channels of a vector)", axis, x.dims())
	}
	return b.emit(&graph.Node{Op: graph.OpSoftmax, Inputs: []int{x.node}}, x.rank, x.shape)
}

func (b *builder) shapeOfActivation(ins []*value) ([]*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	d := x.dims()
	t := &tensor{dtype: dtInt64}
	if b.n.opType == "Size" {
		t.i = []int64{int64(x.shape.Size())}
		return []*value{{kind: vConst, t: t}}, nil
	}
	lo, hi, err := b.shapeRange(len(d))
	if err != nil {
		return nil, err
	}
	t.dims = []int{hi - lo}
	for _, v := range d[lo:hi] {
		t.i = append(t.i, int64(v))
	}
	return []*value{{kind: vConst, t: t}}, nil
}

// shapeRange reads Shape's start and end attributes (opset 15).
func (b *builder) shapeRange(r int) (lo, hi int, err error) {
	start, err := b.n.getInt("start", 0)
	if err != nil {
		return 0, 0, err
	}
	end, err := b.n.getInt("end", int64(r))
	if err != nil {
		return 0, 0, err
	}
	clamp := func(v int64) int {
		if v < 0 {
			v += int64(r)
		}
		return int(min(max(v, 0), int64(r)))
	}
	lo, hi = clamp(start), clamp(end)
	if hi < lo {
		hi = lo
	}
	return lo, hi, nil
}
