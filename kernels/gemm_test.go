package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
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

// gemmTol is the error allowed against the float64 reference for a sum of
// k products of unit normals (size about sqrt(k)): a few float32 ulps per
// term on that scale. Every kernel sums in k order in float32; the FMA
// kernels round once per term instead of twice, so they meet the same bound
// with room. Per kernel (relative to sqrt(k+1)):
var gemmTolPerKernel = map[string]float64{
	"generic":              4e-5, // mul then add: two roundings per term
	"gemmF32_6x16_AVX2FMA": 4e-5, // FMA: one rounding per term
	"gemmF32_14x32_AVX512": 4e-5, // FMA: one rounding per term
	"gemmF32_28x16_AVX512": 4e-5, // FMA: one rounding per term
	"gemmF32_6x16_NEON":    4e-5, // FMA: one rounding per term
}

func gemmTol(kernel string, k int) float64 {
	tol, ok := gemmTolPerKernel[kernel]
	if !ok {
		tol = 4e-5
	}
	return tol * math.Sqrt(float64(k)+1)
}

// wantPaths lists the kernel paths this CPU and build must offer; ISA test
// files add theirs from their own CPU feature check, independently of the
// registry, so a path that failed to register is caught.
var wantPaths = []string{"generic"}

// forEachGemm runs f on the Set of every GEMM implementation this CPU
// supports (the lowest path that has it, generic first), so that asm
// kernels are checked against the same oracle. A kernel with a narrow
// variant runs twice, on copies of its Set that pack every matrix for one
// of the two (gemmVariants), so that both meet every shape. It fails if a
// path the CPU supports was not among them; a run that fails fails the
// test itself.
func forEachGemm(t *testing.T, f func(t *testing.T, s *Set)) {
	ran := map[string]bool{}
	covered := map[*gemmImpl]bool{}
	for _, s := range slices.Backward(Sets()) {
		ran[s.Name()] = true
		if covered[s.gemm] {
			// The VNNI paths share their fp32 GEMM with avx2/avx512.
			continue
		}
		covered[s.gemm] = true
		for _, v := range gemmVariants(s) {
			t.Run(s.Name()+"/"+v.GemmName(), func(t *testing.T) { f(t, v) })
		}
	}
	for _, name := range wantPaths {
		if !ran[name] {
			t.Errorf("kernel path %q is supported here but was not exercised", name)
		}
	}
}

// gemmVariants is s alone, or for a GEMM with a narrow variant two copies
// of s: one whose PackB always picks the wide kernel, one the narrow.
func gemmVariants(s *Set) []*Set {
	if s.gemm.narrow == nil {
		return []*Set{s}
	}
	wide, narrow := *s, *s
	g := *s.gemm
	g.narrow = nil
	wide.gemm, narrow.gemm = &g, s.gemm.narrow
	return []*Set{&wide, &narrow}
}

// gemmCase runs one Gemm against the reference with canaries around c,
// a residual with its own prime row stride, and read-only inputs checked.
func gemmCase(t *testing.T, s *Set, r *rand.Rand, m, n, k, lda, ldc int, bias, res, relu bool) {
	t.Helper()
	a := randSlice(r, (m-1)*lda+k)
	b := randSlice(r, k*n)
	ep := &Epilogue{Relu: relu}
	if bias {
		ep.Bias = randSlice(r, n)
	}
	if res {
		ep.LdRes = n + 3
		ep.Res = randSlice(r, (m-1)*ep.LdRes+n)
	}
	aCopy := append([]float32(nil), a...)
	biasCopy := append([]float32(nil), ep.Bias...)
	resCopy := append([]float32(nil), ep.Res...)
	pb := s.PackB(b, k, n)
	pbCopy := append([]float32(nil), pb.Data...)
	full, c := guarded((m-1)*ldc + n)
	Gemm(m, a, lda, &pb, c, ldc, ep, 0, pb.Panels())
	checkCanaries(t, full, (m-1)*ldc+n)
	want := refGemm(m, n, k, a, lda, b, ep)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			got, w := c[i*ldc+j], want[i*n+j]
			if !(math.Abs(float64(got-w)) <= gemmTol(pb.Kernel(), k)) {
				t.Fatalf("m=%d n=%d k=%d lda=%d ldc=%d bias=%v res=%v relu=%v: c[%d,%d]=%v want %v",
					m, n, k, lda, ldc, bias, res, relu, i, j, got, w)
			}
		}
		// The gap between rows is not ours to write.
		for j := n; j < ldc && i < m-1; j++ {
			if c[i*ldc+j] != canary {
				t.Fatalf("m=%d n=%d k=%d: wrote into the row gap at [%d,%d]", m, n, k, i, j)
			}
		}
	}
	same := func(what string, x, y []float32) {
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				t.Fatalf("m=%d n=%d k=%d: %s was modified", m, n, k, what)
			}
		}
	}
	same("A", a, aCopy)
	same("packed B", pb.Data, pbCopy)
	same("bias", ep.Bias, biasCopy)
	same("residual", ep.Res, resCopy)
}

