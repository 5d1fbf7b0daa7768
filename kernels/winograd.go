package kernels

import (
	"fmt"
	"math/big"
)

// Winograd F(m x m, 3 x 3) convolution (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", CVPR 2016) for 3x3, stride 1, dilation 1.
//
// The output is cut into m x m tiles; each reads a t x t input patch
// (t = m+2) and is computed as Y = Aᵀ [U ⊙ V] A with U = G g Gᵀ (the weight
// transform, done once by NewWinograd) and V = Bᵀ d B (the input transform).
// Over channels the element-wise product becomes t² independent GEMMs
// [tiles x Cin] x [Cin x Cout], run on the same packed-B kernels as every
// other convolution, so faster GEMMs speed this up too.
//
// Data layout per block of tb tiles (a worker's scratch):
//
//	V[ξ][tile][ci]   ξ = i*t+j, t² matrices tb x Cin
//	M[ξ][tile][co]   the GEMM results, t² matrices tb x Cout
//
// Channels are the innermost dimension everywhere, so each transform is a
// fixed 1-D transform applied to t vectors of channels: the loops run over
// contiguous channels with a handful of adds per value.

// winoVariant holds the matrices of one F(m x m, 3 x 3).
type winoVariant struct {
	m, t int
	bt   [][]float64 // Bᵀ, t x t
	g    [][]float64 // G, t x 3
	at   [][]float64 // Aᵀ, m x t
}

// A winoFunc1 applies a fixed 1-D transform to channel vectors: vector j
// is src[j*ss : j*ss+n], result i goes to dst[i*ds : i*ds+n].
type winoFunc1 = func(dst []float32, ds int, src []float32, ss, n int)

// A winoFunc applies a winoFunc1 reps times, the r-th on src[r*sstep:]
// into dst[r*dstep:]: a tile's columns or rows in one call.
type winoFunc = func(dst []float32, ds int, src []float32, ss, n, reps, dstep, sstep int)

// winoReps makes the winoFunc of a Go transform.
func winoReps(f winoFunc1) winoFunc {
	return func(dst []float32, ds int, src []float32, ss, n, reps, dstep, sstep int) {
		for r := range reps {
			f(dst[r*dstep:], ds, src[r*sstep:], ss, n)
		}
	}
}

// winoImpl is one implementation of the transforms: per m, {Bᵀ, Aᵀ}.
type winoImpl struct {
	name string
	xf   map[int][2]winoFunc
}

var winoGeneric = &winoImpl{name: "generic", xf: map[int][2]winoFunc{
	2: {winoReps(winoIn4), winoReps(winoOut2)},
	4: {winoReps(winoIn6), winoReps(winoOut4)},
	6: {winoReps(winoIn8), winoReps(winoOut6)},
}}

