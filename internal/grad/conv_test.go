package grad

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/edge-resnet/edge-resnet/kernels"
)

// convCase is one convolution of the tests: a configuration and an input.
type convCase struct {
	name string
	cfg  ConvConfig
	in   Shape
}

var convCases = []convCase{
	{"1x1", ConvConfig{Cin: 5, Cout: 7, KH: 1, KW: 1, Bias: true}, Shape{2, 5, 5, 5}},
	{"1x1-s2-proj", ConvConfig{Cin: 6, Cout: 18, KH: 1, KW: 1, StrideH: 2, StrideW: 2}, Shape{2, 7, 7, 6}},
	{"3x3-s1", ConvConfig{Cin: 3, Cout: 17, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, Bias: true}, Shape{3, 6, 5, 3}},
	{"3x3-s2-tails", ConvConfig{Cin: 20, Cout: 33, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, Bias: true}, Shape{1, 7, 8, 20}},
	{"7x7-s2-stem", ConvConfig{Cin: 3, Cout: 8, KH: 7, KW: 7, StrideH: 2, StrideW: 2, PadTop: 3, PadLeft: 3, PadBottom: 3, PadRight: 3}, Shape{1, 11, 11, 3}},
	{"asym-pad", ConvConfig{Cin: 4, Cout: 5, KH: 3, KW: 2, StrideH: 2, StrideW: 1, PadTop: 0, PadLeft: 1, PadBottom: 2, PadRight: 0, Bias: true}, Shape{2, 6, 5, 4}},
	{"asym-pad-s1", ConvConfig{Cin: 5, Cout: 3, KH: 3, KW: 3, PadTop: 2, PadLeft: 0, PadBottom: 0, PadRight: 1}, Shape{2, 5, 6, 5}},
	{"1x1-pad1", ConvConfig{Cin: 3, Cout: 4, KH: 1, KW: 1, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, Bias: true}, Shape{1, 3, 4, 3}},
	{"dil2", ConvConfig{Cin: 4, Cout: 6, KH: 3, KW: 3, DilH: 2, DilW: 2, PadTop: 2, PadLeft: 2, PadBottom: 2, PadRight: 2}, Shape{1, 7, 6, 4}},
	{"groups2", ConvConfig{Cin: 8, Cout: 12, KH: 3, KW: 3, Groups: 2, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, Bias: true}, Shape{2, 5, 5, 8}},
	{"groups4-s2", ConvConfig{Cin: 8, Cout: 8, KH: 3, KW: 3, Groups: 4, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}, Shape{3, 6, 6, 8}},
	{"depthwise", ConvConfig{Cin: 6, Cout: 6, KH: 3, KW: 3, Groups: 6, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, Bias: true}, Shape{2, 5, 4, 6}},
	{"depthwise-x2", ConvConfig{Cin: 4, Cout: 8, KH: 3, KW: 3, Groups: 4, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1}, Shape{1, 6, 7, 4}},
	{"3x3-batch3-cout40", ConvConfig{Cin: 16, Cout: 40, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, Bias: true}, Shape{3, 4, 4, 16}},
	// Winograd forward and dX with an image's tiles split over threads.
	{"3x3-winograd-split", ConvConfig{Cin: 16, Cout: 16, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}, Shape{1, 40, 37, 16}},
}

// newTestConv is the case's layer on set with random weights and bias,
// and a random input.
func newTestConv(tc convCase, set *kernels.Set, seed uint64) (*Conv, []float32) {
	rng := rand.New(rand.NewPCG(seed, 7))
	c := NewConv(tc.cfg)
	c.Set = set
	copy(c.W, randSlice(rng, len(c.W)))
	copy(c.B, randSlice(rng, len(c.B)))
	return c, randSlice(rng, tc.in.Size())
}

// step runs Forward and Backward with dy = r on zeroed gradients and
// returns copies of y, dx, dW, dB.
func (c *Conv) step(x []float32, s Shape, r []float32) (y, dx, dw, db []float32) {
	c.ZeroGrad()
	out, _ := c.Forward(x, s)
	y = slices.Clone(out)
	dx = slices.Clone(c.Backward(r))
	return y, dx, slices.Clone(c.GradW), slices.Clone(c.GradB)
}

