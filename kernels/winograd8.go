package kernels

import (
	"fmt"
	"unsafe"
)

// Integer-exact int8 Winograd F(2x2, 3x3).
//
// With G' = 2G (rows [2 0 0], [1 1 1], [1 -1 1], [0 0 2]) the weight
// transform U = G' g G'ᵀ = 4·(G g Gᵀ) is an integer matrix, and with
// d = a - ZeroA (real zero at the padding) the input transform V = Bᵀ d B
// is one too (Bᵀ has entries 0 and ±1). The output transform Aᵀ M A of
// M = Σ_ci U ⊙ V then equals exactly 4 times the accumulator of the
// direct convolution, Σ (a - ZeroA)·w: divided by 4 it is the acc of
// im2col + GemmU8, so the requantization (Requantize) gives bit-identical
// outputs.
//
// Bounds, for activations in [0, 255], any zero point in [0, 255], weights
// in [-128, 127] (the model uses [-127, 127]):
//
//	|d| <= 255, |V| <= 4·255 = 1020           int16
//	|U| <= 9·128 = 1152                       int16
//	|4·acc| <= 4·9·255·128·Cin = 1175040·Cin  < 2^31 for Cin <= wino8MaxC
//
// The transform-domain GEMMs (int16 x int16 -> int32, pairs of channels per
// 32-bit lane as VPMADDWD/VPDPWSSD consume them) and the output transform
// use wrapping int32 adds, so their intermediate values may wrap; the
// final 4·acc is a sum of those with coefficients ±1 and fits, so it comes
// out exact modulo 2^32, hence exact. TestWinograd8Extremes drives it to
// the bound.
//
// Data layout per block of tb tiles (a worker's scratch), kp = Cin rounded
// up to even:
//
//	V[ξ][tile][ci]   int16, ξ = i*4+j, 16 matrices tb x kp
//	M[ξ][tile][co]   int32, 16 matrices tb x ldm (Cout rounded up to panels)
//
// U[ξ] is packed per column panel of NR output channels, channels in pairs:
//
//	U[ξ][panel*K2*NR*2 + (p*NR + j)*2 + r] = U_ξ[2p+r][panel*NR+j]
//
// with K2 = kp/2 and zeros past Cin and Cout.

// wino8MaxC is the largest Cin for which 4·acc cannot overflow int32.
const wino8MaxC = (1<<31 - 1) / (4 * 9 * 255 * 128)

// wino8Impl is one implementation of the three stages of Winograd8.
type wino8Impl struct {
	name   string
	mr, nr int
	// gemm computes, for i < m and j < nr (one whole panel),
	//	c[i*ldc+j] = Σ_{p<k2} a[i*lda+2p]·b[(p*nr+j)*2] + a[i*lda+2p+1]·b[(p*nr+j)*2+1]
	// in wrapping int32 arithmetic.
	gemm func(m, k2 int, a []int16, lda int, b []int16, c []int32, ldc int)
	// in computes V for n channels of one 4x4 patch: d[y][x][c] =
	// src[y*rs+x*ps+c] - zero, dst[ξ*ds+c] = (Bᵀ d B)[ξ][c].
	in func(dst []int16, ds int, src []uint8, rs, ps, n int, zero int32)
	// out computes, for n channels of one tile, acc = (Aᵀ M A)/4 with
	// M[ξ][c] = src[ξ*ss+c], adds bias and requantizes through rq (whose
	// Scale, Bias and Res are offset to channel 0 of the tile; Res, if set,
	// has the output's strides), writing dst[i*rs+k*ps+c], i, k < 2. rq is
	// passed by value so that it does not escape: Run allocates nothing.
	out func(dst []uint8, rs, ps int, src []int32, ss, n int, rq Requant)
}

var wino8Generic = &wino8Impl{name: "generic", mr: 4, nr: 16,
	gemm: wino8GemmGo(16), in: wino8InGo, out: wino8OutGo}

// Winograd8Impl names the Set's int8 Winograd implementation, for reports.
func (s *Set) Winograd8Impl() string { return s.wino8.name }

// Winograd8 is an int8 3x3 stride-1 convolution compiled for integer
// F(2x2, 3x3): geometry, blocking and the 16 transformed, packed int16
// weight matrices. It is immutable and may be shared by concurrent runs.
type Winograd8 struct {
	Geom   ConvGeom
	TilesH int // ceil(OH/2)
	TilesW int // ceil(OW/2)
	Block  int // most tiles per block, a multiple of the kernel's MR
	K2     int // channel pairs, ceil(Cin/2)
	NR     int // output channels per packed panel
	U      [16][]int16

	impl *wino8Impl
}

