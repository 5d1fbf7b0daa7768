package kernels

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestWinogradMatricesExact checks the convolution identity of each
// variant in exact rational arithmetic: for every output i, filter tap a
// and input b, Σ_ξ Aᵀ[i][ξ] G[ξ][a] Bᵀ[ξ][b] = [b == i+a], i.e.
// Aᵀ((G g) ⊙ (Bᵀ d)) is the valid correlation of d with g.
func TestWinogradMatricesExact(t *testing.T) {
	for _, m := range []int{2, 4, 6} {
		mats := winoRat[m]
		bt, g, at := mats[0], mats[1], mats[2]
		tt := m + 2
		if len(bt) != tt || len(g) != tt || len(at) != m {
			t.Fatalf("F(%d): matrix sizes %d %d %d", m, len(bt), len(g), len(at))
		}
		for i := 0; i < m; i++ {
			for a := 0; a < 3; a++ {
				for b := 0; b < tt; b++ {
					s := new(big.Rat)
					for x := 0; x < tt; x++ {
						p := new(big.Rat).Mul(at[i][x], g[x][a])
						s.Add(s, p.Mul(p, bt[x][b]))
					}
					want := big.NewRat(0, 1)
					if b == i+a {
						want.SetInt64(1)
					}
					if s.Cmp(want) != 0 {
						t.Errorf("F(%d): identity fails at i=%d a=%d b=%d: %s", m, i, a, b, s.RatString())
					}
				}
			}
		}
	}
}

// TestWinograd1D checks each hand-simplified 1-D transform against its
// matrix, with strided vectors, lengths around the unrolling, canaries.
func TestWinograd1D(t *testing.T) {
	forEachWino(t, Best(), func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(3, 3))
		for _, m := range []int{2, 4, 6} {
			v := winoVariantFor(m)
			for _, dir := range []string{"in", "out"} {
				mat, f := v.bt, s.wino.xf[m][0]
				if dir == "out" {
					mat, f = v.at, s.wino.xf[m][1]
				}
				rows, cols := len(mat), len(mat[0])
				for _, n := range []int{1, 2, 4, 7, 8, 12, 16, 20, 33, 64} { // 4-lane and 8-lane steps and tails
					ss, ds := n+3, n+5
					src := randSlice(r, cols*ss)
					keep := slices.Clone(src)
					full, dst := guarded(rows * ds)
					f(dst, ds, src, ss, n, 1, 0, 0)
					checkCanaries(t, full, rows*ds)
					if !slices.Equal(src, keep) {
						t.Fatalf("F(%d) %s: source modified", m, dir)
					}
					for i := 0; i < rows; i++ {
						for c := 0; c < ds; c++ {
							got := dst[i*ds+c]
							if c >= n {
								if got != canary {
									t.Fatalf("F(%d) %s n=%d: wrote past n in row %d", m, dir, n, i)
								}
								continue
							}
							var want, scale float64
							for j := 0; j < cols; j++ {
								want += mat[i][j] * float64(src[j*ss+c])
								scale += math.Abs(mat[i][j] * float64(src[j*ss+c]))
							}
							if math.Abs(float64(got)-want) > 1e-6*scale {
								t.Fatalf("F(%d) %s n=%d row %d ch %d: %g, want %g", m, dir, n, i, c, got, want)
							}
						}
					}
				}
			}
		}
	})
}

