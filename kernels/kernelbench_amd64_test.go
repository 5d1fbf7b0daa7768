//go:build gc && !purego && kernelbench

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/cpuid/v2"
)

// Benchmarks (and a test) of the benchmark-only kernels of
// kernelbench_amd64.go: go test -tags kernelbench ./kernels.

// BenchmarkFMAPeak measures the core's fp32 FMA throughput on registers
// only: the ceiling the GEMM kernels are compared with.
func BenchmarkFMAPeak(b *testing.B) {
	for _, p := range []struct {
		name  string
		ok    bool
		flops float64 // per iteration
		f     func(int)
	}{
		{"avx2", hasAVX2(), 12 * 8 * 2, fmaPeakAVX2},
		{"avx512", hasAVX512(), 12 * 16 * 2, fmaPeakAVX512},
	} {
		b.Run(p.name, func(b *testing.B) {
			if !p.ok {
				b.Skip("not supported by this CPU")
			}
			const iters = 1 << 16
			for i := 0; i < b.N; i++ {
				p.f(iters)
			}
			b.ReportMetric(p.flops*iters*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGemmVsPeak interleaves the FMA-peak loop and one GEMM per
// iteration and reports the best time of each, so that the ratio holds on a
// machine shared with other jobs (contention only ever slows a run down).
// Use -benchtime=200x or so.
func BenchmarkGemmVsPeak(b *testing.B) {
	for _, s := range Sets() {
		var peak func(int)
		var peakFlops float64
		switch s.Name() {
		case "avx2":
			peak, peakFlops = fmaPeakAVX2, 12*8*2
		case "avx512":
			peak, peakFlops = fmaPeakAVX512, 12*16*2
		default:
			continue
		}
		for _, sz := range gemmBenchShapes {
			m, n, k := sz[0], sz[1], sz[2]
			b.Run(fmt.Sprintf("%s/m%d_n%d_k%d", s.Name(), m, n, k), func(b *testing.B) {
				g, pk := gemmVsPeak(b, s, peak, peakFlops, m, n, k)
				b.ReportMetric(g, "GFLOP/s")
				b.ReportMetric(pk, "peak-GFLOP/s")
				b.ReportMetric(100*g/pk, "%peak")
			})
		}
	}
}

// BenchmarkVNNIPeak measures VPDPBUSD throughput on registers only, in
// GOP/s (2 per multiply-add): the ceiling of the VNNI GEMM kernels.
func BenchmarkVNNIPeak(b *testing.B) {
	for _, p := range []struct {
		name string
		ok   bool
		ops  float64 // per iteration
		f    func(int)
	}{
		{"avx512vnni", hasAVX512VNNI(), 12 * 64 * 2, vnniPeakAVX512},
		{"avxvnni", hasAVXVNNI(), 12 * 32 * 2, vnniPeakAVXVNNI},
	} {
		b.Run(p.name, func(b *testing.B) {
			if !p.ok {
				b.Skip("not supported by this CPU")
			}
			const iters = 1 << 14
			best := time.Duration(1 << 62)
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				p.f(iters)
				best = min(best, time.Since(t0))
			}
			b.ReportMetric(p.ops*iters*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
			b.ReportMetric(p.ops*iters/best.Seconds()/1e9, "best-GOP/s")
		})
	}
}

// BenchmarkAMXPeak measures the TDPBUSD peak of one core: four
// independent tile products per iteration, no memory traffic (the figure
// BenchmarkGemm8AMX compares the AMX kernel with).
func BenchmarkAMXPeak(b *testing.B) {
	needAMX(b)
	var cfg amxConfigs
	cfg.set(0, 0)
	const iters = 1 << 12
	const ops = 4 * 16 * 16 * 64 * 2
	best := time.Duration(1 << 62)
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		amxPeakTDPBUSD(iters, &cfg[0][0])
		best = min(best, time.Since(t0))
	}
	b.ReportMetric(ops*iters*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
	b.ReportMetric(ops*iters/best.Seconds()/1e9, "best-GOP/s")
}

// requantFixedGo is the Go twin of requantFixedAVX512 for one value.
func requantFixedGo(acc, corr, mult, rnd, shift, zeroOut, lo int32) uint8 {
	x := acc + corr
	h := int32((int64(x)*int64(mult) + 1<<30) >> 31)
	q := (h+rnd)>>shift + zeroOut
	return uint8(min(max(q, lo), 255))
}

// fixedMultiplier returns mult in [2^30, 2^31) and shift >= 1 with
// scale ≈ mult * 2^(-31-shift), for 0 < scale < 0.5.
func fixedMultiplier(scale float32) (mult, shift int32) {
	f, e := math.Frexp(float64(scale)) // scale = f * 2^e, f in [0.5, 1)
	m := int64(math.Round(f * (1 << 31)))
	if m == 1<<31 {
		m /= 2
		e++
	}
	return int32(m), int32(-e)
}

// requantBenchData is one row of accumulators as a 3x3 conv with K=576
// produces them, with per-channel parameters for both epilogues.
type requantBenchData struct {
	acc, corr, mult, rnd, shift []int32
	scale                       []float32
	ep                          gemm8Epi
}

func newRequantBenchData(n int) *requantBenchData {
	r := rand.New(rand.NewPCG(7, 7))
	d := &requantBenchData{acc: make([]int32, n), corr: make([]int32, n), mult: make([]int32, n),
		rnd: make([]int32, n), shift: make([]int32, n), scale: make([]float32, n)}
	for j := range n {
		d.acc[j] = int32(r.IntN(2000001) - 1000000)
		d.corr[j] = int32(r.IntN(200001) - 100000)
		d.scale[j] = float32(r.Float64()*3e-4 + 1e-6)
		d.mult[j], d.shift[j] = fixedMultiplier(d.scale[j])
		d.rnd[j] = 1 << (d.shift[j] - 1)
	}
	d.ep.fill(0, nil, &Requant{ZeroOut: 113, Lo: 113})
	return d
}

// TestRequantEpilogues checks both benchmarked epilogues against their
// definitions, bit for bit, including ties and saturation.
func TestRequantEpilogues(t *testing.T) {
	if !hasAVX512() {
		t.Skip("no AVX-512")
	}
	const n = 1024
	d := newRequantBenchData(n)
	for j := 0; j < 64; j++ { // ties: acc*0.5 = x.5, and saturation both ways
		d.scale[j], d.corr[j], d.acc[j] = 0.5, 0, int32(j-32)*2+1
	}
	d.acc[64], d.acc[65] = math.MaxInt32-200000, math.MinInt32+200000
	f32, fx := make([]uint8, n), make([]uint8, n)
	requantF32AVX512(&f32[0], &d.acc[0], n, &d.corr[0], &d.scale[0], &d.ep.zeroOut[0])
	requantFixedAVX512(&fx[0], &d.acc[0], n, &d.corr[0], &d.mult[0], &d.rnd[0], &d.shift[0], &d.ep.zeroOut[0])
	diff := 0
	for j := range n {
		if want := Requantize(d.acc[j]+d.corr[j], d.scale[j], false, 0, 0, 0, 113, 113); f32[j] != want {
			t.Fatalf("float32 epilogue: [%d] = %d, want %d", j, f32[j], want)
		}
		if want := requantFixedGo(d.acc[j], d.corr[j], d.mult[j], d.rnd[j], d.shift[j], 113, 113); fx[j] != want {
			t.Fatalf("fixed-point epilogue: [%d] = %d, want %d", j, fx[j], want)
		}
		if fx[j] != f32[j] {
			diff++
		}
	}
	t.Logf("fixed point and float32 differ on %d of %d values (rounding of ties and of the multiplier)", diff, n)
}

// BenchmarkRequant: the float32 requantization the kernels use against a
// gemmlowp-style fixed-point one, same vector width (AVX-512), on 1024
// values per call (parameters in L1, as in a GEMM epilogue where MR rows
// share them); reports ns per 1000 values, mean and best batch.
func BenchmarkRequant(b *testing.B) {
	if !hasAVX512() {
		b.Skip("no AVX-512")
	}
	const n = 1024
	d := newRequantBenchData(n)
	dst := make([]uint8, n)
	for _, v := range []struct {
		name string
		f    func()
	}{
		{"float32", func() { requantF32AVX512(&dst[0], &d.acc[0], n, &d.corr[0], &d.scale[0], &d.ep.zeroOut[0]) }},
		{"fixedpoint", func() {
			requantFixedAVX512(&dst[0], &d.acc[0], n, &d.corr[0], &d.mult[0], &d.rnd[0], &d.shift[0], &d.ep.zeroOut[0])
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			// Batches of calls, timed one by one: the best batch is what the
			// code does when no other job shares the core.
			const batch = 64
			best := time.Duration(1 << 62)
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				for range batch {
					v.f()
				}
				best = min(best, time.Since(t0))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch)*1000/n, "ns/1000values")
			b.ReportMetric(float64(best.Nanoseconds())/batch*1000/n, "best-ns/1000values")
		})
	}
}

// gemmVsPeak times Gemm on random m x k and k x n matrices on s (bias and
// ReLU), alternating with peak (peakFlops per iteration), and returns the
// best GFLOP/s of each.
func gemmVsPeak(b *testing.B, s *Set, peak func(int), peakFlops float64, m, n, k int) (gemm, peakGFLOPs float64) {
	r := rand.New(rand.NewPCG(1, 1))
	a, w := randSlice(r, m*k), randSlice(r, k*n)
	pb := s.PackB(w, k, n)
	c := make([]float32, m*n)
	ep := &Epilogue{Bias: randSlice(r, n), Relu: true}
	const iters = 1 << 12
	bestPeak, bestGemm := time.Duration(1<<62), time.Duration(1<<62)
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		peak(iters)
		t1 := time.Now()
		Gemm(m, a, k, &pb, c, n, ep, 0, pb.Panels())
		t2 := time.Now()
		bestPeak, bestGemm = min(bestPeak, t1.Sub(t0)), min(bestGemm, t2.Sub(t1))
	}
	return 2 * float64(m*n*k) / bestGemm.Seconds() / 1e9, peakFlops * iters / bestPeak.Seconds() / 1e9
}

// BenchmarkGemmBlockBytes measures the large-K ResNet GEMMs of
// gemmBenchShapes with the A row block of Gemm at several sizes, in % of
// the FMA peak measured beside each run; "l2" is the size this CPU gets
// (l2BlockBytes).
func BenchmarkGemmBlockBytes(b *testing.B) {
	s := Best()
	if !hasAVX512() {
		b.Skip("needs AVX-512")
	}
	b.Logf("CPU: %s; L2 %d KiB, A block %d KiB", CPU(), cpuid.CPU.Cache.L2>>10, l2BlockBytes()>>10)
	for _, sz := range gemmBenchShapes {
		m, n, k := sz[0], sz[1], sz[2]
		if k < 1024 {
			continue
		}
		sizes := slices.Compact(slices.Sorted(slices.Values([]int{256, 512, 1024, 1536, l2BlockBytes() >> 10})))
		for _, kib := range sizes {
			name := fmt.Sprintf("m%d_n%d_k%d/A%dKiB", m, n, k, kib)
			if kib == l2BlockBytes()>>10 {
				name = fmt.Sprintf("m%d_n%d_k%d/l2", m, n, k)
			}
			b.Run(name, func(b *testing.B) {
				impl := s.gemm.forN(n)
				keep := impl.blockBytes
				defer func() { impl.blockBytes = keep }()
				impl.blockBytes = kib << 10
				g, pk := gemmVsPeak(b, s, fmaPeakAVX512, 12*16*2, m, n, k)
				b.ReportMetric(100*g/pk, "%peak")
			})
		}
	}
}
