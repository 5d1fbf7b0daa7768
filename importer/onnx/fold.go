package onnx

import (
	"fmt"
	"math"
	"slices"
)

// The constant evaluator. Exporters compute shapes and paddings with small
// subgraphs (torch.onnx's F.pad: Shape, Gather, Concat, ConstantOfShape,
// Reshape, Slice, Transpose, Cast, ...); evaluating every node whose inputs
// are all constants turns them into plain values, such as the pads input of
// a Pad. Integer semantics follow ONNX (int64 wrap-around, truncating
// division); float arithmetic is float32, like ONNX FLOAT tensors.
//
// Tensors are never modified after creation, so ops that only change the
// shape (Reshape, Squeeze, Identity, ...) share data. New data is charged to
// the import's budget (b.mem) before it is allocated, so that a small file
// cannot make us allocate without limit.

// fold evaluates a node whose inputs are all constants.
func (b *builder) fold(ins []*value) ([]*value, error) {
	ts := make([]*tensor, len(ins))
	for k, v := range ins {
		if v == nil {
			continue
		}
		t, err := b.tensorOf(v)
		if err != nil {
			return nil, err
		}
		ts[k] = t
	}
	outs, err := b.evalConst(ins, ts)
	if err != nil {
		return nil, err
	}
	vals := make([]*value, len(outs))
	for k, t := range outs {
		if t != nil {
			vals[k] = &value{kind: vConst, t: t}
		}
	}
	return vals, nil
}

// alloc makes a tensor for a computed result, charged to the budget.
func (b *builder) alloc(dt int64, dims []int) (*tensor, error) {
	n, err := numElements(dims)
	if err != nil {
		return nil, err
	}
	if err := b.mem.charge(int64(n)*elemBytes(dt), fmt.Sprintf("the folded result, %s %v,", dtName(dt), dims)); err != nil {
		return nil, err
	}
	return newTensor(dt, dims)
}

