//go:build gc && !purego

package kernels

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"unsafe"

	"github.com/klauspost/cpuid/v2"
)

// wantGemm8ARM64 lists the arm64 int8 implementations this CPU must run,
// from cpuid directly rather than from the registry, so that one that
// failed to register is caught.
func wantGemm8ARM64() []*gemm8Impl {
	var want []*gemm8Impl
	if cpuid.CPU.Supports(cpuid.ASIMD) {
		want = append(want, gemm8NEON)
	}
	if cpuid.CPU.Supports(cpuid.ASIMD, cpuid.ASIMDDP) {
		want = append(want, gemm8NEONDOT)
	}
	return want
}

// forEachGemm8ARM64 runs f on the Set of every int8 GEMM of the paths
// (the generic one too, so the battery checks the generic packing against
// itself) and fails if an arm64 implementation the CPU supports was not
// among them; a run that fails fails the test itself.
func forEachGemm8ARM64(t *testing.T, f func(t *testing.T, s *Set)) {
	ran := map[*gemm8Impl]bool{}
	for _, s := range Sets() {
		impl := s.gemm8
		if ran[impl] {
			continue
		}
		ran[impl] = true
		t.Run(impl.name, func(t *testing.T) { f(t, s) })
	}
	for _, impl := range wantGemm8ARM64() {
		if !ran[impl] {
			t.Errorf("int8 GEMM %s is supported here but was not exercised", impl.name)
		}
	}
}

// TestGemm8ARM64Paths checks which int8 kernels the paths carry: neon
// everywhere, neondot only where cpuid reports ASIMDDP.
func TestGemm8ARM64Paths(t *testing.T) {
	impl := map[string]string{}
	for _, s := range Sets() {
		impl[s.Name()] = s.Gemm8Name()
	}
	if cpuid.CPU.Supports(cpuid.ASIMD) && impl["neon"] != "gemmU8_2x16_NEON" {
		t.Errorf("neon path: int8 GEMM %q", impl["neon"])
	}
	dot := cpuid.CPU.Supports(cpuid.ASIMD, cpuid.ASIMDDP)
	if got := slices.Contains(Available(), "neondot"); got != dot {
		t.Errorf("neondot available = %v, want %v (ASIMDDP %v)", got, dot, dot)
	}
	if dot && impl["neondot"] != "gemmU8_6x16_NEONDOT" {
		t.Errorf("neondot path: int8 GEMM %q", impl["neondot"])
	}
	t.Logf("%s: paths %v", CPU(), Available())
}

// TestForcedPathARM64 checks that a path forced through
// EDGE_RESNET_KERNELS (as CI does under qemu: neon on a Cortex-A72,
// neondot on -cpu max) is the package's default Set, so that a forced run
// tests what it claims.
func TestForcedPathARM64(t *testing.T) {
	want := os.Getenv(EnvKernels)
	if want == "" {
		t.Logf("no path forced; default %s (int8 GEMM %s)", Selection(), Best().Gemm8Name())
		return
	}
	if !slices.Contains(Available(), want) {
		t.Fatalf("%s=%s, but the path is not available here (have %v)", EnvKernels, want, Available())
	}
	if Best().Name() != want || selectionNote == "" || EnvError() != nil {
		t.Errorf("%s=%s, but the default is %s (%v)", EnvKernels, want, Selection(), EnvError())
	}
	t.Logf("forced: %s (int8 GEMM %s)", Selection(), Best().Gemm8Name())
}

// arm8Case is one GemmU8 call and its oracle.
type arm8Case struct {
	m, n, k, lda, ldc int
	a                 []uint8
	w                 []int8
	rq                Requant
}

