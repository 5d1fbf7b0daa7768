package kernels

import (
	"errors"
	"fmt"
	"math"
)

// Depthwise convolution: group = C, one KH x KW filter per channel
// (channel multiplier 1), on one NHWC image of H x W x C; weights are laid
// out [KH][KW][C] (channels fastest), the output is OH x OW x C.
//
// For output pixel (oy, ox) and channel c, with ih0 = oy*StrideH - PadTop
// and iw0 = ox*StrideW - PadLeft:
//
//	s = Bias[c]                     (+0 without a bias, and for a bias of -0)
//	for kh < KH, then kw < KW, skipping the taps that fall in the padding:
//	    s = fma(w[(kh*KW+kw)*C + c], in[((ih0+kh*DilH)*W + iw0+kw*DilW)*C + c], s)
//	s = s + Res[(oy*OW+ox)*C + c]   if Res != nil
//	s = Lo if s < Lo, Hi if s > Hi  the activation (see Activation)
//	out[(oy*OW+ox)*C + c] = s
//
// fma is a float32 fused multiply-add (one rounding) and the addition of
// the residual rounds to float32. Every implementation (the Go code below,
// AVX2, AVX-512 and NEON) performs exactly these operations in this order,
// so the outputs are bit-identical on every kernel path, whatever range of
// rows each call computes (NaN payloads aside). The Go code emulates the
// fused operation exactly (fmaAdd), so it is the reference and the
// fallback (generic path, purego, 32-bit); it costs about 4x a plain Go
// multiply-add. Since the sum starts at +0 or a bias that is not -0, it is
// never -0 (an exact zero of a sum rounds to +0), so the clamp can as well
// be Arm's FMAX and FMIN or x86's VMAXPS and VMINPS, and no output is -0.
//
// The vector kernels cover whole vectors of channels (8 on AVX2, 16 on
// AVX-512, 4 on NEON). An implementation may have a tail, a narrower one
// that takes whole vectors of its own lanes from the channels left over
// (AVX-512's is AVX2's: of 24 channels, 16 run on AVX-512 and 8 on AVX2);
// Go computes the rest (dwChans). Output
// pixels whose window is inside the input go, for 3x3 filters with stride
// 1 or 2 along W (any stride along H, dilation 1 along W), through a
// kernel that keeps the filter in registers and reuses each input vector
// for every output it touches; the others (the padded border, other
// filters) through a kernel for one pixel and a clipped window.

// ActKind is the activation an epilogue ends with.
type ActKind uint8

const (
	ActNone ActKind = iota
	ActReLU         // max(x, 0)
	ActClip         // Clip(Min, Max); ReLU6 is Clip(0, 6)
)

// Activation is the last step of an epilogue, a clamp by comparisons:
// x < Lo becomes Lo, then x > Hi becomes Hi, where ReLU is Lo = 0 with no
// upper bound; bounds of -0 are taken as +0. NaN passes (both comparisons
// are false). Its zero value is no activation.
type Activation struct {
	Kind     ActKind
	Min, Max float32 // ActClip only: not NaN, Min <= Max
}

// ReLU is max(x, 0).
func ReLU() Activation { return Activation{Kind: ActReLU} }

// Clip is min(max(x, lo), hi).
func Clip(lo, hi float32) Activation { return Activation{Kind: ActClip, Min: lo, Max: hi} }

// ReLU6 is Clip(0, 6).
func ReLU6() Activation { return Clip(0, 6) }

// Depthwise kernel flags as the assembly takes them.
const (
	dwFlagBias = 1
	dwFlagRes  = 2
	dwFlagLo   = 4 // x < lo becomes lo
	dwFlagHi   = 8 // x > hi becomes hi
)

// clamp returns the activation as kernel flags and bounds.
func (a Activation) clamp() (flags int, lo, hi float32, err error) {
	switch a.Kind {
	case ActNone:
		return 0, 0, 0, nil
	case ActReLU:
		return dwFlagLo, 0, 0, nil
	case ActClip:
		lo, hi := a.Min, a.Max
		if lo != lo || hi != hi || lo > hi {
			return 0, 0, 0, fmt.Errorf("bad Clip(%v, %v)", lo, hi)
		}
		if lo == 0 {
			lo = 0 // +0 for -0
		}
		if hi == 0 {
			hi = 0
		}
		return dwFlagLo | dwFlagHi, lo, hi, nil
	}
	return 0, 0, 0, fmt.Errorf("unknown activation %d", a.Kind)
}

