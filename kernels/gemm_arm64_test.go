//go:build gc && !purego

package kernels

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

func init() {
	// Every ARMv8-A CPU has ASIMD; the check is cpuid's, not the registry's.
	if cpuid.CPU.Supports(cpuid.ASIMD) {
		wantPaths = append(wantPaths, "neon")
	}
	if cpuid.CPU.Supports(cpuid.ASIMD, cpuid.ASIMDDP) {
		wantPaths = append(wantPaths, "neondot")
	}
}

// TestNEONRows checks gemmRowsNEON, which walks all the 6-row tiles of a
// panel in one assembly call and then does the tail, against the
// reference, and checks that every row has the same bits as when it is
// computed alone (so any split of rows across threads agrees).
func TestNEONRows(t *testing.T) {
	if !hasASIMD() {
		t.Skip("no ASIMD")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, m := range []int{1, 5, 6, 7, 12, 13, 17, 40} {
		for _, n := range []int{16, 11} {
			for _, k := range []int{1, 6, 33} {
				lda, ldc, ldres := nextPrime(k+2), nextPrime(n+3), nextPrime(n+7)
				a := randSlice(r, (m-1)*lda+k)
				b := randSlice(r, k*n)
				pb := PackB(b, k, n)
				ep := &Epilogue{Bias: randSlice(r, n), Res: randSlice(r, (m-1)*ldres+n), LdRes: ldres, Relu: true}
				full, c := guarded((m-1)*ldc + n)
				gemmRowsNEON(m, n, k, a, lda, pb.Data, c, ldc, ep)
				checkCanaries(t, full, (m-1)*ldc+n)
				want := refGemm(m, n, k, a, lda, b, ep)
				row := make([]float32, n)
				for i := range m {
					one := *ep
					one.Res = ep.Res[i*ldres:]
					gemmRowsNEON(1, n, k, a[i*lda:], lda, pb.Data, row, n, &one)
					for j := range n {
						got := c[i*ldc+j]
						if math.Abs(float64(got-want[i*n+j])) > gemmTol(k) {
							t.Fatalf("m=%d n=%d k=%d: c[%d,%d]=%v want %v", m, n, k, i, j, got, want[i*n+j])
						}
						if math.Float32bits(got) != math.Float32bits(row[j]) {
							t.Fatalf("m=%d n=%d k=%d: row %d differs when computed alone: %v vs %v", m, n, k, i, got, row[j])
						}
					}
				}
			}
		}
	}
}

// TestSelectNEON checks that EDGE_RESNET_KERNELS forces each path, and
// that neondot (same fp32 GEMM, SDOT int8 GEMM) is preferred where the CPU
// has ASIMDDP.
func TestSelectNEON(t *testing.T) {
	if !hasASIMD() {
		t.Skip("no ASIMD")
	}
	saved := selected
	defer use(saved)
	best, best8 := "neon", "gemmU8_2x16_NEON"
	if cpuid.CPU.Supports(cpuid.ASIMDDP) {
		best, best8 = "neondot", "gemmU8_6x16_NEONDOT"
	}
	type tc struct {
		env, path, gemm, gemm8 string
		refused                bool // the setting is an error (the best path stays selected)
	}
	cases := []tc{
		{"neon", "neon", "gemmF32_6x16_NEON", "gemmU8_2x16_NEON", false},
		{"generic", "generic", "generic", "generic", false},
		{"", best, "gemmF32_6x16_NEON", best8, false}, // the best available
		{"avx2", best, "gemmF32_6x16_NEON", best8, true},
	}
	if best == "neondot" {
		cases = append(cases, tc{"neondot", "neondot", "gemmF32_6x16_NEON", "gemmU8_6x16_NEONDOT", false})
	} else {
		cases = append(cases, tc{"neondot", "neon", "gemmF32_6x16_NEON", "gemmU8_2x16_NEON", true})
	}
	for _, c := range cases {
		t.Setenv(EnvKernels, c.env)
		note, err := selectFromEnv()
		if PathName() != c.path || GemmName() != c.gemm || Gemm8Name() != c.gemm8 || (err != nil) != c.refused {
			t.Errorf("%s=%q: path %s, GEMM %s, int8 GEMM %s (%s, %v), want %s, %s, %s, refused %v",
				EnvKernels, c.env, PathName(), GemmName(), Gemm8Name(), note, err, c.path, c.gemm, c.gemm8, c.refused)
		}
		if err != nil && !errors.Is(err, ErrPath) {
			t.Errorf("%s=%q: %v does not wrap ErrPath", EnvKernels, c.env, err)
		}
	}
}

// BenchmarkFMAPeakNEON measures the core's FMLA throughput on registers,
// the ceiling for BenchmarkGemm's GFLOP/s.
func BenchmarkFMAPeakNEON(b *testing.B) {
	const iters = 1 << 16
	for i := 0; i < b.N; i++ {
		fmaPeakNEON(iters)
	}
	b.ReportMetric(192*iters*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