// The matrices, as exact rationals so that a test can check the
// convolution identity exactly. They come from the Toom-Cook construction
// with the interpolation points named below (Aᵀ[i][j] = p_j^i, the last
// column for the point at infinity); rows of Bᵀ and G are scaled so that Bᵀ
// has small integer (F(2), F(4)) or quarter (F(6)) entries and G carries the
// Lagrange denominators, as in Lavin & Gray §4.
var (
	// F(2x2, 3x3): points 0, 1, -1, ∞.
	wino2 = parseVariant(2,
		[]string{
			"1 0 -1 0",
			"0 1 1 0",
			"0 -1 1 0",
			"0 1 0 -1",
		}, []string{
			"1 0 0",
			"1/2 1/2 1/2",
			"1/2 -1/2 1/2",
			"0 0 1",
		}, []string{
			"1 1 1 0",
			"0 1 -1 -1",
		})
	// F(4x4, 3x3): points 0, 1, -1, 2, -2, ∞ (Lavin & Gray's F(4x4, 3x3)).
	wino4 = parseVariant(4,
		[]string{
			"4 0 -5 0 1 0",
			"0 -4 -4 1 1 0",
			"0 4 -4 -1 1 0",
			"0 -2 -1 2 1 0",
			"0 2 -1 -2 1 0",
			"0 4 0 -5 0 1",
		}, []string{
			"1/4 0 0",
			"-1/6 -1/6 -1/6",
			"-1/6 1/6 -1/6",
			"1/24 1/12 1/6",
			"1/24 -1/12 1/6",
			"0 0 1",
		}, []string{
			"1 1 1 1 1 0",
			"0 1 -1 2 -2 0",
			"0 1 1 4 4 0",
			"0 1 -1 8 -8 1",
		})
	// F(6x6, 3x3): points 0, 1, -1, 2, -2, 1/2, -1/2, ∞.
	wino6 = parseVariant(6,
		[]string{
			"1 0 -21/4 0 21/4 0 -1 0",
			"0 1 1 -17/4 -17/4 1 1 0",
			"0 -1 1 17/4 -17/4 -1 1 0",
			"0 1/2 1/4 -5/2 -5/4 2 1 0",
			"0 -1/2 1/4 5/2 -5/4 -2 1 0",
			"0 2 4 -5/2 -5 1/2 1 0",
			"0 -2 4 5/2 -5 -1/2 1 0",
			"0 -1 0 21/4 0 -21/4 0 1",
		}, []string{
			"1 0 0",
			"-2/9 -2/9 -2/9",
			"-2/9 2/9 -2/9",
			"1/90 1/45 2/45",
			"1/90 -1/45 2/45",
			"32/45 16/45 8/45",
			"32/45 -16/45 8/45",
			"0 0 1",
		}, []string{
			"1 1 1 1 1 1 1 0",
			"0 1 -1 2 -2 1/2 -1/2 0",
			"0 1 1 4 4 1/4 1/4 0",
			"0 1 -1 8 -8 1/8 -1/8 0",
			"0 1 1 16 16 1/16 1/16 0",
			"0 1 -1 32 -32 1/32 -1/32 1",
		})
)

// winoRat keeps the exact matrices for tests.
var winoRat = map[int][3][][]*big.Rat{}

func parseVariant(m int, bt, g, at []string) *winoVariant {
	v := &winoVariant{m: m, t: m + 2}
	var rats [3][][]*big.Rat
	for i, rows := range [][]string{bt, g, at} {
		var f [][]float64
		for _, row := range rows {
			var rr []*big.Rat
			var fr []float64
			var s string
			for rest := row + " "; rest != ""; {
				n := 0
				for rest[n] != ' ' {
					n++
				}
				s, rest = rest[:n], rest[n+1:]
				r, ok := new(big.Rat).SetString(s)
				if !ok {
					panic("kernels: bad Winograd matrix entry " + s)
				}
				x, _ := r.Float64()
				rr, fr = append(rr, r), append(fr, x)
			}
			rats[i] = append(rats[i], rr)
			f = append(f, fr)
		}
		switch i {
		case 0:
			v.bt = f
		case 1:
			v.g = f
		case 2:
			v.at = f
		}
	}
	winoRat[m] = rats
	return v
}

func winoVariantFor(m int) *winoVariant {
	switch m {
	case 2:
		return wino2
	case 4:
		return wino4
	case 6:
		return wino6
	}
	return nil
}

// WinogradApplies reports whether a convolution can run as Winograd: 3x3,
// stride 1, dilation 1 (any padding; the tile grid covers the output).
func WinogradApplies(g *ConvGeom) bool {
	return g.KH == 3 && g.KW == 3 && g.StrideH == 1 && g.StrideW == 1 && g.DilH == 1 && g.DilW == 1 &&
		g.OH > 0 && g.OW > 0 && g.C > 0 && g.Cout > 0
}

// Winograd is a convolution compiled for F(m x m, 3 x 3): geometry, tile
// blocking and the t² transformed, packed weight matrices. Runs may share
// it concurrently; only SetWeights (training's, on a Winograd of its own)
// changes it, and no Run may overlap that.
type Winograd struct {
	Geom   ConvGeom
	M, T   int // output tile size m and input tile size t = m+2
	TilesH int // tile rows, ceil(OH/m)
	TilesW int // tile columns, ceil(OW/m)
	Block  int // tiles per block, a multiple of the GEMM kernel's MR
	U      []PackedB

	v       *winoVariant
	impl    *winoImpl
	epi     epilogueImpl
	in, out winoFunc // Bᵀ and Aᵀ on channel vectors
}