// newArm8Case fills a case with random data: variant bit 0 adds a bias,
// bit 1 a residual (prime row stride), bit 2 makes Lo the zero point.
func newArm8Case(r *rand.Rand, m, n, k, variant int) *arm8Case {
	c := &arm8Case{m: m, n: n, k: k, lda: nextPrime(k + 1 + variant), ldc: nextPrime(n + 2 + variant)}
	c.a = make([]uint8, (m-1)*c.lda+k)
	for i := range c.a {
		c.a[i] = uint8(r.IntN(256))
	}
	c.w = make([]int8, k*n)
	for i := range c.w {
		c.w[i] = int8(r.IntN(256) - 128)
	}
	rq := &c.rq
	rq.ZeroA, rq.ZeroOut = int32(r.IntN(256)), int32(r.IntN(256))
	rq.Scale = make([]float32, n)
	for j := range rq.Scale {
		// Around 1/(typical |acc|), so that outputs spread over 0..255
		// rather than saturate.
		rq.Scale[j] = float32(r.Float64()*2/(float64(k)*500+1000) + 1e-7)
	}
	if variant&1 != 0 {
		rq.Bias = make([]int32, n)
		for j := range rq.Bias {
			rq.Bias[j] = int32(r.IntN(400001) - 200000)
		}
	}
	if variant&2 != 0 {
		rq.LdRes = nextPrime(n + 5)
		rq.Res = make([]uint8, (m-1)*rq.LdRes+n)
		for i := range rq.Res {
			rq.Res[i] = uint8(r.IntN(256))
		}
		rq.ResZero, rq.ResScale = int32(r.IntN(256)), float32(r.Float64()*1.5)
	}
	if variant&4 != 0 {
		rq.Lo = rq.ZeroOut
	}
	return c
}

// run computes the case with s's int8 GEMM and with the generic one and
// fails on any difference, on a write outside the m x n output (canaries
// before, after and between rows) or on a change to an input.
func (c *arm8Case) run(t *testing.T, s *Set, what string) {
	t.Helper()
	gp := genericSet().PackB8(c.w, c.k, c.n)
	want := make([]uint8, (c.m-1)*c.ldc+c.n)
	GemmU8(c.m, c.a, c.lda, &gp, want, c.ldc, &c.rq, 0, gp.Panels())

	pb := s.PackB8(c.w, c.k, c.n)
	inputs := func() [][]byte {
		return [][]byte{c.a, i8bytes(pb.Data), i32bytes(pb.ColSum), i32bytes(c.rq.Bias), f32bytes(c.rq.Scale), c.rq.Res}
	}
	var saved [][]byte
	for _, in := range inputs() {
		saved = append(saved, bytes.Clone(in))
	}
	const guard = 32
	buf := make([]uint8, guard+len(want)+guard)
	for i := range buf {
		buf[i] = canary8
	}
	out := buf[guard : guard+len(want)]
	GemmU8(c.m, c.a, c.lda, &pb, out, c.ldc, &c.rq, 0, pb.Panels())
	for i := 0; i < c.m; i++ {
		for j := 0; j < c.n; j++ {
			if g, w := out[i*c.ldc+j], want[i*c.ldc+j]; g != w {
				t.Fatalf("%s m=%d n=%d k=%d lda=%d ldc=%d za=%d zo=%d lo=%d bias=%v res=%v: c[%d,%d]=%d, generic %d",
					what, c.m, c.n, c.k, c.lda, c.ldc, c.rq.ZeroA, c.rq.ZeroOut, c.rq.Lo, c.rq.Bias != nil, c.rq.Res != nil, i, j, g, w)
			}
		}
		for j := c.n; j < c.ldc && i < c.m-1; j++ {
			if out[i*c.ldc+j] != canary8 {
				t.Fatalf("%s m=%d n=%d k=%d: wrote c[%d,%d] in the row gap", what, c.m, c.n, c.k, i, j)
			}
		}
	}
	for i := range guard {
		if buf[i] != canary8 || buf[len(buf)-1-i] != canary8 {
			t.Fatalf("%s m=%d n=%d k=%d: wrote outside the output", what, c.m, c.n, c.k)
		}
	}
	for i, in := range inputs() {
		if !bytes.Equal(in, saved[i]) {
			t.Fatalf("%s m=%d n=%d k=%d: input %d changed", what, c.m, c.n, c.k, i)
		}
	}
}

