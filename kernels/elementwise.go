package kernels

import (
	"fmt"
	"math"
)

// Add stores a+b (then max(.,0) if relu) into out.
func Add(a, b, out []float32, relu bool) {
	n := len(out)
	a, b = a[:n], b[:n]
	for i := range out {
		v := a[i] + b[i]
		if relu && v < 0 {
			v = 0
		}
		out[i] = v
	}
}

// Relu stores max(in, 0) into out; in and out may be the same slice.
func Relu(in, out []float32) {
	in = in[:len(out)]
	for i, v := range in {
		if v < 0 {
			v = 0
		}
		out[i] = v
	}
}

// Affine stores in*scale[c] + shift[c] for NHWC data with c channels
// (then max(.,0) if relu).
func Affine(in, out []float32, scale, shift []float32, relu bool) {
	c := len(scale)
	if c == 0 || len(shift) != c || len(in) < len(out) || len(out)%c != 0 {
		panic("kernels.Affine: bad arguments")
	}
	for p := 0; p < len(out); p += c {
		src, dst := in[p:p+c], out[p:p+c]
		for i := range dst {
			v := src[i]*scale[i] + shift[i]
			if relu && v < 0 {
				v = 0
			}
			dst[i] = v
		}
	}
}

// Softmax stores the softmax of in into out (a vector), with the maximum
// subtracted first so no exponent overflows.
func Softmax(in, out []float32) {
	in = in[:len(out)]
	m := float32(math.Inf(-1))
	for _, v := range in {
		m = max(m, v)
	}
	var sum float64
	for i, v := range in {
		e := math.Exp(float64(v - m))
		out[i] = float32(e)
		sum += e
	}
	for i := range out {
		out[i] = float32(float64(out[i]) / sum)
	}
}

// Dims3 is an NHWC tensor shape for the copy ops, which move float32 or
// uint8 (quantized) elements alike.
type Dims3 struct{ H, W, C int }

func (d Dims3) size() int { return d.H * d.W * d.C }

// Pad copies in (shape d) into out (shape d grown by before+after on each
// of H, W, C), filling the border with value.
func Pad[T float32 | uint8](in []T, d Dims3, before, after [3]int, value T, out []T) {
	o := Dims3{d.H + before[0] + after[0], d.W + before[1] + after[1], d.C + before[2] + after[2]}
	if len(in) < d.size() || len(out) < o.size() {
		panic(fmt.Sprintf("kernels.Pad: short buffers %v -> %v", d, o))
	}
	out = out[:o.size()]
	for h := 0; h < o.H; h++ {
		ih := h - before[0]
		row := out[h*o.W*o.C : (h+1)*o.W*o.C]
		if ih < 0 || ih >= d.H {
			fill(row, value)
			continue
		}
		fill(row[:before[1]*o.C], value)
		fill(row[(before[1]+d.W)*o.C:], value)
		for w := 0; w < d.W; w++ {
			dst := row[(before[1]+w)*o.C : (before[1]+w+1)*o.C]
			fill(dst[:before[2]], value)
			copy(dst[before[2]:before[2]+d.C], in[(ih*d.W+w)*d.C:(ih*d.W+w+1)*d.C])
			fill(dst[before[2]+d.C:], value)
		}
	}
}

func fill[T float32 | uint8](s []T, v T) {
	if v == 0 {
		clear(s)
		return
	}
	for i := range s {
		s[i] = v
	}
}

// Slice copies in[start[a] : : step[a]] on each axis into out, whose shape
// is o.
func Slice[T float32 | uint8](in []T, d Dims3, start, step [3]int, o Dims3, out []T) {
	last := [3]int{start[0] + (o.H-1)*step[0], start[1] + (o.W-1)*step[1], start[2] + (o.C-1)*step[2]}
	if len(out) < o.size() || len(in) < d.size() || last[0] >= d.H || last[1] >= d.W || last[2] >= d.C ||
		start[0] < 0 || start[1] < 0 || start[2] < 0 {
		panic(fmt.Sprintf("kernels.Slice: bad arguments %v %v %v %v", d, start, step, o))
	}
	i := 0
	for h := 0; h < o.H; h++ {
		ih := start[0] + h*step[0]
		for w := 0; w < o.W; w++ {
			iw := start[1] + w*step[1]
			src := in[(ih*d.W+iw)*d.C:]
			if step[2] == 1 {
				copy(out[i:i+o.C], src[start[2]:start[2]+o.C])
			} else {
				for c := 0; c < o.C; c++ {
					out[i+c] = src[start[2]+c*step[2]]
				}
			}
			i += o.C
		}
	}
}

// ConcatPart copies one concatenation operand in (shape d) into out (shape
// o) at offset off along axis (0 H, 1 W, 2 C).
func ConcatPart[T float32 | uint8](in []T, d Dims3, out []T, o Dims3, axis, off int) {
	oh, ow, oc := 0, 0, 0
	switch axis {
	case 0:
		oh = off
	case 1:
		ow = off
	default:
		oc = off
	}
	if len(in) < d.size() || len(out) < o.size() || oh+d.H > o.H || ow+d.W > o.W || oc+d.C > o.C {
		panic("kernels.ConcatPart: bad arguments")
	}
	for h := 0; h < d.H; h++ {
		for w := 0; w < d.W; w++ {
			dst := ((oh+h)*o.W + ow + w) * o.C
			copy(out[dst+oc:dst+oc+d.C], in[(h*d.W+w)*d.C:(h*d.W+w+1)*d.C])
		}
	}
}

// FlattenNCHW stores the NHWC tensor in (shape d) in NCHW order, as
// torch.flatten on an NCHW tensor would see it.
func FlattenNCHW[T float32 | uint8](in []T, d Dims3, out []T) {
	if len(in) < d.size() || len(out) < d.size() {
		panic("kernels.FlattenNCHW: short buffers")
	}
	hw := d.H * d.W
	for p := 0; p < hw; p++ {
		src := in[p*d.C : (p+1)*d.C]
		for c, v := range src {
			out[c*hw+p] = v
		}
	}
}
