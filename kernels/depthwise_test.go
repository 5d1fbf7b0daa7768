package kernels

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// TestFMA32 checks the Go fused multiply-add against the exact sum rounded
// once (math/big), on random operands, on products near float32 midpoints
// with tiny addends (where rounding through float64 twice goes wrong), on
// cancellations, subnormals, overflow and non-finite values.
func TestFMA32(t *testing.T) {
	r := rand.New(rand.NewPCG(32, 32))
	exact := func(a, b, c float32) float32 {
		x := new(big.Float).SetPrec(400).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetPrec(400).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetPrec(400).SetFloat64(float64(c)))
		f, _ := x.Float32() // nearest, ties to even
		return f
	}
	check := func(a, b, c float32) {
		t.Helper()
		got := fma32(a, b, c)
		if math.IsInf(float64(a), 0) || math.IsInf(float64(b), 0) || math.IsInf(float64(c), 0) ||
			a != a || b != b || c != c {
			want := float32(float64(a)*float64(b) + float64(c))
			if got != want && !(got != got && want != want) {
				t.Fatalf("fma32(%v, %v, %v) = %v, want %v", a, b, c, got, want)
			}
			return
		}
		if want := exact(a, b, c); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%g, %g, %g) = %g (%#x), want %g (%#x)", a, b, c, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	// The double-rounding case: (1+2^-12)^2 = 1 + 2^-11 + 2^-24 is a
	// float32 midpoint; any tiny addend decides the direction.
	m := float32(1 + 0x1p-12)
	for _, c := range []float32{0x1p-80, -0x1p-80, 0x1p-149, -0x1p-149, 0, float32(math.Copysign(0, -1)), 1, -1} {
		check(m, m, c)
		check(-m, m, c)
		check(m, -m, -c)
	}
	rnd := func() float32 {
		switch r.IntN(6) {
		case 0: // few significant bits: exact products, midpoints
			return float32(r.IntN(1<<13)-1<<12) * float32(math.Ldexp(1, r.IntN(40)-20))
		case 1:
			return math.Float32frombits(r.Uint32()&^(0xff<<23) | uint32(r.IntN(254)+1)<<23)
		case 2: // subnormal
			return math.Float32frombits(r.Uint32() & 0x807fffff)
		default:
			return float32(r.NormFloat64() * math.Ldexp(1, r.IntN(20)-10))
		}
	}
	for i := 0; i < 2_000_000; i++ {
		a, b := rnd(), rnd()
		c := rnd()
		switch i % 4 {
		case 1: // near cancellation
			c = -float32(float64(a)*float64(b)) * float32(1+(r.Float64()-0.5)*0x1p-20)
		case 2: // a midpoint of the product's float32 grid, plus a tiny addend
			p := float64(a) * float64(b)
			if p != 0 && !math.IsInf(p, 0) {
				_, e := math.Frexp(p)
				c = float32(math.Ldexp(r.Float64()-0.5, e-24-r.IntN(40)))
			}
		}
		check(a, b, c)
	}
	big := float32(math.MaxFloat32)
	check(big, 2, 0)
	check(big, 1, big)
	check(big, -1, -big)
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for _, v := range [][3]float32{{inf, 1, 0}, {inf, 0, 1}, {1, 1, inf}, {inf, 1, -inf}, {nan, 1, 1}, {1, 1, nan}} {
		check(v[0], v[1], v[2])
	}
}

// refDepthwise is the definition of DepthwiseConv in float64 (exact sums
// of the float32 products), and, per output, the sum of the magnitudes of
// its terms for the error bound.
func refDepthwise(g *DepthwiseGeom, in, w []float32, ep *DepthwiseEpilogue) (out, mag []float64) {
	c := g.C
	out = make([]float64, g.OH*g.OW*c)
	mag = make([]float64, len(out))
	for oy := 0; oy < g.OH; oy++ {
		for ox := 0; ox < g.OW; ox++ {
			for ch := 0; ch < c; ch++ {
				var s, m float64
				if ep.Bias != nil {
					s, m = float64(ep.Bias[ch]), math.Abs(float64(ep.Bias[ch]))
				}
				for kh := 0; kh < g.KH; kh++ {
					ih := oy*g.StrideH - g.PadTop + kh*g.DilH
					for kw := 0; kw < g.KW; kw++ {
						iw := ox*g.StrideW - g.PadLeft + kw*g.DilW
						if ih < 0 || ih >= g.H || iw < 0 || iw >= g.W {
							continue
						}
						p := float64(w[(kh*g.KW+kw)*c+ch]) * float64(in[(ih*g.W+iw)*c+ch])
						s += p
						m += math.Abs(p)
					}
				}
				i := (oy*g.OW+ox)*c + ch
				if ep.Res != nil {
					s += float64(ep.Res[i])
					m += math.Abs(float64(ep.Res[i]))
				}
				switch ep.Act.Kind {
				case ActReLU:
					s = max(s, 0)
				case ActClip:
					s = min(max(s, float64(ep.Act.Min)), float64(ep.Act.Max))
				}
				out[i], mag[i] = s, m
			}
		}
	}
	return out, mag
}

// dwTol is the error bound of one output against the exact value: each
// of the taps+1 roundings (taps fused multiply-adds, the residual, the
// conversion of the exact value) is at most 2^-24 of a partial sum bounded
// by mag.
func dwTol(taps int, mag float64) float64 { return float64(taps+2)*0x1p-24*mag + 1e-30 }