func i8bytes(s []int8) []byte {
	out := make([]byte, len(s))
	for i, v := range s {
		out[i] = byte(v)
	}
	return out
}

func i32bytes(s []int32) []byte {
	out := make([]byte, 0, 4*len(s))
	for _, v := range s {
		out = fmt.Appendf(out, "%08x", uint32(v))
	}
	return out
}

func f32bytes(s []float32) []byte {
	out := make([]byte, 0, 4*len(s))
	for _, v := range s {
		out = fmt.Appendf(out, "%08x", math.Float32bits(v))
	}
	return out
}

// gemm8Ks are the depths of the battery: every multiple of 4 up to 64
// (each remainder of the 16-k main loop, several main iterations), one
// beyond a multiple of 16 and ResNet's 3x3x128.
var gemm8Ks = func() []int {
	var ks []int
	for k := 4; k <= 64; k += 4 {
		ks = append(ks, k)
	}
	return append(ks, 132, 1152)
}()

// TestGemm8ARM64Shapes runs the shape battery on every int8 kernel, bit
// for bit against the generic one: m = 1..2MR+1 and multiples (every row
// tail, several tiles per call, the per-call work bound at k = 1152),
// n = 1..NR+1 and beyond (every column tail, several panels), all the K
// above, prime strides, and bias, residual and ReLU floor in turn.
func TestGemm8ARM64Shapes(t *testing.T) {
	forEachGemm8ARM64(t, func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(84, 8))
		mr, nr := s.gemm8.mr, s.gemm8.nr
		var ms, ns []int
		for m := 1; m <= 2*mr+1; m++ {
			ms = append(ms, m)
		}
		ms = append(ms, 4*mr, 5*mr+2, 64)
		for n := 1; n <= nr+1; n++ {
			ns = append(ns, n)
		}
		ns = append(ns, 2*nr, 3*nr-1, 4*nr)
		ks := gemm8Ks
		if testing.Short() {
			ks = []int{4, 8, 12, 16, 20, 28, 64, 132, 1152}
		}
		cases := 0
		for _, k := range ks {
			for _, m := range ms {
				for _, n := range ns {
					if m*n*k > 1<<20 && (m != 64 || n != 4*nr) {
						continue // the big shapes once per k, to keep qemu runs short
					}
					variant := (m + n + k/4) % 8
					newArm8Case(r, m, n, k, variant).run(t, s, fmt.Sprintf("variant %d", variant))
					cases++
				}
			}
		}
		t.Logf("%d cases", cases)
	})
}

// TestGemm8ARM64Extremes drives the kernels to the ends of every range:
// activations all 0 or 255 against weights ±127 and -128 (the SMULL
// products' extreme, 128·128), zero points 0, 128 and 255, sums and
// scales that saturate both ways, exact .5 ties of the rounding (scale
// 0.5 and 0.25 on integer sums, also through the residual), zero points
// far outside a byte, ReLU floors at 0, ZeroOut and 255, and Inf/NaN
// scales (NaN converts to 0 on arm64, the generic code's behaviour here).
func TestGemm8ARM64Extremes(t *testing.T) {
	forEachGemm8ARM64(t, func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(3, 255))
		ks := []int{4, 20, 1152, 4608}
		if testing.Short() {
			ks = ks[:3] // 1152 already sums 255·128 products far past int16
		}
		for _, k := range ks {
			m, n := s.gemm8.mr+1, s.gemm8.nr+3
			for ai, aFill := range []int{0, 255, -1} { // -1: random
				for wi, wFill := range []int{127, -127, -128, 0, -1} {
					for _, za := range []int32{0, 128, 255} {
						for si, sc := range []float32{1e-9, 0.5, 0.25, 1, 3e5, float32(math.Inf(1)), float32(math.NaN())} {
							c := newArm8Case(r, m, n, k, (ai+wi+si)%8)
							if aFill >= 0 {
								for i := range c.a {
									c.a[i] = uint8(aFill)
								}
							}
							if wFill != -1 {
								for i := range c.w {
									c.w[i] = int8(wFill)
								}
							}
							c.rq.ZeroA = za
							for j := range c.rq.Scale {
								c.rq.Scale[j] = sc
							}
							if si == 2 && c.rq.Res != nil {
								c.rq.ResScale = 0.5
							}
							// Zero points far out (the clamped path) and at
							// both ends of the unclamped range.
							switch (ai + wi + si + int(za)) % 9 {
							case 1:
								c.rq.ZeroOut, c.rq.Lo = 1<<30, 0
							case 2:
								c.rq.ZeroOut, c.rq.Lo = -1<<30, 3
							case 3:
								c.rq.ZeroOut, c.rq.Lo = 65536+200, 255
							case 4:
								c.rq.ZeroOut, c.rq.Lo = -65536-3, 0
							case 5:
								c.rq.ZeroOut = 65535
							case 6:
								c.rq.ZeroOut = 65536
							case 7:
								c.rq.ZeroOut = -65280
							case 8:
								c.rq.ZeroOut = -65281
							}
							c.run(t, s, fmt.Sprintf("a=%d w=%d scale=%g", aFill, wFill, sc))
						}
					}
				}
			}
		}
	})
}

