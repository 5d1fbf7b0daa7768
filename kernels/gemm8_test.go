package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refGemmU8 is the definition of GemmU8 on an unpacked row-major w.
func refGemmU8(m, n, k int, a []uint8, lda int, w []int8, rq *Requant) []uint8 {
	c := make([]uint8, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var acc int32
			for kk := 0; kk < k; kk++ {
				acc += (int32(a[i*lda+kk]) - rq.ZeroA) * int32(w[kk*n+j])
			}
			if rq.Bias != nil {
				acc += rq.Bias[j]
			}
			var r uint8
			if rq.Res != nil {
				r = rq.Res[i*rq.LdRes+j]
			}
			c[i*n+j] = Requantize(acc, rq.Scale[j], rq.Res != nil, r, rq.ResZero, rq.ResScale, rq.ZeroOut, rq.Lo)
		}
	}
	return c
}

// wantGemm8 lists the int8 GEMM implementations this CPU and build must
// offer; ISA test files add theirs from their own CPU feature checks.
var wantGemm8 = []string{"generic"}

// extraGemm8 are Sets that forEachGemm8 runs besides the paths': kernels
// that a path's own one runs only for some shapes (ISA test files add
// them).
var extraGemm8 []func() *Set

// w8Range is the weight range of the test matrices of one run of
// forEachGemm8: full, or the narrow kernel's in a narrow run.
type w8Range struct {
	lo, hi int
	narrow bool
}

// fullW8 is the range outside narrow runs.
var fullW8 = w8Range{lo: -127, hi: 127}

// kernel is the kernel under test on s: the narrow variant in narrow runs.
func (wr w8Range) kernel(s *Set) *gemm8Impl {
	if wr.narrow {
		return s.gemm8.narrow
	}
	return s.gemm8
}

// rand is a random weight in the range.
func (wr w8Range) rand(r *rand.Rand) int8 { return int8(wr.lo + r.IntN(wr.hi-wr.lo+1)) }

// clamp maps an extreme weight of a test to the range.
func (wr w8Range) clamp(v int) int8 { return int8(min(max(v, wr.lo), wr.hi)) }

// checkPacked fails if a matrix s packed during a narrow run did not get
// the narrow kernel: the run would test the wide one twice.
func (wr w8Range) checkPacked(t *testing.T, s *Set, pb *PackedB8) {
	t.Helper()
	if wr.narrow && pb.impl != s.gemm8.narrow {
		t.Fatalf("narrow run: matrix packed for %q, not %q", pb.Kernel(), s.gemm8.narrow.name)
	}
}

// forEachGemm8 runs f on the Set of every int8 GEMM this CPU supports
// (the best path that has it), and again for each narrow variant with the
// weights in its range (the Set's kernel is then the wide one, as in use:
// PackB8 must pick the narrow one). It fails if one in wantGemm8 was not
// among them.
func forEachGemm8(t *testing.T, f func(t *testing.T, s *Set, wr w8Range)) {
	seen := map[string]bool{}
	for _, s := range Sets() {
		impl := s.gemm8
		if seen[impl.name] {
			continue
		}
		seen[impl.name] = true
		t.Run(impl.name, func(t *testing.T) { f(t, s, fullW8) })
		if nw := impl.narrow; nw != nil && !seen[nw.name] {
			seen[nw.name] = true
			t.Run(nw.name, func(t *testing.T) { f(t, s, w8Range{lo: NarrowLo, hi: NarrowHi, narrow: true}) })
		}
	}
	for _, x := range extraGemm8 {
		s := x()
		seen[s.gemm8.name] = true
		t.Run(s.gemm8.name, func(t *testing.T) { f(t, s, fullW8) })
	}
	for _, name := range wantGemm8 {
		if !seen[name] {
			t.Errorf("int8 GEMM %q is supported here but was not exercised", name)
		}
	}
}

const canary8 = 0xA5

func TestGemmU8Shapes(t *testing.T) {
	forEachGemm8(t, func(t *testing.T, s *Set, wr w8Range) {
		t.Parallel()
		r := rand.New(rand.NewPCG(8, 8))
		mr, nr := wr.kernel(s).mr, wr.kernel(s).nr
		ms := []int{1, 2, mr - 1, mr, mr + 1, 2*mr + 3, 37}
		ns := []int{1, 3, nr - 1, nr, nr + 1, 2*nr + 5}
		ks := []int{4, 8, 12, 64, 68, 300, 1152}
		for _, m := range ms {
			for _, n := range ns {
				for _, k := range ks {
					if m < 1 || n < 1 {
						continue
					}
					for variant := 0; variant < 4; variant++ {
						lda := k + []int{0, 3, 7, 13}[variant]
						ldc := n + []int{0, 5, 11, 2}[variant]
						a := make([]uint8, (m-1)*lda+k)
						for i := range a {
							a[i] = uint8(r.IntN(256))
						}
						w := make([]int8, k*n)
						for i := range w {
							w[i] = wr.rand(r)
						}
						rq := &Requant{ZeroA: int32(r.IntN(256)), ZeroOut: int32(r.IntN(256)), Scale: make([]float32, n)}
						for j := range rq.Scale {
							rq.Scale[j] = float32(r.Float64()*3e-4 + 1e-6)
						}
						if variant&1 == 1 {
							rq.Lo = rq.ZeroOut // ReLU
						}
						if variant >= 2 {
							rq.Bias = make([]int32, n)
							for j := range rq.Bias {
								rq.Bias[j] = int32(r.IntN(200001) - 100000)
							}
							rq.LdRes = n + 3
							rq.Res = make([]uint8, (m-1)*rq.LdRes+n)
							for i := range rq.Res {
								rq.Res[i] = uint8(r.IntN(256))
							}
							rq.ResZero, rq.ResScale = int32(r.IntN(256)), float32(r.Float64()*2)
						}
						pb := s.PackB8(w, k, n)
						wr.checkPacked(t, s, &pb)
						buf := make([]uint8, (m-1)*ldc+n+32)
						for i := range buf {
							buf[i] = canary8
						}
						c := buf[16 : 16+(m-1)*ldc+n]
						GemmU8(m, a, lda, &pb, c, ldc, rq, 0, pb.Panels())
						want := refGemmU8(m, n, k, a, lda, w, rq)
						for i := 0; i < m; i++ {
							for j := 0; j < n; j++ {
								if c[i*ldc+j] != want[i*n+j] {
									t.Fatalf("m=%d n=%d k=%d variant %d: c[%d,%d]=%d want %d", m, n, k, variant, i, j, c[i*ldc+j], want[i*n+j])
								}
							}
							for j := n; j < ldc && i < m-1; j++ {
								if c[i*ldc+j] != canary8 {
									t.Fatalf("wrote into the row gap")
								}
							}
						}
						for i := 0; i < 16; i++ {
							if buf[i] != canary8 || buf[len(buf)-1-i] != canary8 {
								t.Fatal("wrote outside the output")
							}
						}
					}
				}
			}
		}
	})
}