// winoBlockBytes bounds a block's V and M (t² x tb x (Cin+Cout) floats) so
// that both stay in L2 between the transforms and the GEMMs.
const winoBlockBytes = 768 << 10

// NewWinograd transforms and packs the HWIO weights w of a 3x3 stride-1
// convolution for F(m x m, 3 x 3), m in {2, 4, 6}. The transform is done
// in float64 and rounded once.
func (s *Set) NewWinograd(g *ConvGeom, m int, w []float32) (*Winograd, error) {
	v := winoVariantFor(m)
	if v == nil {
		return nil, fmt.Errorf("kernels: no Winograd F(%dx%d, 3x3)", m, m)
	}
	if !WinogradApplies(g) {
		return nil, fmt.Errorf("kernels: Winograd needs a 3x3 stride-1 dilation-1 convolution, have %+v", *g)
	}
	cin, cout, t := g.C, g.Cout, v.t
	if len(w) < 9*cin*cout {
		return nil, fmt.Errorf("kernels: %d weights for a 3x3x%dx%d convolution", len(w), cin, cout)
	}
	wg := &Winograd{Geom: *g, M: m, T: t, v: v,
		TilesH: (g.OH + m - 1) / m, TilesW: (g.OW + m - 1) / m}
	// Transforms, epilogue and GEMM come from the Set that packs U.
	wg.impl, wg.epi = s.wino, s.epilogue
	wg.in, wg.out = wg.impl.xf[m][0], wg.impl.xf[m][1]
	wg.Block = winoBlock(s, g, t, wg.Tiles())
	wg.U = make([]PackedB, t*t)
	for x := range wg.U {
		wg.U[x] = newPacked(cin, cout, s.gemm.forN(cout))
		wg.U[x].clamp = s.clamp
	}
	wg.transformWeights(w)
	return wg, nil
}

// winoBlock is the tiles per block of F(m x m) (input tile t) on g: as
// many as keep a block's V and M within winoBlockBytes, a multiple of the
// MR of the kernel that U is packed for (each tile's GEMM row then sits
// at the same place in the kernel's row tiles whatever the split).
func winoBlock(s *Set, g *ConvGeom, t, tiles int) int {
	mr := s.gemm.forN(g.Cout).mr
	tb := winoBlockBytes / (4 * t * t * (g.C + g.Cout))
	tb = max(mr, tb/mr*mr)
	return min(tb, (tiles+mr-1)/mr*mr)
}

// WinogradLen returns the float32s of NewWinograd(g, m, ...)'s
// transformed weights and of one worker's Scratch, without building it:
// memory estimates take them.
func (s *Set) WinogradLen(g *ConvGeom, m int) (weights, scratch int) {
	v := winoVariantFor(m)
	if v == nil || !WinogradApplies(g) {
		return 0, 0
	}
	t := v.t
	tiles := ((g.OH + m - 1) / m) * ((g.OW + m - 1) / m)
	block := winoBlock(s, g, t, tiles)
	w := &Winograd{Geom: *g, M: m, T: t, Block: block}
	return t * t * s.PackedLen(g.C, g.Cout), w.Scratch()
}

// SetWeights transforms and packs new HWIO weights into U in place of
// the current ones, allocating nothing: training changes them every
// step. No Run may be running meanwhile.
func (w *Winograd) SetWeights(wts []float32) error {
	if len(wts) < 9*w.Geom.C*w.Geom.Cout {
		return fmt.Errorf("kernels: %d weights for a 3x3x%dx%d convolution", len(wts), w.Geom.C, w.Geom.Cout)
	}
	w.transformWeights(wts)
	return nil
}

