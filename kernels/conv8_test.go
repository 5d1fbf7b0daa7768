package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refConv8 is the definition of Conv8: integer sums of (x - zero)*w over
// the receptive field (padding is real zero), then Requantize.
func refConv8(g *ConvGeom, in []uint8, w []int8, rq *Requant) []uint8 {
	out := make([]uint8, g.Pixels()*g.Cout)
	for oh := 0; oh < g.OH; oh++ {
		for ow := 0; ow < g.OW; ow++ {
			p := oh*g.OW + ow
			for co := 0; co < g.Cout; co++ {
				var acc int32
				for kh := 0; kh < g.KH; kh++ {
					ih := oh*g.StrideH - g.PadTop + kh*g.DilH
					for kw := 0; kw < g.KW; kw++ {
						iw := ow*g.StrideW - g.PadLeft + kw*g.DilW
						if ih < 0 || ih >= g.H || iw < 0 || iw >= g.W {
							continue
						}
						for ci := 0; ci < g.C; ci++ {
							x := int32(in[(ih*g.W+iw)*g.C+ci]) - rq.ZeroA
							acc += x * int32(w[((kh*g.KW+kw)*g.C+ci)*g.Cout+co])
						}
					}
				}
				if rq.Bias != nil {
					acc += rq.Bias[co]
				}
				var r uint8
				if rq.Res != nil {
					r = rq.Res[p*g.Cout+co]
				}
				out[p*g.Cout+co] = Requantize(acc, rq.Scale[co], rq.Res != nil, r, rq.ResZero, rq.ResScale, rq.ZeroOut, rq.Lo)
			}
		}
	}
	return out
}

func randU8(r *rand.Rand, n int) []uint8 {
	s := make([]uint8, n)
	for i := range s {
		s[i] = uint8(r.IntN(256))
	}
	return s
}

// TestConv8 checks Conv8 bit for bit against the definition on every int8
// path: the stem (C=3, K not a multiple of 4), 3x3 with and without
// stride, dilation, 1x1 stride 2 (gathered), direct 1x1 and 1x1 with
// C%4 != 0 (im2col), several im2col blocks; split over pixels and panels
// as the executor splits them, with canaries after the output.
func TestConv8(t *testing.T) {
	geoms := []ConvGeom{
		{H: 23, W: 21, C: 3, Cout: 20, KH: 7, KW: 7, StrideH: 2, StrideW: 2, DilH: 1, DilW: 1, PadTop: 3, PadLeft: 3},
		{H: 9, W: 11, C: 13, Cout: 35, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1},
		{H: 10, W: 9, C: 16, Cout: 33, KH: 3, KW: 3, StrideH: 2, StrideW: 2, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1},
		{H: 12, W: 12, C: 5, Cout: 7, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 2, DilW: 2, PadTop: 2, PadLeft: 2},
		{H: 8, W: 7, C: 24, Cout: 48, KH: 1, KW: 1, StrideH: 2, StrideW: 2, DilH: 1, DilW: 1},
		{H: 7, W: 9, C: 40, Cout: 70, KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1},
		{H: 7, W: 5, C: 6, Cout: 9, KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1},
		{H: 12, W: 12, C: 300, Cout: 17, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1},
	}
	for i := range geoms {
		g := &geoms[i]
		g.OH = (g.H+2*g.PadTop-g.DilH*(g.KH-1)-1)/g.StrideH + 1
		g.OW = (g.W+2*g.PadLeft-g.DilW*(g.KW-1)-1)/g.StrideW + 1
	}
	forEachGemm8(t, func(t *testing.T, s *Set, wr w8Range) {
		t.Parallel()
		r := rand.New(rand.NewPCG(5, 8))
		for _, g := range geoms {
			t.Run(fmt.Sprintf("%dx%d_s%d_d%d_c%d", g.KH, g.KW, g.StrideH, g.DilH, g.C), func(t *testing.T) {
				in := randU8(r, g.H*g.W*g.C)
				w := make([]int8, g.K()*g.Cout)
				for i := range w {
					w[i] = wr.rand(r)
				}
				rq := &Requant{ZeroA: int32(r.IntN(256)), ZeroOut: int32(r.IntN(256)), Scale: make([]float32, g.Cout),
					Bias: make([]int32, g.Cout), Res: randU8(r, g.Pixels()*g.Cout), ResZero: int32(r.IntN(256)), ResScale: 0.7}
				rq.Lo = rq.ZeroOut
				for j := range rq.Scale {
					rq.Scale[j] = float32(r.Float64()*2e-4/math.Sqrt(float64(g.K())) + 1e-6)
					rq.Bias[j] = int32(r.IntN(20001) - 10000)
				}
				want := refConv8(&g, in, w, rq)
				pw := s.PackConv8(&g, w)
				wr.checkPacked(t, s, &pw)
				px, panels := g.Pixels(), pw.Panels()
				for _, split := range [][4]int{{0, px, 0, panels}, {0, px / 3, 0, panels}, {px / 3, px, 0, panels / 2}, {px / 3, px, panels / 2, panels}, {0, px / 3, panels / 2, panels}} {
					out := make([]uint8, px*g.Cout+16)
					for i := range out {
						out[i] = canary8
					}
					scratch := make([]byte, ConvScratch8(&g, &pw))
					Conv8(&g, in, &pw, out, rq, split[0], split[1], split[2], split[3], scratch)
					for p := 0; p < px; p++ {
						for j := 0; j < g.Cout; j++ {
							inside := p >= split[0] && p < split[1] && j >= split[2]*pw.NR && j < split[3]*pw.NR
							got := out[p*g.Cout+j]
							if inside && got != want[p*g.Cout+j] {
								t.Fatalf("split %v pixel %d channel %d: %d, want %d", split, p, j, got, want[p*g.Cout+j])
							}
							if !inside && got != canary8 {
								t.Fatalf("split %v pixel %d channel %d written outside the split", split, p, j)
							}
						}
					}
					for i := px * g.Cout; i < len(out); i++ {
						if out[i] != canary8 {
							t.Fatalf("canary %d overwritten", i-px*g.Cout)
						}
					}
				}
			})
		}
	})
}

