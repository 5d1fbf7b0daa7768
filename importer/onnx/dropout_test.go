package onnx

import (
	"errors"
	"slices"
	"testing"
)

// TestFoldDropout: a folded Dropout is the identity in inference, and in
// training mode (random, unless its ratio is 0) refused as on
// activations, not passed through.
func TestFoldDropout(t *testing.T) {
	x := tf([]int{2}, 1, 2)
	yes := &tensor{dtype: dtBool, i: []int64{1}}
	no := &tensor{dtype: dtBool, i: []int64{0}}
	ratio := tf(nil, 0.5)
	for _, tc := range []struct {
		name  string
		opset int64
		ins   []*tensor
		want  error // nil: the identity
	}{
		{"opset11", 11, []*tensor{x}, nil},
		{"opset13_no_training_input", 13, []*tensor{x, ratio}, nil},
		{"opset13_inference", 13, []*tensor{x, ratio, no}, nil},
		{"opset13_training", 13, []*tensor{x, ratio, yes}, ErrUnsupported},
		{"opset13_training_no_ratio", 13, []*tensor{x, nil, yes}, ErrUnsupported},
		{"opset13_training_ratio_0", 13, []*tensor{x, tf(nil, 0), yes}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			names := io("x", "ratio", "training_mode")[:len(tc.ins)]
			for k, in := range tc.ins {
				if in == nil {
					names[k] = "" // omitted
				}
			}
			got, err := runFold(tc.opset, node("Dropout", "", names, io("y")), tc.ins...)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got[0].f, x.f) {
				t.Errorf("got %v, want %v", got[0].f, x.f)
			}
		})
	}
}
