package kernels

import (
	"fmt"
	"math"
)

// The int8 GEMM: uint8 activations (per-tensor zero point) times int8
// weights (symmetric, per output channel), int32 accumulation, and
// requantization to uint8 through float32 arithmetic that every
// implementation performs in the same order, so that int8 models give
// bit-identical outputs on every kernel path.
//
// For each row i < m and column j < n:
//
//	acc = Σ_k (a[i*lda+k] - ZeroA) * w[k][j] + Bias[j]       exact int32
//	t   = float32(acc) * Scale[j]                              rounded to float32
//	t   = t + float32(int32(Res[i*LdRes+j]) - ResZero) * ResScale   if Res != nil (product rounded, then sum rounded)
//	t   = min(max(t, -65536), 65536)
//	q   = roundHalfEven(t) + ZeroOut, clamped to [Lo, 255]
//	c[i*ldc+j] = uint8(q)
//
// No fused multiply-add may be used in the float32 steps (each operation
// rounds on its own), and float32(acc) rounds to nearest-even. The clamp
// to ±65536 (beyond which every output saturates anyway) keeps the
// conversion to an integer in range, where CVTPS2DQ (default MXCSR) and
// FCVTNS both round half to even. ReLU is Lo = ZeroOut (real zero).
//
// K must be a multiple of KMult (4): the dot-product instructions (VNNI
// VPDPBUSD, Arm SDOT) consume four bytes of a row at a time. Callers pad
// im2col rows with zero weights; activations of a 1x1 convolution whose
// channel count is not a multiple of 4 go through im2col.
const KMult = 4

// Requant is the per-column requantization of GemmU8 (see above).
type Requant struct {
	ZeroA   int32     // zero point of the activations a
	Bias    []int32   // len >= N, or nil: bias in accumulator units (real bias / (scaleA*scaleW[j]))
	Scale   []float32 // len >= N: scaleA*scaleW[j]/scaleOut
	ZeroOut int32     // zero point of the output
	Lo      int32     // lower clamp: 0, or ZeroOut for a fused ReLU
	// Residual, added after scaling: uint8 values with their own zero
	// point and scale relative to the output's (resScale/scaleOut).
	Res      []uint8
	LdRes    int
	ResZero  int32
	ResScale float32
}

// PackedB8 is a K x N int8 weight matrix packed for a Set's int8
// kernel: panels of NR columns; within a panel, K in groups of KG bytes
// (the kernel's dot-product depth), group by group and, inside a group,
// column by column:
//
//	Data[panel*K*NR + (g*NR + j)*KG + r] = w[g*KG+r][panel*NR+j]
//
// zero-filled past N. ColSum[j] = Σ_k w[k][j] lets a kernel apply the
// activation zero point once per column: Σ (a-z)·w = Σ a·w - z·ColSum.
//
// The kernel is chosen per matrix at pack time: the Set's, or its
// narrow variant when it has one and every weight is in [NarrowLo,
// NarrowHi] (see gemm8Impl.narrow); NR and KG are that kernel's.
type PackedB8 struct {
	K, N, NR, KG int
	Data         []int8
	ColSum       []int32 // len Panels()*NR, zero past N
	impl         *gemm8Impl
}

// The weight range of narrow int8 kernels: with uint8 activations a pair
// of products stays within int16 (255·64·2 = 32640 <= 32767), so
// VPMADDUBSW's saturating pair sum is exact.
const (
	NarrowLo = -64
	NarrowHi = 63
)

// Kernel names the int8 kernel the matrix was packed for.
func (p *PackedB8) Kernel() string {
	if p.impl == nil {
		return ""
	}
	return p.impl.name
}

// MR is the row tile of the matrix's kernel, for splitting work.
func (p *PackedB8) MR() int {
	return p.impl.mr
}

// Panels is the number of NR-wide column panels.
func (p *PackedB8) Panels() int { return (p.N + p.NR - 1) / p.NR }

// gemm8Impl is one int8 GEMM implementation.
type gemm8Impl struct {
	name   string
	mr, nr int
	kg     int // K group of the packed layout
	// rows computes rows [0, m) (any m >= 1) of one column panel (n valid
	// columns, 1 <= n <= nr) through the requantization, with a, b, c, Res
	// and the per-column slices of rq already offset to the panel. rq is
	// passed by value so that it does not escape through the func value:
	// GemmU8 allocates nothing.
	rows func(m, n, k int, a []uint8, lda int, b []int8, colSum []int32, c []uint8, ldc int, rq Requant)
	// narrow, if set, is a faster kernel that is exact only for weights in
	// [NarrowLo, NarrowHi]; PackB8 picks it for matrices within that range
	// (7-bit quantized weights), so results stay bit-identical.
	narrow *gemm8Impl
	// winograd8, if set, reports the 3x3 stride-1 layers where Winograd8
	// beats this kernel (narrow: the layer's weights would run the narrow
	// variant); nil: none (see Winograd8Preferred).
	winograd8 func(g *ConvGeom, narrow bool) bool
	// im2colBytes, if set, is the size of Conv8's blocks of im2col rows
	// (64 KiB if 0): each block is one GemmU8 call per panel.
	im2colBytes int
}