func TestQuantizeDequantize(t *testing.T) {
	tests := []struct {
		x     float32
		scale float32
		zero  int32
		q     uint8
	}{
		{0, 0.1, 0, 0}, {0.25, 0.1, 0, 2}, {0.35, 0.1, 10, 14}, {-1, 0.1, 0, 0}, {1e30, 0.1, 3, 255},
		{float32(math.Inf(-1)), 0.5, 7, 0}, {float32(math.NaN()), 0.5, 7, 7}, {-0.5, 0.5, 128, 127},
		{0.25, 0.5, 0, 0}, {0.75, 0.5, 0, 2}, // half to even
	}
	for _, tc := range tests {
		var q [1]uint8
		Best().Quantize([]float32{tc.x}, q[:], tc.scale, tc.zero)
		if q[0] != tc.q {
			t.Errorf("Quantize(%v, %v, %d) = %d, want %d", tc.x, tc.scale, tc.zero, q[0], tc.q)
		}
	}
	// Dequantize then Quantize is the identity.
	in := make([]uint8, 256)
	for i := range in {
		in[i] = uint8(i)
	}
	f := make([]float32, 256)
	back := make([]uint8, 256)
	Best().Dequantize(in, f, 0.037, 91)
	Best().Quantize(f, back, 0.037, 91)
	for i := range in {
		if back[i] != in[i] || f[i] != float32(i-91)*0.037 {
			t.Fatalf("%d -> %v -> %d", i, f[i], back[i])
		}
	}
}

func TestAdd8(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 9))
	a, b := randU8(r, 1000), randU8(r, 1000)
	const sa, sb, so = 0.02, 0.05, 0.06
	for _, relu := range []bool{false, true} {
		p := &Add8Params{ZeroA: 100, ZeroB: 30, ZeroOut: 120, ScaleA: sa / so, ScaleB: sb / so}
		if relu {
			p.Lo = p.ZeroOut
		}
		out := make([]uint8, len(a))
		Best().Add8(a, b, out, p)
		for i := range out {
			real := sa*float64(int(a[i])-100) + sb*float64(int(b[i])-30)
			if relu {
				real = max(real, 0)
			}
			want := min(max(math.Round(real/so)+120, 0), 255)
			if math.Abs(float64(out[i])-want) > 1 {
				t.Fatalf("relu %v element %d: %d, float reference %v", relu, i, out[i], want)
			}
			if out[i] != Requantize(int32(a[i])-100, p.ScaleA, true, b[i], 30, p.ScaleB, 120, p.Lo) {
				t.Fatalf("element %d differs from Requantize", i)
			}
		}
	}
}

