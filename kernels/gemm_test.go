package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

const canary = 12345.678 // poison value written around and into outputs

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// guarded returns a buffer of n values with canaries on both sides and the
// inner slice, poisoned.
func guarded(n int) (full, inner []float32) {
	full = make([]float32, n+32)
	for i := range full {
		full[i] = canary
	}
	return full, full[16 : 16+n]
}

func checkCanaries(t *testing.T, full []float32, n int) {
	t.Helper()
	for i := 0; i < 16; i++ {
		if full[i] != canary || full[16+n+i] != canary {
			t.Fatalf("write outside the output buffer")
		}
	}
}

// refGemm is the definition: float64 sums in k order.
func refGemm(m, n, k int, a []float32, lda int, b []float32, ep *Epilogue) []float32 {
	c := make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for kk := 0; kk < k; kk++ {
				s += float64(a[i*lda+kk]) * float64(b[kk*n+j])
			}
			if ep.Bias != nil {
				s += float64(ep.Bias[j])
			}
			if ep.Res != nil {
				s += float64(ep.Res[i*ep.LdRes+j])
			}
			if ep.Relu && s < 0 {
				s = 0
			}
			c[i*n+j] = float32(s)
		}
	}
	return c
}

// tolerance for float32 sums of k products of unit normals, relative to
// sqrt(k) (the size of such a sum).
func gemmTol(k int) float64 { return 1e-5 * math.Sqrt(float64(k)+1) * 4 }

// wantPaths lists the kernel paths this CPU and build must offer; ISA test
// files add theirs from their own CPU feature check, independently of the
// registry, so a path that failed to register is caught.
var wantPaths = []string{"generic"}

// forEachGemm runs f with every GEMM implementation this CPU supports
// selected, so that asm kernels are checked against the same oracle. It
// fails if a path in wantPaths was not exercised.
func forEachGemm(t *testing.T, f func(t *testing.T)) {
	saved := gemm
	defer func() { gemm = saved }()
	ran := map[string]bool{}
	for _, p := range paths {
		gemm = p.gemm
		t.Run(p.gemm.name, f)
		ran[p.name] = true
	}
	for _, name := range wantPaths {
		if !ran[name] {
			t.Errorf("kernel path %q is supported here but was not exercised", name)
		}
	}
}

func TestGemmShapes(t *testing.T) {
	forEachGemm(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		mr, nr := gemm.mr, gemm.nr
		ms := []int{1, 2, mr - 1, mr, mr + 1, 2*mr + 3, 37, 129}
		ns := []int{1, 3, nr - 1, nr, nr + 1, 2*nr + 5, 67}
		ks := []int{1, 2, 3, 7, 16, 17, 64, 255, 300}
		for _, m := range ms {
			for _, n := range ns {
				for _, k := range ks {
					if m < 1 || n < 1 {
						continue
					}
					for variant := 0; variant < 4; variant++ {
						lda := k + []int{0, 3, 7, 13}[variant]
						ldc := n + []int{0, 5, 11, 2}[variant]
						a := randSlice(r, (m-1)*lda+k)
						b := randSlice(r, k*n)
						ep := &Epilogue{Relu: variant&1 == 1}
						if variant >= 2 {
							ep.Bias = randSlice(r, n)
							ep.Res = randSlice(r, (m-1)*(n+3)+n)
							ep.LdRes = n + 3
						}
						aCopy := append([]float32(nil), a...)
						pb := PackB(b, k, n)
						full, c := guarded((m-1)*ldc + n)
						Gemm(m, a, lda, &pb, c, ldc, ep, 0, pb.Panels())
						checkCanaries(t, full, (m-1)*ldc+n)
						want := refGemm(m, n, k, a, lda, b, ep)
						for i := 0; i < m; i++ {
							for j := 0; j < n; j++ {
								got, w := c[i*ldc+j], want[i*n+j]
								if math.Abs(float64(got-w)) > gemmTol(k) {
									t.Fatalf("m=%d n=%d k=%d lda=%d ldc=%d: c[%d,%d]=%v want %v", m, n, k, lda, ldc, i, j, got, w)
								}
							}
							// The gap between rows is not ours to write.
							for j := n; j < ldc && i < m-1; j++ {
								if c[i*ldc+j] != canary {
									t.Fatalf("m=%d n=%d k=%d: wrote into the row gap at [%d,%d]", m, n, k, i, j)
								}
							}
						}
						for i := range a {
							if a[i] != aCopy[i] {
								t.Fatal("A was modified")
							}
						}
					}
				}
			}
		}
	})
}

// TestGemmPanelSplit checks that computing column panels in separate calls
// (as threads do) gives bit-identical results to one call.
func TestGemmPanelSplit(t *testing.T) {
	forEachGemm(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		m, n, k := 50, 5*gemm.nr+3, 77
		a, b := randSlice(r, m*k), randSlice(r, k*n)
		ep := &Epilogue{Bias: randSlice(r, n), Relu: true}
		pb := PackB(b, k, n)
		one := make([]float32, m*n)
		Gemm(m, a, k, &pb, one, n, ep, 0, pb.Panels())
		split := make([]float32, m*n)
		for j := 0; j < pb.Panels(); j++ {
			Gemm(17, a, k, &pb, split, n, ep, j, j+1)
			Gemm(m-17, a[17*k:], k, &pb, split[17*n:], n, ep, j, j+1)
		}
		for i := range one {
			if one[i] != split[i] {
				t.Fatalf("split result differs at %d: %v vs %v", i, split[i], one[i])
			}
		}
	})
}

func BenchmarkGemm(b *testing.B) {
	for _, impl := range gemmImpls() {
		for _, sz := range [][3]int{{196, 256, 256}, {3136, 64, 64}, {49, 512, 4608}} {
			m, n, k := sz[0], sz[1], sz[2]
			b.Run(fmt.Sprintf("%s/m%d_n%d_k%d", impl.name, m, n, k), func(b *testing.B) {
				saved := gemm
				gemm = impl
				defer func() { gemm = saved }()
				r := rand.New(rand.NewPCG(1, 1))
				a, w := randSlice(r, m*k), randSlice(r, k*n)
				pb := PackB(w, k, n)
				c := make([]float32, m*n)
				ep := &Epilogue{}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					Gemm(m, a, k, &pb, c, n, ep, 0, pb.Panels())
				}
				b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