// depthwiseSets are the available Sets, keeping one per depthwise
// implementation (the VNNI paths share avx2's and avx512's), generic first.
func depthwiseSets() []*Set {
	var out []*Set
	seen := map[*depthwiseImpl]bool{}
	for _, s := range slices.Backward(Sets()) {
		if s.depthwise == nil && s.Name() != levelGeneric {
			continue
		}
		if !seen[s.depthwise] {
			seen[s.depthwise] = true
			out = append(out, s)
		}
	}
	return out
}

// dwEpilogues are the epilogue variants the tests cycle through.
var dwEpilogues = []struct {
	name      string
	bias, res bool
	act       Activation
}{
	{"none", false, false, Activation{}},
	{"bias", true, false, Activation{}},
	{"bias_relu", true, false, ReLU()},
	{"res", false, true, Activation{}},
	{"bias_res_relu6", true, true, ReLU6()},
	{"clip", false, false, Clip(-0.5, 0.25)},
	{"res_relu", false, true, ReLU()},
	{"bias_res_clip", true, true, Clip(-1, 2)},
	{"bias_res", true, true, Activation{}},
	{"clip_point", true, false, Clip(0.5, 0.5)},
}

// dwCase is one DepthwiseConv test: data, the Go reference output and
// the float64 check of it.
type dwCase struct {
	g         DepthwiseGeom
	in, w     []float32
	ep        DepthwiseEpilogue
	inputs    [][]float32 // everything read, to check it is left unchanged
	saved     [][]float32
	want      []float32 // the generic Set's output
	epName    string
	inPlace   bool // the residual is the output buffer
	resCopyOf []float32
}

func (tc *dwCase) String() string {
	g := &tc.g
	return fmt.Sprintf("%dx%dx%d_k%dx%d_s%dx%d_d%dx%d_p%d,%d,%d,%d_%s", g.H, g.W, g.C, g.KH, g.KW, g.StrideH, g.StrideW,
		g.DilH, g.DilW, g.PadTop, g.PadLeft, g.PadBottom, g.PadRight, tc.epName)
}

// newDwCase makes random data for g: the input ends on an inaccessible
// page (unix), so reading past it crashes; weights, bias and residual are
// slices of bigger buffers whose neighbours are NaN, so reading outside
// them poisons an output.
func newDwCase(t *testing.T, r *rand.Rand, g DepthwiseGeom, epi int) *dwCase {
	t.Helper()
	g.SetOutput()
	tc := &dwCase{g: g}
	e := dwEpilogues[epi%len(dwEpilogues)]
	tc.epName = e.name
	ge := newGuardedEnd(t, g.H*g.W*g.C)
	tc.in = ge.tail(g.H * g.W * g.C)
	copy(tc.in, randSlice(r, len(tc.in)))
	poisoned := func(n int) []float32 {
		buf := make([]float32, n+32)
		for i := range buf {
			buf[i] = float32(math.NaN())
		}
		s := buf[16 : 16+n]
		copy(s, randSlice(r, n))
		return s
	}
	tc.w = poisoned(g.KH * g.KW * g.C)
	tc.ep.Act = e.act
	if e.bias {
		tc.ep.Bias = poisoned(g.C)
	}
	if e.res {
		tc.ep.Res = poisoned(g.OH * g.OW * g.C)
	}
	tc.inputs = [][]float32{tc.in, tc.w, tc.ep.Bias, tc.ep.Res}
	for _, s := range tc.inputs {
		tc.saved = append(tc.saved, slices.Clone(s))
	}
	n := g.OH * g.OW * g.C
	tc.want = make([]float32, n)
	genericSet().DepthwiseConv(&tc.g, tc.in, tc.w, tc.want, &tc.ep, 0, g.OH)
	ref, mag := refDepthwise(&tc.g, tc.in, tc.w, &tc.ep)
	taps := g.KH * g.KW
	for i := range ref {
		if d := math.Abs(float64(tc.want[i]) - ref[i]); !(d <= dwTol(taps, mag[i])) {
			t.Fatalf("%v: Go out[%d] = %v, exact %v (error %.3g > %.3g)", tc, i, tc.want[i], ref[i], d, dwTol(taps, mag[i]))
		}
	}
	return tc
}