func TestConvGradients(t *testing.T) {
	for _, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			c, x := newTestConv(tc, nil, 1)
			// Finite differences need a forward smooth at 1e-2 steps:
			// Winograd's rounding (1e-6 relative, but not smooth in x)
			// swamps them; TestConvReference checks Winograd.
			c.noWinograd = true
			os := c.OutShape(tc.in)
			r := randSlice(rand.New(rand.NewPCG(2, 3)), os.Size())
			_, dx, dw, db := c.step(x, tc.in, r)
			loss := func() float64 {
				y, _ := c.Forward(x, tc.in)
				return dotLoss(r, y)
			}
			wrt, grads := [][]float32{x, c.W}, [][]float32{dx, dw}
			if c.B != nil {
				wrt, grads = append(wrt, c.B), append(grads, db)
			}
			maxPer := 60
			if testing.Short() {
				maxPer = 20
			}
			checkGradients(t, tc.name, loss, wrt, grads, 1e-2, 1e-2, maxPer)
		})
	}
}

// refConv is the convolution of x by c's weights and its backward for dy,
// in float64 direct loops: y, dx, dW, dB.
func refConv(c *Conv, x []float32, s Shape, dy []float32) (y, dx, dw, db []float64) {
	o := c.OutShape(s)
	cig, cog := c.Cin/c.Groups, c.Cout/c.Groups
	y, dx = make([]float64, o.Size()), make([]float64, s.Size())
	dw, db = make([]float64, len(c.W)), make([]float64, c.Cout)
	for n := range o.N {
		for oh := range o.H {
			for ow := range o.W {
				q := (n*o.H+oh)*o.W + ow
				for co := range c.Cout {
					g := dy[q*c.Cout+co]
					acc := 0.0
					if c.B != nil {
						acc = float64(c.B[co])
					}
					db[co] += float64(g)
					for kh := range c.KH {
						ih := oh*c.StrideH - c.PadTop + kh*c.DilH
						for kw := range c.KW {
							iw := ow*c.StrideW - c.PadLeft + kw*c.DilW
							if ih < 0 || ih >= s.H || iw < 0 || iw >= s.W {
								continue
							}
							for ci := range cig {
								xi := ((n*s.H+ih)*s.W+iw)*c.Cin + co/cog*cig + ci
								wi := ((kh*c.KW+kw)*cig+ci)*c.Cout + co
								acc += float64(c.W[wi]) * float64(x[xi])
								dx[xi] += float64(c.W[wi]) * float64(g)
								dw[wi] += float64(x[xi]) * float64(g)
							}
						}
					}
					y[q*c.Cout+co] = acc
				}
			}
		}
	}
	return y, dx, dw, db
}

// closeTo reports the first value of got off want by more than tol times
// the largest |want| (the scale), or "".
func closeTo(got []float32, want []float64, tol float64) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d values, want %d", len(got), len(want))
	}
	scale := 1e-30
	for _, v := range want {
		scale = max(scale, math.Abs(v))
	}
	for i, v := range got {
		if d := math.Abs(float64(v) - want[i]); !(d <= tol*scale) {
			return fmt.Sprintf("[%d] = %.7g, want %.7g (scale %.3g)", i, v, want[i], scale)
		}
	}
	return ""
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestConvReference compares Forward and Backward with the float64 direct
// loops on every kernel Set, and each Set with the generic one.
func TestConvReference(t *testing.T) {
	generic, err := kernels.ForPath("generic")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range convCases {
		for _, set := range kernels.Sets() {
			t.Run(tc.name+"/"+set.Name(), func(t *testing.T) {
				c, x := newTestConv(tc, set, 1)
				r := randSlice(rand.New(rand.NewPCG(2, 3)), c.OutShape(tc.in).Size())
				ry, rdx, rdw, rdb := refConv(c, x, tc.in, r)
				got := make([][]float32, 4)
				got[0], got[1], got[2], got[3] = c.step(x, tc.in, r)
				gc, _ := newTestConv(tc, generic, 1)
				gen := make([][]float32, 4)
				gen[0], gen[1], gen[2], gen[3] = gc.step(x, tc.in, r)
				for i, want := range [][]float64{ry, rdx, rdw, rdb} {
					if c.B == nil && i == 3 {
						continue
					}
					name := [...]string{"y", "dx", "dW", "dB"}[i]
					if msg := closeTo(got[i], want, 1e-4); msg != "" {
						t.Errorf("%s vs float64 reference: %s", name, msg)
					}
					if msg := closeTo(got[i], f64(gen[i]), 1e-5); msg != "" {
						t.Errorf("%s vs generic Set: %s", name, msg)
					}
				}
			})
		}
	}
}

