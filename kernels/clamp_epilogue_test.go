package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// clampRun computes one GEMM-based layer into out through ep, split into
// parts (rows and panels) as the engine splits it.
type clampRun struct {
	name string
	size int // output values
	run  func(ep *Epilogue, out []float32)
}

// clampRuns are the GEMM-based kernels on random inputs with one NaN,
// packed by the Set s.
func clampRuns(s *Set, r *rand.Rand) []clampRun {
	nan := func(v []float32) []float32 { v[len(v)/3] = float32(math.NaN()); return v }
	m, n, k := 37, 45, 19
	a, b := nan(randSlice(r, m*k)), randSlice(r, k*n)
	pb := s.PackB(b, k, n)
	bias, res := randSlice(r, 64), randSlice(r, m*n)
	im2col := ConvGeom{H: 9, W: 10, C: 5, OH: 5, OW: 5, Cout: 20, KH: 3, KW: 3, StrideH: 2, StrideW: 2, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1}
	direct := ConvGeom{H: 6, W: 7, C: 12, OH: 6, OW: 7, Cout: 40, KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1}
	wino := geom3x3(8, 9, 6, 20, 1, 1, 1, 1)
	conv := func(name string, g ConvGeom) clampRun {
		in, pw := nan(randSlice(r, g.H*g.W*g.C)), s.PackB(randSlice(r, g.K()*g.Cout), g.K(), g.Cout)
		scratch := make([]float32, ConvScratch(&g, &pw))
		return clampRun{name, g.Pixels() * g.Cout, func(ep *Epilogue, out []float32) {
			half := g.Pixels() / 2 / pw.MR() * pw.MR()
			Conv(&g, in, &pw, out, ep, 0, half, 0, pw.Panels(), scratch)
			Conv(&g, in, &pw, out, ep, half, g.Pixels(), 0, 1, scratch)
			Conv(&g, in, &pw, out, ep, half, g.Pixels(), 1, pw.Panels(), scratch)
		}}
	}
	win := nan(randSlice(r, wino.H*wino.W*wino.C))
	wg, err := s.NewWinograd(&wino, 4, heWeights(r, wino.C, wino.Cout))
	if err != nil {
		panic(err)
	}
	wscratch := make([]float32, wg.Scratch())
	grouped := im2col // 5 groups of 2 input and 4 output channels
	grouped.C = 10
	gin := nan(randSlice(r, grouped.H*grouped.W*grouped.C))
	gb := s.PackGrouped(&grouped, 5, randSlice(r, 9*2*grouped.Cout))
	gscratch := make([]float32, GroupConvGemmScratch(&grouped, &gb))
	return []clampRun{
		{"gemm", m * n, func(ep *Epilogue, out []float32) {
			e := *ep
			e.Bias, e.Res, e.LdRes = bias, res, n
			Gemm(m, a, k, &pb, out, n, &e, 0, 1)
			Gemm(m, a, k, &pb, out, n, &e, 1, pb.Panels())
		}},
		conv("im2col", im2col), conv("1x1", direct),
		{"winograd", wino.Pixels() * wino.Cout, func(ep *Epilogue, out []float32) {
			e := *ep
			e.Bias = bias
			wg.Run(win, out, &e, 0, wg.Tiles(), 0, wg.Panels(), wscratch)
		}},
		{"grouped gemm", grouped.Pixels() * grouped.Cout, func(ep *Epilogue, out []float32) {
			GroupConvGemm(&grouped, &gb, gin, out, ep, 0, grouped.Pixels(), gscratch)
		}},
	}
}

// TestEpilogueClamp checks Epilogue.Clamp in every GEMM-based kernel on
// every GEMM path: the clamped output is the unclamped one through Clamp
// (the Clip op), bit for bit, NaN included.
func TestEpilogueClamp(t *testing.T) {
	inf := float32(math.Inf(1))
	cases := []struct {
		name   string
		relu   bool
		lo, hi float32
	}{
		{"relu6", false, 0, 6},
		{"relu then 0..1", true, 0, 1},
		{"upper only", false, -inf, 0.5},
		{"lower only", false, -0.25, inf},
		{"negative", false, -1, -0.5},
		{"point", false, 0.3, 0.3},
	}
	forEachGemm(t, func(t *testing.T, s *Set) {
		for _, run := range clampRuns(s, rand.New(rand.NewPCG(31, 41))) {
			plain := make([]float32, run.size)
			for _, c := range cases {
				run.run(&Epilogue{Relu: c.relu}, plain)
				want := make([]float32, run.size)
				s.Clamp(plain, want, c.lo, c.hi)
				got := make([]float32, run.size)
				run.run(&Epilogue{Relu: c.relu, Clamp: true, Lo: c.lo, Hi: c.hi}, got)
				nans, changed := 0, 0
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
						t.Fatalf("%s, %s: out[%d] = %v, want %v (unclamped %v)", run.name, c.name, i, got[i], want[i], plain[i])
					}
					if got[i] != got[i] {
						nans++
					} else if got[i] != plain[i] {
						changed++
					}
				}
				if nans == 0 || changed == 0 {
					t.Fatalf("%s, %s: %d NaNs, %d values clamped: the case tests nothing", run.name, c.name, nans, changed)
				}
			}
		}
	})
}

// TestClamp checks Clamp and its vector kernels on every path against Go's
// min(max(x, lo), hi): every length around the vector widths, in place and
// not, rows at a stride (the values between rows untouched), NaN and
// infinities passing; a zero result may be either zero.
func TestClamp(t *testing.T) {
	inf := float32(math.Inf(1))
	special := []float32{float32(math.NaN()), inf, -inf, 0, float32(math.Copysign(0, -1)), 6, -0.5, 1e-30}
	bounds := [][2]float32{{0, 6}, {-inf, 6}, {-0.5, inf}, {-1, -0.5}, {2, 2}, {-inf, inf}}
	same := func(got, want float32) bool { return got == want || got != got && want != want }
	forEachSet(t, func(t *testing.T, s *Set) {
		r := rand.New(rand.NewPCG(7, 7))
		for _, n := range []int{0, 1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 64, 65, 130} {
			in := randSlice(r, n)
			for i := range in {
				in[i] *= 4
				if i%5 == 0 {
					in[i] = special[i/5%len(special)]
				}
			}
			for _, b := range bounds {
				out := make([]float32, n)
				s.Clamp(in, out, b[0], b[1])
				inPlace := slices.Clone(in)
				s.Clamp(inPlace, inPlace, b[0], b[1])
				for i, x := range in {
					if want := min(max(x, b[0]), b[1]); !same(out[i], want) || !same(inPlace[i], want) {
						t.Fatalf("n=%d %v: clamp(%v) = %v (in place %v), want %v", n, b, x, out[i], inPlace[i], want)
					}
				}
			}
		}
		// 3 rows of 19 at stride 23, in place: the 4 values between rows stay.
		v := randSlice(r, 2*23+19)
		want := slices.Clone(v)
		clampRows(s.clamp, v, v, 3, 19, 23, -0.5, 0.5)
		for i, x := range want {
			if i%23 < 19 {
				x = min(max(x, -0.5), 0.5)
			}
			if !same(v[i], x) {
				t.Fatalf("rows: v[%d] = %v, want %v", i, v[i], x)
			}
		}
	})
}