// wino8BlockBytes bounds a block's V and M so that both stay in L2
// between the transforms and the GEMMs.
const wino8BlockBytes = 512 << 10

// NewWinograd8 transforms and packs the HWIO int8 weights q of a 3x3
// stride-1 convolution for integer F(2x2, 3x3), for the Set's kernel
// path. Cin may be at most 1827 (see the bound above).
func (s *Set) NewWinograd8(g *ConvGeom, q []int8) (*Winograd8, error) {
	if !WinogradApplies(g) {
		return nil, fmt.Errorf("kernels: int8 Winograd needs a 3x3 stride-1 dilation-1 convolution, have %+v", *g)
	}
	cin, cout := g.C, g.Cout
	if cin > wino8MaxC {
		return nil, fmt.Errorf("kernels: int8 Winograd: %d input channels, at most %d keep the int32 accumulator exact", cin, wino8MaxC)
	}
	if len(q) < 9*cin*cout {
		return nil, fmt.Errorf("kernels: %d int8 weights for a 3x3x%dx%d convolution", len(q), cin, cout)
	}
	impl := s.wino8
	nr, mr := impl.nr, impl.mr
	w := &Winograd8{Geom: *g, TilesH: (g.OH + 1) / 2, TilesW: (g.OW + 1) / 2, K2: (cin + 1) / 2, NR: nr, impl: impl}
	kp := 2 * w.K2
	ldm := w.Panels() * nr
	// V and M of a block should stay in L2, but every block streams all
	// of U again: where U is larger than the budget (deep layers, 8 MiB
	// at 512 channels), blocks as large as U cost less than re-reading it.
	ubytes := 16 * w.Panels() * w.K2 * nr * 2 * 2
	tb := max(wino8BlockBytes, ubytes) / (16 * (2*kp + 4*ldm))
	tb = max(mr, tb/mr*mr)
	w.Block = min(tb, (w.Tiles()+mr-1)/mr*mr)

	size := w.Panels() * w.K2 * nr * 2
	for x := range w.U {
		w.U[x] = make([]int16, size)
	}
	// G' rows as (coefficient of g0, g1, g2).
	gp := [4][3]int32{{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}}
	for ci := 0; ci < cin; ci++ {
		p, r := ci/2, ci%2
		for co := 0; co < cout; co++ {
			var gg [3][3]int32
			for a := 0; a < 3; a++ {
				for b := 0; b < 3; b++ {
					gg[a][b] = int32(q[((a*3+b)*cin+ci)*cout+co])
				}
			}
			var tmp [4][3]int32 // G' g
			for i := 0; i < 4; i++ {
				for b := 0; b < 3; b++ {
					tmp[i][b] = gp[i][0]*gg[0][b] + gp[i][1]*gg[1][b] + gp[i][2]*gg[2][b]
				}
			}
			panel, j := co/nr, co%nr
			off := panel*w.K2*nr*2 + (p*nr+j)*2 + r
			for i := 0; i < 4; i++ {
				for jj := 0; jj < 4; jj++ {
					u := tmp[i][0]*gp[jj][0] + tmp[i][1]*gp[jj][1] + tmp[i][2]*gp[jj][2]
					w.U[i*4+jj][off] = int16(u) // |u| <= 1152
				}
			}
		}
	}
	return w, nil
}

// Winograd8Applies reports whether NewWinograd8 accepts the geometry: a
// 3x3 stride-1 dilation-1 convolution with at most 1827 input channels.
func Winograd8Applies(g *ConvGeom) bool { return WinogradApplies(g) && g.C <= wino8MaxC }

// MR is the row tile of the implementation's GEMM: tile ranges given to Run
// in multiples of it keep the GEMM's rows whole.
func (w *Winograd8) MR() int { return w.impl.mr }

// Tiles is the number of 2x2 output tiles, TilesH*TilesW, in row-major order.
func (w *Winograd8) Tiles() int { return w.TilesH * w.TilesW }

// Panels is the number of output-channel panels of the GEMMs.
func (w *Winograd8) Panels() int { return (w.Geom.Cout + w.NR - 1) / w.NR }

// Name is the kernel's name for reports.
func (w *Winograd8) Name() string { return "winograd8-f2" }

