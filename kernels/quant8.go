package kernels

import (
	"fmt"
	"math"
)

// Quantize stores round-half-even(x/scale) + zero, clamped to [0, 255],
// for each x of in (len(out) values).
func Quantize(in []float32, out []uint8, scale float32, zero int32) {
	in = in[:len(out)]
	for i, x := range in {
		t := float32(x / scale)
		if t != t {
			t = 0 // NaN: real zero
		}
		t = min(max(t, -65536), 65536) // keeps the conversion in range
		q := int64(math.RoundToEven(float64(t))) + int64(zero)
		out[i] = uint8(min(max(q, 0), 255))
	}
}

// Dequantize stores scale*(q - zero) for each q of in (len(out) values).
func Dequantize(in []uint8, out []float32, scale float32, zero int32) {
	in = in[:len(out)]
	for i, q := range in {
		out[i] = float32(float32(int32(q)-zero) * scale)
	}
}

// Add8Params requantize the sum of two uint8 tensors to the output's
// parameters: each element is Requantize(a - ZeroA, ScaleA, true, b, ZeroB,
// ScaleB, ZeroOut, Lo) (ScaleA = sA/sOut, ScaleB = sB/sOut; Lo = ZeroOut
// fuses a ReLU).
type Add8Params struct {
	ZeroA, ZeroB, ZeroOut, Lo int32
	ScaleA, ScaleB            float32
}

// Add8 stores the requantized a+b into out.
func Add8(a, b, out []uint8, p *Add8Params) {
	n := len(out)
	a, b = a[:n], b[:n]
	for i := range out {
		out[i] = Requantize(int32(a[i])-p.ZeroA, p.ScaleA, true, b[i], p.ZeroB, p.ScaleB, p.ZeroOut, p.Lo)
	}
}

// MaxPool8 is MaxPool on uint8 data (the max commutes with the monotonic
// quantization, so input and output share scale and zero point).
func MaxPool8(g *PoolGeom, in, out []uint8, px0, px1 int) {
	if len(in) < g.H*g.W*g.C || len(out) < g.OH*g.OW*g.C || px0 < 0 || px1 > g.OH*g.OW {
		panic(fmt.Sprintf("kernels: bad pool arguments %+v", *g))
	}
	c := g.C
	for p := px0; p < px1; p++ {
		oh, ow := p/g.OW, p%g.OW
		h0, w0 := oh*g.StrideH-g.PadTop, ow*g.StrideW-g.PadLeft
		ha, hb := max(h0, 0), min(h0+g.KH, g.H)
		wa, wb := max(w0, 0), min(w0+g.KW, g.W)
		dst := out[p*c : p*c+c]
		copy(dst, in[(ha*g.W+wa)*c:])
		for ih := ha; ih < hb; ih++ {
			for iw := wa; iw < wb; iw++ {
				src := in[(ih*g.W+iw)*c : (ih*g.W+iw)*c+c]
				for i, v := range src {
					dst[i] = max(dst[i], v)
				}
			}
		}
	}
}

// GlobalAvgPool8 averages each channel of an hw x c uint8 input with zero
// point zeroIn and requantizes: out[c] = Requantize(Σ(q - zeroIn), scale,
// ..., zeroOut, 0) with scale = sIn/(hw*sOut). The sum is exact in int32
// for hw < 2^23.
func GlobalAvgPool8(in []uint8, hw, c int, zeroIn int32, scale float32, zeroOut int32, out []uint8) {
	if len(in) < hw*c || len(out) < c || hw >= 1<<23 {
		panic("kernels.GlobalAvgPool8: bad arguments")
	}
	var acc [64]int32
	for c0 := 0; c0 < c; c0 += len(acc) {
		n := min(len(acc), c-c0)
		s := acc[:n]
		channelSums(in, hw, c, c0, s)
		for i, v := range s {
			out[c0+i] = Requantize(v-int32(hw)*zeroIn, scale, false, 0, 0, 0, zeroOut, 0)
		}
	}
}

// GlobalAvgPool8F is GlobalAvgPool8 with a float output:
// out[c] = float32(Σ(q - zeroIn)) * scale, scale = sIn/hw.
func GlobalAvgPool8F(in []uint8, hw, c int, zeroIn int32, scale float32, out []float32) {
	if len(in) < hw*c || len(out) < c || hw >= 1<<23 {
		panic("kernels.GlobalAvgPool8F: bad arguments")
	}
	var acc [64]int32
	for c0 := 0; c0 < c; c0 += len(acc) {
		n := min(len(acc), c-c0)
		s := acc[:n]
		channelSums(in, hw, c, c0, s)
		for i, v := range s {
			out[c0+i] = float32(float32(v-int32(hw)*zeroIn) * scale)
		}
	}
}

// channelSums stores in s the sums over hw pixels of channels [c0, c0+len(s)).
func channelSums(in []uint8, hw, c, c0 int, s []int32) {
	clear(s)
	for p := 0; p < hw; p++ {
		src := in[p*c+c0 : p*c+c0+len(s)]
		for i, v := range src {
			s[i] += int32(v)
		}
	}
}