// TestWinogradReps checks that one call of reps transforms writes what
// reps single calls do, bit for bit, on interleaved and spread-out blocks
// (the columns and the rows of a tile), and nothing else.
func TestWinogradReps(t *testing.T) {
	forEachWino(t, Best(), func(t *testing.T, s *Set) {
		r := rand.New(rand.NewPCG(4, 4))
		for _, m := range []int{2, 4, 6} {
			for dir, f := range s.wino.xf[m] {
				rows, cols := m, m+2
				if dir == 0 {
					rows = m + 2
				}
				for _, n := range []int{1, 8, 13, 16, 24} {
					for _, reps := range []int{1, 2, 6} {
						// Interleaved (a tile's columns: rep k at k*n in rows
						// of reps*n) and spread out (a tile's rows).
						for _, lay := range [][4]int{{reps * n, reps * n, n, n}, {n + 2, n + 1, rows*(n+2) + 3, cols*(n+1) + 5}} {
							ds, ss, dstep, sstep := lay[0], lay[1], lay[2], lay[3]
							src := randSlice(r, (reps-1)*sstep+(cols-1)*ss+n)
							dlen := (reps-1)*dstep + (rows-1)*ds + n
							want, got := poisoned(dlen), poisoned(dlen)
							for k := range reps {
								f(want[k*dstep:], ds, src[k*sstep:], ss, n, 1, 0, 0)
							}
							f(got, ds, src, ss, n, reps, dstep, sstep)
							if i := sameBits32(got, want); i >= 0 {
								t.Fatalf("F(%d) dir %d n %d reps %d layout %v: [%d] = %v, want %v", m, dir, n, reps, lay, i, got[i], want[i])
							}
						}
					}
				}
			}
		}
	})
}

// forEachWino runs f on a copy of base with each transform implementation
// this CPU supports forced, and fails if the one a path picks was never
// run.
func forEachWino(t *testing.T, base *Set, f func(t *testing.T, s *Set)) {
	t.Helper()
	ran := map[*winoImpl]bool{}
	for _, w := range winoReg.usable() {
		s := *base
		s.wino = w
		t.Run(w.name, func(t *testing.T) { f(t, &s) })
		ran[w] = true
	}
	for _, s := range Sets() {
		if !ran[s.wino] {
			t.Errorf("transforms %s of path %s never tested", s.wino.name, s)
		}
	}
}

// refConv is direct convolution with float64 sums (HWIO weights), then
// the epilogue.
func refConv(g *ConvGeom, in, w []float32, ep *Epilogue) []float64 {
	out := make([]float64, g.OH*g.OW*g.Cout)
	for oy := 0; oy < g.OH; oy++ {
		for ox := 0; ox < g.OW; ox++ {
			o := out[(oy*g.OW+ox)*g.Cout:][:g.Cout]
			for kh := 0; kh < g.KH; kh++ {
				iy := oy*g.StrideH - g.PadTop + kh*g.DilH
				if iy < 0 || iy >= g.H {
					continue
				}
				for kw := 0; kw < g.KW; kw++ {
					ix := ox*g.StrideW - g.PadLeft + kw*g.DilW
					if ix < 0 || ix >= g.W {
						continue
					}
					for ci := 0; ci < g.C; ci++ {
						x := float64(in[(iy*g.W+ix)*g.C+ci])
						wr := w[((kh*g.KW+kw)*g.C+ci)*g.Cout:][:g.Cout]
						for co := range o {
							o[co] += x * float64(wr[co])
						}
					}
				}
			}
			for co := range o {
				if ep.Bias != nil {
					o[co] += float64(ep.Bias[co])
				}
				if ep.Res != nil {
					o[co] += float64(ep.Res[(oy*g.OW+ox)*g.Cout+co])
				}
				if ep.Relu && o[co] < 0 {
					o[co] = 0
				}
			}
		}
	}
	return out
}

func geom3x3(h, w, cin, cout, top, left, bottom, right int) ConvGeom {
	return ConvGeom{H: h, W: w, C: cin, OH: h + top + bottom - 2, OW: w + left + right - 2, Cout: cout,
		KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, PadTop: top, PadLeft: left}
}

// heWeights are N(0, 2/fan_in) weights, the scale of trained ResNets.
func heWeights(r *rand.Rand, cin, cout int) []float32 {
	w := make([]float32, 9*cin*cout)
	s := math.Sqrt(2 / float64(9*cin))
	for i := range w {
		w[i] = float32(r.NormFloat64() * s)
	}
	return w
}

// winoTol is the stated error bound of each variant, relative to the
// largest |output| of the layer (before bias, residual and ReLU, which add
// one rounding each), for He-scaled weights, Cin <= 512 and unit-scale
// inputs: about 3x the worst case measured on the real-scale layers of
// TestWinogradLayerError (docs/WINOGRAD.md).
var winoTol = map[int]float64{2: 3e-6, 4: 4e-5, 6: 1e-4}