// DepthwiseGeom is the geometry of a depthwise convolution on one NHWC
// image. OH and OW must be what SetOutput computes.
type DepthwiseGeom struct {
	H, W, C             int // input; the output has C channels too
	OH, OW              int
	KH, KW              int
	StrideH, StrideW    int
	DilH, DilW          int
	PadTop, PadLeft     int
	PadBottom, PadRight int
}

// SetOutput sets OH = (H + PadTop + PadBottom - DilH*(KH-1) - 1)/StrideH + 1
// and OW likewise.
func (g *DepthwiseGeom) SetOutput() {
	g.OH = dwOut(g.H, g.KH, g.StrideH, g.DilH, g.PadTop, g.PadBottom)
	g.OW = dwOut(g.W, g.KW, g.StrideW, g.DilW, g.PadLeft, g.PadRight)
}

func dwOut(n, k, stride, dil, pa, pb int) int {
	span := n + pa + pb - dil*(k-1) - 1
	if span < 0 || stride < 1 {
		return 0
	}
	return span/stride + 1
}

// Check reports what is wrong with g, if anything.
func (g *DepthwiseGeom) Check() error {
	if g.H < 1 || g.W < 1 || g.C < 1 || g.KH < 1 || g.KW < 1 || g.StrideH < 1 || g.StrideW < 1 ||
		g.DilH < 1 || g.DilW < 1 || g.PadTop < 0 || g.PadLeft < 0 || g.PadBottom < 0 || g.PadRight < 0 {
		return fmt.Errorf("bad depthwise geometry %+v", *g)
	}
	oh := dwOut(g.H, g.KH, g.StrideH, g.DilH, g.PadTop, g.PadBottom)
	ow := dwOut(g.W, g.KW, g.StrideW, g.DilW, g.PadLeft, g.PadRight)
	if oh < 1 || ow < 1 || g.OH != oh || g.OW != ow {
		return fmt.Errorf("depthwise geometry %+v: output must be %dx%d (SetOutput) and not empty", *g, oh, ow)
	}
	// Every index must fit an int: the kernels compute byte offsets.
	if int64(g.H)*int64(g.W)*int64(g.C) > math.MaxInt32 || int64(g.OH)*int64(g.OW)*int64(g.C) > math.MaxInt32 ||
		int64(g.KH)*int64(g.KW)*int64(g.C) > math.MaxInt32 {
		return errors.New("depthwise tensors over 2^31 values")
	}
	return nil
}

// MACs is the number of multiply-adds, padded taps included
// (OH*OW*C*KH*KW), the usual count for GFLOP/s.
func (g *DepthwiseGeom) MACs() int64 {
	return int64(g.OH) * int64(g.OW) * int64(g.C) * int64(g.KH) * int64(g.KW)
}

// DepthwiseEpilogue is what happens to each depthwise sum before it is
// stored (see above).
type DepthwiseEpilogue struct {
	Bias []float32 // len >= C, or nil: the sum starts at the bias
	Res  []float32 // residual with the output's layout (OH*OW*C), or nil; may be out itself
	Act  Activation
}

// DepthwiseConv computes output rows [y0, y1) of the depthwise convolution
// defined above: in is H*W*C values, w KH*KW*C, out OH*OW*C; ep may be
// nil (no bias, residual or activation). Rows may be split across calls
// (threads) at will: the results do not change. out must not overlap in,
// w or the bias; the residual may be out itself (in place) but must not
// overlap it otherwise. It allocates nothing.
func (s *Set) DepthwiseConv(g *DepthwiseGeom, in, w, out []float32, ep *DepthwiseEpilogue, y0, y1 int) {
	if ep == nil {
		ep = &DepthwiseEpilogue{}
	}
	d := dwRun{dwGeom: newDwGeom(g, len(in), len(w), len(out), len(ep.Bias), ep.Bias != nil, len(ep.Res), ep.Res != nil, ep.Act, y0, y1, "DepthwiseConv"),
		in: in, w: w, out: out, bias: ep.Bias, res: ep.Res}
	d.row3 = s.depthwiseChans(&d.chans, g)
	for oy := y0; oy < y1; oy++ {
		d.row(oy)
	}
}

