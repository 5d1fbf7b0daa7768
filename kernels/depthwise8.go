package kernels

import "fmt"

// Depthwise8 computes output rows [y0, y1) of a uint8 depthwise
// convolution with DepthwiseConv's geometry: uint8 activations with the
// zero point rq.ZeroA, int8 weights [KH][KW][C] (symmetric, per channel:
// their scale is folded into rq.Scale[c]), int32 accumulation and the
// requantization of the int8 GEMM, bit for bit:
//
//	acc = Bias[c] + Σ over the taps inside the input of (in - ZeroA)·w[(kh*KW+kw)*C + c]
//	q   = Requantize(acc, Scale[c], Res != nil, Res[(oy*OW+ox)*C + c], ResZero, ResScale, ZeroOut, Lo)
//	out[(oy*OW+ox)*C + c] = min(q, hi)
//
// A padded tap is the real zero (an input equal to ZeroA), so it adds
// nothing and is skipped. The sum is exact (as GemmU8's, it wraps only
// past 2^31). rq.LdRes is ignored: the residual has the output's layout,
// and may be out itself. Lo = ZeroOut fuses a ReLU; hi is the upper clamp
// of a fused Clip in output units (255: none), at least Lo. out must not
// overlap in or w. It allocates nothing.
//
// 3x3 filters at stride 1 or 2 along W (dilation 1 along W) run on the
// path's int8 row kernels (AVX2, AVX-512, AVX-512 VNNI, NEON) for whole
// vectors of channels, then on its tail's (AVX-512: AVX2's, 8 channels)
// for whole vectors of what is left (see dwChans), the border pixels on a
// copy of their window padded with ZeroA; the rest (other filters, the
// channels left by the vectors) in Go. Scales must be finite, as for
// GemmU8.
func (s *Set) Depthwise8(g *DepthwiseGeom, in []uint8, w []int8, out []uint8, rq *Requant, hi uint8, y0, y1 int) {
	d := newDwGeom(g, len(in), len(w), len(out), len(rq.Bias), rq.Bias != nil, len(rq.Res), rq.Res != nil, Activation{}, y0, y1, "Depthwise8")
	if len(rq.Scale) < g.C || rq.ZeroA < 0 || rq.ZeroA > 255 || rq.Lo < 0 || rq.Lo > int32(hi) {
		panic(fmt.Sprintf("kernels.Depthwise8: bad requantization len(Scale)=%d ZeroA=%d Lo=%d hi=%d", len(rq.Scale), rq.ZeroA, rq.Lo, hi))
	}
	var ch dwChans
	s.depthwise8Chans(&ch, g, rq.ZeroOut)
	c := g.C
	// The border pixels' copies, zeroed here once rather than per pixel
	// (which cost more than the kernels on small maps of few channels).
	var scratch [3 * 3 * dw8Block]uint8
	for oy := y0; oy < y1; oy++ {
		ih0 := oy*g.StrideH - g.PadTop
		kh0, kh1 := dwTaps(ih0, g.KH, g.DilH, g.H)
		for ox := 0; ox < g.OW; ox++ {
			pix := oy*g.OW + ox
			iw0 := ox*g.StrideW - g.PadLeft
			kw0, kw1 := dwTaps(iw0, g.KW, g.DilW, g.W)
			c0 := 0
			if ch.n > 0 && kh0 < kh1 && kw0 < kw1 {
				if ox == d.oxA && d.oxA < d.oxB {
					n := d.oxB - d.oxA
					src := ((ih0+kh0*g.DilH)*g.W + iw0) * c
					for i := range ch.n {
						sg := &ch.seg[i]
						dw8Row(sg.row8, &out[pix*c+sg.c0], &in[src+sg.c0], &w[kh0*3*c+sg.c0], dwPtr(rq.Bias, sg.c0), &rq.Scale[sg.c0],
							dwPtr(rq.Res, pix*c+sg.c0), sg.c1-sg.c0, kh1-kh0, n, c, g.DilH*g.W*c, c, d.flags,
							rq.ZeroA, rq.ZeroOut, rq.Lo, int32(hi), rq.ResZero, rq.ResScale)
					}
					if ch.end < c {
						for p := pix; p < pix+n; p++ {
							dwPixel8Go(&d, in, w, out, rq, hi, p, ih0, iw0+(p-pix)*g.StrideW, kh0, kh1, 0, 3, ch.end)
						}
					}
					ox = d.oxB - 1
					continue
				}
				dwEdge8(&d, &ch, &scratch, in, w, out, rq, hi, pix, ih0, iw0, kh0, kh1, kw0, kw1)
				c0 = ch.end
			}
			if c0 < c {
				dwPixel8Go(&d, in, w, out, rq, hi, pix, ih0, iw0, kh0, kh1, kw0, kw1, c0)
			}
		}
	}
}