// winoRelErr is max|got-want| / max|want - bias - res|.
func winoRelErr(got []float32, want []float64, scale float64) float64 {
	d := 0.0
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i])-want[i]))
	}
	return d / scale
}

func maxAbs64(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	return m
}

// TestWinogradConv runs every variant against direct convolution over a
// battery of shapes: tails (H, W not multiples of m), 1x1 and 2x3 inputs,
// one, odd and many channels, padding 0, 1 and asymmetric, with and without
// bias, residual and ReLU; outputs poisoned and guarded by canaries. It
// also checks that splitting tiles and panels gives bit-identical results.
func TestWinogradConv(t *testing.T) {
	type shape struct{ h, w, cin, cout, top, left, bottom, right int }
	shapes := []shape{
		{1, 1, 3, 5, 1, 1, 1, 1},
		{2, 3, 1, 1, 1, 1, 1, 1},
		{2, 3, 4, 9, 1, 1, 1, 1},
		{3, 3, 2, 3, 0, 0, 0, 0},
		{5, 7, 3, 17, 1, 1, 1, 1},
		{8, 8, 16, 16, 1, 1, 1, 1},
		{9, 11, 5, 8, 0, 0, 0, 0},
		{13, 10, 7, 3, 1, 0, 2, 1},
		{7, 6, 1, 33, 0, 2, 1, 0},
		{14, 14, 32, 24, 1, 1, 1, 1},
		{6, 17, 40, 1, 2, 2, 2, 2},
		{4, 4, 130, 70, 1, 1, 1, 1},
	}
	forEachGemm(t, func(t *testing.T, gs *Set) {
		t.Parallel()
		forEachWino(t, gs, func(t *testing.T, ws *Set) {
			t.Parallel()
			r := rand.New(rand.NewPCG(7, 7))
			for si, s := range shapes {
				g := geom3x3(s.h, s.w, s.cin, s.cout, s.top, s.left, s.bottom, s.right)
				in := randSlice(r, s.h*s.w*s.cin)
				w := heWeights(r, s.cin, s.cout)
				bias := randSlice(r, s.cout)
				res := randSlice(r, g.OH*g.OW*s.cout)
				plain := refConv(&g, in, w, &Epilogue{})
				scale := maxAbs64(plain)
				for _, m := range []int{2, 4, 6} {
					wg, err := ws.NewWinograd(&g, m, w)
					if err != nil {
						t.Fatal(err)
					}
					for ei, ep := range []Epilogue{{}, {Bias: bias}, {Bias: bias, Res: res, Relu: true}, {Res: res}, {Relu: true}} {
						name := fmt.Sprintf("shape %d %+v F(%d) ep %d", si, s, m, ei)
						want := refConv(&g, in, w, &ep)
						n := g.OH * g.OW * s.cout
						full, out := guarded(n)
						scratch := make([]float32, wg.Scratch())
						inKeep, resKeep := slices.Clone(in), slices.Clone(res)
						wg.Run(in, out, &ep, 0, wg.Tiles(), 0, wg.Panels(), scratch)
						checkCanaries(t, full, n)
						if !slices.Equal(in, inKeep) || !slices.Equal(res, resKeep) {
							t.Fatalf("%s: input or residual modified", name)
						}
						for i, v := range out {
							if v == canary {
								t.Fatalf("%s: output %d not written", name, i)
							}
						}
						if e := winoRelErr(out, want, scale); e > winoTol[m] {
							t.Fatalf("%s: relative error %.3g > %.3g", name, e, winoTol[m])
						}
						// Split tiles at multiples of MR and panels one by one.
						_, out2 := guarded(n)
						mr := wg.MR()
						for q0 := 0; q0 < wg.Tiles(); q0 += 2 * mr {
							for p := 0; p < wg.Panels(); p++ {
								wg.Run(in, out2, &ep, q0, min(wg.Tiles(), q0+2*mr), p, p+1, scratch)
							}
						}
						if !slices.Equal(out, out2) {
							t.Fatalf("%s: split run differs", name)
						}
					}
				}
			}
		})
	})
}