// depthwiseChans divides the channels of DepthwiseConv on g among the
// Set's depthwise implementation and its tails into ch, empty before (see
// dwChans); it reports whether the interior goes through their 3x3 row
// kernels, which it does when every part has one.
func (s *Set) depthwiseChans(ch *dwChans, g *DepthwiseGeom) (row3 bool) {
	row3 = g.KH == 3 && g.KW == 3 && g.DilW == 1 && g.StrideW <= 2
	for im := s.depthwise; im != nil; im = im.tail {
		if sg := ch.add(im, im.lanes, g.C); sg != nil && row3 {
			sg.row3 = im.row3x3[g.StrideW]
			row3 = sg.row3 != nil
		}
	}
	return row3 && ch.n > 0
}

// dwGeom is what every output row of one call needs: the checked
// geometry, flags and bounds of the epilogue and the interior columns.
type dwGeom struct {
	g        *DepthwiseGeom
	flags    int // dwFlag*
	lo, hi   float32
	oxA, oxB int // output columns whose every kw tap is inside the input
}

// dwRun is one DepthwiseConv call.
type dwRun struct {
	dwGeom
	in, w, out, bias, res []float32
	chans                 dwChans // the channels of the vector kernels
	row3                  bool    // the interior runs on the parts' 3x3 row kernels
}

// dwSeg is a part of the channels, [c0, c1), that one implementation's
// vector kernels compute: whole vectors of its lanes.
type dwSeg struct {
	c0, c1 int
	impl   *depthwiseImpl
	row3   dwRowKernel // fp32: the 3x3 interior kernel for the call's stride, or nil
	row8   dw8Kind     // int8: the 3x3 interior kernel for the call's stride
}

// dwChans is how a call divides its channels between the vector kernels
// of a Set's depthwise implementation and of its tails: seg[:n] from
// channel 0 on, one after the other, then [end, C) in Go. Each part starts
// at a multiple of its lanes (the lanes of a tail divide those before it),
// so the block boundaries of dwEdge8 (multiples of dw8Block) cut it into
// whole vectors.
type dwChans struct {
	seg [2]dwSeg
	n   int // parts
	end int // channels [0, end) go through the vector kernels
}

// add gives im the whole vectors of lanes channels that are left of c
// after end, if any (and if there is room: a longer chain of tails leaves
// the rest to Go), and returns that part for its kernels, or nil. (The
// parts are filled in place: copying them around cost a quarter of a small
// layer's call.)
func (ch *dwChans) add(im *depthwiseImpl, lanes, c int) *dwSeg {
	v := (c - ch.end) / lanes * lanes
	if v == 0 || ch.n == len(ch.seg) {
		return nil
	}
	sg := &ch.seg[ch.n]
	sg.impl, sg.c0, sg.c1 = im, ch.end, ch.end+v
	ch.n++
	ch.end += v
	return sg
}

// newDwGeom checks a call's arguments (lengths of the input, weights,
// output, bias and residual) and prepares what its rows share.
func newDwGeom(g *DepthwiseGeom, nIn, nW, nOut, nBias int, hasBias bool, nRes int, hasRes bool, act Activation, y0, y1 int, who string) dwGeom {
	if err := g.Check(); err != nil {
		panic("kernels." + who + ": " + err.Error())
	}
	flags, lo, hi, err := act.clamp()
	if err != nil {
		panic("kernels." + who + ": " + err.Error())
	}
	outN := g.OH * g.OW * g.C
	if nIn < g.H*g.W*g.C || nW < g.KH*g.KW*g.C || nOut < outN || (hasBias && nBias < g.C) ||
		(hasRes && nRes < outN) || y0 < 0 || y1 > g.OH || y0 > y1 {
		panic(fmt.Sprintf("kernels.%s: bad arguments %+v len(in)=%d len(w)=%d len(out)=%d len(bias)=%d len(res)=%d rows [%d, %d)",
			who, *g, nIn, nW, nOut, nBias, nRes, y0, y1))
	}
	if hasBias {
		flags |= dwFlagBias
	}
	if hasRes {
		flags |= dwFlagRes
	}
	d := dwGeom{g: g, flags: flags, lo: lo, hi: hi}
	// ox is interior when iw0 = ox*StrideW - PadLeft >= 0 and
	// iw0 + (KW-1)*DilW <= W-1.
	d.oxA = min(g.OW, (g.PadLeft+g.StrideW-1)/g.StrideW)
	d.oxB = d.oxA
	if last := g.W - 1 - (g.KW-1)*g.DilW + g.PadLeft; last >= 0 {
		d.oxB = max(d.oxA, min(g.OW, last/g.StrideW+1))
	}
	return d
}

