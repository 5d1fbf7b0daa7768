package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// forEachWino8 runs f on a copy of the default Set with every int8
// Winograd implementation this CPU supports forced, and fails if a path's
// implementation was not run.
func forEachWino8(t *testing.T, f func(t *testing.T, s *Set)) {
	t.Helper()
	ran := map[*wino8Impl]bool{}
	for _, w := range wino8Reg.usable() {
		s := *Best()
		s.wino8 = w
		t.Run(w.name, func(t *testing.T) { f(t, &s) })
		ran[w] = true
	}
	for _, s := range Sets() {
		if !ran[s.wino8] {
			t.Errorf("int8 Winograd %s of path %s never tested", s.wino8.name, s)
		}
	}
}

// conv8K is the im2col GEMM depth: 9·Cin rounded up to KMult.
func conv8K(g *ConvGeom) int { return (9*g.C + KMult - 1) / KMult * KMult }

// packConv8 packs HWIO weights with s as the conv8K x Cout GEMM operand,
// zero rows past 9·Cin.
func packConv8(s *Set, g *ConvGeom, q []int8) PackedB8 {
	k := conv8K(g)
	w := make([]int8, k*g.Cout)
	copy(w, q[:9*g.C*g.Cout])
	return s.PackB8(w, k, g.Cout)
}

// im2colU8 writes rows [px0, px1) of the uint8 im2col matrix (stride k):
// the 3x3 receptive field in (kh, kw, c) order, the zero point where it
// leaves the input and in the K padding.
func im2colU8(g *ConvGeom, in, dst []uint8, k, px0, px1 int, zero uint8) {
	c := g.C
	for p := px0; p < px1; p++ {
		row := dst[(p-px0)*k : (p-px0+1)*k]
		oy, ox := p/g.OW, p%g.OW
		for kh := 0; kh < 3; kh++ {
			iy := oy - g.PadTop + kh
			for kw := 0; kw < 3; kw++ {
				ix := ox - g.PadLeft + kw
				seg := row[(kh*3+kw)*c : (kh*3+kw+1)*c]
				if iy < 0 || iy >= g.H || ix < 0 || ix >= g.W {
					for i := range seg {
						seg[i] = zero
					}
				} else {
					copy(seg, in[(iy*g.W+ix)*c:])
				}
			}
		}
		for i := 9 * c; i < k; i++ {
			row[i] = zero
		}
	}
}

// conv8Rows is the im2col block of the int8 comparison: 256 output pixels.
const conv8Rows = 256

// conv8Im2col is the convolution as im2col + GemmU8, scratch of
// conv8Rows*conv8K(g) bytes.
func conv8Im2col(g *ConvGeom, in []uint8, pb *PackedB8, out []uint8, rq *Requant, scratch []uint8) {
	k := pb.K
	sub := *rq
	sub.LdRes = g.Cout
	for b0 := 0; b0 < g.Pixels(); b0 += conv8Rows {
		b1 := min(g.Pixels(), b0+conv8Rows)
		im2colU8(g, in, scratch, k, b0, b1, uint8(rq.ZeroA))
		if rq.Res != nil {
			sub.Res = rq.Res[b0*g.Cout:]
		}
		GemmU8(b1-b0, scratch, k, pb, out[b0*g.Cout:], g.Cout, &sub, 0, pb.Panels())
	}
}

func randConv8(r *rand.Rand, g *ConvGeom, variant int) (in []uint8, q []int8, rq *Requant) {
	in = make([]uint8, g.H*g.W*g.C)
	for i := range in {
		in[i] = uint8(r.IntN(256))
	}
	q = make([]int8, 9*g.C*g.Cout)
	for i := range q {
		q[i] = int8(r.IntN(255) - 127)
	}
	rq = &Requant{ZeroA: int32(r.IntN(256)), ZeroOut: int32(r.IntN(256)), Scale: make([]float32, g.Cout)}
	for j := range rq.Scale {
		// Outputs spread over the whole uint8 range for this K.
		rq.Scale[j] = float32((r.Float64() + 0.2) * 4 / (128 * 128 * float64(9*g.C)))
	}
	if variant&1 == 1 {
		rq.Lo = rq.ZeroOut
	}
	if variant&2 == 2 {
		rq.Bias = make([]int32, g.Cout)
		for j := range rq.Bias {
			rq.Bias[j] = int32(r.IntN(2000001) - 1000000)
		}
		rq.Res = make([]uint8, g.OH*g.OW*g.Cout)
		for i := range rq.Res {
			rq.Res[i] = uint8(r.IntN(256))
		}
		rq.ResZero, rq.ResScale = int32(r.IntN(256)), float32(r.Float64()*2)
	}
	return
}