// run checks DepthwiseConv on s against the reference: all rows in one
// call, then one call per row, then (when there is a residual) in place
// with the residual in the output buffer; canaries around the output,
// which starts poisoned, and the inputs unchanged.
func (tc *dwCase) run(t *testing.T, s *Set, r *rand.Rand) {
	t.Helper()
	g := &tc.g
	n := g.OH * g.OW * g.C
	check := func(how string, full, out []float32) {
		t.Helper()
		checkCanaries(t, full, n)
		for i := range tc.want {
			if math.Float32bits(out[i]) != math.Float32bits(tc.want[i]) {
				t.Fatalf("%v %s on %s: out[%d] (pixel %d, channel %d) = %v, want %v (Go)", tc, how, s, i, i/g.C, i%g.C, out[i], tc.want[i])
			}
		}
		for k, in := range tc.inputs {
			if !slices.Equal(in, tc.saved[k]) && !slices.EqualFunc(in, tc.saved[k], func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
				t.Fatalf("%v %s: input %d modified", tc, how, k)
			}
		}
	}
	full, out := guarded(n)
	s.DepthwiseConv(g, tc.in, tc.w, out, &tc.ep, 0, g.OH)
	check("rows [0, OH)", full, out)

	full, out = guarded(n)
	for y := g.OH - 1; y >= 0; y-- { // every split, out of order
		s.DepthwiseConv(g, tc.in, tc.w, out, &tc.ep, y, y+1)
	}
	check("row by row", full, out)

	if g.OH > 2 {
		full, out = guarded(n)
		a := 1 + r.IntN(g.OH-1)
		s.DepthwiseConv(g, tc.in, tc.w, out, &tc.ep, a, g.OH)
		s.DepthwiseConv(g, tc.in, tc.w, out, &tc.ep, 0, a)
		check(fmt.Sprintf("rows [%d, OH) then [0, %d)", a, a), full, out)
	}

	if tc.ep.Res != nil {
		full, out = guarded(n)
		copy(out, tc.ep.Res)
		ep := tc.ep
		ep.Res = out
		s.DepthwiseConv(g, tc.in, tc.w, out, &ep, 0, g.OH)
		check("residual in place", full, out)
	}
}

// dw3x3Pads are the padding variants (top, left, bottom, right).
var dw3x3Pads = [][4]int{{0, 0, 0, 0}, {1, 1, 1, 1}, {0, 0, 1, 1}, {1, 0, 0, 1}, {2, 1, 0, 2}}

// TestDepthwise3x3 is the battery of the 3x3 kernels: every C in dwCs, H
// and W in dwSizes, stride 1 and 2 (and 2x1, 1x2), the padding variants,
// the epilogues in turn, on every path, bit for bit against the Go code,
// which is checked against the exact sums.
func TestDepthwise3x3(t *testing.T) {
	// 8, 24, 40, 56: vectors of 16 and one of 8 (the 16-lane paths' tail);
	// 12, 15, 28, 31: and Go for the rest.
	dwCs := []int{1, 3, 7, 8, 12, 15, 16, 17, 24, 28, 31, 32, 33, 40, 56, 64, 100}
	dwSizes := []int{1, 2, 3, 5, 7, 14, 17}
	strides := [][2]int{{1, 1}, {2, 2}, {2, 1}, {1, 2}}
	if testing.Short() {
		dwCs = []int{1, 7, 8, 16, 24, 31, 33, 40}
		dwSizes = []int{1, 3, 7, 17}
	}
	r := rand.New(rand.NewPCG(3, 3))
	var cases []*dwCase
	i := 0
	for _, c := range dwCs {
		for _, h := range dwSizes {
			for _, w := range dwSizes {
				for si, s := range strides {
					for pi, p := range dw3x3Pads {
						if si >= 2 && (pi != 1 || h > 7 || w > 7) { // mixed strides: a sample
							continue
						}
						g := DepthwiseGeom{H: h, W: w, C: c, KH: 3, KW: 3, StrideH: s[0], StrideW: s[1], DilH: 1, DilW: 1,
							PadTop: p[0], PadLeft: p[1], PadBottom: p[2], PadRight: p[3]}
						g.SetOutput()
						if g.OH < 1 || g.OW < 1 {
							continue
						}
						i++
						cases = append(cases, newDwCase(t, r, g, i))
					}
				}
			}
		}
	}
	t.Logf("%d cases", len(cases))
	for _, s := range Sets() {
		if s.Name() != levelGeneric && s.depthwise == nil {
			t.Errorf("path %s has no depthwise kernels", s)
		}
	}
	runCasesOnSets(t, depthwiseSets(), 4, cases)
}

// TestDepthwiseGeneral covers the other filters through the one-pixel
// kernels: 1x1, 2x2, 5x5, 7x7, 1x3, 3x1, dilations, strides up to 3,
// padding up to and beyond the filter, and a 3x3 with dilation along H
// (interior kernel) or W (not).
func TestDepthwiseGeneral(t *testing.T) {
	type k struct{ kh, kw, dh, dw int }
	filters := []k{{1, 1, 1, 1}, {2, 2, 1, 1}, {5, 5, 1, 1}, {7, 7, 1, 1}, {1, 3, 1, 1}, {3, 1, 1, 1},
		{3, 3, 2, 2}, {3, 3, 2, 1}, {3, 3, 1, 3}, {5, 3, 2, 1}}
	r := rand.New(rand.NewPCG(5, 5))
	var cases []*dwCase
	i := 0
	for _, f := range filters {
		for _, c := range []int{1, 8, 17, 24, 31, 33, 40, 64} {
			for _, hw := range [][2]int{{1, 1}, {5, 4}, {9, 11}, {16, 3}} {
				for _, s := range [][2]int{{1, 1}, {2, 2}, {3, 1}} {
					i++
					pad := [4]int{r.IntN(f.kh + 1), r.IntN(f.kw + 1), r.IntN(f.kh + 1), r.IntN(f.kw + 1)}
					if i%5 == 0 {
						pad = [4]int{f.kh * f.dh, 0, 0, f.kw * f.dw} // windows wholly in the padding
					}
					g := DepthwiseGeom{H: hw[0], W: hw[1], C: c, KH: f.kh, KW: f.kw, StrideH: s[0], StrideW: s[1],
						DilH: f.dh, DilW: f.dw, PadTop: pad[0], PadLeft: pad[1], PadBottom: pad[2], PadRight: pad[3]}
					g.SetOutput()
					if g.OH < 1 || g.OW < 1 {
						continue
					}
					cases = append(cases, newDwCase(t, r, g, i))
				}
			}
		}
	}
	t.Logf("%d cases", len(cases))
	runCasesOnSets(t, depthwiseSets(), 6, cases)
}

