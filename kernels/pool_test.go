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
				var bias, res []float32
				if flags&gemmFlagBias != 0 {
					bias = randSlice(r, n)
				}
				if flags&gemmFlagRes != 0 {
					res = randSlice(r, n)
				}
				relu := flags&gemmFlagRelu != 0
				want := append([]float32(nil), v...)
				epilogueGo(want, bias, res, relu)
				full, got := guarded(n)
				copy(got, v)
				s.epilogue.run(got, bias, res, relu)
				checkCanaries(t, full, n)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(math.IsNaN(float64(got[i])) && math.IsNaN(float64(want[i]))) {
						t.Fatalf("n=%d flags=%d: v[%d] = %v, want %v", n, flags, i, got[i], want[i])
					}
				}
			}
		}
	})
}