// TestWinograd8Conv checks every implementation against direct integer
// convolution and im2col + GemmU8, bit for bit, over odd sizes (partial
// tiles), channel counts around the SIMD widths, padding 0, 1 and
// asymmetric, bias/residual/ReLU; outputs poisoned and guarded by
// canaries; then every split of tiles and panels over two workers.
func TestWinograd8Conv(t *testing.T) {
	type shape struct{ h, w, cin, cout, top, left, bottom, right int }
	shapes := []shape{
		{1, 1, 3, 5, 1, 1, 1, 1},
		{2, 3, 1, 1, 1, 1, 1, 1},
		{3, 3, 4, 16, 0, 0, 0, 0},
		{5, 7, 17, 33, 1, 1, 1, 1},
		{7, 7, 31, 16, 1, 1, 1, 1},
		{6, 9, 32, 64, 1, 1, 1, 1},
		{8, 8, 33, 70, 1, 0, 0, 1},
		{9, 4, 64, 31, 0, 1, 1, 0},
		{4, 4, 130, 48, 1, 1, 1, 1},
	}
	forEachWino8(t, func(t *testing.T, s8 *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(5, 8))
		for _, s := range shapes {
			g := geom3x3(s.h, s.w, s.cin, s.cout, s.top, s.left, s.bottom, s.right)
			for variant := 0; variant < 4; variant++ {
				name := fmt.Sprintf("%dx%dx%d->%d pad %d,%d,%d,%d variant %d", s.h, s.w, s.cin, s.cout, s.top, s.left, s.bottom, s.right, variant)
				in, q, rq := randConv8(r, &g, variant)
				want := refConv8(&g, in, q, rq)

				pb := packConv8(s8, &g, q)
				viaGemm := make([]uint8, len(want))
				conv8Im2col(&g, in, &pb, viaGemm, rq, make([]uint8, conv8Rows*pb.K))
				for i := range want {
					if viaGemm[i] != want[i] {
						t.Fatalf("%s: im2col+GemmU8 out[%d]=%d, direct %d", name, i, viaGemm[i], want[i])
					}
				}

				w, err := s8.NewWinograd8(&g, q)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]uint8, len(want)+64)
				for i := range buf {
					buf[i] = canary8
				}
				out := buf[32 : 32+len(want)]
				scratch := make([]byte, w.Scratch())
				for i := range scratch {
					scratch[i] = 0x5A // stale data must not leak into results
				}
				w.Run(in, out, rq, 0, w.Tiles(), 0, w.Panels(), scratch)
				for i := range want {
					if out[i] != want[i] {
						t.Fatalf("%s: out[%d] (pixel %d, channel %d) = %d, want %d", name, i, i/g.Cout, i%g.Cout, out[i], want[i])
					}
				}
				for i := 0; i < 32; i++ {
					if buf[i] != canary8 || buf[len(buf)-1-i] != canary8 {
						t.Fatalf("%s: wrote outside the output", name)
					}
				}

				// Splits: tiles at every q, panels at every p, each part
				// run by its own worker scratch.
				s2 := make([]byte, w.Scratch())
				for q := 0; q <= w.Tiles(); q++ {
					for p := 0; p <= w.Panels(); p++ {
						clear(out)
						w.Run(in, out, rq, 0, q, 0, p, scratch)
						w.Run(in, out, rq, 0, q, p, w.Panels(), s2)
						w.Run(in, out, rq, q, w.Tiles(), 0, p, scratch)
						w.Run(in, out, rq, q, w.Tiles(), p, w.Panels(), s2)
						for i := range want {
							if out[i] != want[i] {
								t.Fatalf("%s: split at tile %d panel %d: out[%d]=%d want %d", name, q, p, i, out[i], want[i])
							}
						}
					}
				}
			}
		}
	})
}

