package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refGroupConv is the definition in float64.
func refGroupConv(g *ConvGeom, groups int, in, w, bias, res []float32, act Activation) []float64 {
	cig, cog := g.C/groups, g.Cout/groups
	out := make([]float64, g.Pixels()*g.Cout)
	for oy := range g.OH {
		for ox := range g.OW {
			for co := range g.Cout {
				gr := co / cog
				var s float64
				if bias != nil {
					s = float64(bias[co])
				}
				for kh := range g.KH {
					for kw := range g.KW {
						ih, iw := oy*g.StrideH-g.PadTop+kh*g.DilH, ox*g.StrideW-g.PadLeft+kw*g.DilW
						if ih < 0 || ih >= g.H || iw < 0 || iw >= g.W {
							continue
						}
						for ci := range cig {
							s += float64(in[(ih*g.W+iw)*g.C+gr*cig+ci]) * float64(w[((kh*g.KW+kw)*cig+ci)*g.Cout+co])
						}
					}
				}
				p := (oy*g.OW+ox)*g.Cout + co
				if res != nil {
					s += float64(res[p])
				}
				switch act.Kind {
				case ActReLU:
					s = math.Max(s, 0)
				case ActClip:
					s = math.Min(math.Max(s, float64(act.Min)), float64(act.Max))
				}
				out[p] = s
			}
		}
	}
	return out
}

// TestGroupConv compares GroupConvDirect (on the default Set) and
// GroupConvGemm with the float64 definition on random
// data for group counts from 1 to depthwise, odd sizes, strides, padding,
// dilation and every epilogue, with canaries around the output, and checks
// that computing the rows one at a time gives the same bits.
func TestGroupConv(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	type tc struct{ h, w, c, cout, groups, k, stride, pad, dil int }
	var cases []tc
	for _, c := range []tc{
		{7, 6, 8, 8, 2, 3, 1, 1, 1}, {7, 6, 8, 8, 8, 3, 1, 1, 1}, {9, 5, 12, 24, 3, 3, 2, 1, 1},
		{5, 5, 32, 32, 8, 3, 1, 1, 1}, {6, 7, 6, 12, 6, 3, 1, 2, 2}, {4, 4, 4, 8, 1, 1, 1, 0, 1},
		{11, 3, 16, 16, 4, 5, 2, 2, 1}, {3, 3, 64, 64, 32, 3, 1, 1, 1}, {1, 1, 6, 6, 3, 3, 1, 1, 1},
	} {
		cases = append(cases, c)
	}
	acts := []Activation{{}, ReLU(), ReLU6(), Clip(-0.5, 0.25)}
	for i, c := range cases {
		g := ConvGeom{H: c.h, W: c.w, C: c.c, Cout: c.cout, KH: c.k, KW: c.k, StrideH: c.stride, StrideW: c.stride,
			DilH: c.dil, DilW: c.dil, PadTop: c.pad, PadLeft: c.pad}
		span := c.dil*(c.k-1) + 1
		g.OH, g.OW = (c.h+2*c.pad-span)/c.stride+1, (c.w+2*c.pad-span)/c.stride+1
		in, w := rnd(c.h*c.w*c.c), rnd(c.k*c.k*(c.c/c.groups)*c.cout)
		for j, withBias := range []bool{false, true} {
			var bias, res []float32
			if withBias {
				bias, res = rnd(c.cout), rnd(g.Pixels()*c.cout)
			}
			act := acts[(i+j)%len(acts)]
			t.Run(fmt.Sprintf("%+v/bias=%v/act=%d", c, withBias, act.Kind), func(t *testing.T) {
				want := refGroupConv(&g, c.groups, in, w, bias, res, act)
				n := g.Pixels() * c.cout
				buf := make([]float32, n+32)
				for k := range buf {
					buf[k] = float32(math.NaN())
				}
				out := buf[16 : 16+n]
				dw := Best().PackGroupDirect(&g, c.groups, w)
				ep := &GroupEpilogue{Bias: bias, Res: res, Act: act}
				acc := make([]float32, GroupConvDirectScratch(&g, &dw))
				GroupConvDirect(&g, &dw, in, out, ep, 0, g.OH, acc)
				for k := 0; k < 16; k++ {
					if !math.IsNaN(float64(buf[k])) || !math.IsNaN(float64(buf[16+n+k])) {
						t.Fatal("wrote outside the output")
					}
				}
				for k, v := range out {
					if d := math.Abs(float64(v) - want[k]); d > 1e-5*(1+math.Abs(want[k]))*float64(c.k*c.k*c.c/c.groups) {
						t.Fatalf("output %d = %v, want %v", k, v, want[k])
					}
				}
				if act.Kind != ActClip {
					// The GEMM form: same definition, FMA chains.
					gw := Best().PackGrouped(&g, c.groups, w)
					ep := Epilogue{Bias: bias, Res: res, Relu: act.Kind == ActReLU}
					gbuf := make([]float32, n+32)
					for k := range gbuf {
						gbuf[k] = float32(math.NaN())
					}
					gout := gbuf[16 : 16+n]
					sc := make([]float32, GroupConvGemmScratch(&g, &gw))
					for px := 0; px < g.Pixels(); px += 3 { // in pieces of 3 pixels
						GroupConvGemm(&g, &gw, in, gout, &ep, px, min(px+3, g.Pixels()), sc)
					}
					for k := 0; k < 16; k++ {
						if !math.IsNaN(float64(gbuf[k])) || !math.IsNaN(float64(gbuf[16+n+k])) {
							t.Fatal("GroupConvGemm wrote outside the output")
						}
					}
					for k, v := range gout {
						if d := math.Abs(float64(v) - want[k]); d > 1e-5*(1+math.Abs(want[k]))*float64(c.k*c.k*c.c/c.groups) {
							t.Fatalf("GroupConvGemm output %d = %v, want %v", k, v, want[k])
						}
					}
				}
				rows := make([]float32, n)
				for y := range g.OH {
					GroupConvDirect(&g, &dw, in, rows, ep, y, y+1, acc)
				}
				for k := range rows {
					if math.Float32bits(rows[k]) != math.Float32bits(out[k]) {
						t.Fatalf("row by row differs at %d", k)
					}
				}
			})
		}
	}
}
