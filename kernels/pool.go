package kernels

import (
	"fmt"
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

// MaxPool computes output pixels [px0, px1). Padding never wins: windows
// are clipped to the input (pad < window, so none is empty).
func (s *Set) MaxPool(g *PoolGeom, in, out []float32, px0, px1 int) {
	maxPool(g, in, out, px0, px1, s.maxPool.window, s.maxPool.lanes, maxWindowGo)
}

// maxPool is MaxPool for float32 and uint8 data: each output pixel's
// window, clipped to the input, goes through the path's kernel win (whole
// vectors of lanes channels; nil: none) and the Go twin for the rest.
func maxPool[T float32 | uint8](g *PoolGeom, in, out []T, px0, px1 int,
	win func(dst, src *T, n, kh, kw, rowStride, pixStride int), lanes int,
	winGo func(dst, src []T, kh, kw, rowStride, pixStride int)) {
	if len(in) < g.H*g.W*g.C || len(out) < g.OH*g.OW*g.C || px0 < 0 || px1 > g.OH*g.OW {
		panic(fmt.Sprintf("kernels: bad pool arguments %+v", *g))
	}
	c := g.C
	vec := 0
	if win != nil {
		vec = c / lanes * lanes
	}
	for p := px0; p < px1; p++ {
		oh, ow := p/g.OW, p%g.OW
		h0, w0 := oh*g.StrideH-g.PadTop, ow*g.StrideW-g.PadLeft
		ha, hb := max(h0, 0), min(h0+g.KH, g.H)
		wa, wb := max(w0, 0), min(w0+g.KW, g.W)
		dst := out[p*c : p*c+c]
		src := in[(ha*g.W+wa)*c:]
		if vec > 0 {
			win(&dst[0], &src[0], vec, hb-ha, wb-wa, g.W*c, c)
		}
		winGo(dst[vec:], src[vec:], hb-ha, wb-wa, g.W*c, c)
	}
}

// maxWindowGo sets dst[j] to the maximum of src[y*rowStride+x*pixStride+j]
// over y < kh, x < kw, for j < len(dst).
func maxWindowGo(dst, src []float32, kh, kw, rowStride, pixStride int) {
	if len(dst) == 0 {
		return
	}
	copy(dst, src[:len(dst)])
	for y := 0; y < kh; y++ {
		for x := 0; x < kw; x++ {
			s := src[y*rowStride+x*pixStride:]
			s = s[:len(dst)]
			for i, v := range s {
				if v > dst[i] {
					dst[i] = v
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
