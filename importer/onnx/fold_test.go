package onnx

import (
	"errors"
	"math"
	"slices"
	"testing"
)

func ti(dims []int, vals ...int64) *tensor { return &tensor{dtype: dtInt64, dims: dims, i: vals} }

func tf(dims []int, vals ...float32) *tensor { return &tensor{dtype: dtFloat, dims: dims, f: vals} }

// runFold evaluates one node on constant inputs (nil = omitted input).
func runFold(opset int64, n pb, ins ...*tensor) ([]*tensor, error) {
	mem := newBudget(0)
	np, err := (&parser{mem: mem}).node(n)
	if err != nil {
		return nil, err
	}
	b := &builder{opset: opset, mem: mem, vals: map[string]*value{}, n: np}
	vals := make([]*value, len(ins))
	for k, t := range ins {
		if t != nil {
			vals[k] = &value{kind: vConst, t: t}
		}
	}
	return b.evalConst(vals, ins)
}

func TestFold(t *testing.T) {
	in3 := io("a", "b", "c")
	cases := []struct {
		name  string
		opset int64
		node  pb
		ins   []*tensor
		want  []*tensor
	}{
		{"gather_scalar_negative", 13, node("Gather", "", in3, io("y")),
			[]*tensor{ti([]int{3}, 10, 20, 30), ti(nil, -1)}, []*tensor{ti(nil, 30)}},
		{"gather_axis1", 13, node("Gather", "", in3, io("y"), aInt("axis", 1)),
			[]*tensor{ti([]int{2, 3}, 0, 1, 2, 3, 4, 5), ti([]int{2}, 2, 0)}, []*tensor{ti([]int{2, 2}, 2, 0, 5, 3)}},
		{"concat", 13, node("Concat", "", in3, io("y"), aInt("axis", -1)),
			[]*tensor{ti([]int{2}, 1, 2), ti([]int{1}, 3)}, []*tensor{ti([]int{3}, 1, 2, 3)}},
		{"concat_axis1", 13, node("Concat", "", in3, io("y"), aInt("axis", 1)),
			[]*tensor{tf([]int{2, 1}, 1, 2), tf([]int{2, 2}, 3, 4, 5, 6)}, []*tensor{tf([]int{2, 3}, 1, 3, 4, 2, 5, 6)}},
		{"reshape_minus1", 13, node("Reshape", "", in3, io("y")),
			[]*tensor{ti([]int{2, 3}, 1, 2, 3, 4, 5, 6), ti([]int{2}, 3, -1)}, []*tensor{ti([]int{3, 2}, 1, 2, 3, 4, 5, 6)}},
		{"reshape_zero", 13, node("Reshape", "", in3, io("y")),
			[]*tensor{ti([]int{2, 3}, 1, 2, 3, 4, 5, 6), ti([]int{2}, 0, -1)}, []*tensor{ti([]int{2, 3}, 1, 2, 3, 4, 5, 6)}},
		{"transpose", 13, node("Transpose", "", in3, io("y"), aInts("perm", 1, 0)),
			[]*tensor{ti([]int{2, 3}, 1, 2, 3, 4, 5, 6)}, []*tensor{ti([]int{3, 2}, 1, 4, 2, 5, 3, 6)}},
		{"transpose_default_reverses", 13, node("Transpose", "", in3, io("y")),
			[]*tensor{ti([]int{1, 2, 2}, 1, 2, 3, 4)}, []*tensor{ti([]int{2, 2, 1}, 1, 3, 2, 4)}},
		// torch's F.pad subgraph reverses the pad pairs with this Slice.
		{"slice_reverse_torch", 13, node("Slice", "", io("x", "s", "e", "a", "st"), io("y")),
			[]*tensor{ti([]int{4, 2}, 0, 0, 1, 1, 2, 2, 3, 3), ti([]int{1}, -1), ti([]int{1}, math.MinInt64+1), ti([]int{1}, 0), ti([]int{1}, -1)},
			[]*tensor{ti([]int{4, 2}, 3, 3, 2, 2, 1, 1, 0, 0)}},
		{"slice_steps", 13, node("Slice", "", io("x", "s", "e", "a", "st"), io("y")),
			[]*tensor{ti([]int{2, 5}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9), ti([]int{1}, 1), ti([]int{1}, math.MaxInt64), ti([]int{1}, -1), ti([]int{1}, 2)},
			[]*tensor{ti([]int{2, 2}, 1, 3, 6, 8)}},
		{"slice_opset9_attrs", 9, node("Slice", "", io("x"), io("y"), aInts("starts", -2), aInts("ends", 100)),
			[]*tensor{ti([]int{4}, 1, 2, 3, 4)}, []*tensor{ti([]int{2}, 3, 4)}},
		{"slice_empty", 13, node("Slice", "", io("x", "s", "e"), io("y")),
			[]*tensor{ti([]int{4}, 1, 2, 3, 4), ti([]int{1}, 3), ti([]int{1}, 1)}, []*tensor{ti([]int{0})}},
		{"constantofshape_int", 13, node("ConstantOfShape", "", in3, io("y"), aTensor("value", tensorI64("", []int{1}, []int64{7}, true))),
			[]*tensor{ti([]int{2}, 2, 2)}, []*tensor{ti([]int{2, 2}, 7, 7, 7, 7)}},
		{"constantofshape_default", 13, node("ConstantOfShape", "", in3, io("y")),
			[]*tensor{ti([]int{1}, 3)}, []*tensor{tf([]int{3}, 0, 0, 0)}},
		{"range_int", 13, node("Range", "", in3, io("y")),
			[]*tensor{ti(nil, 1), ti(nil, 10), ti(nil, 3)}, []*tensor{ti([]int{3}, 1, 4, 7)}},
		{"range_negative", 13, node("Range", "", in3, io("y")),
			[]*tensor{ti(nil, 5), ti(nil, 0), ti(nil, -2)}, []*tensor{ti([]int{3}, 5, 3, 1)}},
		{"range_float", 13, node("Range", "", in3, io("y")),
			[]*tensor{tf(nil, 0), tf(nil, 1), tf(nil, 0.25)}, []*tensor{tf([]int{4}, 0, 0.25, 0.5, 0.75)}},
		{"expand", 13, node("Expand", "", in3, io("y")),
			[]*tensor{ti([]int{3, 1}, 1, 2, 3), ti([]int{3}, 2, 1, 2)}, []*tensor{ti([]int{2, 3, 2}, 1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3)}},
		{"tile", 13, node("Tile", "", in3, io("y")),
			[]*tensor{ti([]int{1, 2}, 1, 2), ti([]int{2}, 2, 2)}, []*tensor{ti([]int{2, 4}, 1, 2, 1, 2, 1, 2, 1, 2)}},
		{"where", 13, node("Where", "", in3, io("y")),
			[]*tensor{{dtype: dtBool, dims: []int{3}, i: []int64{1, 0, 1}}, ti([]int{3}, 1, 2, 3), ti(nil, -1)}, []*tensor{ti([]int{3}, 1, -1, 3)}},
		{"equal_broadcast", 13, node("Equal", "", in3, io("y")),
			[]*tensor{ti([]int{2, 1}, 1, 2), ti([]int{3}, 1, 2, 3)}, []*tensor{{dtype: dtBool, dims: []int{2, 3}, i: []int64{1, 0, 0, 0, 1, 0}}}},
		{"add_broadcast", 13, node("Add", "", in3, io("y")),
			[]*tensor{ti([]int{2, 1}, 10, 20), ti([]int{3}, 1, 2, 3)}, []*tensor{ti([]int{2, 3}, 11, 12, 13, 21, 22, 23)}},
		{"div_int_truncates", 13, node("Div", "", in3, io("y")),
			[]*tensor{ti([]int{2}, -7, 7), ti(nil, 2)}, []*tensor{ti([]int{2}, -3, 3)}},
		{"mul_sub_float", 13, node("Sub", "", in3, io("y")),
			[]*tensor{tf([]int{2}, 1.5, 2), tf([]int{1}, 0.5)}, []*tensor{tf([]int{2}, 1, 1.5)}},
		{"int32_wraps", 13, node("Mul", "", in3, io("y")),
			[]*tensor{{dtype: dtInt32, dims: []int{1}, i: []int64{1 << 30}}, {dtype: dtInt32, dims: []int{1}, i: []int64{4}}},
			[]*tensor{{dtype: dtInt32, dims: []int{1}, i: []int64{0}}}},
		{"cast_float_to_int64", 13, node("Cast", "", in3, io("y"), aInt("to", dtInt64)),
			[]*tensor{tf([]int{3}, 1.7, -1.7, 0.5)}, []*tensor{ti([]int{3}, 1, -1, 0)}},
		{"cast_float_to_bool", 13, node("Cast", "", in3, io("y"), aInt("to", dtBool)),
			[]*tensor{tf([]int{3}, 0.5, 0, -2)}, []*tensor{{dtype: dtBool, dims: []int{3}, i: []int64{1, 0, 1}}}},
		{"cast_int_to_int8_wraps", 13, node("Cast", "", in3, io("y"), aInt("to", dtInt8)),
			[]*tensor{ti([]int{2}, 300, -129)}, []*tensor{{dtype: dtInt8, dims: []int{2}, i: []int64{44, 127}}}},
		{"cast_int_to_float", 13, node("Cast", "", in3, io("y"), aInt("to", dtFloat)),
			[]*tensor{ti([]int{2}, 3, -4)}, []*tensor{tf([]int{2}, 3, -4)}},
		{"shape_start_end", 15, node("Shape", "", in3, io("y"), aInt("start", 1), aInt("end", -1)),
			[]*tensor{tf([]int{2, 3, 4, 5})}, []*tensor{ti([]int{2}, 3, 4)}},
		{"size", 13, node("Size", "", in3, io("y")), []*tensor{tf([]int{2, 3})}, []*tensor{ti(nil, 6)}},
		{"squeeze_all", 11, node("Squeeze", "", in3, io("y")), []*tensor{ti([]int{1, 2, 1}, 4, 5)}, []*tensor{ti([]int{2}, 4, 5)}},
		{"unsqueeze_input", 13, node("Unsqueeze", "", in3, io("y")),
			[]*tensor{ti([]int{2}, 4, 5), ti([]int{2}, 0, -1)}, []*tensor{ti([]int{1, 2, 1}, 4, 5)}},
		{"flatten_axis2", 13, node("Flatten", "", in3, io("y"), aInt("axis", 2)),
			[]*tensor{tf([]int{1, 2, 1, 2}, 1, 2, 3, 4)}, []*tensor{tf([]int{2, 2}, 1, 2, 3, 4)}},
		{"reduceprod_attr", 13, node("ReduceProd", "", in3, io("y"), aInts("axes", 1), aInt("keepdims", 0)),
			[]*tensor{ti([]int{2, 3}, 1, 2, 3, 4, 5, 6)}, []*tensor{ti([]int{2}, 6, 120)}},
		{"reducesum_input", 13, node("ReduceSum", "", in3, io("y")),
			[]*tensor{tf([]int{2, 2}, 1, 2, 3, 4), ti([]int{1}, 0)}, []*tensor{tf([]int{1, 2}, 4, 6)}},
		{"reducemax_all", 13, node("ReduceMax", "", in3, io("y"), aInt("keepdims", 0)),
			[]*tensor{ti([]int{2, 2}, 1, 7, 3, 4)}, []*tensor{ti(nil, 7)}},
		{"reducemean_opset18_input", 18, node("ReduceMean", "", in3, io("y")),
			[]*tensor{tf([]int{2, 2}, 1, 2, 3, 4), ti([]int{1}, 1)}, []*tensor{tf([]int{2, 1}, 1.5, 3.5)}},
		{"split_opset11", 11, node("Split", "", in3, io("p", "q"), aInts("split", 2, 4)),
			[]*tensor{ti([]int{6}, 1, 2, 3, 4, 5, 6)}, []*tensor{ti([]int{2}, 1, 2), ti([]int{4}, 3, 4, 5, 6)}},
		{"split_axis1_equal", 13, node("Split", "", in3, io("p", "q"), aInt("axis", 1)),
			[]*tensor{ti([]int{2, 2}, 1, 2, 3, 4)}, []*tensor{ti([]int{2, 1}, 1, 3), ti([]int{2, 1}, 2, 4)}},
		{"max_variadic", 13, node("Max", "", in3, io("y")),
			[]*tensor{ti([]int{2}, 1, 5), ti([]int{2}, 4, 2), ti(nil, 3)}, []*tensor{ti([]int{2}, 4, 5)}},
		{"min_float", 13, node("Min", "", in3, io("y")),
			[]*tensor{tf([]int{2}, 1, 5), tf([]int{2}, 4, 2)}, []*tensor{tf([]int{2}, 1, 2)}},
		{"sum", 13, node("Sum", "", in3, io("y")),
			[]*tensor{ti([]int{2}, 1, 5), ti([]int{2}, 4, 2), ti([]int{2}, 1, 1)}, []*tensor{ti([]int{2}, 6, 8)}},
		{"neg", 13, node("Neg", "", in3, io("y")), []*tensor{ti([]int{2}, 1, -5)}, []*tensor{ti([]int{2}, -1, 5)}},
		{"sqrt", 13, node("Sqrt", "", in3, io("y")), []*tensor{tf([]int{2}, 4, 9)}, []*tensor{tf([]int{2}, 2, 3)}},
		{"not", 13, node("Not", "", in3, io("y")), []*tensor{{dtype: dtBool, dims: []int{2}, i: []int64{1, 0}}},
			[]*tensor{{dtype: dtBool, dims: []int{2}, i: []int64{0, 1}}}},
		{"constant_value_floats", 13, node("Constant", "", nil, io("y"), aFloats("value_floats", 1, 2)), nil, []*tensor{tf([]int{2}, 1, 2)}},
		{"constant_value_int", 13, node("Constant", "", nil, io("y"), aInt("value_int", 5)), nil, []*tensor{ti(nil, 5)}},
		{"identity", 13, node("Identity", "", in3, io("y")), []*tensor{ti([]int{1}, 5)}, []*tensor{ti([]int{1}, 5)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runFold(tc.opset, tc.node, tc.ins...)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d outputs, want %d", len(got), len(tc.want))
			}
			for k, w := range tc.want {
				g := got[k]
				if g.dtype != w.dtype || !slices.Equal(g.dims, w.dims) || !slices.Equal(g.i, w.i) || !slices.Equal(g.f, w.f) {
					t.Errorf("output %d = %s %v %v, want %s %v %v", k, dtName(g.dtype), g.dims, vals(g), dtName(w.dtype), w.dims, vals(w))
				}
			}
		})
	}
}

