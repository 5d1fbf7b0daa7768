//go:build gc && !purego

package kernels

import (
	"fmt"
	"math/rand/v2"
	"slices"
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
	if hasAMX() {
		wantGemm8 = append(wantGemm8, gemm8AMX.name)
		wantPaths = append(wantPaths, "amx")
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

// TestPackB8NarrowChoice: with the AVX2 int8 kernel a matrix reaches the
// VPMADDUBSW kernel only if every weight is in [-64, 63]; one weight
// outside (at either end of int8, or just past the bound), anywhere in the
// matrix, keeps the exact int16 kernel, and the result stays the
// definition's on activations that would saturate the pair sums.
func TestPackB8NarrowChoice(t *testing.T) {
	if !hasAVX2() {
		t.Skip("no AVX2")
	}
	s := *Best()
	s.gemm8 = gemm8AVX2

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
			pb := s.PackB8(w, k, n)
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

	checkOwnKernel(t, &s, m, n, k, a, rq)
}

// checkOwnKernel checks that a matrix runs on the kernel it was packed
// for, whichever other Set packs beside it: the same weights packed by s
// and by the generic Set keep their kernels and both give the
// definition's result. A matrix no Set packed (it has no kernel) is
// refused.
func checkOwnKernel(t *testing.T, s *Set, m, n, k int, a []uint8, rq *Requant) {
	t.Helper()
	w := make([]int8, k*n)
	for i := range w {
		w[i] = int8(i%255 - 127)
	}
	pb, gp := s.PackB8(w, k, n), genericSet().PackB8(w, k, n)
	if pb.Kernel() != s.Gemm8Name() || gp.Kernel() != gemm8Generic.name {
		t.Fatalf("packed for %q and %q", pb.Kernel(), gp.Kernel())
	}
	want := refGemmU8(m, n, k, a, k, w, rq)
	for _, p := range []*PackedB8{&gp, &pb, &gp} {
		c := make([]uint8, m*n)
		GemmU8(m, a, k, p, c, n, rq, 0, p.Panels())
		if !slices.Equal(c, want) {
			t.Fatalf("matrix packed for %q: result differs from the definition", p.Kernel())
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("GemmU8 ran a matrix that no Set packed")
		}
	}()
	unpacked := PackedB8{K: k, N: n, NR: pb.NR, KG: pb.KG, Data: pb.Data, ColSum: pb.ColSum}
	GemmU8(m, a, k, &unpacked, make([]uint8, m*n), n, rq, 0, unpacked.Panels())
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
	s := *Best()
	s.gemm8 = gemm8AVX2UBSW

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
	pb := s.PackB8(w, k, n)
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
			pb := s.PackB8(w, k, n)
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
				s := *Best()
				s.gemm8, s.gemm = impl, fp32
				r := rand.New(rand.NewPCG(1, 1))
				a8 := make([]uint8, m*k)
				for i := range a8 {
					a8[i] = uint8(r.IntN(256))
				}
				w8 := make([]int8, k*n)
				for i := range w8 {
					w8[i] = int8(r.IntN(255) - 127)
				}
				pb8 := s.PackB8(w8, k, n)
				rq := &Requant{ZeroA: 3, Scale: make([]float32, n), Bias: make([]int32, n), ZeroOut: 0, Lo: 0}
				for j := range rq.Scale {
					rq.Scale[j] = 1e-4
				}
				c8 := make([]uint8, m*n)
				a, pb := randSlice(r, m*k), s.PackB(randSlice(r, k*n), k, n)
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