// TestWinogradRejects covers the argument checks.
func TestWinogradRejects(t *testing.T) {
	g := geom3x3(5, 5, 2, 2, 1, 1, 1, 1)
	s := Best()
	if _, err := s.NewWinograd(&g, 3, make([]float32, 36)); err == nil {
		t.Error("F(3x3) accepted")
	}
	if _, err := s.NewWinograd(&g, 4, make([]float32, 35)); err == nil {
		t.Error("short weights accepted")
	}
	s2 := g
	s2.StrideH = 2
	if _, err := s.NewWinograd(&s2, 4, make([]float32, 36)); err == nil || WinogradApplies(&s2) {
		t.Error("stride 2 accepted")
	}
	wg, err := s.NewWinograd(&g, 2, make([]float32, 36))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("short scratch did not panic")
		}
	}()
	wg.Run(make([]float32, 50), make([]float32, 50), &Epilogue{}, 0, wg.Tiles(), 0, 1, make([]float32, wg.Scratch()-1))
}

// realLayers are the 3x3 stride-1 layers of ImageNet ResNet-18/34 and
// CIFAR ResNet-20/56 (padding 1, Cin = Cout).
var realLayers = []struct {
	name string
	hw   int
	c    int
}{
	{"56x56x64", 56, 64}, {"28x28x128", 28, 128}, {"14x14x256", 14, 256}, {"7x7x512", 7, 512},
	{"32x32x16", 32, 16}, {"16x16x32", 16, 32}, {"8x8x64", 8, 64},
}

// reluInput is unit-normal data through a ReLU, like the activations a
// ResNet's 3x3 convs read.
func reluInput(r *rand.Rand, n int) []float32 {
	x := randSlice(r, n)
	for i, v := range x {
		x[i] = max(v, 0)
	}
	return x
}

// TestWinogradLayerError measures each variant's error against float64
// direct convolution on real-scale layers (He weights, post-ReLU inputs)
// and checks it against the stated bound winoTol; -v prints the table.
func TestWinogradLayerError(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	for _, l := range realLayers {
		if testing.Short() && l.hw*l.hw*l.c*l.c > 1<<20 {
			continue
		}
		g := geom3x3(l.hw, l.hw, l.c, l.c, 1, 1, 1, 1)
		in := reluInput(r, l.hw*l.hw*l.c)
		w := heWeights(r, l.c, l.c)
		want := refConv(&g, in, w, &Epilogue{})
		scale := maxAbs64(want)
		for _, m := range []int{0, 2, 4, 6} {
			out := make([]float32, len(want))
			if m == 0 {
				pb := Best().PackB(w, 9*l.c, l.c)
				Conv(&g, in, &pb, out, &Epilogue{}, 0, g.Pixels(), 0, pb.Panels(), make([]float32, ConvScratch(&g, &pb)))
			} else {
				wg, err := Best().NewWinograd(&g, m, w)
				if err != nil {
					t.Fatal(err)
				}
				wg.Run(in, out, &Epilogue{}, 0, wg.Tiles(), 0, wg.Panels(), make([]float32, wg.Scratch()))
			}
			e := winoRelErr(out, want, scale)
			name := "im2col"
			if m > 0 {
				name = fmt.Sprintf("F(%dx%d)", m, m)
			}
			t.Logf("| %s | %s | %.2e | %.2e |", l.name, name, e*scale, e)
			if m > 0 && e > winoTol[m] {
				t.Errorf("%s %s: relative error %.3g > %.3g", l.name, name, e, winoTol[m])
			}
		}
	}
}