func product(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// rowStrides returns the row-major element strides of dims.
func rowStrides(dims []int) []int {
	s := make([]int, len(dims))
	st := 1
	for k := len(dims) - 1; k >= 0; k-- {
		s[k] = st
		st *= dims[k]
	}
	return s
}

// bstrides returns the strides of a tensor of dims broadcast (numpy rules,
// right-aligned) to out: 0 along broadcast axes.
func bstrides(dims, out []int) []int {
	s := make([]int, len(out))
	st := 1
	for k := len(dims) - 1; k >= 0; k-- {
		if dims[k] != 1 {
			s[len(out)-len(dims)+k] = st
		}
		st *= dims[k]
	}
	return s
}

// forEach calls fn for every element of a tensor of dims in row-major
// order, with o its flat index and offs[j] = base[j] + sum(index*strides[j]).
func forEach(dims []int, strides [][]int, base []int, fn func(o int, offs []int)) {
	n := product(dims)
	if n == 0 {
		return
	}
	idx := make([]int, len(dims))
	offs := make([]int, len(strides))
	if base != nil {
		copy(offs, base)
	}
	for o := 0; o < n; o++ {
		fn(o, offs)
		for a := len(dims) - 1; a >= 0; a-- {
			idx[a]++
			for j := range strides {
				offs[j] += strides[j][a]
			}
			if idx[a] < dims[a] {
				break
			}
			for j := range strides {
				offs[j] -= strides[j][a] * dims[a]
			}
			idx[a] = 0
		}
	}
}

// broadcastShape applies numpy's broadcasting rule.
func broadcastShape(a, b []int) ([]int, error) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for k := range n {
		x, y := 1, 1
		if j := k - (n - len(a)); j >= 0 {
			x = a[j]
		}
		if j := k - (n - len(b)); j >= 0 {
			y = b[j]
		}
		switch {
		case x == y, y == 1:
			out[k] = x
		case x == 1:
			out[k] = y
		default:
			return nil, corruptf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// copyElem copies element so of src to element do of dst, converting
// between the float and integer representations if they differ.
func copyElem(dst *tensor, do int, src *tensor, so int) {
	switch {
	case dst.isFloat() && src.isFloat():
		dst.f[do] = src.f[so]
	case dst.isFloat():
		dst.f[do] = float32(src.i[so])
	case src.isFloat():
		dst.i[do] = wrapInt(src.int(so), dst.dtype)
	default:
		dst.i[do] = src.i[so]
	}
}

// reshaped returns t with new dims, sharing its data.
func reshaped(t *tensor, dims []int) *tensor {
	return &tensor{dtype: t.dtype, dims: dims, f: t.f, i: t.i}
}

// evalConst evaluates the node on constant inputs. A FLOAT16 or BFLOAT16
// result is held as float32 like every float tensor, but with values of
// its own type: rounded to its precision (see narrowed).
func (b *builder) evalConst(ins []*value, ts []*tensor) ([]*tensor, error) {
	outs, err := b.evalOp(ins, ts)
	if err != nil {
		return nil, err
	}
	for k, t := range outs {
		if t != nil {
			if outs[k], err = b.narrowed(t); err != nil {
				return nil, err
			}
		}
	}
	return outs, nil
}

func (b *builder) constantNode() (*tensor, error) {
	for _, name := range []string{"sparse_value", "value_string", "value_strings"} {
		if b.n.attr(name) != nil {
			return nil, unsupportedf("attribute %s is not supported", name)
		}
	}
	if tp, ok, err := b.n.getTensor("value"); err != nil {
		return nil, err
	} else if ok {
		return b.decodeTensor(tp, "attribute value")
	}
	if a := b.n.attr("value_float"); a != nil {
		f, err := b.n.getFloat("value_float", 0)
		return &tensor{dtype: dtFloat, f: []float32{f}}, err
	}
	if fs, ok, err := b.n.getFloats("value_floats"); err != nil || ok {
		return &tensor{dtype: dtFloat, dims: []int{len(fs)}, f: fs}, err
	}
	if a := b.n.attr("value_int"); a != nil {
		v, err := b.n.getInt("value_int", 0)
		return &tensor{dtype: dtInt64, i: []int64{v}}, err
	}
	if is, ok, err := b.n.getInts("value_ints"); err != nil || ok {
		return &tensor{dtype: dtInt64, dims: []int{len(is)}, i: is}, err
	}
	return nil, corruptf("Constant has no value attribute")
}

func (b *builder) cast(x *tensor) (*tensor, error) {
	to, err := b.n.getInt("to", -1)
	if err != nil {
		return nil, err
	}
	if to == -1 {
		return nil, corruptf("attribute to is missing")
	}
	if !isFloatType(to) && !isIntType(to) {
		return nil, unsupportedf("Cast to %s is not supported", dtName(to))
	}
	r, err := b.alloc(to, x.dims)
	if err != nil {
		return nil, err
	}
	for k := range x.size() {
		switch {
		case r.isFloat():
			r.f[k] = float32(x.float(k))
		case to == dtBool && x.isFloat():
			if x.f[k] != 0 {
				r.i[k] = 1
			}
		default:
			r.i[k] = wrapInt(x.int(k), to)
		}
	}
	return r, nil
}

// narrowed returns t with every value rounded to the precision of its type
// when that is FLOAT16 or BFLOAT16, so that a Cast to either (or
// arithmetic on them) gives what a runtime holding 16-bit values gives;
// other tensors, and tensors already narrow (decoded initializers, results
// that only move values), are returned as they are. Rounding is to
// nearest, ties to even, as ONNX Runtime rounds; DOUBLE stays float32.
func (b *builder) narrowed(t *tensor) (*tensor, error) {
	var round func(float64) float64
	switch t.dtype {
	case dtFloat16:
		round = roundHalf
	case dtBfloat16:
		round = roundBfloat16
	default:
		return t, nil
	}
	for k, v := range t.f {
		if math.Float32bits(float32(round(float64(v)))) == math.Float32bits(v) {
			continue
		}
		// Tensors are shared, never modified: round into a new one.
		out, err := b.alloc(t.dtype, t.dims)
		if err != nil {
			return nil, err
		}
		copy(out.f, t.f[:k])
		for j := k; j < len(t.f); j++ {
			out.f[j] = float32(round(float64(t.f[j])))
		}
		return out, nil
	}
	return t, nil
}

// roundHalf rounds v to the nearest IEEE 754 binary16 value (ties to
// even; ±Inf beyond 65504 after rounding).
func roundHalf(v float64) float64 { return roundFloat(v, 10, -14, 65504) }

// roundBfloat16 rounds v to the nearest bfloat16 value: float32's exponent
// range with 7 mantissa bits.
func roundBfloat16(v float64) float64 { return roundFloat(v, 7, -126, math.Ldexp(0xff, 120)) }

// roundFloat rounds v to a binary floating-point format with mant
// fraction bits, minExp the exponent of its smallest normal number (below
// which the spacing stays that of subnormals) and maxFinite its largest
// value: to nearest, ties to even. NaN, ±Inf and ±0 pass unchanged, and
// results above maxFinite become ±Inf.
func roundFloat(v float64, mant, minExp int, maxFinite float64) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	_, e := math.Frexp(v) // |v| = f·2^e with 0.5 <= f < 1
	ulp := max(e-1, minExp) - mant
	r := math.Ldexp(math.RoundToEven(math.Ldexp(v, -ulp)), ulp)
	if math.Abs(r) > maxFinite {
		return math.Copysign(math.Inf(1), v)
	}
	return r
}

// squeeze does Squeeze and Unsqueeze, whose axes are an attribute before
// opset 13 and an input from 13 on.
func (b *builder) squeeze(ins []*value, x *tensor) (*tensor, error) {
	dims, err := b.squeezedDims(ins, x.dims)
	if err != nil {
		return nil, err
	}
	return reshaped(x, dims), nil
}

// squeezedDims returns the dims of a tensor of dims in after the Squeeze
// or Unsqueeze being imported (on constants and activations alike).
func (b *builder) squeezedDims(ins []*value, in []int) ([]int, error) {
	axes, ok, err := b.intsMovedToInput(ins, 1, "axes", 13)
	if err != nil {
		return nil, err
	}
	r := len(in)
	if b.n.opType == "Unsqueeze" {
		if !ok {
			return nil, corruptf("axes are missing")
		}
		outRank := r + len(axes)
		if outRank > 64 {
			return nil, unsupportedf("Unsqueeze to rank %d", outRank)
		}
		mark := make([]bool, outRank)
		for _, a := range axes {
			ax, err := normAxis(a, outRank)
			if err != nil {
				return nil, err
			}
			if mark[ax] {
				return nil, corruptf("axes %v repeat axis %d", axes, a)
			}
			mark[ax] = true
		}
		dims := make([]int, 0, outRank)
		k := 0
		for _, m := range mark {
			if m {
				dims = append(dims, 1)
			} else {
				dims = append(dims, in[k])
				k++
			}
		}
		return dims, nil
	}
	drop := make([]bool, r)
	if !ok {
		for k, d := range in {
			drop[k] = d == 1
		}
	}
	for _, a := range axes {
		ax, err := normAxis(a, r)
		if err != nil {
			return nil, err
		}
		if in[ax] != 1 {
			return nil, corruptf("cannot squeeze axis %d of %v", a, in)
		}
		drop[ax] = true
	}
	var dims []int
	for k, d := range in {
		if !drop[k] {
			dims = append(dims, d)
		}
	}
	return dims, nil
}

func (b *builder) transpose(x *tensor) (*tensor, error) {
	perm, err := b.transposePerm(len(x.dims))
	if err != nil {
		return nil, err
	}
	r := len(perm)
	dims := make([]int, r)
	st := rowStrides(x.dims)
	pst := make([]int, r)
	for k, p := range perm {
		dims[k], pst[k] = x.dims[p], st[p]
	}
	out, err := b.alloc(x.dtype, dims)
	if err != nil {
		return nil, err
	}
	forEach(dims, [][]int{pst}, nil, func(o int, offs []int) { copyElem(out, o, x, offs[0]) })
	return out, nil
}

// transposePerm reads a Transpose's perm for a tensor of rank r (default:
// the axes reversed) and checks that it is a permutation.
func (b *builder) transposePerm(r int) ([]int, error) {
	perm, ok, err := b.n.getInts("perm")
	if err != nil {
		return nil, err
	}
	if !ok {
		for k := r - 1; k >= 0; k-- {
			perm = append(perm, int64(k))
		}
	}
	if len(perm) != r {
		return nil, corruptf("perm %v does not fit rank %d", perm, r)
	}
	seen := make([]bool, r)
	out := make([]int, r)
	for k, p := range perm {
		if p < 0 || p >= int64(r) || seen[p] {
			return nil, corruptf("perm %v is not a permutation", perm)
		}
		seen[p] = true
		out[k] = int(p)
	}
	return out, nil
}

func (b *builder) gather(x, idx *tensor) (*tensor, error) {
	axis, err := b.n.getInt("axis", 0)
	if err != nil {
		return nil, err
	}
	if len(x.dims) == 0 {
		return nil, corruptf("Gather from a scalar")
	}
	a, err := normAxis(axis, len(x.dims))
	if err != nil {
		return nil, err
	}
	if idx.isFloat() {
		return nil, corruptf("Gather indices have type %s", dtName(idx.dtype))
	}
	dims := slices.Concat(x.dims[:a], idx.dims, x.dims[a+1:])
	out, err := b.alloc(x.dtype, dims)
	if err != nil {
		return nil, err
	}
	outer, D, inner := product(x.dims[:a]), x.dims[a], product(x.dims[a+1:])
	n := idx.size()
	for j, ix := range idx.i {
		if ix < -int64(D) || ix >= int64(D) {
			return nil, corruptf("Gather index %d out of range for dimension %d", ix, D)
		}
		if ix < 0 {
			ix += int64(D)
		}
		for o := range outer {
			for k := range inner {
				copyElem(out, (o*n+j)*inner+k, x, (o*D+int(ix))*inner+k)
			}
		}
	}
	return out, nil
}

func (b *builder) concatConst(ts []*tensor) (*tensor, error) {
	if len(ts) == 0 {
		return nil, corruptf("Concat has no inputs")
	}
	for k, t := range ts {
		if t == nil {
			return nil, corruptf("input %d is missing", k)
		}
	}
	axis, err := b.n.getInt("axis", math.MinInt64)
	if err != nil {
		return nil, err
	}
	if axis == math.MinInt64 {
		return nil, corruptf("axis attribute is missing")
	}
	x := ts[0]
	r := len(x.dims)
	if r == 0 {
		return nil, corruptf("Concat of scalars")
	}
	a, err := normAxis(axis, r)
	if err != nil {
		return nil, err
	}
	dims := slices.Clone(x.dims)
	dt := x.dtype
	for k, t := range ts[1:] {
		if len(t.dims) != r {
			return nil, corruptf("input %d has shape %v, input 0 has %v", k+1, t.dims, x.dims)
		}
		for j := range r {
			if j != a && t.dims[j] != dims[j] {
				return nil, corruptf("input %d has shape %v, input 0 has %v", k+1, t.dims, x.dims)
			}
		}
		dims[a] += t.dims[a]
		if dims[a] > maxDimValue {
			return nil, unsupportedf("concatenation too large")
		}
		if t.isFloat() && !isFloatType(dt) {
			dt = t.dtype
		}
	}
	out, err := b.alloc(dt, dims)
	if err != nil {
		return nil, err
	}
	outer, inner := product(dims[:a]), product(dims[a+1:])
	o := 0
	for i := range outer {
		for _, t := range ts {
			chunk := t.dims[a] * inner
			for k := range chunk {
				copyElem(out, o, t, i*chunk+k)
				o++
			}
		}
	}
	return out, nil
}

func (b *builder) sliceConst(ins []*value, x *tensor) (*tensor, error) {
	r := len(x.dims)
	starts, ends, steps, _, err := b.sliceParams(ins, r)
	if err != nil {
		return nil, err
	}
	st := rowStrides(x.dims)
	dims := make([]int, r)
	sst := make([]int, r)
	base := 0
	for a := range r {
		first, count := sliceRange(starts[a], ends[a], steps[a], x.dims[a])
		dims[a] = count
		if count > 0 {
			base += first * st[a]
			// A step beyond the dim only ever takes one element.
			step := max(min(steps[a], int64(x.dims[a])), -int64(x.dims[a]))
			sst[a] = int(step) * st[a]
		}
	}
	out, err := b.alloc(x.dtype, dims)
	if err != nil {
		return nil, err
	}
	forEach(dims, [][]int{sst}, []int{base}, func(o int, offs []int) { copyElem(out, o, x, offs[0]) })
	return out, nil
}

func (b *builder) splitConst(ins []*value, x *tensor) ([]*tensor, error) {
	axis, err := b.n.getInt("axis", 0)
	if err != nil {
		return nil, err
	}
	if len(x.dims) == 0 {
		return nil, corruptf("Split of a scalar")
	}
	a, err := normAxis(axis, len(x.dims))
	if err != nil {
		return nil, err
	}
	sizes, err := b.splitSizes(ins, x.dims[a])
	if err != nil {
		return nil, err
	}
	outs := make([]*tensor, len(sizes))
	outer, D, inner := product(x.dims[:a]), x.dims[a], product(x.dims[a+1:])
	off := 0
	for k, s := range sizes {
		dims := slices.Clone(x.dims)
		dims[a] = s
		t, err := b.alloc(x.dtype, dims)
		if err != nil {
			return nil, err
		}
		o := 0
		for i := range outer {
			for j := range s * inner {
				copyElem(t, o, x, (i*D+off)*inner+j)
				o++
			}
		}
		outs[k] = t
		off += s
	}
	return outs, nil
}

func (b *builder) constantOfShape(shape *tensor) (*tensor, error) {
	fill := &tensor{dtype: dtFloat, f: []float32{0}}
	if tp, ok, err := b.n.getTensor("value"); err != nil {
		return nil, err
	} else if ok {
		if fill, err = b.decodeTensor(tp, "attribute value"); err != nil {
			return nil, err
		}
		if fill.size() != 1 {
			return nil, corruptf("value has %d elements, want 1", fill.size())
		}
	}
	dims, ok := dimsOf(shape.ints())
	if !ok {
		return nil, corruptf("shape %v has an invalid dimension", shape.ints())
	}
	out, err := b.alloc(fill.dtype, dims)
	if err != nil {
		return nil, err
	}
	for k := range out.size() {
		copyElem(out, k, fill, 0)
	}
	return out, nil
}

func (b *builder) rangeConst(ts []*tensor) (*tensor, error) {
	if len(ts) != 3 || ts[0] == nil || ts[1] == nil || ts[2] == nil {
		return nil, corruptf("Range wants start, limit and delta")
	}
	for _, t := range ts {
		if t.size() != 1 {
			return nil, corruptf("Range inputs must be scalars, got %v", t.dims)
		}
	}
	dt := ts[0].dtype
	var n uint64
	if isFloatType(dt) {
		start, limit, delta := ts[0].float(0), ts[1].float(0), ts[2].float(0)
		c := math.Ceil((limit - start) / delta)
		if delta == 0 || c != c {
			return nil, corruptf("Range(%g, %g, %g) is not defined", start, limit, delta)
		}
		if c > maxTensorElements {
			return nil, unsupportedf("Range(%g, %g, %g) is too long", start, limit, delta)
		}
		if c > 0 {
			n = uint64(c)
		}
	} else {
		start, limit, delta := ts[0].int(0), ts[1].int(0), ts[2].int(0)
		// Count in uint64 so that the distance cannot overflow.
		switch {
		case delta == 0:
			return nil, corruptf("Range delta is 0")
		case delta > 0 && limit > start:
			diff, d := uint64(limit)-uint64(start), uint64(delta)
			n = diff / d
			if diff%d != 0 {
				n++
			}
		case delta < 0 && limit < start:
			diff, d := uint64(start)-uint64(limit), uint64(-delta)
			n = diff / d
			if diff%d != 0 {
				n++
			}
		}
		if n > maxTensorElements {
			return nil, unsupportedf("Range(%d, %d, %d) is too long", start, limit, delta)
		}
	}
	out, err := b.alloc(dt, []int{int(n)})
	if err != nil {
		return nil, err
	}
	for k := range int(n) {
		if out.isFloat() {
			out.f[k] = float32(ts[0].float(0) + float64(k)*ts[2].float(0))
		} else {
			out.i[k] = wrapInt(ts[0].int(0)+int64(k)*ts[2].int(0), dt)
		}
	}
	return out, nil
}

func (b *builder) tile(x, rep *tensor) (*tensor, error) {
	reps := rep.ints()
	r := len(x.dims)
	if len(reps) != r {
		return nil, corruptf("repeats %v do not fit rank %d", reps, r)
	}
	dims := make([]int, r)
	for k, v := range reps {
		if v < 0 || v > maxDimValue {
			return nil, corruptf("repeats %v out of range", reps)
		}
		d := int64(x.dims[k]) * v
		if d > maxDimValue {
			return nil, unsupportedf("Tile repeats %v of %v are too large", reps, x.dims)
		}
		dims[k] = int(d)
	}
	out, err := b.alloc(x.dtype, dims)
	if err != nil {
		return nil, err
	}
	st := rowStrides(x.dims)
	idx := make([]int, r)
	for o := range out.size() {
		off := 0
		for a := range r {
			off += (idx[a] % x.dims[a]) * st[a]
		}
		copyElem(out, o, x, off)
		for a := r - 1; a >= 0; a-- {
			if idx[a]++; idx[a] < dims[a] {
				break
			}
			idx[a] = 0
		}
	}
	return out, nil
}

func (b *builder) where(c, x, y *tensor) (*tensor, error) {
	dims, err := broadcastShape(c.dims, x.dims)
	if err != nil {
		return nil, err
	}
	if dims, err = broadcastShape(dims, y.dims); err != nil {
		return nil, err
	}
	dt := x.dtype
	if y.isFloat() && !x.isFloat() {
		dt = y.dtype
	}
	out, err := b.alloc(dt, dims)
	if err != nil {
		return nil, err
	}
	strides := [][]int{bstrides(c.dims, dims), bstrides(x.dims, dims), bstrides(y.dims, dims)}
	forEach(dims, strides, nil, func(o int, offs []int) {
		if c.float(offs[0]) != 0 {
			copyElem(out, o, x, offs[1])
		} else {
			copyElem(out, o, y, offs[2])
		}
	})
	return out, nil
}

func b2i(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

// binary evaluates an elementwise operator with numpy broadcasting.
func (b *builder) binary(op string, x, y *tensor) (*tensor, error) {
	dims, err := broadcastShape(x.dims, y.dims)
	if err != nil {
		return nil, err
	}
	isFloat := x.isFloat() || y.isFloat()
	dt := x.dtype
	if isFloat && !x.isFloat() {
		dt = y.dtype
	}
	switch op {
	case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor":
		dt = dtBool
	}
	out, err := b.alloc(dt, dims)
	if err != nil {
		return nil, err
	}
	var divZero bool
	strides := [][]int{bstrides(x.dims, dims), bstrides(y.dims, dims)}
	forEach(dims, strides, nil, func(o int, offs []int) {
		switch op {
		case "And", "Or", "Xor":
			out.i[o] = logicalBinary(op, x.float(offs[0]) != 0, y.float(offs[1]) != 0)
		default:
			if isFloat {
				floatBinary(op, float32(x.float(offs[0])), float32(y.float(offs[1])), out, o)
				return
			}
			v, ok := intBinary(op, x.i[offs[0]], y.i[offs[1]])
			if !ok {
				divZero = true
				return
			}
			out.i[o] = wrapInt(v, dt)
		}
	})
	if divZero {
		return nil, corruptf("integer division by zero")
	}
	return out, nil
}

// logicalBinary is And, Or or Xor of two truth values, as a bool element.
func logicalBinary(op string, p, q bool) int64 {
	switch op {
	case "And":
		return b2i(p && q)
	case "Or":
		return b2i(p || q)
	}
	return b2i(p != q)
}

// floatBinary stores element o of a float operator: arithmetic in out.f,
// comparisons (out is a bool tensor) in out.i.
func floatBinary(op string, p, q float32, out *tensor, o int) {
	switch op {
	case "Add", "Sum":
		out.f[o] = p + q
	case "Sub":
		out.f[o] = p - q
	case "Mul":
		out.f[o] = p * q
	case "Div":
		out.f[o] = p / q
	case "Min":
		out.f[o] = float32(math.Min(float64(p), float64(q)))
	case "Max":
		out.f[o] = float32(math.Max(float64(p), float64(q)))
	case "Equal":
		out.i[o] = b2i(p == q)
	case "Less":
		out.i[o] = b2i(p < q)
	case "Greater":
		out.i[o] = b2i(p > q)
	case "LessOrEqual":
		out.i[o] = b2i(p <= q)
	case "GreaterOrEqual":
		out.i[o] = b2i(p >= q)
	}
}

// intBinary is one element of an integer operator, before it is wrapped
// to the output type; ok is false for a division by zero.
func intBinary(op string, p, q int64) (v int64, ok bool) {
	switch op {
	case "Add", "Sum":
		v = p + q
	case "Sub":
		v = p - q
	case "Mul":
		v = p * q
	case "Div":
		if q == 0 {
			return 0, false
		}
		v = p / q // Go truncates toward zero, as ONNX integer Div
	case "Min":
		v = min(p, q)
	case "Max":
		v = max(p, q)
	case "Equal":
		v = b2i(p == q)
	case "Less":
		v = b2i(p < q)
	case "Greater":
		v = b2i(p > q)
	case "LessOrEqual":
		v = b2i(p <= q)
	case "GreaterOrEqual":
		v = b2i(p >= q)
	}
	return v, true
}

func (b *builder) unaryOp(op string, x *tensor) (*tensor, error) {
	dt := x.dtype
	if op == "Not" {
		dt = dtBool
	}
	out, err := b.alloc(dt, x.dims)
	if err != nil {
		return nil, err
	}
	for k := range x.size() {
		if op == "Not" {
			out.i[k] = b2i(x.float(k) == 0)
			continue
		}
		if x.isFloat() {
			v := float64(x.f[k])
			switch op {
			case "Neg":
				v = -v
			case "Abs":
				v = math.Abs(v)
			case "Floor":
				v = math.Floor(v)
			case "Ceil":
				v = math.Ceil(v)
			case "Sqrt":
				v = math.Sqrt(v)
			case "Reciprocal":
				v = 1 / v
			case "Relu":
				v = max(v, 0)
			case "Sign":
				switch {
				case v > 0:
					v = 1
				case v < 0:
					v = -1
				}
			}
			out.f[k] = float32(v)
			continue
		}
		v := x.i[k]
		switch op {
		case "Neg":
			v = -v
		case "Abs":
			if v < 0 {
				v = -v
			}
		case "Relu":
			v = max(v, 0)
		case "Sign":
			v = int64(min(max(v, -1), 1))
		case "Sqrt", "Reciprocal":
			return nil, corruptf("%s of an integer tensor", op)
		}
		out.i[k] = wrapInt(v, dt)
	}
	return out, nil
}

// reduceDims resolves the axes (an attribute, or from opset 13 for
// ReduceSum and 18 for the others an input), keepdims and
// noop_with_empty_axes of a Reduce* node on a tensor of dims. kept is dims
// with the reduced axes set to 1, out the output dims (without them when
// keepdims=0) and count how many elements each output reduces. No axes
// means every axis, unless noop_with_empty_axes is set: then no axis is
// reduced and each element is reduced on its own: ReduceSumSquare squares
// it, ReduceL1 and ReduceL2 take its absolute value, ReduceLogSum its log,
// the others (ReduceLogSumExp too) pass it through, as the ONNX
// specification has it since onnx/onnx#7394 (and ONNX Runtime since
// microsoft/onnxruntime#26436).
func (b *builder) reduceDims(ins []*value, dims []int) (kept, out []int, count int, err error) {
	axes, ok, err := b.reduceAxes(ins)
	if err != nil {
		return nil, nil, 0, err
	}
	keep, err := b.n.getInt("keepdims", 1)
	if err != nil {
		return nil, nil, 0, err
	}
	noop, err := b.n.getInt("noop_with_empty_axes", 0)
	if err != nil {
		return nil, nil, 0, err
	}
	r := len(dims)
	red := make([]bool, r)
	if (!ok || len(axes) == 0) && noop == 0 {
		for a := range red {
			red[a] = true
		}
	}
	for _, a := range axes {
		ax, err := normAxis(a, r)
		if err != nil {
			return nil, nil, 0, err
		}
		if red[ax] {
			return nil, nil, 0, corruptf("axes %v repeat axis %d", axes, a)
		}
		red[ax] = true
	}
	kept, out, count = make([]int, r), []int{}, 1
	for a, d := range dims {
		switch {
		case !red[a]:
			kept[a] = d
			out = append(out, d)
		case keep != 0:
			kept[a] = 1
			out = append(out, 1)
			count *= d
		default:
			kept[a] = 1
			count *= d
		}
	}
	return kept, out, count, nil
}

// reduce folds the Reduce* operators. Float tensors reduce in float64.
// Integer tensors reduce exactly in int64 (wrapping to their type like the
// other integer operators), except ReduceL2, ReduceLogSum and
// ReduceLogSumExp, which reduce in float64 and truncate toward zero.
func (b *builder) reduce(ins []*value, x *tensor) (*tensor, error) {
	op := b.n.opType
	kept, outDims, count, err := b.reduceDims(ins, x.dims)
	if err != nil {
		return nil, err
	}
	out, err := b.alloc(x.dtype, outDims)
	if err != nil {
		return nil, err
	}
	n := out.size()
	if err := b.mem.charge(16*int64(n), "the reduction's sums"); err != nil {
		return nil, err
	}
	switch {
	case out.isFloat():
		for k, v := range reduceFloat(op, x, kept, count, n) {
			out.f[k] = float32(v)
		}
	case op == "ReduceL2" || op == "ReduceLogSum" || op == "ReduceLogSumExp":
		for k, v := range reduceFloat(op, x, kept, count, n) {
			out.i[k] = wrapInt(floatToInt(v), out.dtype)
		}
	default:
		reduceInt(op, x, kept, count, out)
	}
	return out, nil
}

// reduceFloat reduces x (of any type) in float64 into n values: element o
// of x goes to the output at offset bstrides(kept) of its index.
func reduceFloat(op string, x *tensor, kept []int, count, n int) []float64 {
	// acc is the running sum, product or extreme; for ReduceLogSumExp the
	// sum of exp(v-m) with m the running maximum, so exp cannot overflow.
	acc, m := make([]float64, n), make([]float64, n)
	for k := range acc {
		switch op {
		case "ReduceProd":
			acc[k] = 1
		case "ReduceMax":
			acc[k] = math.Inf(-1)
		case "ReduceMin":
			acc[k] = math.Inf(1)
		case "ReduceLogSumExp":
			m[k] = math.Inf(-1)
		}
	}
	forEach(x.dims, [][]int{bstrides(kept, x.dims)}, nil, func(o int, offs []int) {
		j, v := offs[0], x.float(o)
		switch op {
		case "ReduceSum", "ReduceMean", "ReduceLogSum":
			acc[j] += v
		case "ReduceProd":
			acc[j] *= v
		case "ReduceMax":
			acc[j] = math.Max(acc[j], v)
		case "ReduceMin":
			acc[j] = math.Min(acc[j], v)
		case "ReduceL1":
			acc[j] += math.Abs(v)
		case "ReduceL2", "ReduceSumSquare":
			acc[j] += v * v
		case "ReduceLogSumExp":
			switch {
			case v > m[j]:
				acc[j] = acc[j]*math.Exp(m[j]-v) + 1
				m[j] = v
			case v == m[j]: // also for two infinities, where v-m is NaN
				acc[j]++
			default:
				acc[j] += math.Exp(v - m[j])
			}
		}
	})
	for k, v := range acc {
		switch op {
		case "ReduceMean":
			acc[k] = v / float64(count)
		case "ReduceL2":
			acc[k] = math.Sqrt(v)
		case "ReduceLogSum":
			acc[k] = math.Log(v)
		case "ReduceLogSumExp":
			acc[k] = math.Log(v) + m[k]
		}
	}
	return acc
}

// reduceInt reduces the integer tensor x into out exactly (ReduceMean
// truncates toward zero).
func reduceInt(op string, x *tensor, kept []int, count int, out *tensor) {
	acc := make([]int64, len(out.i))
	for k := range acc {
		switch op {
		case "ReduceProd":
			acc[k] = 1
		case "ReduceMax":
			acc[k] = math.MinInt64
		case "ReduceMin":
			acc[k] = math.MaxInt64
		}
	}
	forEach(x.dims, [][]int{bstrides(kept, x.dims)}, nil, func(o int, offs []int) {
		j, v := offs[0], x.i[o]
		switch op {
		case "ReduceSum", "ReduceMean":
			acc[j] += v
		case "ReduceProd":
			acc[j] *= v
		case "ReduceMax":
			acc[j] = max(acc[j], v)
		case "ReduceMin":
			acc[j] = min(acc[j], v)
		case "ReduceL1":
			if v < 0 {
				v = -v
			}
			acc[j] += v
		case "ReduceSumSquare":
			acc[j] += v * v
		}
	})
	for k, v := range acc {
		if op == "ReduceMean" && count > 0 {
			v /= int64(count)
		}
		out.i[k] = wrapInt(v, out.dtype)
	}
}
