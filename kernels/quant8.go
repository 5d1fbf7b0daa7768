package kernels

import (
	"encoding/binary"
	"math"
)

// Quantize stores round-half-even(x/scale) + zero, clamped to [0, 255],
// for each x of in (len(out) values).
func (s *Set) Quantize(in []float32, out []uint8, scale float32, zero int32) {
	in = in[:len(out)]
	vec := 0
	// The kernels add zero in int32 to a value within ±65536; beyond ±2^24
	// (never a real zero point) Go does it in int64.
	if s.quant.quantize != nil && zero >= -1<<24 && zero <= 1<<24 {
		vec = len(out) / s.quant.lanes * s.quant.lanes
	}
	if vec > 0 {
		s.quant.quantize(&out[0], &in[0], vec, scale, zero)
	}
	quantizeGo(in[vec:], out[vec:], scale, zero)
}

// quantizeGo is the definition of Quantize (and the kernels' tail).
func quantizeGo(in []float32, out []uint8, scale float32, zero int32) {
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
func (s *Set) Dequantize(in []uint8, out []float32, scale float32, zero int32) {
	in = in[:len(out)]
	vec := 0
	if s.quant.dequantize != nil {
		vec = len(out) / s.quant.lanes * s.quant.lanes
	}
	if vec > 0 {
		s.quant.dequantize(&out[0], &in[0], vec, scale, zero)
	}
	dequantizeGo(in[vec:], out[vec:], scale, zero)
}

// dequantizeGo is the definition of Dequantize (and the kernels' tail).
func dequantizeGo(in []uint8, out []float32, scale float32, zero int32) {
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
func (s *Set) Add8(a, b, out []uint8, p *Add8Params) {
	n := len(out)
	a, b = a[:n], b[:n]
	vec := 0
	// The kernels need finite sums (|scales| <= 2^90 keeps
	// |float32(a-zA)·sA| below 2^121) and add ZeroOut in int32.
	if s.add8.add != nil && abs32(p.ScaleA) <= 0x1p90 && abs32(p.ScaleB) <= 0x1p90 &&
		p.ZeroOut >= -1<<24 && p.ZeroOut <= 1<<24 {
		vec = n / s.add8.lanes * s.add8.lanes
	}
	if vec > 0 {
		s.add8.add(&out[0], &a[0], &b[0], vec, p)
	}
	add8Go(a[vec:], b[vec:], out[vec:], p)
}

// abs32 is |x|, NaN for NaN (so that comparisons with it fail).
func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// add8Go is the definition of Add8 (and the kernels' tail).
func add8Go(a, b, out []uint8, p *Add8Params) {
	n := len(out)
	a, b = a[:n], b[:n]
	for i := range out {
		out[i] = Requantize(int32(a[i])-p.ZeroA, p.ScaleA, true, b[i], p.ZeroB, p.ScaleB, p.ZeroOut, p.Lo)
	}
}

// MaxPool8 is MaxPool on uint8 data (the max commutes with the monotonic
// quantization, so input and output share scale and zero point).
func (s *Set) MaxPool8(g *PoolGeom, in, out []uint8, px0, px1 int) {
	maxPool(g, in, out, px0, px1, s.maxPool8.window, s.maxPool8.lanes, maxWindow8Go)
}

// maxWindow8Go sets dst[j] to the maximum of src[y*rowStride+x*pixStride+j]
// over y < kh, x < kw, for j < len(dst). Whole 8-byte words go through
// maxBytes, the rest byte by byte; reslicing to len(dst) lets the compiler
// drop the bounds checks of the inner loops.
func maxWindow8Go(dst, src []uint8, kh, kw, rowStride, pixStride int) {
	n := len(dst)
	if n == 0 {
		return
	}
	copy(dst, src[:n])
	w := n &^ 7
	for y := 0; y < kh; y++ {
		for x := 0; x < kw; x++ {
			s := src[y*rowStride+x*pixStride:]
			s = s[:n]
			for i := 0; i < w; i += 8 {
				d := binary.LittleEndian.Uint64(dst[i : i+8])
				binary.LittleEndian.PutUint64(dst[i:i+8], maxBytes(d, binary.LittleEndian.Uint64(s[i:i+8])))
			}
			for i := w; i < n; i++ {
				dst[i] = max(dst[i], s[i])
			}
		}
	}
}

// maxBytes is the bytewise unsigned maximum of a and b (SWAR): each byte of
// a - b is computed as 0x100 + a_i - b_i in 9 bits, whose bit 8 says
// a_i >= b_i; that bit spread over the byte selects a_i or b_i.
func maxBytes(a, b uint64) uint64 {
	const hi, lo = 0x8080808080808080, 0x0101010101010101
	// (a|hi) - (b&^hi) cannot borrow across bytes; its high bit is set
	// where the low 7 bits of a_i >= those of b_i. Combined with the top
	// bits of a_i and b_i it gives a_i >= b_i.
	d := (a | hi) - (b &^ hi)
	ge := ((a &^ b) | (^(a ^ b) & d)) & hi // a_i >= b_i, in bit 7
	m := (ge >> 7) * 0xff                  // 0xff where a_i >= b_i
	return (a & m) | (b &^ m)
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
