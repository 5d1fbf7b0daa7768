package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestWeights(t *testing.T) {
	tests := []struct {
		name  string
		w     []float32
		out   int
		q     []int8
		scale []float32
	}{
		{"half-even", []float32{127, 0, 2.5, -1, 3.5, 0, -127, 0.5}, 2,
			[]int8{127, 0, 2, -127, 4, 0, -127, 64}, []float32{1, 1.0 / 127}},
		{"all-zero channel", []float32{0, 2, 0, -4}, 2, []int8{0, 64, 0, -127}, []float32{1, 4.0 / 127}},
		{"negative max", []float32{-0.5, 0.25}, 1, []int8{-127, 64}, []float32{0.5 / 127}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, s := Weights(tc.w, tc.out)
			for i := range tc.q {
				if q[i] != tc.q[i] {
					t.Errorf("q[%d] = %d, want %d", i, q[i], tc.q[i])
				}
			}
			for o := range tc.scale {
				if s[o] != tc.scale[o] {
					t.Errorf("scale[%d] = %v, want %v", o, s[o], tc.scale[o])
				}
			}
		})
	}
}

func TestWeightsBits(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const out = 5
	w := make([]float32, 3*3*4*out)
	for i := range w {
		w[i] = float32(r.NormFloat64()) * float32(1+i%out)
	}
	for _, tc := range []struct{ bits, qmax int }{{8, 127}, {7, 63}, {4, 7}, {2, 1}} {
		q, s := WeightsBits(w, out, tc.bits)
		hit := make([]bool, out) // every channel reaches ±qmax at its largest |w|
		for i, v := range w {
			if int(q[i]) < -tc.qmax || int(q[i]) > tc.qmax {
				t.Fatalf("%d bits: q[%d] = %d outside ±%d", tc.bits, i, q[i], tc.qmax)
			}
			if d := math.Abs(float64(v) - float64(q[i])*float64(s[i%out])); d > float64(s[i%out])/2*1.0001 {
				t.Fatalf("%d bits: weight %d: |w - q*s| = %g > s/2", tc.bits, i, d)
			}
			if int(q[i]) == tc.qmax || int(q[i]) == -tc.qmax {
				hit[i%out] = true
			}
		}
		for o, h := range hit {
			if !h {
				t.Errorf("%d bits: channel %d never reaches ±%d", tc.bits, o, tc.qmax)
			}
		}
	}
	q8, s8 := Weights(w, out)
	q, s := WeightsBits(w, out, 8)
	for i := range q {
		if q[i] != q8[i] || s[i%out] != s8[i%out] {
			t.Fatalf("WeightsBits(8) differs from Weights at %d", i)
		}
	}
}

func TestWeightsError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const out = 7
	w := make([]float32, 3*3*5*out)
	for i := range w {
		w[i] = float32(r.NormFloat64()) * float32(1+i%out)
	}
	q, s := Weights(w, out)
	for i, v := range w {
		if q[i] < -127 {
			t.Fatalf("q[%d] = %d", i, q[i])
		}
		if d := math.Abs(float64(v) - float64(q[i])*float64(s[i%out])); d > float64(s[i%out])/2*1.0001 {
			t.Fatalf("weight %d: |w - q*s| = %g > s/2 = %g", i, d, s[i%out]/2)
		}
	}
}

func TestParams(t *testing.T) {
	tests := []struct {
		lo, hi float64
		scale  float32
		zero   int32
	}{
		{0, 2.55, float32(2.55 / 255), 0},
		{-1, 1, float32(2.0 / 255), 127}, // 1/float32(2/255) is just below 127.5
		{1, 2, float32(2.0 / 255), 0},    // widened to contain 0
		{-2, -1, float32(2.0 / 255), 255},
		{0, 0, 1, 0},
		{math.NaN(), 1, 1, 0},
		{-0.5, 2, float32(2.5 / 255), 51},
	}
	for _, tc := range tests {
		s, z := Params(tc.lo, tc.hi)
		if s != tc.scale || z != tc.zero {
			t.Errorf("Params(%v, %v) = %v, %d; want %v, %d", tc.lo, tc.hi, s, z, tc.scale, tc.zero)
		}
	}
}

// dist makes n deterministic samples.
func dist(kind string, n int) []float32 {
	r := rand.New(rand.NewPCG(7, uint64(len(kind))))
	x := make([]float32, n)
	for i := range x {
		switch kind {
		case "uniform":
			x[i] = float32(r.Float64())
		case "gauss":
			x[i] = float32(r.NormFloat64())
		case "relu-gauss":
			x[i] = float32(max(0, r.NormFloat64()))
		case "background": // an input with a dark background: most values at -0.8
			x[i] = -0.8
			if i%3 == 0 {
				x[i] = float32(-0.8 + 2.8*r.Float64())
			}
		case "gauss+outlier":
			x[i] = float32(r.NormFloat64())
			if i == n/2 {
				x[i] = 1000
			}
		}
	}
	return x
}

