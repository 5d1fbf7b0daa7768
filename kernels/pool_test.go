package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refPool is max or average pooling by the definition, in float64.
func refPool(isMax bool, g *PoolGeom, in []float32) []float32 {
	out := make([]float32, g.OH*g.OW*g.C)
	for oh := 0; oh < g.OH; oh++ {
		for ow := 0; ow < g.OW; ow++ {
			h0, w0 := oh*g.StrideH-g.PadTop, ow*g.StrideW-g.PadLeft
			for c := 0; c < g.C; c++ {
				m, sum, n := math.Inf(-1), 0.0, 0
				for y := h0; y < h0+g.KH; y++ {
					for x := w0; x < w0+g.KW; x++ {
						if y < 0 || y >= g.H || x < 0 || x >= g.W {
							continue
						}
						v := float64(in[(y*g.W+x)*g.C+c])
						m, sum, n = math.Max(m, v), sum+v, n+1
					}
				}
				if g.CountIncludePad {
					n = (min(h0+g.KH, g.H+g.PadBottom) - h0) * (min(w0+g.KW, g.W+g.PadRight) - w0)
				}
				if isMax {
					out[(oh*g.OW+ow)*g.C+c] = float32(m)
				} else {
					out[(oh*g.OW+ow)*g.C+c] = float32(sum / float64(n))
				}
			}
		}
	}
	return out
}

// forEachSet runs f on the Set of every kernel path this CPU supports,
// each in its own subtest.
func forEachSet(t *testing.T, f func(t *testing.T, s *Set)) {
	for _, s := range Sets() {
		t.Run(s.Name(), func(t *testing.T) { f(t, s) })
	}
}

func TestPool(t *testing.T) {
	geoms := []PoolGeom{
		{H: 112, W: 112, C: 64, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}, // ResNet stem
		{H: 9, W: 7, C: 37, KH: 3, KW: 2, StrideH: 2, StrideW: 1, PadTop: 1, PadLeft: 0, PadBottom: 1, PadRight: 1},
		{H: 5, W: 5, C: 100, KH: 2, KW: 2, StrideH: 2, StrideW: 2, PadBottom: 1, PadRight: 1, CountIncludePad: true},
		{H: 4, W: 6, C: 1, KH: 4, KW: 6, StrideH: 1, StrideW: 1},
		{H: 8, W: 8, C: 16, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 2, PadLeft: 2, PadBottom: 2, PadRight: 2},
	}
	for i := range geoms {
		g := &geoms[i]
		g.OH = (g.H+g.PadTop+g.PadBottom-g.KH)/g.StrideH + 1
		g.OW = (g.W+g.PadLeft+g.PadRight-g.KW)/g.StrideW + 1
	}
	forEachSet(t, func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(9, 9))
		for _, g := range geoms {
			t.Run(fmt.Sprintf("%dx%dx%d_k%dx%d", g.H, g.W, g.C, g.KH, g.KW), func(t *testing.T) {
				in := randSlice(r, g.H*g.W*g.C)
				inCopy := append([]float32(nil), in...)
				for _, isMax := range []bool{true, false} {
					want := refPool(isMax, &g, in)
					n := g.OH * g.OW * g.C
					full, out := guarded(n)
					half := g.OH * g.OW / 2
					pool := AvgPool
					if isMax {
						pool = s.MaxPool
					}
					pool(&g, in, out, 0, half)
					pool(&g, in, out, half, g.OH*g.OW)
					checkCanaries(t, full, n)
					for i := range want {
						if isMax && out[i] != want[i] || !isMax && math.Abs(float64(out[i]-want[i])) > 1e-6 {
							t.Fatalf("max=%v: out[%d] = %v, want %v", isMax, i, out[i], want[i])
						}
					}
				}
				for i := range in {
					if in[i] != inCopy[i] {
						t.Fatal("input modified")
					}
				}
			})
		}
	})
}