// TestDepthwiseKernels checks each path's kernels on their own contract
// against the Go twins: every vector count up to 4 groups and a tail,
// windows 1..3 x 1..3, 1 to 19 pixels (every chunk size of the row
// kernels), 1 to 3 filter rows, padded strides, every flag combination.
// Sources end on an inaccessible page; the destination has canaries.
func TestDepthwiseKernels(t *testing.T) {
	for _, s := range depthwiseSets() {
		dw := s.depthwise
		if dw == nil {
			continue
		}
		t.Run(s.Name(), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(7, 7))
			src := newGuardedEnd(t, 1<<16)
			wbuf := newGuardedEnd(t, 1<<13)
			bias := newGuardedEnd(t, 1<<9)
			res := newGuardedEnd(t, 1<<14)
			fill := func(s []float32) {
				for i := range s {
					s[i] = float32(r.NormFloat64())
				}
			}
			for nv := 1; nv <= 9; nv++ {
				n := nv * dw.lanes
				for flags := 0; flags < 16; flags++ {
					lo, hi := float32(r.NormFloat64()), float32(0)
					hi = lo + float32(r.Float64())
					c := n + r.IntN(3)*dw.lanes/2 // pixel stride, with a gap sometimes
					var b, rs []float32
					if flags&dwFlagBias != 0 {
						b = bias.tail(n)
						fill(b)
					}
					for kh := 1; kh <= 3; kh++ {
						for kw := 1; kw <= 3; kw++ {
							srcRow, srcTap := c*(kw+r.IntN(3)), c*(1+r.IntN(2))
							wTap := c
							wRow := kw * wTap
							s := src.tail((kh-1)*srcRow + (kw-1)*srcTap + n)
							fill(s)
							w := wbuf.tail((kh-1)*wRow + (kw-1)*wTap + n)
							fill(w)
							if flags&dwFlagRes != 0 {
								rs = res.tail(n)
								fill(rs)
							}
							want := make([]float32, n)
							dwWindowGo(want, s, w, b, rs, n, kh, kw, srcRow, srcTap, wRow, wTap, flags, lo, hi)
							full, got := guarded(n)
							dw.window(&got[0], &s[0], &w[0], ptr(b), ptr(rs), n, kh, kw, srcRow, srcTap, wRow, wTap, flags, lo, hi)
							checkCanaries(t, full, n)
							if !bitsEqual(got, want) {
								t.Fatalf("window n=%d kh=%d kw=%d flags=%d: got %v, want %v", n, kh, kw, flags, got, want)
							}
						}
					}
					for stride, row := range dw.row3x3 {
						if row == nil {
							continue
						}
						for rows := 1; rows <= 3; rows++ {
							for npix := 1; npix <= 19; npix++ {
								srcRow := c * ((npix-1)*stride + 3 + r.IntN(2))
								s := src.tail((rows-1)*srcRow + ((npix-1)*stride+2)*c + n)
								fill(s)
								w := wbuf.tail((rows-1)*3*c + 2*c + n)
								fill(w)
								if flags&dwFlagRes != 0 {
									rs = res.tail((npix-1)*c + n)
									fill(rs)
								}
								want := make([]float32, (npix-1)*c+n)
								dwRowGo(stride, want, s, w, b, rs, n, rows, npix, c, srcRow, flags, lo, hi)
								full, got := guarded(len(want))
								for i := range got { // the gaps between pixels must keep this
									got[i] = canary
									want[i] = canary
								}
								dwRowGo(stride, want, s, w, b, rs, n, rows, npix, c, srcRow, flags, lo, hi)
								row(&got[0], &s[0], &w[0], ptr(b), ptr(rs), n, rows, npix, c, srcRow, flags, lo, hi)
								checkCanaries(t, full, len(want))
								if !bitsEqual(got, want) {
									t.Fatalf("row3x3 stride %d n=%d c=%d rows=%d npix=%d flags=%d: got %v, want %v", stride, n, c, rows, npix, flags, got, want)
								}
							}
						}
					}
				}
			}
		})
	}
}

func ptr(s []float32) *float32 {
	if s == nil {
		return nil
	}
	return &s[0]
}

func bitsEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// TestDepthwiseSpecialValues: NaN and infinities in the input reach the
// outputs they touch on every path alike; ReLU and Clip keep NaN; sums of
// -0 terms, a bias of -0 and bounds of -0 give +0 on every path, and no
// output is -0.
func TestDepthwiseSpecialValues(t *testing.T) {
	g := DepthwiseGeom{H: 9, W: 13, C: 37, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	g.SetOutput()
	r := rand.New(rand.NewPCG(8, 8))
	in := randSlice(r, g.H*g.W*g.C)
	in[(4*g.W+6)*g.C+5] = float32(math.NaN())
	in[(0*g.W+0)*g.C+20] = float32(math.Inf(1))
	in[(8*g.W+12)*g.C+36] = float32(math.Inf(-1))
	for i := 0; i < len(in); i += 7 {
		in[i] = float32(math.Copysign(0, -1))
	}
	w := randSlice(r, 9*g.C)
	for i := 0; i < len(w); i += 5 {
		w[i] = 0
	}
	// Channel 3: +0 inputs times negative weights, a bias of -0 and a
	// residual of -0: every term is -0, the sum must be +0.
	for i := 3; i < len(in); i += g.C {
		in[i] = 0
	}
	for i := 3; i < len(w); i += g.C {
		w[i] = -1
	}
	negZero := float32(math.Copysign(0, -1))
	bias := randSlice(r, g.C)
	bias[3], bias[4] = negZero, 0
	res := randSlice(r, g.OH*g.OW*g.C)
	for i := 3; i < len(res); i += g.C {
		res[i] = negZero
	}
	for k, ep := range []*DepthwiseEpilogue{{}, {Act: ReLU()}, {Act: ReLU6()}, {Bias: bias, Res: res},
		{Bias: bias, Act: Clip(-1, negZero)}, {Bias: bias, Res: res, Act: Clip(negZero, 0.5)}} {
		want := make([]float32, g.OH*g.OW*g.C)
		genericSet().DepthwiseConv(&g, in, w, want, ep, 0, g.OH)
		if want[(4*g.OW+6)*g.C+5] == want[(4*g.OW+6)*g.C+5] {
			t.Fatal("NaN did not reach the output")
		}
		for i, v := range want {
			if v == 0 && math.Signbit(float64(v)) {
				t.Fatalf("epilogue %d: out[%d] is -0", k, i)
			}
		}
		for _, s := range depthwiseSets() {
			got := make([]float32, len(want))
			s.DepthwiseConv(&g, in, w, got, ep, 0, g.OH)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
					t.Fatalf("%s epilogue %d: out[%d] = %v, want %v", s, k, i, got[i], want[i])
				}
			}
		}
	}
}

// TestDepthwiseArgs checks that bad geometries and buffers panic.
func TestDepthwiseArgs(t *testing.T) {
	good := DepthwiseGeom{H: 4, W: 4, C: 2, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	good.SetOutput()
	if good.OH != 4 || good.OW != 4 {
		t.Fatalf("SetOutput: %dx%d", good.OH, good.OW)
	}
	buf := make([]float32, 64)
	conv := Best().DepthwiseConv
	for i, f := range []func(){
		func() { g := good; g.OH = 3; conv(&g, buf, buf[:18], make([]float32, 32), nil, 0, 3) },
		func() { g := good; g.DilW = 0; conv(&g, buf, buf[:18], make([]float32, 32), nil, 0, 4) },
		func() { conv(&good, buf[:31], buf[:18], make([]float32, 32), nil, 0, 4) },
		func() { conv(&good, buf, buf[:17], make([]float32, 32), nil, 0, 4) },
		func() { conv(&good, buf, buf[:18], make([]float32, 31), nil, 0, 4) },
		func() { conv(&good, buf, buf[:18], make([]float32, 32), nil, 0, 5) },
		func() { conv(&good, buf, buf[:18], make([]float32, 32), nil, 3, 2) },
		func() {
			conv(&good, buf, buf[:18], make([]float32, 32), &DepthwiseEpilogue{Bias: buf[:1]}, 0, 4)
		},
		func() {
			conv(&good, buf, buf[:18], make([]float32, 32), &DepthwiseEpilogue{Res: buf[:31]}, 0, 4)
		},
		func() {
			conv(&good, buf, buf[:18], make([]float32, 32), &DepthwiseEpilogue{Act: Clip(1, 0)}, 0, 4)
		},
		func() {
			nan := float32(math.NaN())
			conv(&good, buf, buf[:18], make([]float32, 32), &DepthwiseEpilogue{Act: Clip(nan, 0)}, 0, 4)
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("case %d: no panic", i)
				}
			}()
			f()
		}()
	}
	// A valid empty range does nothing.
	out := make([]float32, 32)
	conv(&good, buf, buf[:18], out, nil, 2, 2)
}

