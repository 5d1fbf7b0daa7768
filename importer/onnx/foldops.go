package onnx

import (
	"math"
)

// The operators the constant evaluator folds, by op type (fold.go has the
// evaluator and the larger folders).

// foldFunc computes a node's outputs from its constant inputs ts (ins are
// the same inputs as values, for the folders that read optional inputs).
type foldFunc func(b *builder, ins []*value, ts []*tensor) ([]*tensor, error)

var foldOps map[string]foldFunc

func init() {
	foldOps = map[string]foldFunc{
		"Constant":        func(b *builder, _ []*value, _ []*tensor) ([]*tensor, error) { return foldOne(b.constantNode()) },
		"Identity":        foldX(func(_ *builder, x *tensor) (*tensor, error) { return x, nil }),
		"Dropout":         (*builder).foldDropout,
		"Cast":            foldX((*builder).cast),
		"Shape":           foldX((*builder).shapeConst),
		"Size":            foldX(func(_ *builder, x *tensor) (*tensor, error) { return sizeConst(x), nil }),
		"Reshape":         foldXY((*builder).reshapeConst),
		"Flatten":         foldX((*builder).flattenConst),
		"Squeeze":         foldInsX((*builder).squeeze),
		"Unsqueeze":       foldInsX((*builder).squeeze),
		"Transpose":       foldX((*builder).transpose),
		"Gather":          foldXY((*builder).gather),
		"Concat":          func(b *builder, _ []*value, ts []*tensor) ([]*tensor, error) { return foldOne(b.concatConst(ts)) },
		"Slice":           foldInsX((*builder).sliceConst),
		"Split":           foldX2((*builder).splitConst),
		"ConstantOfShape": foldX((*builder).constantOfShape),
		"Range":           func(b *builder, _ []*value, ts []*tensor) ([]*tensor, error) { return foldOne(b.rangeConst(ts)) },
		"Expand":          foldXY((*builder).expandConst),
		"Tile":            foldXY((*builder).tile),
		"Where":           (*builder).foldWhere,
		"Clip":            (*builder).foldClip,
	}
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Min", "Max", "Sum"} {
		foldOps[op] = (*builder).foldBinary
	}
	for _, op := range []string{"Neg", "Abs", "Floor", "Ceil", "Sqrt", "Reciprocal", "Not", "Relu", "Sign"} {
		foldOps[op] = foldX(func(b *builder, x *tensor) (*tensor, error) { return b.unaryOp(b.n.opType, x) })
	}
	for _, op := range []string{"Sigmoid", "HardSigmoid", "HardSwish"} {
		foldOps[op] = foldX((*builder).activationConst)
	}
	for _, op := range []string{"ReduceSum", "ReduceMean", "ReduceProd", "ReduceMax", "ReduceMin",
		"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"} {
		foldOps[op] = foldInsX((*builder).reduce)
	}
}

// evalOp computes the node's outputs from its constant inputs.
func (b *builder) evalOp(ins []*value, ts []*tensor) ([]*tensor, error) {
	if f := foldOps[b.n.opType]; f != nil {
		return f(b, ins, ts)
	}
	return nil, unsupportedf("operator %s is not supported (all its inputs are constant, but it has no constant evaluator either)", b.n.opType)
}

// foldArg returns the constant input k.
func foldArg(ts []*tensor, k int) (*tensor, error) {
	if k >= len(ts) || ts[k] == nil {
		return nil, corruptf("input %d is missing", k)
	}
	return ts[k], nil
}

func foldOne(t *tensor, err error) ([]*tensor, error) {
	if err != nil {
		return nil, err
	}
	return []*tensor{t}, nil
}

// foldX folds a node with one output computed from input 0.
func foldX(f func(b *builder, x *tensor) (*tensor, error)) foldFunc {
	return func(b *builder, _ []*value, ts []*tensor) ([]*tensor, error) {
		x, err := foldArg(ts, 0)
		if err != nil {
			return nil, err
		}
		return foldOne(f(b, x))
	}
}

// foldXY folds a node with one output computed from inputs 0 and 1.
func foldXY(f func(b *builder, x, y *tensor) (*tensor, error)) foldFunc {
	return func(b *builder, _ []*value, ts []*tensor) ([]*tensor, error) {
		x, err := foldArg(ts, 0)
		if err != nil {
			return nil, err
		}
		y, err := foldArg(ts, 1)
		if err != nil {
			return nil, err
		}
		return foldOne(f(b, x, y))
	}
}

// foldInsX folds a node computed from input 0 and optional inputs.
func foldInsX(f func(b *builder, ins []*value, x *tensor) (*tensor, error)) foldFunc {
	return foldX2(func(b *builder, ins []*value, x *tensor) ([]*tensor, error) { return foldOne(f(b, ins, x)) })
}

func foldX2(f func(b *builder, ins []*value, x *tensor) ([]*tensor, error)) foldFunc {
	return func(b *builder, ins []*value, ts []*tensor) ([]*tensor, error) {
		x, err := foldArg(ts, 0)
		if err != nil {
			return nil, err
		}
		return f(b, ins, x)
	}
}

func (b *builder) foldDropout(ins []*value, ts []*tensor) ([]*tensor, error) {
	if err := b.dropoutInference(ins); err != nil {
		return nil, err
	}
	x, err := foldArg(ts, 0)
	return foldOne(x, err)
}

func (b *builder) shapeConst(x *tensor) (*tensor, error) {
	lo, hi, err := b.shapeRange(len(x.dims))
	if err != nil {
		return nil, err
	}
	t := &tensor{dtype: dtInt64, dims: []int{hi - lo}}
	for _, d := range x.dims[lo:hi] {
		t.i = append(t.i, int64(d))
	}
	return t, nil
}

