//go:build gc && !purego

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"
)

// The int8 kernels must be offered wherever cpuid says the CPU can run
// them; forEachGemm8 fails if one was not exercised.
func init() {
	if hasAVX2() {
		wantGemm8 = append(wantGemm8, gemm8AVX2.name, gemm8AVX2UBSW.name)
	}
	if hasAVXVNNI() {
		wantGemm8 = append(wantGemm8, gemm8AVXVNNI.name)
		wantPaths = append(wantPaths, "avxvnni")
	}
	if hasAVX512VNNI() {
		wantGemm8 = append(wantGemm8, gemm8VNNI512.name)
		wantPaths = append(wantPaths, "avx512vnni")
	}
}

// TestGemm8EpiLayout: the offsets the generator hard-codes (epi* in
// asm/amd64/gemm8.go) are those of the Go struct.
func TestGemm8EpiLayout(t *testing.T) {
	var e gemm8Epi
	base := uintptr(unsafe.Pointer(&e))
	for _, f := range []struct {
		name string
		p    unsafe.Pointer
		want uintptr
	}{
		{"corr", unsafe.Pointer(&e.corr), 0}, {"scale", unsafe.Pointer(&e.scale), 256},
		{"zeroOut", unsafe.Pointer(&e.zeroOut), 512}, {"lo", unsafe.Pointer(&e.lo), 576},
		{"resZero", unsafe.Pointer(&e.resZero), 640}, {"resScale", unsafe.Pointer(&e.resScale), 704},
		{"hi", unsafe.Pointer(&e.hi), 768}, {"negHi", unsafe.Pointer(&e.negHi), 832},
	} {
		if got := uintptr(f.p) - base; got != f.want {
			t.Errorf("gemm8Epi.%s at offset %d, the kernels read it at %d", f.name, got, f.want)
		}
	}
}

// TestPackB8NarrowChoice: under the AVX2 selection a matrix reaches the
// VPMADDUBSW kernel only if every weight is in [-64, 63]; one weight
// outside (at either end of int8, or just past the bound), anywhere in the
// matrix, keeps the exact int16 kernel, and the result stays the
// definition's on activations that would saturate the pair sums.
func TestPackB8NarrowChoice(t *testing.T) {
	if !hasAVX2() {
		t.Skip("no AVX2")
	}
	saved := gemm8
	defer func() { gemm8 = saved }()
	gemm8 = gemm8AVX2

	const m, n, k = 7, 21, 68
	r := rand.New(rand.NewPCG(7, 7))
	a := make([]uint8, m*k)
	for i := range a {
		a[i] = 255
	}
	rq := &Requant{ZeroA: 0, Scale: make([]float32, n), ZeroOut: 3}
	for j := range rq.Scale {
		rq.Scale[j] = 1e-4
	}
	for _, tc := range []struct {
		out    int8 // the one weight outside [-64, 63]; 0: none
		narrow bool
	}{{0, true}, {127, false}, {-127, false}, {-128, false}, {64, false}, {-65, false}} {
		for _, pos := range []int{0, 5*n + 17, k*n - 1} {
			w := make([]int8, k*n)
			for i := range w {
				w[i] = int8([]int{-64, 63}[r.IntN(2)]) // pairs at the int16 edge
			}
			if tc.out != 0 {
				w[pos] = tc.out
				for i := pos - pos%n; i < k*n; i += n {
					w[i] = tc.out // a column full of them, so saturation would show
				}
			}
			pb := PackB8(w, k, n)
			if got := pb.impl == gemm8AVX2UBSW; got != tc.narrow || (!got && pb.impl != gemm8AVX2) {
				t.Fatalf("weight %d at %d: packed for %q", tc.out, pos, pb.Kernel())
			}
			if pb.NR != pb.impl.nr || pb.KG != pb.impl.kg {
				t.Fatalf("layout NR=%d KG=%d for %q", pb.NR, pb.KG, pb.Kernel())
			}
			c := make([]uint8, m*n)
			GemmU8(m, a, k, &pb, c, n, rq, 0, pb.Panels())
			want := refGemmU8(m, n, k, a, k, w, rq)
			for i := range c {
				if c[i] != want[i] {
					t.Fatalf("weight %d at %d (%q): c[%d] = %d, want %d", tc.out, pos, pb.Kernel(), i, c[i], want[i])
				}
			}
		}
	}

	// A matrix packed for one selection is refused under another.
	w := make([]int8, k*n)
	pb := PackB8(w, k, n)
	gemm8 = gemm8Generic
	defer func() {
		if recover() == nil {
			t.Fatal("GemmU8 ran a matrix packed for the AVX2 kernels under the generic selection")
		}
	}()
	GemmU8(m, a, k, &pb, make([]uint8, m*n), n, rq, 0, pb.Panels())
}