// transformWeights writes U[ξ] = (G g Gᵀ)[ξ] for the 3x3 filter g of each
// (ci, co) of the HWIO weights w, in float64 rounded once, straight into
// the packed layout (row ci, column co). Output channels go in chunks
// along the weights' contiguous axis; each value is the same expression
// in the same order as one filter at a time would compute it, every
// product rounded (converted explicitly, so that arm64's compiler does not
// fuse them into FMAs: the transform is the same on every GOARCH).
func (wg *Winograd) transformWeights(w []float32) {
	cin, cout, t, v := wg.Geom.C, wg.Geom.Cout, wg.T, wg.v
	const chunk = 64
	var g [9][chunk]float64
	var tmp [8 * 3][chunk]float64   // t <= 8
	var at [chunk]int               // where output channel c0+k of input channel 0 goes in U[ξ]
	nr, kk := wg.U[0].NR, wg.U[0].K // the same packing for every ξ
	for ci := 0; ci < cin; ci++ {
		for c0 := 0; c0 < cout; c0 += chunk {
			n := min(chunk, cout-c0)
			for k := range n {
				co := c0 + k
				at[k] = co/nr*kk*nr + co%nr
			}
			for ab := range 9 {
				for k, x := range w[(ab*cin+ci)*cout+c0:][:n] {
					g[ab][k] = float64(x)
				}
			}
			for i := 0; i < t; i++ {
				gi := v.g[i]
				for b := 0; b < 3; b++ {
					d, g0, g1, g2 := &tmp[i*3+b], &g[b], &g[3+b], &g[6+b]
					for k := 0; k < n; k++ {
						d[k] = float64(gi[0]*g0[k]) + float64(gi[1]*g1[k]) + float64(gi[2]*g2[k])
					}
				}
			}
			for i := 0; i < t; i++ {
				t0, t1, t2 := &tmp[i*3], &tmp[i*3+1], &tmp[i*3+2]
				for j := 0; j < t; j++ {
					gj, dst := v.g[j], wg.U[i*t+j].Data[ci*nr:]
					for k := 0; k < n; k++ {
						s := float64(t0[k]*gj[0]) + float64(t1[k]*gj[1]) + float64(t2[k]*gj[2])
						dst[at[k]] = float32(s)
					}
				}
			}
		}
	}
}

// Tiles is the number of output tiles, TilesH*TilesW, in row-major order.
func (w *Winograd) Tiles() int { return w.TilesH * w.TilesW }

// MR is the row tile of the GEMM kernel: tile ranges start at multiples
// of it.
func (w *Winograd) MR() int { return w.U[0].MR() }

// Kernel names the GEMM kernel U was packed for.
func (w *Winograd) Kernel() string { return w.U[0].Kernel() }

// Panels is the number of output-channel panels of the GEMMs.
func (w *Winograd) Panels() int { return w.U[0].Panels() }

// Name is the kernel's name for reports, e.g. "winograd F(4x4)".
func (w *Winograd) Name() string { return fmt.Sprintf("winograd F(%dx%d)", w.M, w.M) }

// Transforms names the implementation of the input and output transforms
// ("generic", "avx2").
func (w *Winograd) Transforms() string { return w.impl.name }

// Scratch is the scratch (in float32s) one worker needs for Run: V and M
// for a block, the transform temporaries and an edge-tile patch.
func (w *Winograd) Scratch() int {
	t2, cin, cout := w.T*w.T, w.Geom.C, w.Geom.Cout
	return t2*w.Block*(cin+cout) + t2*max(cin, cout) + t2*cin + w.M*cout
}

// Run computes tiles [q0, q1) and output-channel panels [p0, p1) of the
// convolution of in into out (both NHWC), through ep (bias, residual with
// the output's layout, ReLU, clamp). q0 must be a multiple of MR() so that
// each tile's GEMM rows sit at the same place within the kernel's row
// tiles for any split: results are then identical whatever the split.
func (w *Winograd) Run(in, out []float32, ep *Epilogue, q0, q1, p0, p1 int, scratch []float32) {
	g := &w.Geom
	cin, cout := g.C, g.Cout
	if len(in) < g.H*g.W*cin || len(out) < g.OH*g.OW*cout || q0 < 0 || q1 > w.Tiles() || q0%w.MR() != 0 ||
		p0 < 0 || p1 > w.Panels() || len(scratch) < w.Scratch() ||
		(ep.Bias != nil && len(ep.Bias) < cout) || (ep.Res != nil && len(ep.Res) < g.OH*g.OW*cout) {
		panic(fmt.Sprintf("kernels.Winograd.Run: bad arguments %+v tiles [%d,%d) panels [%d,%d)", *g, q0, q1, p0, p1))
	}
	if q0 >= q1 || p0 >= p1 {
		return
	}
	t, tb := w.T, w.Block
	t2 := t * t
	vs := scratch[: t2*tb*cin : t2*tb*cin]
	ms := scratch[len(vs) : len(vs)+t2*tb*cout : len(vs)+t2*tb*cout]
	rest := scratch[len(vs)+len(ms):]
	tmp := rest[:t2*max(cin, cout)]
	patch := rest[len(tmp) : len(tmp)+t2*cin]
	edge := rest[len(tmp)+len(patch):]
	n0, n1 := p0*w.U[0].NR, min(cout, p1*w.U[0].NR)
	var none Epilogue
	ck := w.U[0].clamp
	for b0 := q0; b0 < q1; b0 += tb {
		nt := min(tb, q1-b0)
		for j := 0; j < nt; j++ {
			w.inputTile(in, b0+j, vs[j*cin:], tb*cin, tmp, patch)
		}
		for x := 0; x < t2; x++ {
			Gemm(nt, vs[x*tb*cin:], cin, &w.U[x], ms[x*tb*cout:], cout, &none, p0, p1)
		}
		for j := 0; j < nt; j++ {
			w.outputTile(out, b0+j, ms[j*cout+n0:], tb*cout, n0, n1, ep, tmp, edge)
			w.clampTile(out, b0+j, n0, n1, ep, ck)
		}
	}
}