// TestGemm8ARM64Ties checks the rounding of exact halves on both sides
// of zero and at every ZeroOut parity: sums of one product, scale 0.5.
func TestGemm8ARM64Ties(t *testing.T) {
	forEachGemm8ARM64(t, func(t *testing.T, s *Set) {
		t.Parallel()
		const m, n, k = 7, 16, 4
		c := &arm8Case{m: m, n: n, k: k, lda: k, ldc: n}
		c.a = make([]uint8, m*k)
		c.w = make([]int8, k*n)
		for i := range m {
			c.a[i*k] = uint8(100 + i) // one non-zero activation per row
		}
		for j := range n {
			c.w[j] = int8(j - 8) // one non-zero weight per column, both signs
		}
		c.rq = Requant{ZeroA: 100, Scale: slices.Repeat([]float32{0.5}, n)}
		for zo := int32(0); zo < 4; zo++ {
			c.rq.ZeroOut, c.rq.Lo = 120+zo, 0
			c.run(t, s, "ties")
			got := make([]uint8, m*n)
			pb := s.PackB8(c.w, k, n)
			GemmU8(m, c.a, k, &pb, got, n, &c.rq, 0, pb.Panels())
			// Row 1, column 9: acc = 1*1, t = 0.5 rounds to 0; column 11:
			// acc = 3, t = 1.5 rounds to 2; row 1 column 5: -1.5 to -2.
			if got[n+9] != uint8(120+zo) || got[n+11] != uint8(122+zo) || got[n+5] != uint8(118+zo) {
				t.Fatalf("ZeroOut %d: ties rounded to %d %d %d", 120+zo, got[n+9], got[n+11], got[n+5])
			}
		}
	})
}

// TestGemm8ARM64Allocs checks that GemmU8 allocates nothing on any path,
// with full and narrow panels, bias and residual.
func TestGemm8ARM64Allocs(t *testing.T) {
	// Not in parallel: AllocsPerRun counts the allocations of every goroutine.
	forEachGemm8ARM64(t, func(t *testing.T, s *Set) {
		r := rand.New(rand.NewPCG(1, 2))
		c := newArm8Case(r, 2*s.gemm8.mr+1, s.gemm8.nr+5, 64, 3)
		pb := s.PackB8(c.w, c.k, c.n)
		out := make([]uint8, (c.m-1)*c.ldc+c.n)
		if got := testing.AllocsPerRun(20, func() {
			GemmU8(c.m, c.a, c.lda, &pb, out, c.ldc, &c.rq, 0, pb.Panels())
		}); got != 0 {
			t.Errorf("%v allocations per GemmU8", got)
		}
	})
}