// dwTaps returns the taps [k0, k1) of a filter dimension (k taps,
// dilation d) starting at input index i0 that fall inside [0, n).
func dwTaps(i0, k, d, n int) (k0, k1 int) {
	if i0 < 0 {
		k0 = (-i0 + d - 1) / d
	}
	k1 = k
	if i0+(k-1)*d >= n {
		k1 = 0
		if n > i0 {
			k1 = (n - i0 + d - 1) / d
		}
	}
	return min(k0, k), max(min(k1, k), min(k0, k))
}

// row computes output row oy.
func (d *dwRun) row(oy int) {
	g := d.g
	c := g.C
	ih0 := oy*g.StrideH - g.PadTop
	kh0, kh1 := dwTaps(ih0, g.KH, g.DilH, g.H)
	for ox := 0; ox < g.OW; ox++ {
		pix := oy*g.OW + ox
		iw0 := ox*g.StrideW - g.PadLeft
		if d.row3 && ox == d.oxA && d.oxA < d.oxB && kh0 < kh1 {
			n := d.oxB - d.oxA
			src := ((ih0+kh0*g.DilH)*g.W + iw0) * c
			for i := range d.chans.n {
				sg := &d.chans.seg[i]
				sg.row3(&d.out[pix*c+sg.c0], &d.in[src+sg.c0], &d.w[kh0*3*c+sg.c0], d.biasAt(sg.c0), d.resAt(pix, sg.c0),
					sg.c1-sg.c0, kh1-kh0, n, c, g.DilH*g.W*c, d.flags, d.lo, d.hi)
			}
			if end := d.chans.end; end < c {
				for p := pix; p < pix+n; p++ {
					d.pixelGo(p, ih0, iw0+(p-pix)*g.StrideW, kh0, kh1, 0, 3, end)
				}
			}
			ox = d.oxB - 1
			continue
		}
		kw0, kw1 := dwTaps(iw0, g.KW, g.DilW, g.W)
		c0 := 0
		if d.chans.n > 0 && kh0 < kh1 && kw0 < kw1 {
			src := ((ih0+kh0*g.DilH)*g.W + iw0 + kw0*g.DilW) * c
			wi := (kh0*g.KW + kw0) * c
			for i := range d.chans.n {
				sg := &d.chans.seg[i]
				sg.impl.window(&d.out[pix*c+sg.c0], &d.in[src+sg.c0], &d.w[wi+sg.c0], d.biasAt(sg.c0), d.resAt(pix, sg.c0),
					sg.c1-sg.c0, kh1-kh0, kw1-kw0, g.DilH*g.W*c, g.DilW*c, g.KW*c, c, d.flags, d.lo, d.hi)
			}
			c0 = d.chans.end
		}
		if c0 < c { // else nothing is left, and pixelGo would still clear its sums
			d.pixelGo(pix, ih0, iw0, kh0, kh1, kw0, kw1, c0)
		}
	}
}

// biasAt is the bias from channel c0 on, nil without a bias.
func (d *dwRun) biasAt(c0 int) *float32 { return dwPtr(d.bias, c0) }

// resAt is the residual of pixel pix from channel c0 on, nil without one.
func (d *dwRun) resAt(pix, c0 int) *float32 { return dwPtr(d.res, pix*d.g.C+c0) }

// dwChunk is how many channels the Go code accumulates at a time.
const dwChunk = 64

// pixelGo computes channels [c0, C) of output pixel pix, whose window
// starts at input (ih0, iw0) and is clipped to taps [kh0, kh1) x [kw0, kw1).
func (d *dwRun) pixelGo(pix, ih0, iw0, kh0, kh1, kw0, kw1, c0 int) {
	g := d.g
	c := g.C
	var acc [dwChunk]float32
	for cb := c0; cb < c; cb += dwChunk {
		s := acc[:min(dwChunk, c-cb)]
		dwInitGo(s, d.bias, cb)
		if kw0 >= kw1 {
			kh1 = kh0 // the window is wholly in the padding
		}
		for kh := kh0; kh < kh1; kh++ {
			in := d.in[((ih0+kh*g.DilH)*g.W+iw0+kw0*g.DilW)*c+cb:]
			w := d.w[(kh*g.KW+kw0)*c+cb:]
			if kw1-kw0 == 3 && g.DilW == 1 {
				dwTap3Go(s, w, in, c)
				continue
			}
			for kw := 0; kw < kw1-kw0; kw++ {
				dwTapGo(s, w[kw*c:], in[kw*g.DilW*c:])
			}
		}
		var res []float32
		if d.res != nil {
			res = d.res[pix*c+cb:]
		}
		dwFinishGo(d.out[pix*c+cb:pix*c+cb+len(s)], s, res, d.flags, d.lo, d.hi)
	}
}