// TestDepthwiseAllocs: no allocation per call.
func TestDepthwiseAllocs(t *testing.T) {
	g := DepthwiseGeom{H: 14, W: 14, C: 40, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	g.SetOutput()
	r := rand.New(rand.NewPCG(9, 9))
	in, w, out := randSlice(r, g.H*g.W*g.C), randSlice(r, 9*g.C), make([]float32, g.OH*g.OW*g.C)
	ep := &DepthwiseEpilogue{Bias: randSlice(r, g.C), Res: randSlice(r, len(out)), Act: ReLU6()}
	if n := testing.AllocsPerRun(10, func() { Best().DepthwiseConv(&g, in, w, out, ep, 0, g.OH) }); n != 0 {
		t.Errorf("DepthwiseConv allocates %v times per call", n)
	}
	in8, w8, out8 := randU8(r, len(in)), make([]int8, len(w)), make([]uint8, len(out))
	rq := &Requant{ZeroA: 3, Scale: make([]float32, g.C), Res: randU8(r, len(out)), ResScale: 0.5}
	if n := testing.AllocsPerRun(10, func() { Best().Depthwise8(&g, in8, w8, out8, rq, 200, 0, g.OH) }); n != 0 {
		t.Errorf("Depthwise8 allocates %v times per call", n)
	}
}

// refDepthwise8 is the definition of Depthwise8, written plainly.
func refDepthwise8(g *DepthwiseGeom, in []uint8, w []int8, rq *Requant, hi uint8) []uint8 {
	c := g.C
	out := make([]uint8, g.OH*g.OW*c)
	for oy := 0; oy < g.OH; oy++ {
		for ox := 0; ox < g.OW; ox++ {
			for ch := 0; ch < c; ch++ {
				var acc int32
				if rq.Bias != nil {
					acc = rq.Bias[ch]
				}
				for kh := 0; kh < g.KH; kh++ {
					for kw := 0; kw < g.KW; kw++ {
						ih, iw := oy*g.StrideH-g.PadTop+kh*g.DilH, ox*g.StrideW-g.PadLeft+kw*g.DilW
						x := rq.ZeroA // padding: the real zero
						if ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
							x = int32(in[(ih*g.W+iw)*c+ch])
						}
						acc += (x - rq.ZeroA) * int32(w[(kh*g.KW+kw)*c+ch])
					}
				}
				i := (oy*g.OW+ox)*c + ch
				var res uint8
				if rq.Res != nil {
					res = rq.Res[i]
				}
				q := Requantize(acc, rq.Scale[ch], rq.Res != nil, res, rq.ResZero, rq.ResScale, rq.ZeroOut, rq.Lo)
				out[i] = min(q, hi)
			}
		}
	}
	return out
}

// TestDepthwise8 checks Depthwise8 on every path bit for bit against the
// plain definition: the 3x3 battery's shapes (a sample, and C = 300 for
// more than one block of the border scratch), other filters, the
// requantization options (bias, residual, ReLU, Clip), rows split at every
// row, the residual in place, canaries around the output, inputs
// unchanged.
func TestDepthwise8(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 10))
	type cs struct {
		g  DepthwiseGeom
		in []uint8
		w  []int8
		rq Requant
		hi uint8
	}
	var cases []cs
	i := 0
	add := func(g DepthwiseGeom) {
		g.SetOutput()
		if g.OH < 1 || g.OW < 1 {
			return
		}
		i++
		tc := cs{g: g, in: randU8(r, g.H*g.W*g.C), w: make([]int8, g.KH*g.KW*g.C), hi: 255}
		for k := range tc.w {
			tc.w[k] = int8(r.IntN(256) - 128)
		}
		tc.rq.ZeroA = int32(r.IntN(256))
		tc.rq.ZeroOut = int32(r.IntN(256))
		tc.rq.Scale = make([]float32, g.C)
		for k := range tc.rq.Scale {
			tc.rq.Scale[k] = float32(math.Ldexp(0.5+r.Float64(), -8-r.IntN(6)))
		}
		if i%2 == 0 {
			tc.rq.Bias = make([]int32, g.C)
			for k := range tc.rq.Bias {
				tc.rq.Bias[k] = int32(r.IntN(1<<16) - 1<<15)
			}
		}
		if i%3 == 0 {
			tc.rq.Res = randU8(r, g.OH*g.OW*g.C)
			tc.rq.ResZero = int32(r.IntN(256))
			tc.rq.ResScale = float32(0.25 + r.Float64())
		}
		switch i % 4 {
		case 1:
			tc.rq.Lo = tc.rq.ZeroOut // ReLU
		case 2:
			tc.rq.Lo, tc.hi = tc.rq.ZeroOut, uint8(min(255, int(tc.rq.ZeroOut)+40)) // ReLU6-like Clip
		}
		cases = append(cases, tc)
	}
	for _, c := range []int{1, 3, 8, 16, 17, 24, 28, 33, 40, 64, 100, 300} {
		for _, hw := range []int{1, 2, 3, 5, 7, 14, 17} {
			for _, s := range []int{1, 2} {
				for _, p := range dw3x3Pads {
					add(DepthwiseGeom{H: hw, W: (hw*5)%17 + 1, C: c, KH: 3, KW: 3, StrideH: s, StrideW: s, DilH: 1, DilW: 1,
						PadTop: p[0], PadLeft: p[1], PadBottom: p[2], PadRight: p[3]})
				}
			}
		}
		add(DepthwiseGeom{H: 9, W: 8, C: c, KH: 5, KW: 5, StrideH: 2, StrideW: 1, DilH: 1, DilW: 2, PadTop: 2, PadLeft: 4, PadBottom: 2, PadRight: 4})
		add(DepthwiseGeom{H: 6, W: 7, C: c, KH: 1, KW: 1, StrideH: 1, StrideW: 3, DilH: 1, DilW: 1})
		add(DepthwiseGeom{H: 6, W: 7, C: c, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 2, DilW: 2, PadTop: 2, PadLeft: 2, PadBottom: 2, PadRight: 2})
	}
	t.Logf("%d cases", len(cases))
	for _, s := range depthwiseSets() {
		t.Run(s.Name(), func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				g := &tc.g
				want := refDepthwise8(g, tc.in, tc.w, &tc.rq, tc.hi)
				n := len(want)
				inSaved, wSaved, resSaved := slices.Clone(tc.in), slices.Clone(tc.w), slices.Clone(tc.rq.Res)
				for variant := range 3 {
					full := make([]uint8, n+32)
					for k := range full {
						full[k] = 0xa5
					}
					out := full[16 : 16+n]
					switch variant {
					case 0:
						s.Depthwise8(g, tc.in, tc.w, out, &tc.rq, tc.hi, 0, g.OH)
					case 1: // every split
						for y := g.OH - 1; y >= 0; y-- {
							s.Depthwise8(g, tc.in, tc.w, out, &tc.rq, tc.hi, y, y+1)
						}
					case 2: // the residual in place
						if tc.rq.Res == nil {
							continue
						}
						copy(out, tc.rq.Res)
						rq := tc.rq
						rq.Res = out
						s.Depthwise8(g, tc.in, tc.w, out, &rq, tc.hi, 0, g.OH)
					}
					for k := 0; k < 16; k++ {
						if full[k] != 0xa5 || full[16+n+k] != 0xa5 {
							t.Fatalf("%+v: write outside the output", *g)
						}
					}
					for k := range want {
						if out[k] != want[k] {
							t.Fatalf("%+v variant %d rq=%+v hi=%d: out[%d] = %d, want %d", *g, variant, tc.rq, tc.hi, k, out[k], want[k])
						}
					}
				}
				if !slices.Equal(tc.in, inSaved) || !slices.Equal(tc.w, wSaved) || !slices.Equal(tc.rq.Res, resSaved) {
					t.Fatalf("%+v: input modified", *g)
				}
			}
		})
	}
}

