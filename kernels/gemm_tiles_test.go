package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func nextPrime(n int) int {
	for ; ; n++ {
		prime := n > 1
		for d := 2; d*d <= n; d++ {
			if n%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			return n
		}
	}
}

// tileKs are the depths of the tile battery: 0, below, at and above the
// NEON kernels' 4-step unroll and its remainder loop, and a few more.
var tileKs = []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 31, 33}

// TestGemmTiles is the tile battery: every m = 1..MR and n = 1..NR (one
// tile per call, so every edge case of a kernel), every depth in tileKs,
// dense and prime strides, and the epilogue options. A, the packed panel,
// bias and residual each end on an inaccessible page, so reading one value
// past them crashes; c has canaries around it and in its row gaps; the
// inputs are checked unchanged.
func TestGemmTiles(t *testing.T) {
	forEachGemm(t, func(t *testing.T, s *Set) {
		t.Parallel()
		mr, nr := s.gemm.mr, s.gemm.nr
		maxK := slices.Max(tileKs)
		ga := newGuardedEnd(t, (mr-1)*nextPrime(maxK+1)+maxK)
		gb := newGuardedEnd(t, maxK*nr)
		gbias := newGuardedEnd(t, nr)
		gres := newGuardedEnd(t, (mr-1)*nextPrime(nr+4)+nr)
		r := rand.New(rand.NewPCG(5, 6))
		fill := func(s []float32) {
			for i := range s {
				s[i] = float32(r.NormFloat64())
			}
		}
		for m := 1; m <= mr; m++ {
			for n := 1; n <= nr; n++ {
				for _, k := range tileKs {
					for variant := range 4 {
						lda, ldc, ldres := k, n, n
						if variant&1 == 1 {
							lda, ldc, ldres = nextPrime(k+1), nextPrime(n+1), nextPrime(n+4)
						}
						a := ga.tail((m-1)*lda + k)
						fill(a)
						b := randSlice(r, k*n)
						pb := s.PackB(b, k, n)
						pb.Data = append(gb.tail(len(pb.Data))[:0], pb.Data...)
						ep := &Epilogue{Relu: variant == 1 || variant == 3}
						if variant == 1 || variant == 3 {
							ep.Bias = gbias.tail(n)
							fill(ep.Bias)
						}
						if variant >= 2 {
							ep.Res, ep.LdRes = gres.tail((m-1)*ldres+n), ldres
							fill(ep.Res)
						}
						inputs := [][]float32{a, pb.Data, ep.Bias, ep.Res}
						var saved [][]float32
						for _, in := range inputs {
							saved = append(saved, slices.Clone(in))
						}
						full, c := guarded((m-1)*ldc + n)
						Gemm(m, a, lda, &pb, c, ldc, ep, 0, pb.Panels())
						checkCanaries(t, full, (m-1)*ldc+n)
						want := refGemm(m, n, k, a, lda, b, ep)
						for i := range m {
							for j := range n {
								if got, w := c[i*ldc+j], want[i*n+j]; math.Abs(float64(got-w)) > gemmTol(pb.Kernel(), k) {
									t.Fatalf("m=%d n=%d k=%d lda=%d ldc=%d ldres=%d variant %d: c[%d,%d]=%v want %v",
										m, n, k, lda, ldc, ldres, variant, i, j, got, w)
								}
							}
							for j := n; j < ldc && i < m-1; j++ {
								if c[i*ldc+j] != canary {
									t.Fatalf("m=%d n=%d k=%d: wrote into the row gap at [%d,%d]", m, n, k, i, j)
								}
							}
						}
						for i, in := range inputs {
							if !slices.Equal(in, saved[i]) {
								t.Fatalf("m=%d n=%d k=%d: input %d was modified", m, n, k, i)
							}
						}
					}
				}
			}
		}
	})
}

// TestGemmReluNaN checks the epilogue's ReLU is max(x, 0) on every path:
// negative results become 0 and NaN stays NaN.
func TestGemmReluNaN(t *testing.T) {
	forEachGemm(t, func(t *testing.T, s *Set) {
		t.Parallel()
		m, k, n := s.gemm.mr+1, 5, s.gemm.nr+3
		a := make([]float32, m*k)
		b := make([]float32, k*n)
		for i := range b {
			b[i] = 1
		}
		for i := range m {
			a[i*k] = -1 // every sum is -1
		}
		a[1*k+2] = float32(math.NaN()) // row 1 is NaN
		pb := s.PackB(b, k, n)
		c := make([]float32, m*n)
		Gemm(m, a, k, &pb, c, n, &Epilogue{Relu: true}, 0, pb.Panels())
		for i := range m {
			for j := range n {
				v := c[i*n+j]
				if i == 1 && !math.IsNaN(float64(v)) || i != 1 && v != 0 {
					t.Fatalf("c[%d,%d] = %v after ReLU", i, j, v)
				}
			}
		}
	})
}
