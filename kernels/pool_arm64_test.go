//go:build gc && !purego

package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMaxPoolBits checks the arm64 paths' max pooling against maxWindowGo
// bit for bit on data with NaNs of both signs and zeros of both signs (where
// a vector max would differ: a NaN never replaces, a NaN first stays,
// equal zeros keep the first), for channel counts around the vector
// widths and windows clipped at the borders. (The amd64 kernels, VMAXPS,
// differ from Go there: a later NaN or equal zero replaces.)
func TestMaxPoolBits(t *testing.T) {
	specials := []float32{float32(math.NaN()), -float32(math.NaN()), 0, float32(math.Copysign(0, -1))}
	forEachSet(t, func(t *testing.T, s *Set) {
		r := rand.New(rand.NewPCG(5, 5))
		for c := 1; c <= 37; c += 3 {
			g := PoolGeom{H: 5, W: 6, C: c, KH: 3, KW: 3, StrideH: 2, StrideW: 1, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
			g.OH, g.OW = (g.H+2-g.KH)/g.StrideH+1, (g.W+2-g.KW)/g.StrideW+1
			in := randSlice(r, g.H*g.W*c)
			for i := range in {
				if r.IntN(3) == 0 {
					in[i] = specials[r.IntN(len(specials))]
				}
			}
			n := g.OH * g.OW * c
			want := poisoned(n)
			maxPool(&g, in, want, 0, g.OH*g.OW, nil, 1, maxWindowGo)
			full, got := guarded(n)
			s.MaxPool(&g, in, got, 0, g.OH*g.OW)
			checkCanaries(t, full, n)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("C=%d: out[%d] = %v (%#x), want %v (%#x)", c, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
		}
	})
}