// TestDepthwiseTail checks, on the paths whose depthwise implementation
// has a tail (avx512, avx512vnni: AVX2's 8-lane kernels), that the tail
// takes the channels the wide vectors leave, whole vectors of its lanes,
// before Go: the channel split of DepthwiseConv and Depthwise8 for C = 8
// (all on the tail), 12, 24, 28, 40, 56; the fp32 kernels through counting
// wrappers of the tail's (called, on n = its lanes, at the right channels,
// bit-identical results); the int8 row kernels by giving the tail a wrong
// one (its stride-1 kernel for stride 2), which must change exactly the
// tail channels of the interior pixels.
func TestDepthwiseTail(t *testing.T) {
	tested := 0
	for _, s := range depthwiseSets() {
		dw := s.depthwise
		if dw == nil || dw.tail == nil {
			continue
		}
		tested++
		tl := dw.tail
		if tl.tail != nil || dw.lanes%tl.lanes != 0 || dw.lanes8%tl.lanes8 != 0 || tl.row8[2] == 0 {
			t.Fatalf("%s: tail %s (lanes %d, %d) does not fit lanes %d, %d", s, tl.name, tl.lanes, tl.lanes8, dw.lanes, dw.lanes8)
		}
		if d := s.depthwiseDesc(); !strings.Contains(d, "then "+tl.name) {
			t.Errorf("%s: description %q does not name the tail", s, d)
		}
		for _, c := range []int{8, 12, 24, 28, 40, 56} {
			checkDwSplit(t, s, c)
			checkDwTail32(t, s, c)
			checkDwTail8(t, s, c)
		}
	}
	if tested == 0 {
		t.Skip("no path here has a depthwise tail")
	}
}