// BenchmarkWinogradLayers times im2col+GEMM and each Winograd variant on
// the real layers at one thread, reporting GFLOP/s counted as direct
// convolution (2*9*Cin*Cout per output pixel) and the time of each phase:
// "xform-ms" (im2col or the input and output transforms) and "gemm-ms".
func BenchmarkWinogradLayers(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, l := range realLayers {
		g := geom3x3(l.hw, l.hw, l.c, l.c, 1, 1, 1, 1)
		in := reluInput(r, l.hw*l.hw*l.c)
		w := heWeights(r, l.c, l.c)
		out := make([]float32, l.hw*l.hw*l.c)
		flops := 2 * 9 * float64(l.c*l.c*l.hw*l.hw)
		type algo struct {
			m  int
			xf *winoImpl
		}
		algos := []algo{{0, nil}}
		for _, m := range []int{2, 4, 6} {
			for _, w := range winoReg.usable() {
				algos = append(algos, algo{m, w})
			}
		}
		for _, a := range algos {
			m := a.m
			name := "im2col"
			if m > 0 {
				name = fmt.Sprintf("F%d-%s", m, a.xf.name)
			}
			b.Run(l.name+"/"+name, func(b *testing.B) {
				s := *Best()
				if a.xf != nil {
					s.wino = a.xf
				}
				var xform, gemmT time.Duration
				if m == 0 {
					pb := s.PackB(w, 9*l.c, l.c)
					scratch := make([]float32, ConvScratch(&g, &pb))
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						x, y := convPhases(&g, in, &pb, out, scratch)
						xform, gemmT = xform+x, gemmT+y
					}
				} else {
					wg, _ := s.NewWinograd(&g, m, w)
					scratch := make([]float32, wg.Scratch())
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						x, y := winoPhases(wg, in, out, scratch)
						xform, gemmT = xform+x, gemmT+y
					}
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(sec*1e3, "ms")
				b.ReportMetric(flops/sec/1e9, "GFLOP/s")
				b.ReportMetric(xform.Seconds()*1e3/float64(b.N), "xform-ms")
				b.ReportMetric(gemmT.Seconds()*1e3/float64(b.N), "gemm-ms")
			})
		}
	}
}

// convPhases is Conv (all pixels and panels) with its phases timed.
func convPhases(g *ConvGeom, in []float32, w *PackedB, out, scratch []float32) (xform, gemmT time.Duration) {
	k := g.K()
	rows := w.impl.blockRows(k)
	var ep Epilogue
	for b0 := 0; b0 < g.Pixels(); b0 += rows {
		b1 := min(g.Pixels(), b0+rows)
		t0 := time.Now()
		im2col(g, in, scratch, b0, b1)
		t1 := time.Now()
		Gemm(b1-b0, scratch, k, w, out[b0*g.Cout:], g.Cout, &ep, 0, w.Panels())
		xform, gemmT = xform+t1.Sub(t0), gemmT+time.Since(t1)
	}
	return
}

// winoPhases is Winograd.Run (all tiles and panels) with its phases timed.
func winoPhases(w *Winograd, in, out, scratch []float32) (xform, gemmT time.Duration) {
	cin, cout := w.Geom.C, w.Geom.Cout
	t2, tb := w.T*w.T, w.Block
	vs := scratch[:t2*tb*cin]
	ms := scratch[len(vs) : len(vs)+t2*tb*cout]
	rest := scratch[len(vs)+len(ms):]
	tmp := rest[:t2*max(cin, cout)]
	patch := rest[len(tmp) : len(tmp)+t2*cin]
	edge := rest[len(tmp)+len(patch):]
	var ep Epilogue
	for b0 := 0; b0 < w.Tiles(); b0 += tb {
		nt := min(tb, w.Tiles()-b0)
		t0 := time.Now()
		for j := 0; j < nt; j++ {
			w.inputTile(in, b0+j, vs[j*cin:], tb*cin, tmp, patch)
		}
		t1 := time.Now()
		for x := 0; x < t2; x++ {
			Gemm(nt, vs[x*tb*cin:], cin, &w.U[x], ms[x*tb*cout:], cout, &ep, 0, w.Panels())
		}
		t2_ := time.Now()
		for j := 0; j < nt; j++ {
			w.outputTile(out, b0+j, ms[j*cout:], tb*cout, 0, cout, &ep, tmp, edge)
		}
		xform += t1.Sub(t0) + time.Since(t2_)
		gemmT += t2_.Sub(t1)
	}
	return
}