// depthwise8Chans divides the channels of Depthwise8 on g among the
// int8 row kernels of the Set's depthwise implementation and its tails
// into ch, empty before (see dwChans): none but for 3x3 filters at stride
// 1 or 2 along W (dilation 1 along W), and none for a zero point of the
// output beyond ±2^24 (the kernels add it in int32 to a value within
// ±65536).
func (s *Set) depthwise8Chans(ch *dwChans, g *DepthwiseGeom, zeroOut int32) {
	if g.KH != 3 || g.KW != 3 || g.DilW != 1 || g.StrideW > 2 || zeroOut < -1<<24 || zeroOut > 1<<24 {
		return
	}
	for im := s.depthwise; im != nil && im.row8[g.StrideW] != 0; im = im.tail {
		if sg := ch.add(im, im.lanes8, g.C); sg != nil {
			sg.row8 = im.row8[g.StrideW]
		}
	}
}

// dw8Kind names an int8 3x3 interior kernel, run by dw8Row: a switch of
// direct calls rather than a func value, through which the scratch of
// Depthwise8 would escape to the heap. Every such kernel has the contract of
// dw8RowKernel.
type dw8Kind uint8

// dw8RowKernel is a path's int8 3x3 interior kernel for one stride along
// W (the assembly's contract): for npix consecutive output pixels j and
// channels ch < n (a positive multiple of the lanes), with rows filter rows
// (1..3; src and w already at the first row inside the input),
//
//	acc = bias[ch] (if flags&dwFlagBias, else 0) + Σ over r < rows, kw < 3 of
//	      (src[r*srcRow + (j*stride+kw)*c + ch] - zeroA) · w[(3r+kw)*wTap + ch]
//	dst[j*c + ch] = min(Requantize(acc, scale[ch], flags&dwFlagRes != 0, res[j*c + ch],
//	      resZero, resScale, zeroOut, lo), hi)
//
// Strides in bytes; |zeroOut| <= 2^24, finite scales.
type dw8RowKernel = func(dst, src *uint8, w *int8, bias *int32, scale *float32, res *uint8,
	n, rows, npix, c, srcRow, wTap, flags int, zeroA, zeroOut, lo, hi, resZero int32, resScale float32)

// dw8Block is the channel block of dwEdge8's scratch.
const dw8Block = 256