func BenchmarkMaxPoolStem(b *testing.B) {
	g := PoolGeom{H: 112, W: 112, C: 64, OH: 56, OW: 56, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	in := randSlice(rand.New(rand.NewPCG(1, 1)), g.H*g.W*g.C)
	out := make([]float32, g.OH*g.OW*g.C)
	for _, s := range Sets() {
		b.Run(s.Name(), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s.MaxPool(&g, in, out, 0, g.OH*g.OW)
			}
		})
	}
}

// TestEpilogue checks the vector epilogue of every path against the Go
// one, bit for bit, for every length around the vector widths, every flag
// combination, with NaN and -0 kept by ReLU and nothing written past the
// end.
func TestEpilogue(t *testing.T) {
	forEachSet(t, func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(4, 4))
		for n := 0; n <= 70; n++ {
			for flags := 0; flags < 8; flags++ {
				v := randSlice(r, n)
				if n > 3 {
					v[3] = float32(math.NaN())
				}
				if n > 5 { // ReLU keeps -0 and a NaN with the sign bit set
					v[4] = float32(math.Copysign(0, -1))
					v[5] = -float32(math.NaN())
				}
				bias, res, relu := epilogueArgs(r, flags, n, n)
				want := append([]float32(nil), v...)
				epilogueGo(want, bias, res, relu)
				full, got := guarded(n)
				copy(got, v)
				s.epilogue.run(got, bias, res, relu)
				checkCanaries(t, full, n)
				if i := sameBitsOrNaN(got, want); i >= 0 {
					t.Fatalf("n=%d flags=%d: v[%d] = %v, want %v", n, flags, i, got[i], want[i])
				}
			}
		}
	})
}

// TestEpilogueRows checks runRows (the Winograd output tile's rows of
// pixels, one kernel call per row where the path has one) against
// epilogueGo per run, bit for bit, for every flag combination, channel
// counts around the vector widths, with the values between the runs left
// alone.
func TestEpilogueRows(t *testing.T) {
	forEachSet(t, func(t *testing.T, s *Set) {
		r := rand.New(rand.NewPCG(6, 6))
		for _, n := range []int{1, 3, 4, 8, 12, 16, 20, 36, 64} {
			for rows := 1; rows <= 4; rows++ {
				for flags := 0; flags < 8; flags++ {
					ld := n + 3
					size := (rows-1)*ld + n
					v := randSlice(r, size)
					v[0] = float32(math.Copysign(0, -1))
					bias, res, relu := epilogueArgs(r, flags, n, size)
					want := append([]float32(nil), v...)
					for k := range rows {
						var rr []float32
						if res != nil {
							rr = res[k*ld : k*ld+n]
						}
						epilogueGo(want[k*ld:k*ld+n], bias, rr, relu)
					}
					full, got := guarded(size)
					copy(got, v)
					s.epilogue.runRows(got, bias, res, n, rows, ld, relu)
					checkCanaries(t, full, size)
					if i := sameBitsOrNaN(got, want); i >= 0 {
						t.Fatalf("n=%d rows=%d flags=%d: v[%d] = %v, want %v", n, rows, flags, i, got[i], want[i])
					}
				}
			}
		}
	})
}

// epilogueArgs makes random bias (nb values) and residual (nr) for the
// flags, nil where a flag is not set.
func epilogueArgs(r *rand.Rand, flags, nb, nr int) (bias, res []float32, relu bool) {
	if flags&gemmFlagBias != 0 {
		bias = randSlice(r, nb)
	}
	if flags&gemmFlagRes != 0 {
		res = randSlice(r, nr)
	}
	return bias, res, flags&gemmFlagRelu != 0
}

// sameBitsOrNaN is the first index where got and want differ in their
// bits, unless both are NaN; -1 if none.
func sameBitsOrNaN(got, want []float32) int {
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(math.IsNaN(float64(got[i])) && math.IsNaN(float64(want[i]))) {
			return i
		}
	}
	return -1
}