// checkDwSplit checks the channel split of both kernels for C = c: the
// wide vectors, then the tail's, then Go.
func checkDwSplit(t *testing.T, s *Set, c int) {
	t.Helper()
	dw, tl := s.depthwise, s.depthwise.tail
	g := DepthwiseGeom{H: 5, W: 5, C: c, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	g.SetOutput()
	var ch32, ch8 dwChans
	if !s.depthwiseChans(&ch32, &g) {
		t.Errorf("%s C=%d: 3x3 interior not on the row kernels", s, c)
	}
	s.depthwise8Chans(&ch8, &g, 0)
	for _, k := range []struct {
		name   string
		ch     dwChans
		lanes  [2]int
		kernel func(sg dwSeg) bool
	}{
		{"fp32", ch32, [2]int{dw.lanes, tl.lanes}, func(sg dwSeg) bool { return sg.row3 != nil }},
		{"int8", ch8, [2]int{dw.lanes8, tl.lanes8}, func(sg dwSeg) bool { return sg.row8 != 0 }},
	} {
		vec := c / k.lanes[0] * k.lanes[0]
		end := vec + (c-vec)/k.lanes[1]*k.lanes[1]
		var want []string
		if vec > 0 {
			want = append(want, fmt.Sprintf("%s[0,%d)", dw.name, vec))
		}
		if end > vec {
			want = append(want, fmt.Sprintf("%s[%d,%d)", tl.name, vec, end))
		}
		var got []string
		for _, sg := range k.ch.seg[:k.ch.n] {
			got = append(got, fmt.Sprintf("%s[%d,%d)", sg.impl.name, sg.c0, sg.c1))
			if !k.kernel(sg) {
				t.Errorf("%s %s C=%d: part %s[%d,%d) has no 3x3 row kernel", s, k.name, c, sg.impl.name, sg.c0, sg.c1)
			}
		}
		if !slices.Equal(got, want) || k.ch.end != end || end == vec {
			t.Errorf("%s %s C=%d: parts %v, Go from %d; want %v, Go from %d", s, k.name, c, got, k.ch.end, want, end)
		}
	}
}

// dwCalls records the calls of a kernel: how many, and their channel
// counts and first channels.
type dwCalls struct {
	n      int
	counts map[int]bool
	chans  map[int]bool
}

func (k *dwCalls) add(n, c0 int) {
	if k.counts == nil {
		k.counts, k.chans = map[int]bool{}, map[int]bool{}
	}
	k.n++
	k.counts[n], k.chans[c0] = true, true
}

// checkDwTail32 runs DepthwiseConv on s with the tail's kernels wrapped
// to record their calls: 3x3 at stride 1 and 2 (row and window kernels)
// and 5x5 (window kernel), bias, residual and Clip; the results must be
// the Go code's, bit for bit.
func checkDwTail32(t *testing.T, s *Set, c int) {
	t.Helper()
	tl := *s.depthwise.tail
	var window, row dwCalls
	var in []float32 // the call's input, to tell the channel a kernel starts at
	chanOf := func(p *float32) int {
		return int(uintptr(unsafe.Pointer(p))-uintptr(unsafe.Pointer(&in[0]))) / 4 % c
	}
	win := tl.window
	tl.window = func(dst, src, w, bias, res *float32, n, kh, kw, srcRow, srcTap, wRow, wTap, flags int, lo, hi float32) {
		window.add(n, chanOf(src))
		win(dst, src, w, bias, res, n, kh, kw, srcRow, srcTap, wRow, wTap, flags, lo, hi)
	}
	for stride, k := range tl.row3x3 {
		if k != nil {
			tl.row3x3[stride] = func(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32) {
				row.add(n, chanOf(src))
				k(dst, src, w, bias, res, n, rows, npix, c, srcRow, flags, lo, hi)
			}
		}
	}
	impl := *s.depthwise
	impl.tail = &tl
	ts := *s
	ts.depthwise = &impl
	vec := c / impl.lanes * impl.lanes
	r := rand.New(rand.NewPCG(uint64(c), 12))
	for _, f := range [][3]int{{3, 1, 1}, {3, 2, 1}, {5, 1, 2}} {
		g := DepthwiseGeom{H: 9, W: 11, C: c, KH: f[0], KW: f[0], StrideH: f[1], StrideW: f[1], DilH: 1, DilW: 1,
			PadTop: f[2], PadLeft: f[2], PadBottom: f[2], PadRight: f[2]}
		g.SetOutput()
		in = randSlice(r, g.H*g.W*c)
		w := randSlice(r, f[0]*f[0]*c)
		ep := &DepthwiseEpilogue{Bias: randSlice(r, c), Res: randSlice(r, g.OH*g.OW*c), Act: Clip(-1, 1.5)}
		want, got := make([]float32, g.OH*g.OW*c), make([]float32, g.OH*g.OW*c)
		genericSet().DepthwiseConv(&g, in, w, want, ep, 0, g.OH)
		ts.DepthwiseConv(&g, in, w, got, ep, 0, g.OH)
		if !bitsEqual(got, want) {
			t.Fatalf("%s C=%d %dx%d/%d: not the Go code's results", s, c, f[0], f[0], f[1])
		}
	}
	for _, k := range []struct {
		name  string
		calls dwCalls
	}{{"window", window}, {"row", row}} {
		if k.calls.n == 0 || len(k.calls.counts) != 1 || !k.calls.counts[tl.lanes] || len(k.calls.chans) != 1 || !k.calls.chans[vec] {
			t.Errorf("%s C=%d: tail %s kernel: %d calls, channel counts %v, from channels %v; want channels [%d, %d)",
				s, c, k.name, k.calls.n, k.calls.counts, k.calls.chans, vec, vec+tl.lanes)
		}
	}
}

// checkDwTail8 runs Depthwise8 at stride 2 on s with the tail's stride-2
// row kernel replaced by its stride-1 kernel (which reads fewer pixels
// and gives other sums from the second pixel of a row kernel call on):
// only the tail's channels may change, and they must, somewhere.
func checkDwTail8(t *testing.T, s *Set, c int) {
	t.Helper()
	tl := *s.depthwise.tail
	tl.row8[2] = tl.row8[1]
	impl := *s.depthwise
	impl.tail = &tl
	ts := *s
	ts.depthwise = &impl
	vec := c / impl.lanes8 * impl.lanes8
	r := rand.New(rand.NewPCG(uint64(c), 13))
	g := DepthwiseGeom{H: 9, W: 15, C: c, KH: 3, KW: 3, StrideH: 2, StrideW: 2, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	g.SetOutput()
	in, w := randU8(r, g.H*g.W*c), make([]int8, 9*c)
	for i := range w {
		w[i] = int8(r.IntN(256) - 128)
	}
	rq := &Requant{ZeroA: 9, Scale: make([]float32, c), ZeroOut: 128}
	for i := range rq.Scale {
		rq.Scale[i] = 1.0 / 512
	}
	want := refDepthwise8(&g, in, w, rq, 255)
	got := make([]uint8, len(want))
	ts.Depthwise8(&g, in, w, got, rq, 255, 0, g.OH)
	changed := 0
	for i := range want {
		if got[i] == want[i] {
			continue
		}
		if ch := i % c; ch < vec || ch >= vec+tl.lanes8 {
			t.Fatalf("%s C=%d: channel %d of pixel %d changed, not a tail channel [%d, %d)", s, c, ch, i/c, vec, vec+tl.lanes8)
		}
		changed++
	}
	if changed == 0 {
		t.Errorf("%s C=%d: the tail's int8 kernel did not run on channels [%d, %d)", s, c, vec, vec+tl.lanes8)
	}
}