// inputTile transforms tile q's t x t x Cin patch into dst[ξ*ds:], ξ=0..t²-1.
func (w *Winograd) inputTile(in []float32, q int, dst []float32, ds int, tmp, patch []float32) {
	g := &w.Geom
	c, t, m := g.C, w.T, w.M
	y0 := (q/w.TilesW)*m - g.PadTop
	x0 := (q%w.TilesW)*m - g.PadLeft
	var src []float32
	rs := g.W * c
	if y0 >= 0 && x0 >= 0 && y0+t <= g.H && x0+t <= g.W {
		src = in[(y0*g.W+x0)*c:]
	} else {
		// Edge tile: gather with zeros for the padding.
		rs = t * c
		xa, xb := max(x0, 0), min(x0+t, g.W)
		for y := 0; y < t; y++ {
			row := patch[y*rs : (y+1)*rs]
			iy := y0 + y
			if iy < 0 || iy >= g.H || xa >= xb {
				clear(row)
				continue
			}
			clear(row[:(xa-x0)*c])
			copy(row[(xa-x0)*c:(xb-x0)*c], in[(iy*g.W+xa)*c:(iy*g.W+xb)*c])
			clear(row[(xb-x0)*c:])
		}
		src = patch
	}
	// Columns: tmp[i][x] = Σ_y Bᵀ[i][y] d[y][x]; rows: V[i][j] = Σ_x tmp[i][x] Bᵀ[j][x].
	w.in(tmp, t*c, src, rs, c, t, c, c)
	w.in(dst, ds, tmp, c, c, t, t*ds, t*c)
}

// outputTile computes Aᵀ M A for tile q, channels [n0, n1), from
// src[ξ*ss:] (already offset to n0), applies the epilogue and writes the
// part of the m x m tile inside the output.
func (w *Winograd) outputTile(out []float32, q int, src []float32, ss, n0, n1 int, ep *Epilogue, tmp, edge []float32) {
	g := &w.Geom
	cout, t, m := g.Cout, w.T, w.M
	nc := n1 - n0
	oy := (q / w.TilesW) * m
	ox := (q % w.TilesW) * m
	vh, vw := min(m, g.OH-oy), min(m, g.OW-ox)
	// Columns: tmp[i][x] = Σ_j Aᵀ[i][j] M[j][x] (m x t); then each row i.
	w.out(tmp, t*nc, src, t*ss, nc, t, nc, ss)
	var bias []float32
	if ep.Bias != nil {
		bias = ep.Bias[n0:n1]
	}
	px0 := oy*g.OW + ox
	if vw == m { // every row whole: one call
		w.out(out[px0*cout+n0:], cout, tmp, nc, nc, vh, g.OW*cout, t*nc)
	} else {
		for i := 0; i < vh; i++ {
			px := px0 + i*g.OW
			w.out(edge, nc, tmp[i*t*nc:], nc, nc, 1, 0, 0)
			for k := 0; k < vw; k++ {
				copy(out[(px+k)*cout+n0:(px+k)*cout+n1], edge[k*nc:(k+1)*nc])
			}
		}
	}
	if bias == nil && ep.Res == nil && !ep.Relu {
		return // nothing to apply (training's convolutions)
	}
	for i := 0; i < vh; i++ {
		o := (px0+i*g.OW)*cout + n0
		var res []float32
		if ep.Res != nil {
			res = ep.Res[o:]
		}
		w.epi.runRows(out[o:], bias, res, nc, vw, cout, ep.Relu)
	}
}

