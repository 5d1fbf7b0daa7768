package kernels

import (
	"fmt"
	"math"
)

// PoolGeom is the geometry of a pooling window on NHWC data.
type PoolGeom struct {
	H, W, C          int // input
	OH, OW           int
	KH, KW           int
	StrideH, StrideW int
	PadTop, PadLeft  int
	PadBottom        int // with PadRight, bounds the window for CountIncludePad
	PadRight         int
	CountIncludePad  bool // average divides by the window clipped to the padded input
}

func (g *PoolGeom) check(in, out []float32, px0, px1 int) {
	if len(in) < g.H*g.W*g.C || len(out) < g.OH*g.OW*g.C || px0 < 0 || px1 > g.OH*g.OW {
		panic(fmt.Sprintf("kernels: bad pool arguments %+v", *g))
	}
}

// MaxPool computes output pixels [px0, px1). Padding never wins: a window
// that lies wholly in the padding (impossible with pad < window) yields -Inf.
func MaxPool(g *PoolGeom, in, out []float32, px0, px1 int) {
	g.check(in, out, px0, px1)
	c := g.C
	for p := px0; p < px1; p++ {
		oh, ow := p/g.OW, p%g.OW
		h0, w0 := oh*g.StrideH-g.PadTop, ow*g.StrideW-g.PadLeft
		dst := out[p*c : p*c+c]
		for i := range dst {
			dst[i] = float32(math.Inf(-1))
		}
		for ih := max(h0, 0); ih < min(h0+g.KH, g.H); ih++ {
			for iw := max(w0, 0); iw < min(w0+g.KW, g.W); iw++ {
				src := in[(ih*g.W+iw)*c : (ih*g.W+iw)*c+c]
				for i, v := range src {
					if v > dst[i] {
						dst[i] = v
					}
				}
			}
		}
	}
}

// AvgPool computes output pixels [px0, px1), summing in window order.
func AvgPool(g *PoolGeom, in, out []float32, px0, px1 int) {
	g.check(in, out, px0, px1)
	c := g.C
	for p := px0; p < px1; p++ {
		oh, ow := p/g.OW, p%g.OW
		h0, w0 := oh*g.StrideH-g.PadTop, ow*g.StrideW-g.PadLeft
		dst := out[p*c : p*c+c]
		clear(dst)
		ha, hb := max(h0, 0), min(h0+g.KH, g.H)
		wa, wb := max(w0, 0), min(w0+g.KW, g.W)
		for ih := ha; ih < hb; ih++ {
			for iw := wa; iw < wb; iw++ {
				src := in[(ih*g.W+iw)*c : (ih*g.W+iw)*c+c]
				for i, v := range src {
					dst[i] += v
				}
			}
		}
		n := (hb - ha) * (wb - wa)
		if g.CountIncludePad {
			n = (min(h0+g.KH, g.H+g.PadBottom) - h0) * (min(w0+g.KW, g.W+g.PadRight) - w0)
		}
		div := float32(max(n, 1))
		for i := range dst {
			dst[i] /= div
		}
	}
}

// GlobalAvgPool averages each channel of an hw x c input into out[c].
func GlobalAvgPool(in []float32, hw, c int, out []float32) {
	if len(in) < hw*c || len(out) < c {
		panic("kernels.GlobalAvgPool: short buffers")
	}
	dst := out[:c]
	clear(dst)
	for p := 0; p < hw; p++ {
		src := in[p*c : p*c+c]
		for i, v := range src {
			dst[i] += v
		}
	}
	div := float32(hw)
	for i := range dst {
		dst[i] /= div
	}
}
