package onnx

import (
	"errors"
	"math"
	"slices"
	"testing"
)

// TestFoldReduce covers the Reduce* folders, ReduceL1, ReduceL2,
// ReduceLogSum, ReduceLogSumExp and ReduceSumSquare in particular, across
// the opset change: axes an attribute up to opset 17, an optional input
// from 18 (for ReduceSum from 13), where noop_with_empty_axes also begins.
func TestFoldReduce(t *testing.T) {
	in2 := io("x", "axes")
	x := tf([]int{2, 3}, 1, -2, 3, -4, 5, -6)
	pos := tf([]int{2, 2}, 1, 2, 3, 4)
	f32 := func(v float64) float32 { return float32(v) }
	sqrt, log := math.Sqrt, math.Log
	ninf := float32(math.Inf(-1))
	cases := []struct {
		name  string
		opset int64
		node  pb
		ins   []*tensor
		want  *tensor
	}{
		// Axes as an attribute (opset 13..17), keepdims 1 by default.
		{"l1_attr_axes", 13, node("ReduceL1", "", io("x"), io("y"), aInts("axes", 1)),
			[]*tensor{x}, tf([]int{2, 1}, 6, 15)},
		{"l1_attr_axes_opset17_nokeep", 17, node("ReduceL1", "", io("x"), io("y"), aInts("axes", 1), aInt("keepdims", 0)),
			[]*tensor{x}, tf([]int{2}, 6, 15)},
		{"l2_no_axes_all", 13, node("ReduceL2", "", io("x"), io("y")),
			[]*tensor{x}, tf([]int{1, 1}, f32(sqrt(91)))},
		{"sumsquare_attr_axis0_nokeep", 13, node("ReduceSumSquare", "", io("x"), io("y"), aInts("axes", 0), aInt("keepdims", 0)),
			[]*tensor{x}, tf([]int{3}, 17, 29, 45)},
		{"logsum_attr_axes", 13, node("ReduceLogSum", "", io("x"), io("y"), aInts("axes", 1)),
			[]*tensor{pos}, tf([]int{2, 1}, f32(log(3)), f32(log(7)))},
		{"logsumexp_large_values", 13, node("ReduceLogSumExp", "", io("x"), io("y"), aInts("axes", -1), aInt("keepdims", 0)),
			[]*tensor{tf([]int{2, 2}, 1000, 1000, 0, ninf)}, tf([]int{2}, f32(1000+log(2)), 0)},
		{"logsumexp_all_minus_inf", 13, node("ReduceLogSumExp", "", io("x"), io("y"), aInt("keepdims", 0)),
			[]*tensor{tf([]int{2}, ninf, ninf)}, tf(nil, ninf)},
		// Axes as an input (opset 18).
		{"l1_input_axes", 18, node("ReduceL1", "", in2, io("y")),
			[]*tensor{x, ti([]int{1}, 1)}, tf([]int{2, 1}, 6, 15)},
		{"l2_input_negative_axis", 18, node("ReduceL2", "", in2, io("y")),
			[]*tensor{x, ti([]int{1}, -2)}, tf([]int{1, 3}, f32(sqrt(17)), f32(sqrt(29)), f32(sqrt(45)))},
		{"sumsquare_no_axes_input_nokeep", 18, node("ReduceSumSquare", "", io("x"), io("y"), aInt("keepdims", 0)),
			[]*tensor{x}, tf(nil, 91)},
		{"sumsquare_empty_axes_reduces_all", 18, node("ReduceSumSquare", "", in2, io("y")),
			[]*tensor{x, ti([]int{0})}, tf([]int{1, 1}, 91)},
		{"logsum_input_axes_nokeep", 18, node("ReduceLogSum", "", in2, io("y"), aInt("keepdims", 0)),
			[]*tensor{pos, ti([]int{1}, 0)}, tf([]int{2}, f32(log(4)), f32(log(6)))},
		{"logsumexp_input_axes", 18, node("ReduceLogSumExp", "", in2, io("y")),
			[]*tensor{tf([]int{1, 3}, 1, 2, 3), ti([]int{1}, 1)},
			tf([]int{1, 1}, f32(log(math.Exp(1)+math.Exp(2)+math.Exp(3))))},
		// noop_with_empty_axes: no axis is reduced, each element alone.
		{"sumsquare_noop_empty_axes", 18, node("ReduceSumSquare", "", in2, io("y"), aInt("noop_with_empty_axes", 1)),
			[]*tensor{x, ti([]int{0})}, tf([]int{2, 3}, 1, 4, 9, 16, 25, 36)},
		{"l1_noop_no_axes_input", 18, node("ReduceL1", "", io("x"), io("y"), aInt("noop_with_empty_axes", 1), aInt("keepdims", 0)),
			[]*tensor{x}, tf([]int{2, 3}, 1, 2, 3, 4, 5, 6)},
		{"l2_noop", 18, node("ReduceL2", "", io("x"), io("y"), aInt("noop_with_empty_axes", 1)),
			[]*tensor{x}, tf([]int{2, 3}, 1, 2, 3, 4, 5, 6)},
		{"logsum_noop", 18, node("ReduceLogSum", "", io("x"), io("y"), aInt("noop_with_empty_axes", 1)),
			[]*tensor{pos}, tf([]int{2, 2}, 0, f32(log(2)), f32(log(3)), f32(log(4)))},
		{"logsumexp_noop", 18, node("ReduceLogSumExp", "", io("x"), io("y"), aInt("noop_with_empty_axes", 1)),
			[]*tensor{pos}, tf([]int{2, 2}, 1, 2, 3, 4)},
		{"sum_noop_opset13", 13, node("ReduceSum", "", in2, io("y"), aInt("noop_with_empty_axes", 1)),
			[]*tensor{x, ti([]int{0})}, x},
		{"noop_with_axes_reduces", 18, node("ReduceSumSquare", "", in2, io("y"), aInt("noop_with_empty_axes", 1)),
			[]*tensor{x, ti([]int{1}, 1)}, tf([]int{2, 1}, 14, 77)},
		// Integer tensors: exact, or in float64 truncated toward zero.
		{"l1_int32", 18, node("ReduceL1", "", io("x"), io("y"), aInt("keepdims", 0)),
			[]*tensor{{dtype: dtInt32, dims: []int{3}, i: []int64{-2, 3, -4}}}, &tensor{dtype: dtInt32, i: []int64{9}}},
		{"sumsquare_int32_wraps", 13, node("ReduceSumSquare", "", io("x"), io("y"), aInt("keepdims", 0)),
			[]*tensor{{dtype: dtInt32, dims: []int{2}, i: []int64{1 << 16, 1}}}, &tensor{dtype: dtInt32, i: []int64{1}}},
		{"l2_int64_truncates", 13, node("ReduceL2", "", io("x"), io("y"), aInts("axes", 1)),
			[]*tensor{ti([]int{2, 2}, 3, 4, 1, 1)}, ti([]int{2, 1}, 5, 1)},
		{"logsumexp_int64", 13, node("ReduceLogSumExp", "", io("x"), io("y"), aInt("keepdims", 0)),
			[]*tensor{ti([]int{2}, 10, 10)}, ti(nil, 10)},
		// A FLOAT16 result is rounded to FLOAT16: 1 + 2^-11 is a tie.
		{"l1_float16_rounds", 13, node("ReduceL1", "", io("x"), io("y"), aInt("keepdims", 0)),
			[]*tensor{th([]int{2}, 1, -0x1p-11)}, th(nil, 1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runFold(tc.opset, tc.node, tc.ins...)
			if err != nil {
				t.Fatal(err)
			}
			g, w := got[0], tc.want
			if g.dtype != w.dtype || !slices.Equal(g.dims, w.dims) || !slices.Equal(g.i, w.i) || !sameFloats(g.f, w.f) {
				t.Errorf("got %s %v %v, want %s %v %v", dtName(g.dtype), g.dims, vals(g), dtName(w.dtype), w.dims, vals(w))
			}
		})
	}
}

func TestFoldReduceErrors(t *testing.T) {
	x := tf([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	for _, tc := range []struct {
		name  string
		opset int64
		node  pb
		ins   []*tensor
	}{
		{"repeated_axis_attr", 13, node("ReduceL2", "", io("x"), io("y"), aInts("axes", 1, -1)), []*tensor{x}},
		{"repeated_axis_input", 18, node("ReduceLogSum", "", io("x", "axes"), io("y")), []*tensor{x, ti([]int{2}, 0, 0)}},
		{"axis_out_of_range", 18, node("ReduceSumSquare", "", io("x", "axes"), io("y")), []*tensor{x, ti([]int{1}, 2)}},
		{"axis_out_of_range_attr", 11, node("ReduceLogSumExp", "", io("x"), io("y"), aInts("axes", -3)), []*tensor{x}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := runFold(tc.opset, tc.node, tc.ins...); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}