// dwInitGo starts the sums s at bias[c0:] (-0 as +0), or +0 if bias is
// nil.
func dwInitGo(s, bias []float32, c0 int) {
	if bias == nil {
		clear(s)
		return
	}
	b := bias[c0 : c0+len(s)]
	for i, v := range b {
		if v == 0 {
			v = 0 // +0 for -0
		}
		s[i] = v
	}
}

// dwTapGo does s[i] = fma(w[i], x[i], s[i]) for i < len(s). fmaAdd is
// written out by hand in these loops: it is over the inliner's budget.
func dwTapGo(s, w, x []float32) {
	w, x = w[:len(s)], x[:len(s)]
	for i, v := range s {
		p := float64(w[i]) * float64(x[i])
		if t := p + float64(v); math.Float64bits(t)<<36 != 0 {
			s[i] = float32(t)
		} else {
			s[i] = roundOdd(p, v, t)
		}
	}
}

// dwTap3Go is dwTapGo for three consecutive taps of one filter row (tap j
// at w[j*c:], x[j*c:]), in tap order.
func dwTap3Go(s, w, x []float32, c int) {
	n := len(s)
	w0, w1, w2 := w[:n], w[c:c+n], w[2*c:2*c+n]
	x0, x1, x2 := x[:n], x[c:c+n], x[2*c:2*c+n]
	for i, v := range s {
		p := float64(w0[i]) * float64(x0[i])
		if t := p + float64(v); math.Float64bits(t)<<36 != 0 {
			v = float32(t)
		} else {
			v = roundOdd(p, v, t)
		}
		p = float64(w1[i]) * float64(x1[i])
		if t := p + float64(v); math.Float64bits(t)<<36 != 0 {
			v = float32(t)
		} else {
			v = roundOdd(p, v, t)
		}
		p = float64(w2[i]) * float64(x2[i])
		if t := p + float64(v); math.Float64bits(t)<<36 != 0 {
			v = float32(t)
		} else {
			v = roundOdd(p, v, t)
		}
		s[i] = v
	}
}

// dwFinishGo stores the sums s into dst through the residual (if res is
// not nil) and the clamp.
func dwFinishGo(dst, s, res []float32, flags int, lo, hi float32) {
	s = s[:len(dst)]
	if res != nil {
		res = res[:len(dst)]
		for i := range s {
			s[i] += res[i]
		}
	}
	doLo, doHi := flags&dwFlagLo != 0, flags&dwFlagHi != 0
	for i, v := range s {
		if doLo && v < lo {
			v = lo
		}
		if doHi && v > hi {
			v = hi
		}
		dst[i] = v
	}
}

// fma32 returns a*b + c rounded once to float32, as a fused multiply-add
// instruction does: the product of two float32 is exact in float64, so
// fmaAdd of it is.
func fma32(a, b, c float32) float32 { return fmaAdd(float64(a)*float64(b), c) }

// fmaAdd returns p + c rounded once to float32, for p a float64 with at
// most 48 significant bits (a product of two float32). The float64 sum s
// is a correct rounding of p + c; rounding s again to float32 is correct
// too unless s lies exactly on the midpoint between two float32 (then its
// low 28 bits are zero, the test below) and the float64 sum was inexact:
// roundOdd decides those.
func fmaAdd(p float64, c float32) float32 {
	s := p + float64(c)
	if math.Float64bits(s)<<36 != 0 {
		return float32(s)
	}
	return roundOdd(p, c, s)
}

// roundOdd returns p + c rounded once to float32, given s = p + c
// rounded to float64: it rounds the sum to odd instead (if the sum was
// inexact and s has an even last bit, s moves to its odd neighbour
// towards the exact sum, whose error e the TwoSum gives exactly), and
// rounding that to float32 (24 bits, under 53 - 2) is the correct
// rounding of the exact sum.
//
//go:noinline
func roundOdd(p float64, c float32, s float64) float32 {
	bb := s - p
	e := (p - (s - bb)) + (float64(c) - bb) // exact: |p| < 2^256; NaN for infinite inputs
	if bits := math.Float64bits(s); bits&1 == 0 && (e > 0 || e < 0) {
		if (e > 0) == (s > 0) {
			bits++
		} else {
			bits--
		}
		s = math.Float64frombits(bits)
	}
	return float32(s)
}