// TestWinograd8Extremes drives the transforms and the int32 accumulator to
// their bounds: constant inputs at the ends of the range (|V| = 4·255 at
// ξ=(1,1)), weights at ±127 and -128 (|U| = 9·128), zero points 0 and
// 255, and Cin up to wino8MaxC, where |4·acc| is just below 2^31. The
// scale maps the largest possible |acc| to 120 output steps, so an error
// of one wrap (2^30 in acc) could not go unseen; a random pattern of ±
// weights checks the same with mixed signs.
func TestWinograd8Extremes(t *testing.T) {
	forEachWino8(t, func(t *testing.T, s *Set) {
		t.Parallel()
		for _, cin := range []int{1, 64, 512, 513, wino8MaxC} {
			g := geom3x3(4, 5, cin, 5, 1, 1, 1, 1)
			for _, tc := range []struct {
				a    uint8
				za   int32
				w    int8
				mix  bool
				bias bool
			}{{255, 0, 127, false, false}, {255, 0, -128, false, true}, {0, 255, -128, false, false},
				{0, 255, 127, false, true}, {255, 0, 127, true, false}, {0, 255, -128, true, false}} {
				in := make([]uint8, g.H*g.W*g.C)
				for i := range in {
					in[i] = tc.a
				}
				q := make([]int8, 9*g.C*g.Cout)
				r := rand.New(rand.NewPCG(uint64(cin), 1))
				for i := range q {
					q[i] = tc.w
					if tc.mix && r.IntN(2) == 0 {
						q[i] = -tc.w - 1 // 127 <-> -128
					}
				}
				bound := float64(9 * 255 * 128 * cin)
				rq := &Requant{ZeroA: tc.za, ZeroOut: 128, Scale: make([]float32, g.Cout)}
				for j := range rq.Scale {
					rq.Scale[j] = float32(120 / bound)
				}
				if tc.bias {
					rq.Bias = make([]int32, g.Cout)
					for j := range rq.Bias {
						rq.Bias[j] = int32(j-2) * 1e8
					}
				}
				want := refConv8(&g, in, q, rq)
				w, err := s.NewWinograd8(&g, q)
				if err != nil {
					t.Fatal(err)
				}
				out := make([]uint8, len(want))
				w.Run(in, out, rq, 0, w.Tiles(), 0, w.Panels(), make([]byte, w.Scratch()))
				for i := range want {
					if out[i] != want[i] {
						t.Fatalf("cin=%d %+v: out[%d]=%d want %d", cin, tc, i, out[i], want[i])
					}
				}
				spread := 0
				for i := range want {
					spread = max(spread, int(want[i])-128, 128-int(want[i]))
				}
				if !tc.mix && spread < 50 {
					t.Fatalf("cin=%d %+v: outputs within %d of the zero point: the test does not reach the bound", cin, tc, spread)
				}
			}
		}
	})
}

func TestWinograd8Rejects(t *testing.T) {
	g := geom3x3(4, 4, wino8MaxC+1, 2, 1, 1, 1, 1)
	s := Best()
	if _, err := s.NewWinograd8(&g, make([]int8, 9*g.C*g.Cout)); err == nil {
		t.Errorf("Cin=%d accepted, beyond the exact int32 bound", g.C)
	}
	g = geom3x3(4, 4, 3, 2, 1, 1, 1, 1)
	if _, err := s.NewWinograd8(&g, make([]int8, 9*3*2-1)); err == nil {
		t.Error("too few weights accepted")
	}
	g.StrideH = 2
	if _, err := s.NewWinograd8(&g, make([]int8, 9*3*2)); err == nil {
		t.Error("stride 2 accepted")
	}
	if 4*9*255*128*wino8MaxC >= 1<<31 || 4*9*255*128*(wino8MaxC+1) < 1<<31 {
		t.Errorf("wino8MaxC = %d is not the largest Cin with 4·9·255·128·Cin < 2^31", wino8MaxC)
	}
}

