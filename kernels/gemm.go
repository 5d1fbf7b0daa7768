// Package kernels holds edge-resnet's compute primitives on float32 NHWC
// data: GEMM with a fused epilogue on pre-packed weights, convolution
// through GEMM, depthwise convolution, pooling, and the small element-wise
// ops. Every primitive has a portable Go implementation that is the
// reference for optimized ones.
//
// Kernels never allocate: callers pass all buffers, usually views of a
// session arena. Slice lengths are checked once at the API boundary.
package kernels

import "fmt"

// Epilogue is what happens to each GEMM result before it is stored:
// c = acc + Bias[n] (+ Res[m*LdRes+n]), then max(c, 0) if Relu, then
// clamped to [Lo, Hi] if Clamp (by Clamp: the Clip op, NaN passing). The
// kernels do all but the clamp; Gemm clamps each row block of a panel
// right after the kernel stored it, while it is in L1.
type Epilogue struct {
	Bias   []float32 // len >= n1, or nil
	Res    []float32 // residual rows, or nil
	LdRes  int       // row stride of Res
	Relu   bool
	Clamp  bool
	Lo, Hi float32 // the bounds of Clamp
}

// Epilogue flags as the assembly kernels take them.
const (
	gemmFlagBias = 1
	gemmFlagRes  = 2
	gemmFlagRelu = 4
)

// PackedB is a K x N weight matrix rearranged for the GEMM microkernel:
// panels of NR columns, each panel K rows of NR contiguous values
// (k-major), the last panel zero-filled past N. Packing happens once per
// model, so the kernel's inner loop reads weights strictly sequentially.
type PackedB struct {
	K, N, NR int
	Data     []float32  // len Panels()*K*NR
	impl     *gemmImpl  // the kernel it was packed for, which runs it
	clamp    *clampImpl // the clamp kernel of the same Set, for Epilogue.Clamp
}

// Panels is the number of NR-wide column panels.
func (p *PackedB) Panels() int { return (p.N + p.NR - 1) / p.NR }

// PackB packs a row-major K x N matrix b (b[k*N+n]) for the Set's GEMM
// kernel, or its narrow variant when N fits one of the variant's panels
// (see gemmImpl.narrow), which Gemm then runs it with. NR and MR are that
// kernel's: callers take them from the PackedB, not the Set.
func (s *Set) PackB(b []float32, k, n int) PackedB {
	p := packB(b, k, n, s.gemm.forN(n))
	p.clamp = s.clamp
	return p
}

// PackedLen is the length of the Data of PackB(b, k, n): memory estimates
// take it without packing.
func (s *Set) PackedLen(k, n int) int {
	nr := s.gemm.forN(n).nr
	return (n + nr - 1) / nr * nr * k
}

// forN is the kernel PackB uses for N columns: the narrow variant when it
// takes them in one panel, where the wide one would multiply zeros.
func (g *gemmImpl) forN(n int) *gemmImpl {
	if g.narrow != nil && n <= g.narrow.nr {
		return g.narrow
	}
	return g
}

// withNarrowGemm sets g's narrow variant and returns g.
func withNarrowGemm(g, narrow *gemmImpl) *gemmImpl {
	g.narrow = narrow
	return g
}

// MR is the row tile of the matrix's kernel: callers that split work
// across threads split M at multiples of it.
func (p *PackedB) MR() int { return p.impl.mr }

// Kernel names the GEMM kernel the matrix was packed for.
func (p *PackedB) Kernel() string { return p.impl.name }

func packB(b []float32, k, n int, impl *gemmImpl) PackedB {
	p := newPacked(k, n, impl)
	p.Repack(b)
	return p
}

// newPacked returns a zero K x N matrix packed for impl.
func newPacked(k, n int, impl *gemmImpl) PackedB {
	p := PackedB{K: k, N: n, NR: impl.nr, impl: impl}
	p.Data = make([]float32, p.Panels()*k*p.NR)
	return p
}

// Repack packs the row-major K x N matrix b (b[k*N+n]) into p in place of
// its values, for weights that change (training) without allocating.
func (p *PackedB) Repack(b []float32) {
	k, n, nr := p.K, p.N, p.NR
	if len(b) < k*n {
		panic(fmt.Sprintf("kernels.PackB: %d values for %dx%d", len(b), k, n))
	}
	for j := 0; j < p.Panels(); j++ {
		panel := p.Data[j*k*nr : (j+1)*k*nr]
		n0 := j * nr
		w := min(nr, n-n0)
		for kk := 0; kk < k; kk++ {
			copy(panel[kk*nr:kk*nr+w], b[kk*n+n0:kk*n+n0+w])
		}
	}
}