// dwRowKernel is a path's 3x3 interior kernel for one stride along W (the
// assembly's contract):
//
// For npix consecutive output pixels j (all windows inside the input
// horizontally) and channels [0, n), n a positive multiple of the lanes:
// the sum of DepthwiseConv over rows r < rows of the filter (1 <= rows <=
// 3, src and w already at the first row inside the input, row r of the
// input at src + r*srcRow, of the filter at w + 3*r*c), taps kw < 3 at
// src + (j*stride + kw)*c and w + kw*c, then bias (if flags&dwFlagBias,
// else +0 to start), residual res + j*c (flags&dwFlagRes), clamp
// (flags&dwFlagLo, dwFlagHi), stored at dst + j*c. Strides in elements.
type dwRowKernel = func(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// dwWindowKernel is a path's one-pixel kernel: channels [0, n) (a
// positive multiple of the lanes) of one output pixel over a kh x kw
// window (kh, kw >= 1) whose tap (y, x) is at src + y*srcRow + x*srcTap and
// w + y*wRow + x*wTap, then the epilogue as dwRowKernel's, stored at dst.
type dwWindowKernel = func(dst, src, w, bias, res *float32, n, kh, kw, srcRow, srcTap, wRow, wTap, flags int, lo, hi float32)

// depthwiseImpl is a path's depthwise kernels, on whole vectors of lanes
// channels.
type depthwiseImpl struct {
	name   string
	lanes  int
	window dwWindowKernel
	row3x3 [3]dwRowKernel // by stride along W (1, 2); nil: none
	// row8 names the int8 3x3 interior kernels by stride along W, on
	// whole vectors of lanes8 channels (Depthwise8, run by dw8Row); 0: none.
	row8   [3]dw8Kind
	lanes8 int
	// tail, if not nil, computes whole vectors of its own lanes (lanes8)
	// of the channels this one leaves, before Go does the rest: narrower
	// kernels this CPU can run, bit-identical like every path's.
	tail *depthwiseImpl
}

// dwWindowGo is the Go twin of dwWindowKernel, on slices (for the kernel
// tests).
func dwWindowGo(dst, src, w, bias, res []float32, n, kh, kw, srcRow, srcTap, wRow, wTap, flags int, lo, hi float32) {
	var acc [dwChunk]float32
	for cb := 0; cb < n; cb += dwChunk {
		s := acc[:min(dwChunk, n-cb)]
		if flags&dwFlagBias == 0 {
			bias = nil
		}
		dwInitGo(s, bias, cb)
		for y := 0; y < kh; y++ {
			for x := 0; x < kw; x++ {
				dwTapGo(s, w[y*wRow+x*wTap+cb:], src[y*srcRow+x*srcTap+cb:])
			}
		}
		var r []float32
		if flags&dwFlagRes != 0 {
			r = res[cb:]
		}
		dwFinishGo(dst[cb:cb+len(s)], s, r, flags, lo, hi)
	}
}

// dwRowGo is the Go twin of dwRowKernel for stride along W, on slices.
func dwRowGo(stride int, dst, src, w, bias, res []float32, n, rows, npix, c, srcRow, flags int, lo, hi float32) {
	for j := 0; j < npix; j++ {
		var r []float32
		if flags&dwFlagRes != 0 {
			r = res[j*c:]
		}
		dwWindowGo(dst[j*c:], src[j*stride*c:], w, bias, r, n, rows, 3, srcRow, c, 3*c, c, flags, lo, hi)
	}
}

// depthwiseDesc describes the Set's depthwise kernels.
func (s *Set) depthwiseDesc() string {
	dw := s.depthwise
	if dw == nil {
		return "Go"
	}
	d := fmt.Sprintf("%s, %d lanes", dw.name, dw.lanes)
	if t := dw.tail; t != nil {
		d += fmt.Sprintf(", then %s %d lanes", t.name, t.lanes)
	}
	d += " (3x3 stride 1 and 2 interior kernels)"
	if dw.row8[1] != 0 {
		d += fmt.Sprintf("; int8 3x3 %d lanes", dw.lanes8)
		if t := dw.tail; t != nil && t.row8[1] != 0 {
			d += fmt.Sprintf(", then %s %d lanes", t.name, t.lanes8)
		}
	}
	return d
}