func vals(t *tensor) any {
	if t.isFloat() {
		return t.f
	}
	return t.i
}

func TestFoldErrors(t *testing.T) {
	in3 := io("a", "b", "c")
	cases := []struct {
		name string
		node pb
		ins  []*tensor
		want error
	}{
		{"gather_out_of_range", node("Gather", "", in3, io("y")), []*tensor{ti([]int{2}, 1, 2), ti(nil, 2)}, ErrCorrupt},
		{"reshape_mismatch", node("Reshape", "", in3, io("y")), []*tensor{ti([]int{3}, 1, 2, 3), ti([]int{1}, 2)}, ErrCorrupt},
		{"reshape_two_minus1", node("Reshape", "", in3, io("y")), []*tensor{ti([]int{4}, 1, 2, 3, 4), ti([]int{2}, -1, -1)}, ErrCorrupt},
		{"transpose_bad_perm", node("Transpose", "", in3, io("y"), aInts("perm", 0, 0)), []*tensor{ti([]int{1, 1}, 1)}, ErrCorrupt},
		{"int_div_zero", node("Div", "", in3, io("y")), []*tensor{ti([]int{1}, 1), ti(nil, 0)}, ErrCorrupt},
		{"no_broadcast", node("Add", "", in3, io("y")), []*tensor{ti([]int{2}, 1, 2), ti([]int{3}, 1, 2, 3)}, ErrCorrupt},
		{"constantofshape_over_budget", node("ConstantOfShape", "", in3, io("y")), []*tensor{ti([]int{2}, 1<<20, 1<<8)}, ErrUnsupported},
		{"constantofshape_huge", node("ConstantOfShape", "", in3, io("y")), []*tensor{ti([]int{3}, 1<<20, 1<<20, 1<<20)}, ErrUnsupported},
		{"constantofshape_negative", node("ConstantOfShape", "", in3, io("y")), []*tensor{ti([]int{1}, -1)}, ErrCorrupt},
		{"range_huge", node("Range", "", in3, io("y")), []*tensor{ti(nil, math.MinInt64), ti(nil, math.MaxInt64), ti(nil, 1)}, ErrUnsupported},
		{"range_zero_delta", node("Range", "", in3, io("y")), []*tensor{tf(nil, 0), tf(nil, 1), tf(nil, 0)}, ErrCorrupt},
		{"squeeze_non_one", node("Squeeze", "", in3, io("y"), aInts("axes", 0)), []*tensor{ti([]int{2}, 1, 2)}, ErrCorrupt},
		{"unknown_op", node("Einsum", "", in3, io("y")), []*tensor{ti([]int{2}, 1, 2)}, ErrUnsupported},
		{"cast_to_string", node("Cast", "", in3, io("y"), aInt("to", dtString)), []*tensor{ti([]int{2}, 1, 2)}, ErrUnsupported},
		{"attr_wrong_type", node("Gather", "", in3, io("y"), aFloat("axis", 1)), []*tensor{ti([]int{2}, 1, 2), ti(nil, 0)}, ErrCorrupt},
		{"split_bad_sizes", node("Split", "", in3, io("p", "q"), aInts("split", 1, 1)), []*tensor{ti([]int{3}, 1, 2, 3)}, ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runFold(11, tc.node, tc.ins...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHalf(t *testing.T) {
	for _, c := range []struct {
		h uint16
		f float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x3555, 0.333251953125}, {0x0001, 5.960464477539063e-08}, {0x03ff, 6.097555160522461e-05},
		{0x7bff, 65504}, {0x8000, float32(math.Copysign(0, -1))}, {0x7c00, float32(math.Inf(1))}} {
		if got := halfToFloat(c.h); math.Float32bits(got) != math.Float32bits(c.f) {
			t.Errorf("halfToFloat(%#04x) = %g, want %g", c.h, got, c.f)
		}
	}
	if f := halfToFloat(0x7e00); f == f {
		t.Errorf("halfToFloat(NaN) = %g", f)
	}
}

func TestSliceRange(t *testing.T) {
	for _, c := range []struct {
		start, end, step int64
		dim              int
		first, count     int
	}{
		{0, math.MaxInt64, 1, 5, 0, 5},
		{1, math.MaxInt64, 2, 5, 1, 2},
		{0, math.MaxInt64, math.MaxInt64, 5, 0, 1},
		{-1, math.MinInt64, -1, 5, 4, 5},
		{-1, math.MinInt64, math.MinInt64, 5, 4, 1},
		{math.MinInt64, math.MaxInt64, 3, 7, 0, 3},
		{3, 1, 1, 5, 3, 0},
		{1, 3, -1, 5, 1, 0},
		{10, -10, -4, 5, 4, 2},
		{0, 1, 1, 0, 0, 0},
		{0, -1, -1, 0, -1, 0},
	} {
		f, n := sliceRange(c.start, c.end, c.step, c.dim)
		if n != c.count || (n > 0 && f != c.first) {
			t.Errorf("sliceRange(%d, %d, %d, %d) = %d, %d; want %d, %d", c.start, c.end, c.step, c.dim, f, n, c.first, c.count)
		}
	}
}