// gemmImpl is one registered GEMM implementation.
type gemmImpl struct {
	name string
	mr   int // rows per microkernel tile
	nr   int // columns per panel
	// tile computes a full or partial MR x NR tile: rows m (1..mr) of A
	// starting at a (row stride lda), over K, with panel b (K*NR values),
	// storing cols n (1..nr) into c (row stride ldc) through the epilogue,
	// whose Bias/Res are already offset to the tile.
	tile func(m, n, k int, a []float32, lda int, b []float32, c []float32, ldc int, ep Epilogue)
	// rows, if set, is tile for any m >= 1: it walks the MR-row tiles of
	// one panel itself (the last one partial), so that one call to
	// assembly does a whole row block and the call cost is amortized.
	rows func(m, n, k int, a []float32, lda int, b []float32, c []float32, ldc int, ep Epilogue)
	// blockBytes is the A row block kept in L2 while panels stream by
	// (0: gemmBlockBytes).
	blockBytes int
	// narrow, if set, is a kernel with narrower panels that PackB picks
	// for matrices of at most narrow.nr columns (N = 16 layers would fill
	// only half of a 32-wide panel).
	narrow *gemmImpl
}

// GemmName is the name of the Set's GEMM kernel, for reports.
func (s *Set) GemmName() string { return s.gemm.name }

// GemmMR is the row block of the Set's GEMM kernel for N columns (the
// narrow variant's for narrow N, as PackB picks); callers that split work
// across threads split M at multiples of it.
func (s *Set) GemmMR(n int) int { return s.gemm.forN(n).mr }

// Gemm computes rows [0, m) and column panels [p0, p1) of
// C = A x B, through the epilogue. A is m x K with row stride lda, C has row
// stride ldc, ep.Res (if any) row stride ep.LdRes. It runs on the kernel b
// was packed for.
func Gemm(m int, a []float32, lda int, b *PackedB, c []float32, ldc int, ep *Epilogue, p0, p1 int) {
	if m <= 0 || p0 >= p1 {
		return
	}
	k, n, nr := b.K, b.N, b.NR
	gemm := b.impl
	if gemm == nil || nr != gemm.nr || p0 < 0 || p1 > b.Panels() || lda < k || ldc < n ||
		len(a) < (m-1)*lda+k || len(c) < (m-1)*ldc+n ||
		(ep.Bias != nil && len(ep.Bias) < n) || (ep.Res != nil && len(ep.Res) < (m-1)*ep.LdRes+n) {
		panic(fmt.Sprintf("kernels.Gemm: bad arguments m=%d k=%d n=%d nr=%d/%d lda=%d ldc=%d len(a)=%d len(c)=%d", m, k, n, nr, b.NR, lda, ldc, len(a), len(c)))
	}
	mr := gemm.mr
	// Block rows so that an A block (mc x K) stays in L2 while every panel
	// streams past it; a panel (K x NR) stays in L1/L2 across the block.
	mc := gemm.blockRows(k)
	var tep Epilogue
	tep.LdRes, tep.Relu = ep.LdRes, ep.Relu
	ck := b.clamp
	for i0 := 0; i0 < m; i0 += mc {
		i1 := min(m, i0+mc)
		for j := p0; j < p1; j++ {
			n0 := j * nr
			nw := min(nr, n-n0)
			panel := b.Data[j*k*nr : (j+1)*k*nr]
			if ep.Bias != nil {
				tep.Bias = ep.Bias[n0:]
			}
			if gemm.rows != nil {
				if ep.Res != nil {
					tep.Res = ep.Res[i0*ep.LdRes+n0:]
				}
				gemm.rows(i1-i0, nw, k, a[i0*lda:], lda, panel, c[i0*ldc+n0:], ldc, tep)
				ep.clamp(ck, c[i0*ldc+n0:], i1-i0, nw, ldc)
				continue
			}
			for i := i0; i < i1; i += mr {
				mw := min(mr, i1-i)
				if ep.Res != nil {
					tep.Res = ep.Res[i*ep.LdRes+n0:]
				}
				gemm.tile(mw, nw, k, a[i*lda:], lda, panel, c[i*ldc+n0:], ldc, tep)
				ep.clamp(ck, c[i*ldc+n0:], mw, nw, ldc)
			}
		}
	}
}

// clamp applies the epilogue's Clamp, if set, to rows x n values of c
// (row stride ldc), whole vectors by k (nil: Go).
func (ep *Epilogue) clamp(k *clampImpl, c []float32, rows, n, ldc int) {
	if ep.Clamp {
		clampRows(k, c, c, rows, n, ldc, ep.Lo, ep.Hi)
	}
}

// blockRows is the row block for depth k: as many MR-row tiles as fit the
// implementation's A block, at least one.
func (g *gemmImpl) blockRows(k int) int {
	bytes := g.blockBytes
	if bytes == 0 {
		bytes = gemmBlockBytes
	}
	return max(g.mr, (bytes/(4*max(k, 1)))/g.mr*g.mr)
}

// gemmBlockBytes is the A block kept hot in L2 while panels stream by.
const gemmBlockBytes = 128 << 10

// Bytes is the memory the packed weights hold.
func (p *PackedB) Bytes() int64 { return 4 * int64(len(p.Data)) }

// ViewB returns the row-major K x N matrix b as a PackedB without copying
// it, when N is exactly one panel of the kernel PackB would take for it:
// b's rows are then the panel's rows. ok is false otherwise (PackB it).
func (s *Set) ViewB(b []float32, k, n int) (p PackedB, ok bool) {
	impl := s.gemm.forN(n)
	if impl.nr != n || k < 0 || len(b) < k*n {
		return PackedB{}, false
	}
	return PackedB{K: k, N: n, NR: n, Data: b[: k*n : k*n], impl: impl, clamp: s.clamp}, true
}