// Winograd8Preferred is the automatic choice of the planner for a 3x3
// stride-1 int8 layer: whether the Set's int8 GEMM prefers that the
// exact Winograd8 run it instead. The figures come from the layer
// benchmarks and whole-model profiles of ResNet-18/50 int8 at 224 in
// docs/INT8.md ("In the plan"):
//   - avx2, avx512 (whose GemmU8 is the exact int16 AVX2 kernel) and
//     generic: Winograd8 everywhere, 1.5-5x faster than their GemmU8 on
//     every ResNet layer, 7x7x512 included. With 7-bit weights (narrow:
//     GemmU8 runs VPMADDUBSW) Winograd8 still wins up to 14x14x256
//     (0.76-0.89 ms against 1.13-1.37 ms per layer in the ResNet-18/50
//     profiles, docs/INT8.md) but loses at 7x7x512 (1.36-1.45 against
//     1.17-1.39 ms), where its 8 MiB of U meet only 16 tiles;
//   - avx512vnni: VPDPBUSD does twice the multiplies of Winograd's
//     VPDPWSSD per instruction, so Winograd8's 2.25x fewer multiplies win
//     only while U (32 bytes per input-output channel pair against 9 for
//     the int8 weights) stays in cache and the channels fill the 32
//     lanes. In the
//     models 56x56x64 (128 KiB of U) gains about 10%; 28x28x128 (512 KiB,
//     1.1x faster warm in the layer benchmark) is 10-25% slower, the
//     deeper layers up to 1.9x;
//   - avxvnni and the arm64 paths: off. AVX-VNNI's GemmU8 has the same 2x
//     multiplies per instruction against an AVX2 Winograd8 and ties or
//     wins on every ResNet layer (forcing Winograd8 costs ResNet-18 20%
//     of its 3x3 time); arm64 has only the Go Winograd8, against NEON
//     GemmU8 kernels.
//   - amx: off. TDPBUSD makes the GemmU8 6-12x faster than Winograd8 on
//     56x56x64 (bench/README.md); forcing Winograd8 makes ResNet-18 3.3x
//     slower.
func (s *Set) Winograd8Preferred(g *ConvGeom, narrow bool) bool {
	f := s.gemm8.winograd8
	return f != nil && Winograd8Applies(g) && f(g, narrow)
}

// wino8UnlessNarrowBig is the policy of the int16 AVX2 kernel and of the
// generic one: Winograd8 everywhere, except very large layers against the
// narrow kernel.
func wino8UnlessNarrowBig(g *ConvGeom, narrow bool) bool {
	return !narrow || 32*g.C*g.Cout <= wino8NarrowMaxU
}

// wino8VNNI is the policy of the AVX512-VNNI kernel: small layers with the
// channels to fill 32 lanes.
func wino8VNNI(g *ConvGeom, _ bool) bool {
	return g.C >= 32 && g.Cout >= 32 && 32*g.C*g.Cout <= wino8VNNIMaxU
}

// wino8VNNIMaxU is the most bytes of Winograd8 weights (U) for which it
// beats the VNNI GemmU8 in a whole model: 56x56x64's 128 KiB.
const wino8VNNIMaxU = 128 << 10

// wino8NarrowMaxU is the most bytes of Winograd8 weights for which it
// beats the narrow AVX2 GemmU8: 14x14x256's 2 MiB.
const wino8NarrowMaxU = 2 << 20

// Gemm8Name is the Set's int8 GEMM kernel.
func (s *Set) Gemm8Name() string { return s.gemm8.name }

// Gemm8NarrowName is the Set's int8 kernel's variant for weights in
// [NarrowLo, NarrowHi], or "" if it has none.
func (s *Set) Gemm8NarrowName() string {
	if s.gemm8.narrow == nil {
		return ""
	}
	return s.gemm8.narrow.name
}

// Gemm8UsesNarrow reports whether PackB8 would run the weights w with the
// Set's narrow variant.
func (s *Set) Gemm8UsesNarrow(w []int8) bool { return s.gemm8.narrow != nil && inNarrowRange(w) }

// Gemm8MR is the Set's int8 kernel's row tile.
func (s *Set) Gemm8MR() int { return s.gemm8.mr }

// PackB8 packs a row-major K x N int8 matrix w (w[k*N+n]) for the selected
// int8 kernel, or its narrow variant if every weight allows it. K must be
// a multiple of KMult.
func (s *Set) PackB8(w []int8, k, n int) PackedB8 {
	impl := s.gemm8
	if impl.narrow != nil && len(w) >= k*n && inNarrowRange(w[:k*n]) {
		impl = impl.narrow
	}
	return packB8(w, k, n, impl)
}

// inNarrowRange reports whether every weight is in [NarrowLo, NarrowHi].
func inNarrowRange(w []int8) bool {
	for _, v := range w {
		if v < NarrowLo || v > NarrowHi {
			return false
		}
	}
	return true
}