func TestRange(t *testing.T) {
	type want struct{ lo0, lo1, hi0, hi1 float64 } // lo in [lo0, lo1], hi in [hi0, hi1]
	const n = 1 << 20
	tests := []struct {
		dist   string
		method Method
		want   want
	}{
		{"uniform", MinMax, want{0, 0, 0.99999, 1}},
		{"uniform", Percentile, want{0, 0, 0.999, 1}}, // resolution: one bin, M/Bins
		{"uniform", Entropy, want{0, 0, 0.97, 1}},
		{"uniform", MSE, want{0, 0, 0.98, 1}},
		{"relu-gauss", MinMax, want{0, 0, 4.5, 6}},
		{"relu-gauss", Percentile, want{0, 0, 3.6, 3.85}}, // N(0,1) quantile 0.9999 = 3.719
		{"relu-gauss", Entropy, want{0, 0, 2, 5}},
		{"relu-gauss", MSE, want{0, 0, 2.5, 5}},
		{"gauss", Percentile, want{-3.85, -3.6, 3.6, 3.85}},
		{"background", Entropy, want{-0.81, -0.79, 1.5, 2}}, // each side on its own
		{"gauss+outlier", MinMax, want{-6, -4.5, 1000, 1000}},
		{"gauss+outlier", Percentile, want{-4.5, -3.5, 3.5, 4.5}}, // bins of ~1 after the outlier
		{"gauss+outlier", Entropy, want{-6, -3, 2, 150}},          // at least 128 bins of ~0.8
		{"gauss+outlier", MSE, want{-6, -2, 2, 999}},              // one outlier of 1000 in 1M still weighs 1e6/1e6
	}
	for _, tc := range tests {
		t.Run(tc.dist+"/"+tc.method.String(), func(t *testing.T) {
			o := NewObserver(0)
			x := dist(tc.dist, n)
			for i := 0; i < n; i += 1000 {
				o.Add(x[i:min(n, i+1000)])
			}
			lo, hi, err := o.Range(tc.method)
			if err != nil {
				t.Fatal(err)
			}
			if lo < tc.want.lo0 || lo > tc.want.lo1 || hi < tc.want.hi0 || hi > tc.want.hi1 {
				t.Errorf("range [%g, %g], want lo in [%g, %g], hi in [%g, %g]", lo, hi, tc.want.lo0, tc.want.lo1, tc.want.hi0, tc.want.hi1)
			}
		})
	}
}

func TestObserverDeterministicAndRebin(t *testing.T) {
	x := dist("gauss+outlier", 100000)
	a, b := NewObserver(0), NewObserver(0)
	a.Add(x)
	for i := range x {
		b.Add(x[i : i+1])
	}
	if *a != *b {
		t.Fatal("same values in the same order gave different observers")
	}
	var sum int64
	for i := range a.Pos {
		sum += a.Pos[i] + a.Neg[i]
	}
	if sum != a.Count || a.Count != int64(len(x)) {
		t.Fatalf("histogram holds %d of %d values (count %d)", sum, len(x), a.Count)
	}
	if a.M <= 1000 {
		t.Fatalf("M = %g does not cover the outlier 1000", a.M)
	}
	// Fixed width from the true maximum: split and merged equals whole.
	c, d, e := NewObserver(1000), NewObserver(1000), NewObserver(1000)
	c.Add(x)
	d.Add(x[:5000])
	e.Add(x[5000:])
	if err := e.Merge(d); err != nil {
		t.Fatal(err)
	}
	if *c != *e {
		t.Fatal("merged observers differ from one observer of all values")
	}
	if err := a.Merge(c); err == nil {
		t.Fatal("merging observers of different widths succeeded")
	}
}

func TestRangeEmptyAndZeros(t *testing.T) {
	o := NewObserver(0)
	if _, _, err := o.Range(MinMax); err == nil {
		t.Fatal("range of an empty observer")
	}
	o.Add([]float32{0, 0, 0})
	for m := MinMax; m <= MSE; m++ {
		lo, hi, err := o.Range(m)
		if err != nil || lo != 0 || hi != 0 {
			t.Errorf("%v of zeros: %g %g %v", m, lo, hi, err)
		}
	}
	if _, err := ParseMethod("kl"); err == nil {
		t.Error("ParseMethod(kl) succeeded")
	}
	if m, err := ParseMethod("Entropy"); err != nil || m != Entropy {
		t.Errorf("ParseMethod(Entropy) = %v, %v", m, err)
	}
}