// TestGemmU8UBSWBound shows where VPMADDUBSW breaks our contract and where
// it holds. Its int16 sum of two products saturates: with activations 255
// and weights 127 each pair is 64770 > 32767, so the kernel must differ
// from the definition; with weights in [-64, 63] a pair lies in
// [-32640, 32130], inside int16, and it must be bit-exact.
func TestGemmU8UBSWBound(t *testing.T) {
	if !hasAVX2() {
		t.Skip("no AVX2")
	}
	saved := gemm8
	defer func() { gemm8 = saved }()
	gemm8 = gemm8AVX2UBSW

	const m, n, k = 3, 16, 4
	a := make([]uint8, m*k)
	for i := range a {
		a[i] = 255
	}
	w := make([]int8, k*n)
	for i := range w {
		w[i] = 127
	}
	rq := &Requant{Scale: make([]float32, n)}
	for j := range rq.Scale {
		rq.Scale[j] = 1e-3 // acc 129540 -> 130 exactly; saturated pairs give 66
	}
	pb := PackB8(w, k, n)
	c := make([]uint8, m*n)
	GemmU8(m, a, k, &pb, c, n, rq, 0, pb.Panels())
	if want := refGemmU8(m, n, k, a, k, w, rq); c[0] == want[0] {
		t.Fatalf("worst case: VPMADDUBSW gave the exact %d; the saturation this test documents did not happen", c[0])
	}

	r := rand.New(rand.NewPCG(6, 4))
	for _, mnk := range [][3]int{{1, 16, 4}, {5, 16, 64}, {6, 17, 132}, {11, 33, 1152}, {4, 16, 4608}} {
		m, n, k := mnk[0], mnk[1], mnk[2]
		for _, extreme := range []bool{false, true} {
			a := make([]uint8, m*k)
			w := make([]int8, k*n)
			for i := range a {
				a[i] = uint8(r.IntN(256))
				if extreme {
					a[i] = 255
				}
			}
			for i := range w {
				w[i] = int8(r.IntN(128) - 64)
				if extreme {
					w[i] = int8([]int{-64, 63}[i%2])
				}
			}
			rq := &Requant{ZeroA: 128, ZeroOut: 128, Scale: make([]float32, n)}
			for j := range rq.Scale {
				rq.Scale[j] = 1e-4
			}
			pb := PackB8(w, k, n)
			c := make([]uint8, m*n)
			GemmU8(m, a, k, &pb, c, n, rq, 0, pb.Panels())
			want := refGemmU8(m, n, k, a, k, w, rq)
			for i := range c {
				if c[i] != want[i] {
					t.Fatalf("weights in [-64, 63], m=%d n=%d k=%d extreme=%v: c[%d] = %d, want %d", m, n, k, extreme, i, c[i], want[i])
				}
			}
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

// gemm8BenchShapes are ResNet-50 (224x224) GEMMs: M output pixels, K =
// kh*kw*Cin, N output channels.
var gemm8BenchShapes = []struct{ m, k, n int }{
	{3136, 64, 256},  // conv2_x 1x1 expand
	{784, 1152, 128}, // conv3_x 3x3 through im2col
	{196, 2304, 256}, // conv4_x 3x3 through im2col
	{49, 4608, 512},  // conv5_x 3x3 through im2col
	{49, 2048, 512},  // conv5_x 1x1 reduce
}

// BenchmarkGemm8 times each int8 kernel (the registered ones and the
// inexact VPMADDUBSW variant) beside the fp32 GEMM of its ISA level on the
// same shape, alternating calls and keeping the best time of each, so that
// the ratio holds on a machine shared with other jobs. Reports int8 GOP/s,
// fp32 GFLOP/s and their ratio. Use -benchtime=100x or so.
func BenchmarkGemm8(b *testing.B) {
	impls := []*gemm8Impl{gemm8Generic}
	if hasAVX2() {
		impls = append(impls, gemm8AVX2, gemm8AVX2UBSW)
	}
	if hasAVXVNNI() {
		impls = append(impls, gemm8AVXVNNI)
	}
	if hasAVX512VNNI() {
		impls = append(impls, gemm8VNNI512)
	}
	b.Logf("cpu: %s", CPU())
	for _, impl := range impls {
		// The fp32 GEMM of the same ISA level: the ratio the issue's
		// latency targets are about.
		fp32 := map[*gemm8Impl]*gemmImpl{gemm8Generic: gemmGeneric, gemm8AVX2: gemmAVX2, gemm8AVX2UBSW: gemmAVX2,
			gemm8AVXVNNI: gemmAVX2, gemm8VNNI512: gemmAVX512}[impl]
		for _, sz := range gemm8BenchShapes {
			m, k, n := sz.m, sz.k, sz.n
			b.Run(fmt.Sprintf("%s_vs_%s/m%d_k%d_n%d", impl.name, fp32.name, m, k, n), func(b *testing.B) {
				saved8, saved := gemm8, gemm
				gemm8, gemm = impl, fp32
				defer func() { gemm8, gemm = saved8, saved }()
				r := rand.New(rand.NewPCG(1, 1))
				a8 := make([]uint8, m*k)
				for i := range a8 {
					a8[i] = uint8(r.IntN(256))
				}
				w8 := make([]int8, k*n)
				for i := range w8 {
					w8[i] = int8(r.IntN(255) - 127)
				}
				pb8 := PackB8(w8, k, n)
				rq := &Requant{ZeroA: 3, Scale: make([]float32, n), Bias: make([]int32, n), ZeroOut: 0, Lo: 0}
				for j := range rq.Scale {
					rq.Scale[j] = 1e-4
				}
				c8 := make([]uint8, m*n)
				a, pb := randSlice(r, m*k), PackB(randSlice(r, k*n), k, n)
				c := make([]float32, m*n)
				ep := &Epilogue{Bias: randSlice(r, n), Relu: true}
				best8, best := time.Duration(1<<62), time.Duration(1<<62)
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					GemmU8(m, a8, k, &pb8, c8, n, rq, 0, pb8.Panels())
					t1 := time.Now()
					if impl != gemm8Generic || i == 0 {
						Gemm(m, a, k, &pb, c, n, ep, 0, pb.Panels())
					}
					t2 := time.Now()
					best8 = min(best8, t1.Sub(t0))
					if impl != gemm8Generic || i == 0 {
						best = min(best, t2.Sub(t1))
					}
				}
				ops := 2 * float64(m*n*k)
				g8, g := ops/best8.Seconds()/1e9, ops/best.Seconds()/1e9
				b.ReportMetric(g8, "GOP/s")
				b.ReportMetric(g, "fp32-GFLOP/s")
				b.ReportMetric(g8/g, "x-fp32")
			})
		}
	}
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