// TestGemmU8Extremes drives the accumulator and the requantization to
// their limits: all-255 activations against all ±127 weights at the
// largest ResNet K, zero points at both ends, scales that saturate.
func TestGemmU8Extremes(t *testing.T) {
	forEachGemm8(t, func(t *testing.T, s *Set, wr w8Range) {
		t.Parallel()
		const m, n, k = 5, 9, 4608
		for _, tc := range []struct {
			a     uint8
			w     int8
			za    int32
			scale float32
		}{{255, 127, 0, 1e-9}, {255, -127, 0, 1e-9}, {0, -127, 255, 1e-9}, {255, 127, 0, 1}, {255, -128, 0, 1}, {128, 1, 128, 1}} {
			a := make([]uint8, m*k)
			for i := range a {
				a[i] = tc.a
			}
			w := make([]int8, k*n)
			for i := range w {
				w[i] = wr.clamp(int(tc.w))
			}
			rq := &Requant{ZeroA: tc.za, Scale: make([]float32, n), ZeroOut: 7}
			for j := range rq.Scale {
				rq.Scale[j] = tc.scale
			}
			pb := s.PackB8(w, k, n)
			wr.checkPacked(t, s, &pb)
			c := make([]uint8, m*n)
			GemmU8(m, a, k, &pb, c, n, rq, 0, pb.Panels())
			want := refGemmU8(m, n, k, a, k, w, rq)
			for i := range c {
				if c[i] != want[i] {
					t.Fatalf("%+v: c[%d]=%d want %d", tc, i, c[i], want[i])
				}
			}
		}
	})
}

func TestRequantize(t *testing.T) {
	cases := []struct {
		acc   int32
		scale float32
		zp    int32
		lo    int32
		want  uint8
	}{
		{5, 0.5, 0, 0, 2},     // 2.5 rounds to even 2
		{7, 0.5, 0, 0, 4},     // 3.5 rounds to even 4
		{-5, 0.5, 10, 0, 8},   // -2.5 -> -2, + 10
		{-100, 1, 10, 10, 10}, // ReLU clamp at the zero point
		{1 << 30, 1, 0, 0, 255},
		{-1 << 30, 1, 0, 0, 0},
		{math.MaxInt32, 1e30, 3, 0, 255}, // t overflows float range of int: clamped
	}
	for _, c := range cases {
		if got := Requantize(c.acc, c.scale, false, 0, 0, 0, c.zp, c.lo); got != c.want {
			t.Errorf("Requantize(%d, %g, zp %d, lo %d) = %d, want %d", c.acc, c.scale, c.zp, c.lo, got, c.want)
		}
	}
	// Residual: 10*0.5 + (200-100)*0.25 = 30.
	if got := Requantize(10, 0.5, true, 200, 100, 0.25, 0, 0); got != 30 {
		t.Errorf("residual: %d", got)
	}
}

func TestPackB8RejectsBadK(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("K=6 packed without complaint")
		}
	}()
	Best().PackB8(make([]int8, 12), 6, 2)
}

func BenchmarkGemmU8(b *testing.B) {
	seen := map[string]bool{}
	for _, s := range Sets() {
		impl := s.gemm8
		if seen[impl.name] {
			continue
		}
		seen[impl.name] = true
		for _, sz := range [][3]int{{3136, 64, 64}, {784, 128, 1152}, {196, 256, 2304}, {49, 512, 4608}} {
			m, n, k := sz[0], sz[1], sz[2]
			b.Run(fmt.Sprintf("%s/m%d_n%d_k%d", impl.name, m, n, k), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 1))
				a := make([]uint8, m*k)
				for i := range a {
					a[i] = uint8(r.IntN(256))
				}
				w := make([]int8, k*n)
				for i := range w {
					w[i] = fullW8.rand(r)
				}
				pb := s.PackB8(w, k, n)
				rq := &Requant{Scale: make([]float32, n)}
				c := make([]uint8, m*n)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					GemmU8(m, a, k, &pb, c, n, rq, 0, pb.Panels())
				}
				b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
			})
		}
	}
}