func packB8(w []int8, k, n int, impl *gemm8Impl) PackedB8 {
	nr, kg := impl.nr, impl.kg
	if k%KMult != 0 || k%kg != 0 || len(w) < k*n {
		panic(fmt.Sprintf("kernels.PackB8: %d values for %dx%d (K must be a multiple of %d)", len(w), k, n, KMult))
	}
	p := PackedB8{K: k, N: n, NR: nr, KG: kg, impl: impl}
	p.Data = make([]int8, p.Panels()*k*nr)
	p.ColSum = make([]int32, p.Panels()*nr)
	for j := 0; j < n; j++ {
		panel, jj := j/nr, j%nr
		base := p.Data[panel*k*nr:]
		for kk := 0; kk < k; kk++ {
			v := w[kk*n+j]
			g, r := kk/kg, kk%kg
			base[(g*nr+jj)*kg+r] = v
			p.ColSum[j] += int32(v)
		}
	}
	return p
}

// GemmU8 computes rows [0, m) and column panels [p0, p1) of the int8 GEMM
// defined above. b must have been packed by PackB8 under the same kernel
// selection; it runs with the kernel chosen at pack time.
func GemmU8(m int, a []uint8, lda int, b *PackedB8, c []uint8, ldc int, rq *Requant, p0, p1 int) {
	if m <= 0 || p0 >= p1 {
		return
	}
	k, n, nr := b.K, b.N, b.NR
	impl := b.impl
	if impl == nil || nr != impl.nr || b.KG != impl.kg || p0 < 0 || p1 > b.Panels() || lda < k || ldc < n ||
		len(a) < (m-1)*lda+k || len(c) < (m-1)*ldc+n || len(rq.Scale) < n ||
		(rq.Bias != nil && len(rq.Bias) < n) || (rq.Res != nil && len(rq.Res) < (m-1)*rq.LdRes+n) ||
		rq.Lo < 0 || rq.Lo > 255 {
		panic(fmt.Sprintf("kernels.GemmU8: bad arguments m=%d k=%d n=%d nr=%d kernel %q lda=%d ldc=%d len(a)=%d len(c)=%d",
			m, k, n, nr, b.Kernel(), lda, ldc, len(a), len(c)))
	}
	sub := *rq
	for j := p0; j < p1; j++ {
		n0 := j * nr
		nw := min(nr, n-n0)
		sub.Scale = rq.Scale[n0:]
		if rq.Bias != nil {
			sub.Bias = rq.Bias[n0:]
		}
		if rq.Res != nil {
			sub.Res = rq.Res[n0:]
		}
		impl.rows(m, nw, k, a, lda, b.Data[j*k*nr:(j+1)*k*nr], b.ColSum[n0:n0+nr], c[n0:], ldc, sub)
	}
}

const (
	generic8NR = 8
	generic8KG = 4
)

var gemm8Generic = &gemm8Impl{name: "generic", mr: 4, nr: generic8NR, kg: generic8KG, rows: gemm8RowsGeneric, winograd8: wino8UnlessNarrowBig}

// gemm8RowsGeneric is the reference: plain loops over the packed layout.
func gemm8RowsGeneric(m, n, k int, a []uint8, lda int, b []int8, colSum []int32, c []uint8, ldc int, rq Requant) {
	const nr, kg = generic8NR, generic8KG
	var acc [nr]int32
	for i := 0; i < m; i++ {
		row := a[i*lda : i*lda+k]
		accs := acc[:n]
		clear(accs)
		for g := 0; g < k/kg; g++ {
			grp := b[g*nr*kg : (g+1)*nr*kg]
			av := row[g*kg : (g+1)*kg]
			for j := range accs {
				wv := grp[j*kg : (j+1)*kg]
				var s int32
				for r, x := range av {
					s += int32(x) * int32(wv[r])
				}
				accs[j] += s
			}
		}
		out := c[i*ldc : i*ldc+n]
		for j := range out {
			v := accs[j] - rq.ZeroA*colSum[j]
			if rq.Bias != nil {
				v += rq.Bias[j]
			}
			var r uint8
			hasRes := rq.Res != nil
			if hasRes {
				r = rq.Res[i*rq.LdRes+j]
			}
			out[j] = Requantize(v, rq.Scale[j], hasRes, r, rq.ResZero, rq.ResScale, rq.ZeroOut, rq.Lo)
		}
	}
}

// Requantize is the scalar definition of the output step of GemmU8 for one
// value: every int8 kernel must agree with it bit for bit.
func Requantize(acc int32, scale float32, hasRes bool, res uint8, resZero int32, resScale float32, zeroOut, lo int32) uint8 {
	// The explicit float32 conversions round each product on its own: Go
	// may otherwise fuse a multiply and an add (it does on arm64).
	t := float32(float32(acc) * scale)
	if hasRes {
		p := float32(float32(int32(res)-resZero) * resScale)
		t = float32(t + p)
	}
	t = min(max(t, -65536), 65536)
	q := int64(math.RoundToEven(float64(t))) + int64(zeroOut) // exact: t is a float32
	return uint8(min(max(q, int64(lo)), 255))
}

// Bytes is the memory the packed weights and column sums hold.
func (p *PackedB8) Bytes() int64 { return int64(len(p.Data)) + 4*int64(len(p.ColSum)) }