// TestConvDeterminism checks that two runs with the same thread count are
// bit-identical (3 threads, on layers whose batch splits unevenly) and
// that 1 and 3 threads agree to float32 rounding.
func TestConvDeterminism(t *testing.T) {
	for _, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			c, x := newTestConv(tc, nil, 5)
			r := randSlice(rand.New(rand.NewPCG(6, 3)), c.OutShape(tc.in).Size())
			c.Threads = 3
			a := make([][]float32, 4)
			a[0], a[1], a[2], a[3] = c.step(x, tc.in, r)
			// Accumulate on top of a first step, as training does.
			c.Forward(x, tc.in)
			c.Backward(r)
			b := make([][]float32, 4)
			b[0], b[1], b[2], b[3] = c.step(x, tc.in, r)
			c1, _ := newTestConv(tc, nil, 5)
			one := make([][]float32, 4)
			one[0], one[1], one[2], one[3] = c1.step(x, tc.in, r)
			for i := range a {
				name := [...]string{"y", "dx", "dW", "dB"}[i]
				if !slices.Equal(a[i], b[i]) {
					t.Errorf("%s: two runs on 3 threads differ", name)
				}
				if msg := closeTo(a[i], f64(one[i]), 1e-5); msg != "" {
					t.Errorf("%s: 3 threads vs 1: %s", name, msg)
				}
			}
		})
	}
}

// TestConvAllocs checks that Forward and Backward allocate nothing after
// the first step (one thread), on every Set.
func TestConvAllocs(t *testing.T) {
	for _, tc := range convCases {
		for _, set := range kernels.Sets() {
			c, x := newTestConv(tc, set, 1)
			r := randSlice(rand.New(rand.NewPCG(2, 3)), c.OutShape(tc.in).Size())
			if n := testing.AllocsPerRun(3, func() {
				c.Forward(x, tc.in)
				c.Backward(r)
			}); n != 0 {
				t.Errorf("%s/%s: %v allocations per Forward+Backward", tc.name, set.Name(), n)
			}
		}
		// With threads, only the goroutines allocate: a closure and a
		// goroutine per extra thread and phase, whatever the sizes.
		c, x := newTestConv(tc, nil, 1)
		c.Threads = 3
		r := randSlice(rand.New(rand.NewPCG(2, 3)), c.OutShape(tc.in).Size())
		if n := testing.AllocsPerRun(3, func() {
			c.Forward(x, tc.in)
			c.Backward(r)
		}); n > 3*2*2 {
			t.Errorf("%s: %v allocations per Forward+Backward on 3 threads", tc.name, n)
		}
	}
}

// TestPackStrided checks that packStrided lays B out as Set.PackB does.
func TestPackStrided(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, set := range kernels.Sets() {
		for _, kn := range [][2]int{{1, 1}, {5, 7}, {9, 33}, {40, 16}, {3, 65}} {
			k, n := kn[0], kn[1]
			b := randSlice(rng, k*n)
			want := set.PackB(b, k, n)
			got := set.PackB(make([]float32, k*n), k, n)
			packStrided(&got, b, 0, n, 1, k)
			if !slices.Equal(got.Data, want.Data) {
				t.Errorf("%s %dx%d: row-major packing differs from PackB", set.Name(), k, n)
			}
			bt := make([]float32, k*n) // b transposed: n x k
			for i := range k {
				for j := range n {
					bt[j*k+i] = b[i*n+j]
				}
			}
			packStrided(&got, bt, 0, 1, k, k)
			if !slices.Equal(got.Data, want.Data) {
				t.Errorf("%s %dx%d: transposed packing differs from PackB", set.Name(), k, n)
			}
		}
	}
}