// TestGemm8ARM64RejectsBadTiles checks the wrapper's own guards, which
// keep the assembly inside its buffers whatever the caller passes.
func TestGemm8ARM64RejectsBadTiles(t *testing.T) {
	b := make([]int8, 16*16)
	cs := make([]int32, 16)
	ok := func() (int, int, int, []uint8, int, []int8, []int32, []uint8, int, *Requant) {
		return 2, 16, 16, make([]uint8, 32), 16, b, cs, make([]uint8, 32), 16, &Requant{Scale: make([]float32, 16)}
	}
	for _, bad := range []func(m, n, k int, a []uint8, lda int, b []int8, cs []int32, c []uint8, ldc int, rq *Requant){
		func(m, n, k int, a []uint8, lda int, b []int8, cs []int32, c []uint8, ldc int, rq *Requant) {
			gemm8RowsNEON(m, n, k, a[:31], lda, b, cs, c, ldc, *rq) // a too short
		},
		func(m, n, k int, a []uint8, lda int, b []int8, cs []int32, c []uint8, ldc int, rq *Requant) {
			gemm8RowsNEON(m, n, k, a, lda, b, cs, c[:31], ldc, *rq) // c too short
		},
		func(m, n, k int, a []uint8, lda int, b []int8, cs []int32, c []uint8, ldc int, rq *Requant) {
			gemm8RowsNEON(m, n, k, a, lda, b[:255], cs, c, ldc, *rq) // panel too short
		},
		func(m, n, k int, a []uint8, lda int, b []int8, cs []int32, c []uint8, ldc int, rq *Requant) {
			gemm8RowsNEON(m, n, 6, a, lda, b, cs, c, ldc, *rq) // K not a multiple of 4
		},
		func(m, n, k int, a []uint8, lda int, b []int8, cs []int32, c []uint8, ldc int, rq *Requant) {
			rq.Res, rq.LdRes = make([]uint8, 64), -16 // negative residual stride
			gemm8RowsNEON(m, n, k, a, lda, b, cs, c, ldc, *rq)
		},
		func(m, n, k int, a []uint8, lda int, b []int8, cs []int32, c []uint8, ldc int, rq *Requant) {
			rq.Lo = 256
			gemm8RowsNEON(m, n, k, a, lda, b, cs, c, ldc, *rq)
		},
		func(m, n, k int, a []uint8, lda int, b []int8, cs []int32, c []uint8, ldc int, rq *Requant) {
			gemm8RowsNEON(m, 17, k, a, lda, b, cs, c, ldc, *rq) // wider than a panel
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("a bad tile was accepted")
				}
			}()
			bad(ok())
		}()
	}
	m, n, k, a, lda, b2, cs2, c, ldc, rq := ok()
	gemm8RowsNEON(m, n, k, a, lda, b2, cs2, c, ldc, *rq) // and the good one is not rejected
}

// neon8TileGo is the Go twin of the gemmU8_Rx16_NEON[DOT] kernels: the
// contract stated above them, step by step, on the kernel's own inputs
// (flipped activations, offsets in the family's layout, the clamp flag,
// FCVTNS and SQADD saturating at the int32 range).
func neon8TileGo(dot bool, rows, tiles, k int, a []uint8, lda int, b []int8, off []int32, scale []float32,
	res []uint8, ldres int, resZero int32, resScale float32, zeroOut, lo int32, clamp bool, c []uint8, ldc int) {
	sat32 := func(v int64) int32 { return int32(min(max(v, math.MinInt32), math.MaxInt32)) }
	for r := range rows * tiles {
		for j := range neon8NR {
			o := off[j]
			if !dot {
				o = off[2*j] + off[2*j+1] // the two lanes of column j
			}
			acc := o
			for kk := range k {
				acc += (int32(a[r*lda+kk]) - 128) * int32(b[(kk/4*neon8NR+j)*4+kk%4])
			}
			t := float32(float32(acc) * scale[j])
			if res != nil {
				t = float32(t + float32(float32(int32(res[r*ldres+j])-resZero)*resScale))
			}
			if clamp {
				t = min(max(t, -65536), 65536)
			}
			var q int32 // FCVTNS: ties to even, saturating, NaN -> 0
			if t == t {
				q = sat32(int64(max(min(math.RoundToEven(float64(t)), 1<<40), -1<<40)))
			}
			q = sat32(int64(q) + int64(zeroOut))
			c[r*ldc+j] = uint8(max(min(max(q, 0), 255), lo))
		}
	}
}