// TestWinograd8GemmShapes checks each int16 GEMM against the Go twin of its
// panel width on all row counts around MR, K from one pair up, strided A
// and C, canaries around C's rows and values at the int16 extremes.
func TestWinograd8GemmShapes(t *testing.T) {
	forEachWino8(t, func(t *testing.T, s *Set) {
		t.Parallel()
		impl := s.wino8
		twin := wino8GemmGo(impl.nr)
		r := rand.New(rand.NewPCG(16, 16))
		nr, mr := impl.nr, impl.mr
		for _, m := range []int{1, 2, mr - 1, mr, mr + 1, mr + (mr-1)/2, mr + mr/2, 2*mr + 1, 2*mr + 3, 3 * mr} {
			for _, k2 := range []int{1, 2, 3, 8, 33, 256} {
				for _, extreme := range []bool{false, true} {
					if m < 1 {
						continue
					}
					lda, ldc := 2*k2+6, nr+nr/2+3
					a := make([]int16, (m-1)*lda+2*k2)
					b := make([]int16, k2*nr*2)
					for i := range a {
						a[i] = int16(r.IntN(2041) - 1020)
						if extreme {
							a[i] = []int16{-32768, 32767}[r.IntN(2)]
						}
					}
					for i := range b {
						b[i] = int16(r.IntN(2305) - 1152)
						if extreme {
							b[i] = []int16{-32768, 32767}[r.IntN(2)]
						}
					}
					want := make([]int32, (m-1)*ldc+nr)
					twin(m, k2, a, lda, b, want, ldc)
					buf := make([]int32, len(want)+32)
					for i := range buf {
						buf[i] = -0x5A5A5A5B
					}
					c := buf[16 : 16+len(want)]
					impl.gemm(m, k2, a, lda, b, c, ldc)
					for i := 0; i < m; i++ {
						for j := 0; j < ldc && (i < m-1 || j < nr); j++ {
							o := i*ldc + j
							if j < nr && c[o] != want[o] {
								t.Fatalf("m=%d k2=%d extreme=%v: c[%d][%d]=%d want %d", m, k2, extreme, i, j, c[o], want[o])
							}
							if j >= nr && c[o] != -0x5A5A5A5B {
								t.Fatalf("m=%d k2=%d: wrote c[%d][%d] past the panel", m, k2, i, j)
							}
						}
					}
					for i := 0; i < 16; i++ {
						if buf[i] != -0x5A5A5A5B || buf[len(buf)-1-i] != -0x5A5A5A5B {
							t.Fatalf("m=%d k2=%d: wrote outside c", m, k2)
						}
					}
				}
			}
		}
	})
}

// TestWinograd8Transforms checks each implementation's input and output
// transforms against the Go ones on channel counts around the vector
// widths, strided, with canaries.
func TestWinograd8Transforms(t *testing.T) {
	forEachWino8(t, func(t *testing.T, s *Set) {
		t.Parallel()
		impl := s.wino8
		r := rand.New(rand.NewPCG(4, 4))
		for _, n := range []int{1, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100} {
			for _, zero := range []int32{0, 255, int32(r.IntN(256))} {
				rs, ps, ds := 4*n+9, n+2, n+5
				src := make([]uint8, 3*rs+3*ps+n)
				for i := range src {
					src[i] = uint8(r.IntN(256))
				}
				want := make([]int16, 15*ds+n)
				wino8InGo(want, ds, src, rs, ps, n, zero)
				got := make([]int16, len(want)+16)
				for i := range got {
					got[i] = 0x5A5A
				}
				impl.in(got[8:8+len(want)], ds, src, rs, ps, n, zero)
				for x := 0; x < 16; x++ {
					for c := 0; c < ds && (x < 15 || c < n); c++ {
						w := int16(0x5A5A)
						if c < n {
							w = want[x*ds+c]
						}
						if g := got[8+x*ds+c]; g != w {
							t.Fatalf("in n=%d zero=%d: V[%d][%d]=%d want %d", n, zero, x, c, g, w)
						}
					}
				}
				for i := 0; i < 8; i++ {
					if got[i] != 0x5A5A || got[len(got)-1-i] != 0x5A5A {
						t.Fatalf("in n=%d: wrote outside dst", n)
					}
				}

				for variant := 0; variant < 4; variant++ {
					ss := n + 3
					m := make([]int32, 15*ss+n)
					for i := range m {
						m[i] = int32(r.Uint32())
					}
					ors, ops := 2*n+7, n+1
					rq := &Requant{ZeroA: zero, ZeroOut: int32(r.IntN(256)), Scale: make([]float32, n)}
					for j := range rq.Scale {
						rq.Scale[j] = float32(r.Float64() * 1e-6)
					}
					if variant&1 == 1 {
						rq.Lo = rq.ZeroOut
					}
					if variant&2 == 2 {
						rq.Bias = make([]int32, n)
						for j := range rq.Bias {
							rq.Bias[j] = int32(r.Uint32())
						}
						rq.Res = make([]uint8, ors+ops+n)
						for i := range rq.Res {
							rq.Res[i] = uint8(r.IntN(256))
						}
						rq.ResZero, rq.ResScale = int32(r.IntN(256)), float32(r.Float64()*2)
					}
					want := make([]uint8, ors+ops+n)
					wino8OutGo(want, ors, ops, m, ss, n, *rq)
					got := make([]uint8, len(want)+32)
					for i := range got {
						got[i] = canary8
					}
					impl.out(got[16:16+len(want)], ors, ops, m, ss, n, *rq)
					for i := 0; i < 2; i++ {
						for k := 0; k < 2; k++ {
							for c := 0; c < n; c++ {
								o := i*ors + k*ops + c
								if got[16+o] != want[o] {
									t.Fatalf("out n=%d variant %d: y[%d][%d][%d]=%d want %d", n, variant, i, k, c, got[16+o], want[o])
								}
							}
						}
					}
					for i := 0; i < 16; i++ {
						if got[i] != canary8 || got[len(got)-1-i] != canary8 {
							t.Fatalf("out n=%d: wrote outside dst", n)
						}
					}
				}
			}
		}
	})
}

