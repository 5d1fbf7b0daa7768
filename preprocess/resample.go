package preprocess

import "math"

// This file reproduces Pillow's 8-bit bilinear Image.resize (the path that
// torchvision's Resize takes for PIL images) bit for bit:
//
//   - separable: a horizontal pass (only if the width changes) into an
//     intermediate 8-bit image holding just the source rows the vertical
//     pass needs, then a vertical pass (only if the height changes);
//   - per output sample, a triangle filter whose support is stretched by
//     the downscale factor (antialiasing), weights normalized to sum 1 in
//     float64, then turned into fixed point with precisionBits fraction bits
//     (round half away from zero);
//   - integer accumulation starting at half an output unit, and a clamp to
//     0..255 after each pass, so rounding happens twice, as in Pillow.
//
// Unlike Pillow we only compute the output samples inside the crop
// window. Each output sample depends only on its own weights, so the values
// are identical; it just skips work that CenterCrop would throw away.

// precisionBits is the number of fraction bits of Pillow's fixed-point
// weights: 32 bits minus 8 for the pixel value minus 2 of headroom.
const precisionBits = 32 - 8 - 2

// coeffs holds the filter taps of one axis for output samples o0..o1-1.
type coeffs struct {
	ksize int     // taps reserved per output sample
	first []int32 // first source index of each output sample
	count []int32 // number of taps of each output sample
	k     []int32 // fixed-point weights, ksize per output sample
	w     []float64
}

// triangle is the bilinear filter kernel (support 1).
func triangle(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// compute fills c for a resize of inSize samples to outSize samples,
// restricted to outputs [o0, o1). The float64 expressions follow Pillow's
// order of operations; explicit float64() conversions stop the Go compiler
// from fusing a multiply and an add (it may on arm64), which would change
// the rounding and, rarely, a weight.
func (c *coeffs) compute(inSize, outSize, o0, o1 int) {
	// Pillow takes the box as float32, hence the float32 round trip.
	scale := float64(float32(inSize)) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := 1.0 * filterscale
	c.ksize = int(math.Ceil(support))*2 + 1
	n := o1 - o0
	c.first = grow(c.first, n)
	c.count = grow(c.count, n)
	c.k = grow(c.k, n*c.ksize)
	c.w = grow(c.w, c.ksize)
	ss := 1.0 / filterscale
	for i := 0; i < n; i++ {
		center := float64((float64(o0+i) + 0.5) * scale)
		xmin := int(center - support + 0.5) // truncation, as C's (int)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		taps := xmax - xmin
		if taps > c.ksize { // cannot happen; keeps the slicing below safe
			taps = c.ksize
		}
		w := c.w[:taps]
		ww := 0.0
		for j := range w {
			w[j] = triangle((float64(j+xmin) - center + 0.5) * ss)
			ww += w[j]
		}
		k := c.k[i*c.ksize : (i+1)*c.ksize]
		for j := range k {
			k[j] = 0
		}
		for j, v := range w {
			if ww != 0 {
				v /= ww
			}
			// v*2^22 is exact, so fusing here could not change anything.
			if v < 0 {
				k[j] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				k[j] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		c.first[i] = int32(xmin)
		c.count[i] = int32(taps)
	}
}

// bytes is the memory of the tables, if they are in use.
func (c *coeffs) bytes(used bool) int64 {
	if !used {
		return 0
	}
	return int64(len(c.first)+len(c.count)+len(c.k))*4 + int64(len(c.w))*8
}

// span returns the source range [lo, hi) that the computed outputs read.
// first and first+count are non-decreasing in the output index.
func (c *coeffs) span(n int) (lo, hi int) {
	return int(c.first[0]), int(c.first[n-1] + c.count[n-1])
}

// clip8 turns an accumulator into a pixel: drop the fraction bits, clamp.
func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

const half = 1 << (precisionBits - 1)

// resampleH runs the horizontal pass over rows of src (stride sstride,
// ch interleaved channels, column 0 = source column off) into dst
// (len(c.first) outputs per row, packed). Sums are exact in int32 for
// non-negative weights, so the result does not depend on summation order.
func resampleH(dst, src []uint8, sstride, rows, ch, off int, c *coeffs, nout int) {
	dstride := nout * ch
	for y := 0; y < rows; y++ {
		srow := src[y*sstride : y*sstride+sstride]
		drow := dst[y*dstride : y*dstride+dstride]
		for i := 0; i < nout; i++ {
			x0 := int(c.first[i]) - off
			taps := int(c.count[i])
			k := c.k[i*c.ksize : i*c.ksize+taps]
			if ch == 3 {
				p := srow[x0*3 : (x0+taps)*3]
				s0, s1, s2 := int32(half), int32(half), int32(half)
				for j, kj := range k {
					q := p[j*3 : j*3+3]
					s0 += int32(q[0]) * kj
					s1 += int32(q[1]) * kj
					s2 += int32(q[2]) * kj
				}
				d := drow[i*3 : i*3+3]
				d[0], d[1], d[2] = clip8(s0), clip8(s1), clip8(s2)
			} else {
				p := srow[x0 : x0+taps]
				s0 := int32(half)
				for j, kj := range k {
					s0 += int32(p[j]) * kj
				}
				drow[i] = clip8(s0)
			}
		}
	}
}

// resampleV runs the vertical pass: output row i is the weighted sum of
// rows first[i]-off .. of src (stride bytes each), accumulated row by row
// in acc so the inner loop walks memory linearly.
func resampleV(dst, src []uint8, stride, off int, c *coeffs, nout int, acc []int32) {
	acc = acc[:stride]
	for i := 0; i < nout; i++ {
		for x := range acc {
			acc[x] = half
		}
		y0 := int(c.first[i]) - off
		taps := int(c.count[i])
		for j, kj := range c.k[i*c.ksize : i*c.ksize+taps] {
			row := src[(y0+j)*stride : (y0+j+1)*stride]
			for x, v := range row {
				acc[x] += int32(v) * kj
			}
		}
		drow := dst[i*stride : (i+1)*stride]
		for x, v := range acc {
			drow[x] = clip8(v)
		}
	}
}

// grow returns s resized to n elements, reusing its array when it can.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
