package onnx

import (
	"math"
	"slices"
	"testing"
)

func th(dims []int, vals ...float32) *tensor { return &tensor{dtype: dtFloat16, dims: dims, f: vals} }

func tbf(dims []int, vals ...float32) *tensor { return &tensor{dtype: dtBfloat16, dims: dims, f: vals} }

// bf returns the float32 whose bits are those of a bfloat16.
func bf(bits uint16) float32 { return math.Float32frombits(uint32(bits) << 16) }

// sameFloats compares bit for bit (so NaN matches NaN and -0 differs from 0).
func sameFloats(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// TestFoldNarrows: a folded FLOAT16 or BFLOAT16 result holds values of its
// type, rounded to nearest with ties to even (as ONNX Runtime casts), not
// the float32 it was computed in.
func TestFoldNarrows(t *testing.T) {
	in3 := io("a", "b", "c")
	inf := float32(math.Inf(1))
	cases := []struct {
		name  string
		node  pb
		ins   []*tensor
		want  *tensor
		share bool // the result is the input, not a copy
	}{
		{"cast_float_to_float16", node("Cast", "", in3, io("y"), aInt("to", dtFloat16)),
			[]*tensor{tf([]int{2, 5}, 1.0/3, -0.1, 65519, 65520, -65520,
				1+0x1p-11, 1+3*0x1p-11, 0x1p-25, 3*0x1p-25, 1e-8)},
			th([]int{2, 5}, halfToFloat(0x3555), halfToFloat(0xae66), 65504, inf, -inf,
				1, 1+0x1p-9, 0, 0x1p-23, 0), false},
		{"cast_double_to_float16", node("Cast", "", in3, io("y"), aInt("to", dtFloat16)),
			[]*tensor{{dtype: dtDouble, dims: []int{1}, f: []float32{0.15896958}}},
			th([]int{1}, halfToFloat(0x3116)), false},
		{"cast_int64_to_float16_ties_to_even", node("Cast", "", in3, io("y"), aInt("to", dtFloat16)),
			[]*tensor{ti([]int{4}, 2049, 2051, 70000, -3)}, th([]int{4}, 2048, 2052, inf, -3), false},
		// ONNX 1.12's test data truncates 0x3ef5eeb0 to 0x3ef5; rounding gives 0x3ef6.
		{"cast_float_to_bfloat16", node("Cast", "", in3, io("y"), aInt("to", dtBfloat16)),
			[]*tensor{tf([]int{6}, math.Float32frombits(0x3ef5eeb0), math.Float32frombits(0x3ef535b8),
				math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000), math.MaxFloat32, -1e-40)},
			tbf([]int{6}, bf(0x3ef6), bf(0x3ef5), 1, bf(0x3f82), inf, bf(0x8001)), false},
		{"cast_float16_to_float_exact", node("Cast", "", in3, io("y"), aInt("to", dtFloat)),
			[]*tensor{th([]int{2}, halfToFloat(0x3555), 0x1p-24)}, tf([]int{2}, 0.333251953125, 0x1p-24), false},
		{"add_float16_rounds", node("Add", "", in3, io("y")),
			[]*tensor{th([]int{2}, 1, 2048), th([]int{2}, 0x1p-11, 1)}, th([]int{2}, 1, 2048), false},
		{"mul_bfloat16_rounds", node("Mul", "", in3, io("y")),
			[]*tensor{tbf(nil, 1+0x1p-7), tbf(nil, 1+0x1p-7)}, tbf(nil, 1+0x1p-6), false},
		{"identity_float16_not_copied", node("Identity", "", in3, io("y")),
			[]*tensor{th([]int{2}, 1, 0.5)}, th([]int{2}, 1, 0.5), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runFold(13, tc.node, tc.ins...)
			if err != nil {
				t.Fatal(err)
			}
			g, w := got[0], tc.want
			if g.dtype != w.dtype || !slices.Equal(g.dims, w.dims) || !sameFloats(g.f, w.f) {
				t.Errorf("got %s %v %v, want %s %v %v", dtName(g.dtype), g.dims, g.f, dtName(w.dtype), w.dims, w.f)
			}
			if shared := len(tc.ins[0].f) > 0 && &g.f[0] == &tc.ins[0].f[0]; shared != tc.share {
				t.Errorf("result shares the input's data: %v, want %v", shared, tc.share)
			}
		})
	}
	got, err := runFold(13, node("Cast", "", in3, io("y"), aInt("to", dtFloat16)), tf([]int{1}, float32(math.NaN())))
	if err != nil || !math.IsNaN(float64(got[0].f[0])) {
		t.Errorf("Cast(NaN) to FLOAT16 = %v, %v; want NaN", got, err)
	}
}

// TestRoundHalfAllValues checks roundHalf and roundBfloat16 around every
// positive finite value of their format: the value itself, the midpoint
// to the next (which goes to the one with an even last bit) and the float32
// values either side of the midpoint.
func TestRoundHalfAllValues(t *testing.T) {
	check := func(name string, round func(float64) float64, a, b float32, aEven bool) {
		mid := float32((float64(a) + float64(b)) / 2) // exact: one bit more than the format
		even := b
		if aEven {
			even = a
		}
		for _, c := range []struct{ in, want float32 }{
			{a, a}, {mid, even}, {math.Nextafter32(mid, 0), a}, {math.Nextafter32(mid, b), b}, {-mid, -even},
		} {
			if got := float32(round(float64(c.in))); math.Float32bits(got) != math.Float32bits(c.want) {
				t.Fatalf("%s(%g) = %g, want %g", name, c.in, got, c.want)
			}
		}
	}
	for h := uint16(0); h < 0x7bff; h++ { // up to the largest finite half
		check("roundHalf", roundHalf, halfToFloat(h), halfToFloat(h+1), h&1 == 0)
	}
	for h := uint16(0); h < 0x7f7f; h++ {
		check("roundBfloat16", roundBfloat16, bf(h), bf(h+1), h&1 == 0)
	}
	// Above the largest finite value: the midpoint to the next power of
	// two rounds to it (its last bit is even), which is out of range: Inf.
	inf := float32(math.Inf(1))
	for _, c := range []struct {
		name     string
		round    func(float64) float64
		in, want float32
	}{
		{"roundHalf", roundHalf, math.Nextafter32(65520, 0), 65504},
		{"roundHalf", roundHalf, 65520, inf},
		{"roundHalf", roundHalf, -65520, -inf},
		{"roundHalf", roundHalf, math.MaxFloat32, inf},
		{"roundBfloat16", roundBfloat16, math.Float32frombits(0x7f7f7fff), bf(0x7f7f)},
		{"roundBfloat16", roundBfloat16, math.Float32frombits(0x7f7f8000), inf},
		{"roundBfloat16", roundBfloat16, -math.MaxFloat32, -inf},
		{"roundBfloat16", roundBfloat16, -inf, -inf},
	} {
		if got := float32(c.round(float64(c.in))); got != c.want {
			t.Errorf("%s(%g) = %g, want %g", c.name, c.in, got, c.want)
		}
	}
}