func TestWinograd8Allocs(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	g := geom3x3(9, 9, 16, 32, 1, 1, 1, 1)
	in, q, rq := randConv8(r, &g, 3)
	w, err := Best().NewWinograd8(&g, q)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]uint8, g.OH*g.OW*g.Cout)
	scratch := make([]byte, w.Scratch())
	if n := testing.AllocsPerRun(10, func() { w.Run(in, out, rq, 0, w.Tiles(), 0, w.Panels(), scratch) }); n != 0 {
		t.Errorf("Run allocates %v times", n)
	}
}

// TestWinograd8FollowsPath checks that each Set compiles Winograd8 for
// its own implementation (avx512 must not use VNNI, no Set may keep
// another's packing).
func TestWinograd8FollowsPath(t *testing.T) {
	g := geom3x3(4, 4, 8, 40, 1, 1, 1, 1)
	want := map[string]string{"generic": "generic", "avx2": "wino8Gemm_6x16_AVX2",
		"avxvnni": "wino8Gemm_6x16_AVX2", "avx512": "wino8Gemm_14x32_AVX512BW", "avx512vnni": "wino8Gemm_14x32_AVX512VNNI"}
	for _, s := range Sets() {
		p := s.Name()
		w, err := s.NewWinograd8(&g, make([]int8, 9*8*40))
		if err != nil {
			t.Fatal(err)
		}
		if w.Impl() != s.Winograd8Impl() || w.NR != w.impl.nr || w.Panels() != (40+w.NR-1)/w.NR {
			t.Errorf("path %s: Winograd8 %s NR %d, path's %s", p, w.Impl(), w.NR, s.Winograd8Impl())
		}
		if name, ok := want[p]; ok && w.Impl() != name {
			t.Errorf("path %s uses %s, want %s", p, w.Impl(), name)
		}
	}
}

// TestWinograd8Concurrent runs one Winograd8 from two goroutines on
// disjoint tile ranges with their own scratch (as the plan's workers do);
// with -race it checks that Run writes nothing shared but its output part.
func TestWinograd8Concurrent(t *testing.T) {
	forEachWino8(t, func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(6, 6))
		g := geom3x3(13, 11, 24, 40, 1, 1, 1, 1)
		in, q, rq := randConv8(r, &g, 3)
		want := refConv8(&g, in, q, rq)
		w, err := s.NewWinograd8(&g, q)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]uint8, len(want))
		half := w.Tiles() / 2
		done := make(chan bool)
		for _, qr := range [][2]int{{0, half}, {half, w.Tiles()}} {
			go func() {
				w.Run(in, out, rq, qr[0], qr[1], 0, w.Panels(), make([]byte, w.Scratch()))
				done <- true
			}()
		}
		<-done
		<-done
		for i := range want {
			if out[i] != want[i] {
				t.Fatalf("out[%d]=%d want %d", i, out[i], want[i])
			}
		}
	})
}