// TestNEON8KernelsTwin calls every int8 kernel of this CPU directly, with
// inputs the wrapper never makes (raw int32 offsets, the clamp on and off
// for any zero point, several tiles per call, K = 0), against its Go twin.
func TestNEON8KernelsTwin(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	type family struct {
		dot bool
		mr  int
	}
	var fams []family
	for _, impl := range wantGemm8ARM64() {
		fams = append(fams, family{impl == gemm8NEONDOT, impl.mr})
	}
	if len(fams) == 0 {
		t.Fatal("no arm64 int8 kernel on an arm64 build")
	}
	for _, f := range fams {
		for rows := 1; rows <= f.mr; rows++ {
			for _, tiles := range []int{1, 3} {
				for _, k := range []int{0, 4, 12, 16, 20, 68} {
					for variant := range 4 {
						m := rows * tiles
						lda, ldc, ldres := nextPrime(k+3), nextPrime(neon8NR+variant), nextPrime(neon8NR+5)
						a := make([]uint8, (m-1)*lda+k)
						for i := range a {
							a[i] = uint8(r.IntN(256))
						}
						b := make([]int8, k*neon8NR)
						for i := range b {
							b[i] = int8(r.IntN(256) - 128)
						}
						off := make([]int32, 2*neon8NR)
						scale := make([]float32, neon8NR)
						for j := range off {
							off[j] = int32(r.Uint32())
						}
						for j := range scale {
							scale[j] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(12)-10)))
						}
						var res []uint8
						if variant&1 != 0 {
							res = make([]uint8, (m-1)*ldres+neon8NR)
							for i := range res {
								res[i] = uint8(r.IntN(256))
							}
						}
						clamp := variant&2 != 0
						zeroOut := int32(r.IntN(2*neon8ZeroOutBound+1) - neon8ZeroOutBound)
						lo := int32(r.IntN(256))
						resZero, resScale := int32(r.IntN(256)), float32(r.Float64()*4)
						want := make([]uint8, (m-1)*ldc+neon8NR)
						neon8TileGo(f.dot, rows, tiles, k, a, lda, b, off, scale, res, ldres, resZero, resScale, zeroOut, lo, clamp, want, ldc)

						buf := make([]uint8, 32+len(want)+32)
						for i := range buf {
							buf[i] = canary8
						}
						got := buf[32 : 32+len(want)]
						p := neonGemm8{
							a: unsafe.SliceData(a), lda: uintptr(lda), b: unsafe.SliceData(b),
							c: unsafe.SliceData(got), ldc: uintptr(ldc), k: uintptr(k), tiles: uintptr(tiles),
							off: &off[0], scale: &scale[0], res: unsafe.SliceData(res), ldres: uintptr(ldres),
							resZero: resZero, resScale: resScale, zeroOut: zeroOut, lo: lo,
						}
						if clamp {
							p.clamp = 1
						}
						if len(a) == 0 {
							p.a = nil // k = 0, one row: nothing is read
						}
						neon8Kernel(f.dot, rows, &p)
						for i := range m {
							for j := range neon8NR {
								if got[i*ldc+j] != want[i*ldc+j] {
									t.Fatalf("dot=%v rows=%d tiles=%d k=%d variant %d: c[%d,%d]=%d, twin %d",
										f.dot, rows, tiles, k, variant, i, j, got[i*ldc+j], want[i*ldc+j])
								}
							}
							for j := neon8NR; j < ldc && i < m-1; j++ {
								if got[i*ldc+j] != canary8 {
									t.Fatalf("dot=%v rows=%d: wrote c[%d,%d] in the row gap", f.dot, rows, i, j)
								}
							}
						}
						for i := range 32 {
							if buf[i] != canary8 || buf[len(buf)-1-i] != canary8 {
								t.Fatalf("dot=%v rows=%d tiles=%d k=%d: wrote outside the output", f.dot, rows, tiles, k)
							}
						}
					}
				}
			}
		}
	}
}