// TestWinogradSetWeights: new weights set in place give the same output as
// a Winograd built on them, for every F(m) and path, without allocating.
func TestWinogradSetWeights(t *testing.T) {
	g := ConvGeom{H: 9, W: 7, C: 5, OH: 9, OW: 7, Cout: 19, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
		DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1}
	r := rand.New(rand.NewPCG(3, 4))
	in, w1, w2 := randSlice(r, g.H*g.W*g.C), randSlice(r, 9*g.C*g.Cout), randSlice(r, 9*g.C*g.Cout)
	forEachSet(t, func(t *testing.T, s *Set) {
		for _, m := range []int{2, 4, 6} {
			fresh, err := s.NewWinograd(&g, m, w2)
			if err != nil {
				t.Fatal(err)
			}
			reused, err := s.NewWinograd(&g, m, w1)
			if err != nil {
				t.Fatal(err)
			}
			if err := reused.SetWeights(w2); err != nil {
				t.Fatal(err)
			}
			run := func(wg *Winograd) []float32 {
				out := make([]float32, g.OH*g.OW*g.Cout)
				wg.Run(in, out, &Epilogue{}, 0, wg.Tiles(), 0, wg.Panels(), make([]float32, wg.Scratch()))
				return out
			}
			if got, want := run(reused), run(fresh); !slices.Equal(got, want) {
				t.Errorf("F(%d): SetWeights gives a different output than NewWinograd", m)
			}
			if n := testing.AllocsPerRun(5, func() { _ = reused.SetWeights(w1) }); n != 0 {
				t.Errorf("F(%d): SetWeights allocates %v times", m, n)
			}
			wl, sl := s.WinogradLen(&g, m)
			if wl != len(fresh.U)*len(fresh.U[0].Data) || sl != fresh.Scratch() {
				t.Errorf("F(%d): WinogradLen = %d, %d; built: %d, %d", m, wl, sl, len(fresh.U)*len(fresh.U[0].Data), fresh.Scratch())
			}
			if err := reused.SetWeights(w1[:10]); err == nil {
				t.Errorf("F(%d): SetWeights of 10 weights gave no error", m)
			}
		}
	})
}

// TestWinogradWeightTransform compares the transformed, packed weights
// with the transform done one filter at a time (G g Gᵀ in float64, the
// same expressions), bit for bit, over output-channel counts around the
// transform's chunk of 64 and the panel widths.
func TestWinogradWeightTransform(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	s := Best()
	for _, m := range []int{2, 4, 6} {
		v := winoVariantFor(m)
		for _, cc := range [][2]int{{1, 1}, {3, 5}, {16, 16}, {7, 19}, {2, 64}, {3, 70}, {2, 130}} {
			cin, cout := cc[0], cc[1]
			g := ConvGeom{H: 6, W: 6, C: cin, OH: 6, OW: 6, Cout: cout, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
				DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1}
			w := randSlice(r, 9*cin*cout)
			wg, err := s.NewWinograd(&g, m, w)
			if err != nil {
				t.Fatal(err)
			}
			for ci := 0; ci < cin; ci++ {
				for co := 0; co < cout; co++ {
					var tmp [8][3]float64
					for i := 0; i < v.t; i++ {
						for b := 0; b < 3; b++ {
							g0, g1, g2 := float64(w[((0*3+b)*cin+ci)*cout+co]), float64(w[((1*3+b)*cin+ci)*cout+co]), float64(w[((2*3+b)*cin+ci)*cout+co])
							tmp[i][b] = float64(v.g[i][0]*g0) + float64(v.g[i][1]*g1) + float64(v.g[i][2]*g2)
						}
					}
					for i := 0; i < v.t; i++ {
						for j := 0; j < v.t; j++ {
							want := float32(float64(tmp[i][0]*v.g[j][0]) + float64(tmp[i][1]*v.g[j][1]) + float64(tmp[i][2]*v.g[j][2]))
							p := &wg.U[i*v.t+j]
							if got := p.Data[(co/p.NR*p.K+ci)*p.NR+co%p.NR]; math.Float32bits(got) != math.Float32bits(want) {
								t.Fatalf("F(%d) %dx%d: U[%d][%d, %d] = %v, want %v", m, cin, cout, i*v.t+j, ci, co, got, want)
							}
						}
					}
				}
			}
		}
	}
}