// dwEdge8 computes channels [0, ch.end) of a border pixel of Depthwise8
// with the parts' row kernels on a copy of its window (in scratch) in
// which the taps in the padding hold ZeroA: they add (ZeroA - ZeroA)·w = 0,
// exactly what skipping them does.
func dwEdge8(d *dwGeom, ch *dwChans, scratch *[3 * 3 * dw8Block]uint8, in []uint8, w []int8, out []uint8, rq *Requant, hi uint8,
	pix, ih0, iw0, kh0, kh1, kw0, kw1 int) {
	g := d.g
	c := g.C
	za := uint8(rq.ZeroA)
	rows := kh1 - kh0
	for c0 := 0; c0 < ch.end; c0 += dw8Block {
		cb := min(dw8Block, ch.end-c0)
		for r := 0; r < rows; r++ {
			ih := ih0 + (kh0+r)*g.DilH
			for kw := 0; kw < 3; kw++ {
				dst := scratch[(r*3+kw)*cb : (r*3+kw+1)*cb]
				if kw < kw0 || kw >= kw1 {
					fill(dst, za)
				} else {
					copy(dst, in[(ih*g.W+iw0+kw)*c+c0:])
				}
			}
		}
		// The parts' channels in this block: whole vectors (see dwChans).
		for i := range ch.n {
			sg := &ch.seg[i]
			a, b := max(sg.c0, c0), min(sg.c1, c0+cb)
			if a >= b {
				continue
			}
			dw8Row(sg.row8, &out[pix*c+a], &scratch[a-c0], &w[kh0*3*c+a], dwPtr(rq.Bias, a), &rq.Scale[a], dwPtr(rq.Res, pix*c+a),
				b-a, rows, 1, cb, 3*cb, c, d.flags, rq.ZeroA, rq.ZeroOut, rq.Lo, int32(hi), rq.ResZero, rq.ResScale)
		}
	}
}

// dwPtr is &s[i], or nil for a nil s.
func dwPtr[T any](s []T, i int) *T {
	if s == nil {
		return nil
	}
	return &s[i]
}

// dwPixel8Go computes channels [c0, C) of output pixel pix of Depthwise8,
// whose window starts at input (ih0, iw0) and is clipped to taps
// [kh0, kh1) x [kw0, kw1).
func dwPixel8Go(d *dwGeom, in []uint8, w []int8, out []uint8, rq *Requant, hi uint8, pix, ih0, iw0, kh0, kh1, kw0, kw1, c0 int) {
	g := d.g
	c := g.C
	za := rq.ZeroA
	var acc [dwChunk]int32
	for cb := c0; cb < c; cb += dwChunk {
		s := acc[:min(dwChunk, c-cb)]
		if rq.Bias != nil {
			copy(s, rq.Bias[cb:])
		} else {
			clear(s)
		}
		if kw0 >= kw1 {
			kh1 = kh0 // the window is wholly in the padding
		}
		for kh := kh0; kh < kh1; kh++ {
			x := in[((ih0+kh*g.DilH)*g.W+iw0+kw0*g.DilW)*c+cb:]
			wr := w[(kh*g.KW+kw0)*c+cb:]
			if kw1-kw0 == 3 && g.DilW == 1 {
				n := len(s)
				x0, x1, x2 := x[:n], x[c:c+n], x[2*c:2*c+n]
				w0, w1, w2 := wr[:n], wr[c:c+n], wr[2*c:2*c+n]
				for i := range s {
					s[i] += (int32(x0[i])-za)*int32(w0[i]) + (int32(x1[i])-za)*int32(w1[i]) + (int32(x2[i])-za)*int32(w2[i])
				}
				continue
			}
			for kw := 0; kw < kw1-kw0; kw++ {
				xt := x[kw*g.DilW*c:][:len(s)]
				wt := wr[kw*c:][:len(s)]
				for i := range s {
					s[i] += (int32(xt[i]) - za) * int32(wt[i])
				}
			}
		}
		o := out[pix*c+cb : pix*c+cb+len(s)]
		scale := rq.Scale[cb : cb+len(s)]
		var res []uint8
		if rq.Res != nil {
			res = rq.Res[pix*c+cb : pix*c+cb+len(s)]
		}
		for i, v := range s {
			var r uint8
			if res != nil {
				r = res[i]
			}
			o[i] = min(Requantize(v, scale[i], res != nil, r, rq.ResZero, rq.ResScale, rq.ZeroOut, rq.Lo), hi)
		}
	}
}