// Impl names the implementation of the transforms and the int16 GEMM.
func (w *Winograd8) Impl() string { return w.impl.name }

// scratch layout, in bytes, each part 64-byte aligned.
func (w *Winograd8) layout() (vOff, mOff, patchOff, edgeOff, resOff, total int) {
	up := func(n int) int { return (n + 63) &^ 63 }
	g := &w.Geom
	vOff = 0
	mOff = vOff + up(16*w.Block*2*w.K2*2)
	patchOff = mOff + up(16*w.Block*w.Panels()*w.NR*4)
	edgeOff = patchOff + up(16*g.C)
	resOff = edgeOff + up(4*g.Cout)
	total = resOff + up(4*g.Cout)
	return
}

// Scratch is the scratch in bytes one worker needs for Run (including
// slack to align its parts to 64 bytes).
func (w *Winograd8) Scratch() int {
	_, _, _, _, _, total := w.layout()
	return total + 64
}

// wino8Scratch is one worker's scratch cut into its parts.
type wino8Scratch struct {
	v     []int16
	m     []int32
	patch []uint8
	edge  []uint8
	res   []uint8
}

func (w *Winograd8) cut(scratch []byte) wino8Scratch {
	vOff, mOff, patchOff, edgeOff, resOff, total := w.layout()
	base := scratch[:w.Scratch()]
	if a := int(uintptr(unsafe.Pointer(&base[0])) & 63); a != 0 {
		base = base[64-a:]
	}
	base = base[:total]
	var s wino8Scratch
	s.v = unsafe.Slice((*int16)(unsafe.Pointer(&base[vOff])), (mOff-vOff)/2)
	s.m = unsafe.Slice((*int32)(unsafe.Pointer(&base[mOff])), (patchOff-mOff)/4)
	s.patch = base[patchOff:edgeOff]
	s.edge = base[edgeOff:resOff]
	s.res = base[resOff:total]
	return s
}

// Run computes tiles [q0, q1) and output-channel panels [p0, p1) of the
// convolution of in into out (both NHWC uint8), requantized through rq:
// rq.ZeroA is the input's zero point, rq.Bias, rq.Scale are per output
// channel and rq.Res, if set, has the output's layout (rq.LdRes is
// ignored); zero points are in [0, 255] (as graph.QParams requires).
// Every output is exact, so any split gives identical results. in and out
// must not overlap; scratch needs Scratch() bytes (any alignment).
func (w *Winograd8) Run(in, out []uint8, rq *Requant, q0, q1, p0, p1 int, scratch []byte) {
	g := &w.Geom
	cout := g.Cout
	if len(in) < g.H*g.W*g.C || len(out) < g.OH*g.OW*cout || q0 < 0 || q1 > w.Tiles() ||
		p0 < 0 || p1 > w.Panels() || len(scratch) < w.Scratch() || len(rq.Scale) < cout ||
		(rq.Bias != nil && len(rq.Bias) < cout) || (rq.Res != nil && len(rq.Res) < g.OH*g.OW*cout) ||
		rq.Lo < 0 || rq.Lo > 255 || rq.ZeroA < 0 || rq.ZeroA > 255 || rq.ZeroOut < 0 || rq.ZeroOut > 255 ||
		rq.ResZero < 0 || rq.ResZero > 255 {
		panic(fmt.Sprintf("kernels.Winograd8.Run: bad arguments %+v tiles [%d,%d) panels [%d,%d) scratch %d", *g, q0, q1, p0, p1, len(scratch)))
	}
	if q0 >= q1 || p0 >= p1 {
		return
	}
	s := w.cut(scratch)
	step := w.blockStep(q1 - q0)
	for b0 := q0; b0 < q1; b0 += step {
		nt := min(step, q1-b0)
		w.inputBlock(in, rq.ZeroA, b0, nt, &s)
		w.gemmBlock(nt, p0, p1, &s)
		w.outputBlock(out, rq, b0, nt, p0, p1, &s)
	}
}

// blockStep is the block size for n tiles: as few blocks as Block allows,
// of balanced sizes (rounded up to the kernel's MR where that fits), so
// that no block is a short remainder that streams all of U for a few rows.
func (w *Winograd8) blockStep(n int) int {
	nb := (n + w.Block - 1) / w.Block
	step := (n + nb - 1) / nb
	mr := w.impl.mr
	return min(w.Block, (step+mr-1)/mr*mr)
}

