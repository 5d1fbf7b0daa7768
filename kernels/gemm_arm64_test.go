//go:build gc && !purego

package kernels

import (
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
	// The paths as the path table before Sets had them (gemm_arm64.go,
	// gemm8_arm64.go), with the NEON Winograd transforms, epilogue and
	// max pool added since (winograd_arm64.go, issue 13); neondot is neon
	// with the SDOT int8 GEMM.
	neon := Set{gemm: gemmNEON, gemm8: gemm8NEON, wino: winoNEON, wino8: wino8Generic,
		maxPool: maxPoolImpl{maxWindowNEON, 4}, epilogue: epilogueImpl{apply: epilogueNEON, lanes: 4, rows: epilogueRowsNEON},
		maxPool8: maxPool8Impl{maxWindow8NEON, 16}, quant: quantImpl{quantizeNEON, dequantizeNEON, 16},
		add8: add8Impl{add8NEONCall, 16}, depthwise: depthwiseNEON, groupconv: groupConvNEON, clamp: clampNEON}
	neondot := neon
	neondot.gemm8 = gemm8NEONDOT
	oldPaths["neon"], oldPaths["neondot"] = &neon, &neondot
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
				pb := packB(b, k, n, gemmNEON)
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
						if math.Abs(float64(got-want[i*n+j])) > gemmTol(gemmNEON.name, k) {
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

// TestSelectNEON checks what each EDGE_RESNET_KERNELS setting gives (the
// path it names, or the best path with the setting refused), and that
// neondot (same fp32 GEMM, SDOT int8 GEMM) is preferred where the CPU has
// ASIMDDP.
func TestSelectNEON(t *testing.T) {
	if !hasASIMD() {
		t.Skip("no ASIMD")
	}
	best, best8 := "neon", "gemmU8_2x16_NEON"
	if cpuid.CPU.Supports(cpuid.ASIMDDP) {
		best, best8 = "neondot", "gemmU8_6x16_NEONDOT"
	}
	cases := []envCase{
		{"neon", "neon", "gemmF32_6x16_NEON", "gemmU8_2x16_NEON", false},
		{"generic", "generic", "generic", "generic", false},
		{"", best, "gemmF32_6x16_NEON", best8, false}, // the best available
		{"avx2", best, "gemmF32_6x16_NEON", best8, true},
		{"no-such-path", best, "gemmF32_6x16_NEON", best8, true},
	}
	if best == "neondot" {
		cases = append(cases, envCase{"neondot", "neondot", "gemmF32_6x16_NEON", "gemmU8_6x16_NEONDOT", false})
	} else {
		cases = append(cases, envCase{"neondot", "neon", "gemmF32_6x16_NEON", "gemmU8_2x16_NEON", true})
	}
	checkEnvCases(t, cases)
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