// TestGemmTiles is XNNPACK's battery on one tile and its neighbours: every
// m = 1..2*MR+1 (a full tile before each partial one), every n = 1..NR+1, k = 0 and k below, at and above the K
// unrolling, strided A and C (prime extra strides), each epilogue part.
func TestGemmTileBattery(t *testing.T) {
	forEachGemm(t, func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(1, 2))
		mr, nr := s.gemm.mr, s.gemm.nr
		ks := []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31}
		for m := 1; m <= 2*mr+1; m++ {
			for n := 1; n <= nr+1; n++ {
				for i, k := range ks {
					v := (m + n + i) % 4
					lda := k + []int{0, 3, 7, 13}[v]
					ldc := n + []int{0, 5, 11, 2}[v]
					gemmCase(t, s, r, m, n, k, lda, ldc, v&1 == 1, v >= 2, v == 1 || v == 2)
				}
			}
		}
	})
}

// TestGemmShapes covers many tiles per call, several panels, tail panels,
// row blocks (large k makes the block a few tiles) and every epilogue
// combination.
func TestGemmShapes(t *testing.T) {
	forEachGemm(t, func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(1, 2))
		mr, nr := s.gemm.mr, s.gemm.nr
		ms := []int{1, mr - 1, mr, mr + 1, 2*mr + 3, 37, 129}
		ns := []int{1, nr - 1, nr, nr + 1, 2*nr + 5, 67}
		ks := []int{1, 3, 64, 255, 300}
		for _, m := range ms {
			for _, n := range ns {
				for _, k := range ks {
					if m < 1 || n < 1 {
						continue
					}
					for variant := 0; variant < 8; variant++ {
						lda := k + []int{0, 3, 7, 13}[variant%4]
						ldc := n + []int{0, 5, 11, 2}[variant%4]
						gemmCase(t, s, r, m, n, k, lda, ldc, variant&1 == 1, variant&2 == 2, variant&4 == 4)
					}
				}
			}
		}
		// Row blocks: k large enough that one block holds few tiles.
		for _, sz := range [][3]int{{3*mr + 2, nr + 3, 4099}, {5 * mr, 2 * nr, 9000}} {
			gemmCase(t, s, r, sz[0], sz[1], sz[2], sz[2]+7, sz[1]+5, true, true, true)
		}
	})
}

// TestPackBNarrow checks the per-matrix choice of PackB on every path
// with a narrow GEMM: N <= the narrow NR packs for the narrow kernel
// (its NR and MR), wider N for the Set's; both compute the product, and
// a Winograd with that many output channels blocks tiles by the narrow MR.
func TestPackBNarrow(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	tested := false
	for _, s := range Sets() {
		nw := s.gemm.narrow
		if nw == nil {
			continue
		}
		tested = true
		for _, n := range []int{1, nw.nr - 1, nw.nr, nw.nr + 1, s.gemm.nr + nw.nr} {
			want := s.gemm
			if n <= nw.nr {
				want = nw
			}
			pb := s.PackB(randSlice(r, 9*n), 9, n)
			if pb.Kernel() != want.name || pb.NR != want.nr || pb.MR() != want.mr || s.GemmMR(n) != want.mr {
				t.Fatalf("%s: N=%d packed for %s (NR=%d, MR=%d, GemmMR %d), want %s",
					s.Name(), n, pb.Kernel(), pb.NR, pb.MR(), s.GemmMR(n), want.name)
			}
			gemmCase(t, s, r, 2*want.mr+3, n, 37, 40, n+1, true, true, true)
		}
		g := ConvGeom{H: 8, W: 8, C: 16, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1,
			PadTop: 1, PadLeft: 1, OH: 8, OW: 8, Cout: nw.nr}
		wg, err := s.NewWinograd(&g, 2, randSlice(r, 9*g.C*g.Cout))
		if err != nil || wg.Kernel() != nw.name || wg.MR() != nw.mr || wg.Block%nw.mr != 0 {
			t.Fatalf("%s: Winograd with %d outputs: %v, kernel %s, MR %d, block %d", s.Name(), g.Cout, err, wg.Kernel(), wg.MR(), wg.Block)
		}
	}
	if !tested && wantNarrowGemm {
		t.Fatal("no path has a narrow fp32 GEMM on a CPU that runs one")
	}
}

// wantNarrowGemm is set by ISA test files where some path must have a
// narrow fp32 GEMM (AVX-512).
var wantNarrowGemm bool