func sizeConst(x *tensor) *tensor {
	return &tensor{dtype: dtInt64, i: []int64{int64(product(x.dims))}}
}

func (b *builder) reshapeConst(x, shape *tensor) (*tensor, error) {
	allowZero, err := b.n.getInt("allowzero", 0)
	if err != nil {
		return nil, err
	}
	dims, err := reshapeTarget(x.dims, shape.ints(), allowZero != 0)
	if err != nil {
		return nil, err
	}
	return reshaped(x, dims), nil
}

func (b *builder) flattenConst(x *tensor) (*tensor, error) {
	axis, err := b.n.getInt("axis", 1)
	if err != nil {
		return nil, err
	}
	r := int64(len(x.dims))
	if axis < -r || axis > r {
		return nil, corruptf("axis=%d out of range for rank %d", axis, r)
	}
	if axis < 0 {
		axis += r
	}
	return reshaped(x, []int{product(x.dims[:axis]), product(x.dims[axis:])}), nil
}

// dimsOf converts the dims of a shape tensor (Expand, ConstantOfShape);
// ok is false if one is negative or too large.
func dimsOf(shape []int64) (dims []int, ok bool) {
	dims = make([]int, len(shape))
	for k, d := range shape {
		if d < 0 || d > maxDimValue {
			return nil, false
		}
		dims[k] = int(d)
	}
	return dims, true
}

func (b *builder) expandConst(x, shape *tensor) (*tensor, error) {
	dims, ok := dimsOf(shape.ints())
	if !ok {
		return nil, corruptf("Expand shape %v has an invalid dimension", shape.ints())
	}
	out, err := broadcastShape(x.dims, dims)
	if err != nil {
		return nil, err
	}
	r, err := b.alloc(x.dtype, out)
	if err != nil {
		return nil, err
	}
	forEach(out, [][]int{bstrides(x.dims, out)}, nil, func(o int, offs []int) { copyElem(r, o, x, offs[0]) })
	return r, nil
}

func (b *builder) foldWhere(_ []*value, ts []*tensor) ([]*tensor, error) {
	var t [3]*tensor
	for k := range t {
		var err error
		if t[k], err = foldArg(ts, k); err != nil {
			return nil, err
		}
	}
	return foldOne(b.where(t[0], t[1], t[2]))
}

// foldBinary folds the element-wise operators of two inputs, and Min, Max
// and Sum of any number pairwise.
func (b *builder) foldBinary(_ []*value, ts []*tensor) ([]*tensor, error) {
	op := b.n.opType
	if len(ts) != 2 && op != "Min" && op != "Max" && op != "Sum" {
		return nil, corruptf("%s wants 2 inputs, has %d", op, len(ts))
	}
	acc, err := foldArg(ts, 0)
	if err != nil {
		return nil, err
	}
	for k := 1; k < len(ts); k++ {
		y, err := foldArg(ts, k)
		if err != nil {
			return nil, err
		}
		if acc, err = b.binary(op, acc, y); err != nil {
			return nil, err
		}
	}
	return []*tensor{acc}, nil
}

// activationConst folds Sigmoid, HardSigmoid and HardSwish (float tensors).
func (b *builder) activationConst(x *tensor) (*tensor, error) {
	if !x.isFloat() {
		return nil, corruptf("%s of a %s tensor", b.n.opType, dtName(x.dtype))
	}
	alpha, beta := float32(1.0/6), float32(0.5)
	if b.n.opType == "HardSigmoid" {
		var err error
		if alpha, err = b.n.getFloat("alpha", 0.2); err != nil {
			return nil, err
		}
		if beta, err = b.n.getFloat("beta", 0.5); err != nil {
			return nil, err
		}
	}
	out, err := b.alloc(x.dtype, x.dims)
	if err != nil {
		return nil, err
	}
	for k, v := range x.f {
		x := float64(v)
		hs := min(max(float64(alpha)*x+float64(beta), 0), 1)
		switch b.n.opType {
		case "Sigmoid":
			out.f[k] = float32(1 / (1 + math.Exp(-x)))
		case "HardSigmoid":
			out.f[k] = float32(hs)
		default:
			out.f[k] = float32(x * hs)
		}
	}
	return out, nil
}

// foldClip folds Clip of a float or integer tensor. A min above max makes
// every value max (ONNX).
func (b *builder) foldClip(ins []*value, ts []*tensor) ([]*tensor, error) {
	x, err := foldArg(ts, 0)
	if err != nil {
		return nil, err
	}
	var lo, hi float64
	var ilo, ihi int64
	if x.isFloat() {
		lo, hi, err = b.clipBounds(ins)
	} else {
		ilo, ihi, err = b.clipIntBounds(ins)
	}
	if err != nil {
		return nil, err
	}
	out, err := b.alloc(x.dtype, x.dims)
	if err != nil {
		return nil, err
	}
	for k, v := range x.f {
		out.f[k] = float32(min(max(float64(v), lo), hi))
	}
	for k, v := range x.i {
		out.i[k] = min(max(v, ilo), ihi)
	}
	return []*tensor{out}, nil
}

// clipIntBounds reads the optional min and max inputs of an integer Clip.
func (b *builder) clipIntBounds(ins []*value) (lo, hi int64, err error) {
	lo, hi = math.MinInt64, math.MaxInt64
	for k, p := range []*int64{&lo, &hi} {
		t, err := b.constant(ins, k+1, [2]string{"min", "max"}[k], true)
		if err != nil {
			return 0, 0, err
		}
		if t != nil {
			if t.size() != 1 || t.isFloat() {
				return 0, 0, corruptf("%s is %s %v, want one integer", [2]string{"min", "max"}[k], dtName(t.dtype), t.dims)
			}
			*p = t.int(0)
		}
	}
	return lo, hi, nil
}
