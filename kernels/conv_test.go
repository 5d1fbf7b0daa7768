package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestConv checks im2col + GEMM against the definition on every path:
// the stem's 7x7/2 with C=3, 3x3 with and without stride and padding,
// dilation, 1x1 stride 2 and direct 1x1, each split over pixels and panels
// as the executor splits them.
func TestConv(t *testing.T) {
	geoms := []ConvGeom{
		{H: 23, W: 21, C: 3, Cout: 20, KH: 7, KW: 7, StrideH: 2, StrideW: 2, DilH: 1, DilW: 1, PadTop: 3, PadLeft: 3},
		{H: 9, W: 11, C: 13, Cout: 35, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1},
		{H: 10, W: 9, C: 16, Cout: 33, KH: 3, KW: 3, StrideH: 2, StrideW: 2, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1},
		{H: 12, W: 12, C: 5, Cout: 7, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 2, DilW: 2, PadTop: 2, PadLeft: 2},
		{H: 8, W: 7, C: 24, Cout: 48, KH: 1, KW: 1, StrideH: 2, StrideW: 2, DilH: 1, DilW: 1},
		{H: 7, W: 9, C: 40, Cout: 70, KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1},
		{H: 6, W: 6, C: 300, Cout: 17, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1}, // several im2col blocks
	}
	for i := range geoms {
		g := &geoms[i]
		// Output size with symmetric padding.
		g.OH = (g.H+2*g.PadTop-g.DilH*(g.KH-1)-1)/g.StrideH + 1
		g.OW = (g.W+2*g.PadLeft-g.DilW*(g.KW-1)-1)/g.StrideW + 1
	}
	forEachGemm(t, func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(5, 6))
		for _, g := range geoms {
			t.Run(fmt.Sprintf("%dx%d_s%d_d%d_c%d", g.KH, g.KW, g.StrideH, g.DilH, g.C), func(t *testing.T) {
				in := randSlice(r, g.H*g.W*g.C)
				w := randSlice(r, g.K()*g.Cout)
				bias := randSlice(r, g.Cout)
				res := randSlice(r, g.Pixels()*g.Cout)
				want := refConv(&g, in, w, &Epilogue{Bias: bias, Res: res, Relu: true})
				pw := s.PackB(w, g.K(), g.Cout)
				ep := &Epilogue{Bias: bias, Res: res, Relu: true}
				px := g.Pixels()
				half := px / 2 / pw.MR() * pw.MR()
				full, out := guarded(px * g.Cout)
				scratch := make([]float32, ConvScratch(&g, &pw))
				Conv(&g, in, &pw, out, ep, 0, half, 0, pw.Panels(), scratch)
				Conv(&g, in, &pw, out, ep, half, px, 0, 1, scratch)
				Conv(&g, in, &pw, out, ep, half, px, 1, pw.Panels(), scratch)
				checkCanaries(t, full, px*g.Cout)
				tol := gemmTol(pw.Kernel(), g.K())
				for i := range want {
					if !(math.Abs(float64(out[i])-want[i]) <= tol) {
						t.Fatalf("out[%d] = %v, want %v", i, out[i], want[i])
					}
				}
			})
		}
	})
}