// clampTile applies the epilogue's Clamp (kernel k) to channels [n0, n1)
// of tile q's part inside the output, just written: one call for the tile
// when it has every channel (its rows are then contiguous), else one per
// row of the tile.
func (w *Winograd) clampTile(out []float32, q, n0, n1 int, ep *Epilogue, k *clampImpl) {
	if !ep.Clamp {
		return
	}
	g := &w.Geom
	oy, ox := (q/w.TilesW)*w.M, (q%w.TilesW)*w.M
	vh, vw := min(w.M, g.OH-oy), min(w.M, g.OW-ox)
	if n1-n0 == g.Cout {
		ep.clamp(k, out[(oy*g.OW+ox)*g.Cout:], vh, vw*g.Cout, g.OW*g.Cout)
		return
	}
	for i := range vh {
		ep.clamp(k, out[((oy+i)*g.OW+ox)*g.Cout+n0:], vw, n1-n0, g.Cout)
	}
}

// run adds bias and residual (either may be nil) and applies ReLU,
// in the order Gemm's epilogue does: the whole vectors through the path's
// kernel, the rest in Go.
func (e epilogueImpl) run(v, bias, res []float32, relu bool) {
	vec := 0
	if e.apply != nil {
		vec = len(v) / e.lanes * e.lanes
	}
	if vec > 0 {
		flags := 0
		var pb, pr *float32
		if bias != nil {
			flags |= gemmFlagBias
			pb = &bias[:len(v)][0]
		}
		if res != nil {
			flags |= gemmFlagRes
			pr = &res[:len(v)][0]
		}
		if relu {
			flags |= gemmFlagRelu
		}
		e.apply(&v[0], pb, pr, vec, flags)
	}
	if bias != nil {
		bias = bias[vec:]
	}
	if res != nil {
		res = res[vec:]
	}
	epilogueGo(v[vec:], bias, res, relu)
}

// runRows is run on rows runs of n values at v[r*ld:] and res[r*ld:]
// (res may be nil), bias (nil, or n values) the same for each: one call
// of the path's rows kernel when it has one and n is whole vectors, else
// run per row.
func (e epilogueImpl) runRows(v, bias, res []float32, n, rows, ld int, relu bool) {
	if rows <= 0 || n <= 0 {
		return
	}
	end := (rows-1)*ld + n
	if e.rows == nil || n%e.lanes != 0 {
		for r := range rows {
			var rr []float32
			if res != nil {
				rr = res[r*ld : r*ld+n]
			}
			e.run(v[r*ld:r*ld+n], bias, rr, relu)
		}
		return
	}
	flags := 0
	var pb, pr *float32
	if bias != nil {
		flags |= gemmFlagBias
		pb = &bias[:n][0]
	}
	if res != nil {
		flags |= gemmFlagRes
		pr = &res[:end][0]
	}
	if relu {
		flags |= gemmFlagRelu
	}
	e.rows(&v[:end][0], pb, pr, n, rows, ld, flags)
}

// epilogueGo sets v[i] = relu?(v[i] + bias[i] + res[i]); bias and res may
// be nil; ReLU keeps NaN.
func epilogueGo(v, bias, res []float32, relu bool) {
	if bias != nil {
		b := bias[:len(v)]
		for i := range v {
			v[i] += b[i]
		}
	}
	if res != nil {
		r := res[:len(v)]
		for i := range v {
			v[i] += r[i]
		}
	}
	if relu {
		for i, x := range v {
			if x < 0 {
				v[i] = 0
			}
		}
	}
}

// Bytes is the memory the transformed weights hold.
func (w *Winograd) Bytes() int64 {
	var n int64
	for i := range w.U {
		n += w.U[i].Bytes()
	}
	return n
}