// inputBlock transforms tiles [b0, b0+nt) into s.v.
func (w *Winograd8) inputBlock(in []uint8, zero int32, b0, nt int, s *wino8Scratch) {
	g := &w.Geom
	c, kp := g.C, 2*w.K2
	ds := w.Block * kp
	for j := 0; j < nt; j++ {
		q := b0 + j
		y0 := (q/w.TilesW)*2 - g.PadTop
		x0 := (q%w.TilesW)*2 - g.PadLeft
		dst := s.v[j*kp:]
		if y0 >= 0 && x0 >= 0 && y0+4 <= g.H && x0+4 <= g.W {
			w.impl.in(dst, ds, in[(y0*g.W+x0)*c:], g.W*c, c, c, zero)
		} else {
			// Edge tile: gather with the zero point (real zero) as padding.
			p := s.patch[:16*c]
			for y := 0; y < 4; y++ {
				for x := 0; x < 4; x++ {
					px := p[(y*4+x)*c : (y*4+x+1)*c]
					iy, ix := y0+y, x0+x
					if iy < 0 || iy >= g.H || ix < 0 || ix >= g.W {
						for i := range px {
							px[i] = uint8(zero)
						}
					} else {
						copy(px, in[(iy*g.W+ix)*c:])
					}
				}
			}
			w.impl.in(dst, ds, p, 4*c, c, c, zero)
		}
		if c < kp {
			for x := 0; x < 16; x++ {
				dst[x*ds+c] = 0
			}
		}
	}
}

// gemmBlock runs the 16 transform-domain GEMMs of nt tiles over panels
// [p0, p1).
func (w *Winograd8) gemmBlock(nt, p0, p1 int, s *wino8Scratch) {
	kp, nr := 2*w.K2, w.NR
	ldm := w.Panels() * nr
	psize := w.K2 * nr * 2
	for x := 0; x < 16; x++ {
		a := s.v[x*w.Block*kp:]
		c := s.m[x*w.Block*ldm:]
		for p := p0; p < p1; p++ {
			w.impl.gemm(nt, w.K2, a, kp, w.U[x][p*psize:(p+1)*psize], c[p*nr:], ldm)
		}
	}
}

// outputBlock transforms, requantizes and stores tiles [b0, b0+nt) for the
// channels of panels [p0, p1).
func (w *Winograd8) outputBlock(out []uint8, rq *Requant, b0, nt, p0, p1 int, s *wino8Scratch) {
	g := &w.Geom
	cout := g.Cout
	ldm := w.Panels() * w.NR
	ss := w.Block * ldm
	n0, n1 := p0*w.NR, min(cout, p1*w.NR)
	nc := n1 - n0
	sub := *rq
	sub.Scale = rq.Scale[n0:n1]
	if rq.Bias != nil {
		sub.Bias = rq.Bias[n0:n1]
	}
	rs, ps := g.OW*cout, cout
	for j := 0; j < nt; j++ {
		q := b0 + j
		oy, ox := (q/w.TilesW)*2, (q%w.TilesW)*2
		vh, vw := min(2, g.OH-oy), min(2, g.OW-ox)
		src := s.m[j*ldm+n0:]
		o := (oy*g.OW+ox)*cout + n0
		if vh == 2 && vw == 2 {
			if rq.Res != nil {
				sub.Res = rq.Res[o:]
			}
			w.impl.out(out[o:], rs, ps, src, ss, nc, sub)
			continue
		}
		// Edge tile: through 2x2 x nc buffers, the residual gathered.
		if rq.Res != nil {
			res := s.res[:4*nc]
			clear(res)
			for i := 0; i < vh; i++ {
				for k := 0; k < vw; k++ {
					copy(res[(i*2+k)*nc:(i*2+k+1)*nc], rq.Res[o+i*rs+k*ps:])
				}
			}
			sub.Res = res
		}
		edge := s.edge[:4*nc]
		w.impl.out(edge, 2*nc, nc, src, ss, nc, sub)
		for i := 0; i < vh; i++ {
			for k := 0; k < vw; k++ {
				copy(out[o+i*rs+k*ps:o+i*rs+k*ps+nc], edge[(i*2+k)*nc:])
			}
		}
	}
}

// Bytes is the memory the transformed weights hold.
func (w *Winograd8) Bytes() int64 {
	var n int64
	for _, u := range w.U {
		n += 2 * int64(len(u))
	}
	return n
}