// BenchmarkConvBackward measures Forward, dX and dW of 3x3 convolutions
// on ResNet-20 CIFAR (32x32x16, batch 128, and its stride-2 16 -> 32
// layer, whose dX takes the col2im path) and ResNet-18 224 (56x56x64,
// batch 8) shapes, in GFLOP/s (2 MACs per multiply-add of each GEMM), on
// the default Set, at 1 and 2 threads.
func BenchmarkConvBackward(b *testing.B) {
	b.Logf("CPU: %s; kernels %s", kernels.CPU(), kernels.Best().Name())
	three := ConvConfig{KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	down := three
	down.StrideH, down.StrideW, down.Cin, down.Cout = 2, 2, 16, 32
	shapes := []struct {
		name string
		cfg  ConvConfig
		in   Shape
	}{
		{"resnet20-32x32x16-b128", three, Shape{128, 32, 32, 16}},
		{"resnet20-s2-32x32x16to32-b128", down, Shape{128, 32, 32, 16}},
		{"resnet18-56x56x64-b8", three, Shape{8, 56, 56, 64}},
	}
	for _, sh := range shapes {
		cfg := sh.cfg
		if cfg.Cin == 0 {
			cfg.Cin, cfg.Cout = sh.in.C, sh.in.C
		}
		for _, threads := range []int{1, 2} {
			for _, phase := range []string{"forward", "dX", "dW"} {
				b.Run(fmt.Sprintf("%s/%s/threads=%d", sh.name, phase, threads), func(b *testing.B) {
					benchConvPhase(b, cfg, sh.in, threads, phase)
				})
			}
		}
	}
}

// benchConvPhase times one phase of a convolution's training step.
func benchConvPhase(b *testing.B, cfg ConvConfig, in Shape, threads int, phase string) {
	rng := rand.New(rand.NewPCG(1, 1))
	c := NewConv(cfg)
	c.Threads = threads
	copy(c.W, randSlice(rng, len(c.W)))
	x := randSlice(rng, in.Size())
	out := c.OutShape(in)
	dy := randSlice(rng, out.Size())
	c.Forward(x, in)
	c.Backward(dy)
	macs := float64(out.Size()) * float64(cfg.KH*cfg.KW*cfg.Cin/max(1, cfg.Groups))
	b.ResetTimer()
	for range b.N {
		switch phase {
		case "forward":
			c.Forward(x, in)
		case "dX":
			c.backwardData(dy)
		case "dW":
			c.backwardWeights(dy)
		}
	}
	b.ReportMetric(2*macs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// TestConvWeightsByTaps compares dW (and dB) computed tap by tap with
// the im2col GEMM, bit for bit, where the taps are used (at least 16
// input channels per group, stride 1 along W): padding, dilation, a
// stride along H, groups, a batch of several dW blocks with a partial
// last one, and 1 and 3 threads.
func TestConvWeightsByTaps(t *testing.T) {
	three := ConvConfig{KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	cases := []struct {
		name string
		cfg  ConvConfig
		in   Shape
	}{
		{"3x3 16->16", three, Shape{3, 9, 11, 16}},
		{"3x3 32->24 bias", ConvConfig{KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, Cout: 24, Bias: true}, Shape{2, 7, 6, 32}},
		{"3x3 64 groups 4", ConvConfig{KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, Groups: 4}, Shape{2, 5, 5, 64}},
		{"3x3 dilation 2", ConvConfig{KH: 3, KW: 3, PadTop: 2, PadLeft: 2, PadBottom: 2, PadRight: 2, DilH: 2, DilW: 2}, Shape{2, 8, 9, 16}},
		{"3x3 stride 2x1, pads 0,2", ConvConfig{KH: 3, KW: 3, PadLeft: 2, PadRight: 1, StrideH: 2}, Shape{2, 9, 7, 20}},
		{"1x1 48->32", ConvConfig{KH: 1, KW: 1, Cout: 32}, Shape{4, 6, 6, 48}},
		{"5x2 no padding", ConvConfig{KH: 5, KW: 2, Cout: 17}, Shape{2, 8, 9, 17}},
		{"3x3 large batch (blocks)", three, Shape{40, 6, 7, 16}},
	}
	for _, tc := range cases {
		for _, threads := range []int{1, 3} {
			cfg := tc.cfg
			cfg.Cin = tc.in.C
			if cfg.Cout == 0 {
				cfg.Cout = tc.in.C
			}
			name := fmt.Sprintf("%s/threads=%d", tc.name, threads)
			x := fdRandom(50, tc.in.Size(), -2, 2)
			var got [2][]float32 // dW, dB of each path
			for i, noTaps := range []bool{false, true} {
				c := NewConv(cfg)
				copy(c.W, fdRandom(51, len(c.W), -1, 1))
				c.Threads, c.noTaps, c.noPlace = threads, noTaps, true
				_, out := c.Forward(x, tc.in)
				if !noTaps && !c.byTaps {
					t.Fatalf("%s: dW does not run by taps", name)
				}
				dy := fdRandom(52, out.Size(), -1, 1)
				c.Backward(dy)
				got[i] = append(append([]float32(nil), c.GradW...), c.GradB...)
			}
			fdSameBits(t, name+" dW by taps vs im2col", got[0], got[1])
		}
	}
}

// TestConvWeightsInPlace checks dW and dB computed per image and tap on
// the input in place (weightsImage) against the float64 reference and
// the packed taps, on every Set that takes that path: paddings that
// read across row ends (asymmetric, one-sided, 5x5), one-row and
// one-column images, 1x1, kernels of one row or column, and batches split
// unevenly over 3 threads.
func TestConvWeightsInPlace(t *testing.T) {
	pad := func(kh, kw, top, left int) ConvConfig {
		return ConvConfig{KH: kh, KW: kw, PadTop: top, PadLeft: left, PadBottom: kh - 1 - top, PadRight: kw - 1 - left}
	}
	cases := []struct {
		name string
		cfg  ConvConfig
		in   Shape
	}{
		{"3x3 16->16", pad(3, 3, 1, 1), Shape{3, 9, 11, 16}},
		{"3x3 pads 0,2 ->24 bias", ConvConfig{KH: 3, KW: 3, PadLeft: 2, PadBottom: 2, Cout: 24, Bias: true}, Shape{2, 7, 6, 16}},
		{"5x5 32->8", pad(5, 5, 2, 2), Shape{2, 6, 7, 32}},
		{"1x3", pad(1, 3, 0, 1), Shape{2, 5, 6, 16}},
		{"3x1", pad(3, 1, 1, 0), Shape{2, 5, 6, 16}},
		{"2x2 top-left", pad(2, 2, 1, 1), Shape{2, 5, 5, 16}},
		{"1x1 ->20", ConvConfig{KH: 1, KW: 1, Cout: 20}, Shape{2, 4, 5, 16}},
		{"one column", pad(3, 3, 1, 1), Shape{2, 5, 1, 16}},
		{"one row", pad(3, 3, 1, 1), Shape{2, 1, 5, 32}},
		{"large batch", pad(3, 3, 1, 1), Shape{40, 6, 7, 16}},
	}
	ran := 0
	for _, tc := range cases {
		for _, set := range kernels.Sets() {
			for _, threads := range []int{1, 3} {
				cfg := tc.cfg
				cfg.Cin = tc.in.C
				if cfg.Cout == 0 {
					cfg.Cout = tc.in.C
				}
				name := fmt.Sprintf("%s/%s/threads=%d", tc.name, set.Name(), threads)
				var grads [2][]float32
				for i, noPlace := range []bool{false, true} {
					c, x := newTestConv(convCase{name, cfg, tc.in}, set, 9)
					c.Threads, c.noPlace = threads, noPlace
					_, out := c.Forward(x, tc.in)
					if !noPlace && !c.inPlace {
						break
					}
					dy := randSlice(rand.New(rand.NewPCG(10, 3)), out.Size())
					c.Backward(dy)
					grads[i] = append(slices.Clone(c.GradW), c.GradB...)
					if i == 0 {
						_, _, rdw, rdb := refConv(c, x, tc.in, dy)
						if msg := closeTo(grads[0], append(rdw, rdb[:len(c.GradB)]...), 1e-4); msg != "" {
							t.Errorf("%s: dW, dB in place vs float64 reference: %s", name, msg)
						}
					}
				}
				if grads[0] == nil {
					continue
				}
				ran++
				if msg := closeTo(grads[0], f64(grads[1]), 1e-5); msg != "" {
					t.Errorf("%s: dW, dB in place vs packed taps: %s", name, msg)
				}
			}
		}
	}
	if _, ok := kernels.Best().ViewB(nil, 0, 16); ok && ran == 0 {
		t.Fatal("no case ran dW in place")
	}
	t.Logf("%d cases ran dW in place", ran)
}