func TestPool8(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	g := PoolGeom{H: 9, W: 10, C: 5, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1}
	g.OH, g.OW = (g.H+2-3)/2+1, (g.W+2-3)/2+1
	in := randU8(r, g.H*g.W*g.C)
	inF := make([]float32, len(in))
	for i, v := range in {
		inF[i] = float32(v)
	}
	wantF := make([]float32, g.OH*g.OW*g.C)
	Best().MaxPool(&g, inF, wantF, 0, g.OH*g.OW)
	out := make([]uint8, len(wantF))
	Best().MaxPool8(&g, in, out, 0, g.OH*g.OW/2)
	Best().MaxPool8(&g, in, out, g.OH*g.OW/2, g.OH*g.OW)
	for i := range out {
		if float32(out[i]) != wantF[i] {
			t.Fatalf("max pool element %d: %d, want %v", i, out[i], wantF[i])
		}
	}
	// Global average pooling, against the float average of dequantized values.
	const hw, c, zIn, sIn, sOut, zOut = 90, 70, 37, 0.03, 0.02, 11
	x := randU8(r, hw*c)
	avg := make([]float32, c)
	GlobalAvgPool8F(x, hw, c, zIn, sIn/hw, avg)
	q := make([]uint8, c)
	GlobalAvgPool8(x, hw, c, zIn, float32(sIn/(hw*sOut)), zOut, q)
	for ch := 0; ch < c; ch++ {
		var sum float64
		for p := 0; p < hw; p++ {
			sum += sIn * float64(int(x[p*c+ch])-zIn)
		}
		mean := sum / hw
		if math.Abs(float64(avg[ch])-mean) > 1e-5 {
			t.Fatalf("channel %d: float average %v, want %v", ch, avg[ch], mean)
		}
		if want := min(max(math.Round(mean/sOut)+zOut, 0), 255); math.Abs(float64(q[ch])-want) > 1 { // float32 steps may round a half the other way
			t.Fatalf("channel %d: requantized average %d, want %v", ch, q[ch], want)
		}
	}
}

// TestCopyOps8 checks that the uint8 instances of the generic copy ops move
// the same elements as the float32 ones.
func TestCopyOps8(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 1))
	d := Dims3{5, 6, 7}
	in := randU8(r, d.size())
	inF := make([]float32, len(in))
	for i, v := range in {
		inF[i] = float32(v)
	}
	check := func(name string, got []uint8, want []float32) {
		t.Helper()
		for i := range want {
			if float32(got[i]) != want[i] {
				t.Fatalf("%s element %d: %d, want %v", name, i, got[i], want[i])
			}
		}
	}
	before, after := [3]int{1, 0, 2}, [3]int{0, 2, 3}
	o := Dims3{d.H + 1, d.W + 2, d.C + 5}
	pf, pu := make([]float32, o.size()), make([]uint8, o.size())
	Pad(inF, d, before, after, 9, pf)
	Pad(in, d, before, after, 9, pu)
	check("pad", pu, pf)
	so := Dims3{3, 3, 2}
	sf, su := make([]float32, so.size()), make([]uint8, so.size())
	Slice(inF, d, [3]int{0, 1, 1}, [3]int{2, 2, 3}, so, sf)
	Slice(in, d, [3]int{0, 1, 1}, [3]int{2, 2, 3}, so, su)
	check("slice", su, sf)
	co := Dims3{d.H, d.W, 2 * d.C}
	cf, cu := make([]float32, co.size()), make([]uint8, co.size())
	ConcatPart(inF, d, cf, co, 2, d.C)
	ConcatPart(in, d, cu, co, 2, d.C)
	check("concat", cu, cf)
	ff, fu := make([]float32, d.size()), make([]uint8, d.size())
	FlattenNCHW(inF, d, ff)
	FlattenNCHW(in, d, fu)
	check("flatten", fu, ff)
}

// BenchmarkConv8 times uint8 convolutions of CIFAR ResNet-20 and
// ResNet-18 shapes on the default Set's int8 GEMM (im2col included), in
// GOP/s (2 operations per multiply-add).
func BenchmarkConv8(b *testing.B) {
	geoms := []ConvGeom{
		{H: 32, W: 32, C: 16, OH: 32, OW: 32, Cout: 16, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1},
		{H: 8, W: 8, C: 64, OH: 8, OW: 8, Cout: 64, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1},
		{H: 56, W: 56, C: 64, OH: 56, OW: 56, Cout: 64, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1},
		{H: 14, W: 14, C: 256, OH: 14, OW: 14, Cout: 1024, KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1},
	}
	for _, g := range geoms {
		b.Run(fmt.Sprintf("%s/%dx%dx%d_k%d_cout%d", Best().Gemm8Name(), g.H, g.W, g.C, g.KH, g.Cout), func(b *testing.B) {
			r := rand.New(rand.NewPCG(2, 2))
			in := randU8(r, g.H*g.W*g.C)
			w := make([]int8, g.K()*g.Cout)
			for i := range w {
				w[i] = int8(r.IntN(255) - 127)
			}
			pw := Best().PackConv8(&g, w)
			rq := &Requant{ZeroA: 3, Scale: make([]float32, g.Cout)}
			for j := range rq.Scale {
				rq.Scale[j] = 1e-4
			}
			out := make([]uint8, g.Pixels()*g.Cout)
			scratch := make([]byte, ConvScratch8(&g, &pw))
			b.ResetTimer()
			for range b.N {
				Conv8(&g, in, &pw, out, rq, 0, g.Pixels(), 0, pw.Panels(), scratch)
			}
			ops := 2 * float64(g.Pixels()) * float64(g.K()) * float64(g.Cout)
			b.ReportMetric(ops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
		})
	}
}