// TestGemmPanelSplit checks that computing column panels in separate calls
// (as threads do) gives bit-identical results to one call.
func TestGemmPanelSplit(t *testing.T) {
	forEachGemm(t, func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(3, 4))
		m, n, k := 50, 5*s.gemm.nr+3, 77
		a, b := randSlice(r, m*k), randSlice(r, k*n)
		ep := &Epilogue{Bias: randSlice(r, n), Relu: true}
		pb := s.PackB(b, k, n)
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

// gemmBenchShapes are ResNet GEMMs (M output pixels, N output channels,
// K = kh*kw*Cin) and an L2-resident one.
var gemmBenchShapes = [][3]int{
	{140, 64, 256},   // in cache: A 140 KB, B 64 KB
	{3136, 64, 64},   // ResNet-50 conv2_x 1x1
	{784, 128, 1152}, // conv3_x 3x3 through im2col
	{196, 256, 2304}, // conv4_x 3x3 through im2col
	{49, 2048, 512},  // conv5_x 1x1 expand
	{49, 512, 4608},  // conv5_x 3x3 through im2col
}

// gemmPathsOnce is Sets(), best first, keeping for each fp32 GEMM only
// the lowest-ranked path that has it (avx512 rather than avx512vnni, avx2
// rather than avxvnni: the VNNI paths differ only in int8).
func gemmPathsOnce() []*Set {
	var out []*Set
	seen := map[*gemmImpl]bool{}
	for _, s := range slices.Backward(Sets()) {
		if !seen[s.gemm] {
			seen[s.gemm] = true
			out = append(out, s)
		}
	}
	slices.Reverse(out)
	return out
}

func BenchmarkGemm(b *testing.B) {
	b.Logf("cpu: %s; kernels: %s", CPU(), Selection())
	for _, s := range gemmPathsOnce() {
		for _, sz := range gemmBenchShapes {
			m, n, k := sz[0], sz[1], sz[2]
			b.Run(fmt.Sprintf("%s/m%d_n%d_k%d", s.Name(), m, n, k), func(b *testing.B) {
				benchGemm(b, s, m, n, k)
			})
		}
	}
}

// gemmNarrowShapes are GEMMs with 16 output columns: CIFAR ResNet-20's
// first stage (32x32 pixels, 16 channels) as its 3x3 im2col GEMM, a
// 1x1, the stem (K = 27) and an L2-resident one.
var gemmNarrowShapes = [][3]int{
	{1024, 16, 144}, // 32x32x16 3x3 through im2col, one image
	{1024, 16, 16},  // 32x32x16 1x1
	{1024, 16, 27},  // the stem, 3 input channels
	{140, 16, 256},  // in cache
}

// BenchmarkGemmNarrow runs the N = 16 shapes on every kernel of each path,
// its wide kernel and its narrow variant (what PackB picks) side by side.
func BenchmarkGemmNarrow(b *testing.B) {
	b.Logf("cpu: %s; kernels: %s", CPU(), Selection())
	for _, s := range gemmPathsOnce() {
		for _, v := range gemmVariants(s) {
			for _, sz := range gemmNarrowShapes {
				m, n, k := sz[0], sz[1], sz[2]
				b.Run(fmt.Sprintf("%s/%s/m%d_n%d_k%d", s.Name(), v.GemmName(), m, n, k), func(b *testing.B) {
					benchGemm(b, v, m, n, k)
				})
			}
		}
	}
}

// BenchmarkGemmColdB rotates through 64 MB of packed weights so that B comes
// from DRAM as in a real network, where each layer's weights are read once
// per image.
func BenchmarkGemmColdB(b *testing.B) {
	for _, s := range gemmPathsOnce() {
		for _, sz := range gemmBenchShapes {
			m, n, k := sz[0], sz[1], sz[2]
			b.Run(fmt.Sprintf("%s/m%d_n%d_k%d", s.Name(), m, n, k), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 1))
				a := randSlice(r, m*k)
				bs := make([]PackedB, max(2, (64<<20)/(4*k*n)))
				for i := range bs {
					bs[i] = s.PackB(randSlice(r, k*n), k, n)
				}
				c := make([]float32, m*n)
				ep := &Epilogue{Bias: randSlice(r, n), Relu: true}
				best := time.Duration(1 << 62)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					pb := &bs[i%len(bs)]
					t0 := time.Now()
					Gemm(m, a, k, pb, c, n, ep, 0, pb.Panels())
					best = min(best, time.Since(t0))
				}
				flops := 2 * float64(m*n*k)
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				// The fastest call: what the kernel does when no other job
				// shares the core.
				b.ReportMetric(flops/best.Seconds()/1e9, "best-GFLOP/s")
			})
		}
	}
}

// benchGemm times C = A x B on s's GEMM kernel, reporting GFLOP/s.
func benchGemm(b *testing.B, s *Set, m, n, k int) {
	r := rand.New(rand.NewPCG(1, 1))
	a, w := randSlice(r, m*k), randSlice(r, k*n)
	pb := s.PackB(w, k, n)
	c := make([]float32, m*n)
	ep := &Epilogue{Bias: randSlice(r, n), Relu: true}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Gemm(m, a, k, &pb, c, n, ep, 0, pb.Panels())
	}
	b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
