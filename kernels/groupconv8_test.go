package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// refGroupConv8 is the definition of GroupConv8 in direct loops: int32
// sums of (x - ZeroA)·w over the group's channels of the taps inside the
// input, then Requantize per value.
func refGroupConv8(g *ConvGeom, groups int, in []uint8, w []int8, rq *Requant) []uint8 {
	cig, cog := g.C/groups, g.Cout/groups
	out := make([]uint8, g.Pixels()*g.Cout)
	for p := range g.Pixels() {
		oy, ox := p/g.OW, p%g.OW
		for co := range g.Cout {
			gr := co / cog
			var acc int32
			if rq.Bias != nil {
				acc = rq.Bias[co]
			}
			for kh := range g.KH {
				for kw := range g.KW {
					ih, iw := oy*g.StrideH-g.PadTop+kh*g.DilH, ox*g.StrideW-g.PadLeft+kw*g.DilW
					if ih < 0 || ih >= g.H || iw < 0 || iw >= g.W {
						continue
					}
					for ci := range cig {
						x := int32(in[(ih*g.W+iw)*g.C+gr*cig+ci]) - rq.ZeroA
						acc += x * int32(w[((kh*g.KW+kw)*cig+ci)*g.Cout+co])
					}
				}
			}
			var r uint8
			if rq.Res != nil {
				r = rq.Res[p*g.Cout+co]
			}
			out[p*g.Cout+co] = Requantize(acc, rq.Scale[co], rq.Res != nil, r, rq.ResZero, rq.ResScale, rq.ZeroOut, rq.Lo)
		}
	}
	return out
}

// gc8Case is one grouped-conv shape: input h x w with groups x cig
// channels, groups x cog outputs, a kh x kw filter with strides,
// dilations and padding (top/left, bottom/right).
type gc8Case struct {
	h, w, groups, cig, cog int
	kh, kw, sh, sw, dh, dw int
	pt, pl, pb, pr         int
	mixed                  bool // even groups' weights in the narrow range, odd groups' full range
}

func (tc gc8Case) geom() ConvGeom {
	g := ConvGeom{H: tc.h, W: tc.w, C: tc.groups * tc.cig, Cout: tc.groups * tc.cog, KH: tc.kh, KW: tc.kw,
		StrideH: tc.sh, StrideW: tc.sw, DilH: tc.dh, DilW: tc.dw, PadTop: tc.pt, PadLeft: tc.pl}
	g.OH = (tc.h+tc.pt+tc.pb-tc.dh*(tc.kh-1)-1)/tc.sh + 1
	g.OW = (tc.w+tc.pl+tc.pr-tc.dw*(tc.kw-1)-1)/tc.sw + 1
	return g
}

func (tc gc8Case) String() string {
	s := fmt.Sprintf("%dx%d_g%d_ci%d_co%d_k%dx%d_s%dx%d_d%dx%d_p%d%d%d%d", tc.h, tc.w, tc.groups, tc.cig, tc.cog,
		tc.kh, tc.kw, tc.sh, tc.sw, tc.dh, tc.dw, tc.pt, tc.pl, tc.pb, tc.pr)
	if tc.mixed {
		s += "_mixed"
	}
	return s
}

// gc8Cases are the edge shapes of TestGroupConv8.
var gc8Cases = []gc8Case{
	{h: 5, w: 4, groups: 2, cig: 1, cog: 1, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1},
	{h: 9, w: 7, groups: 64, cig: 1, cog: 2, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1},
	{h: 11, w: 10, groups: 32, cig: 4, cog: 4, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1},
	{h: 12, w: 9, groups: 32, cig: 8, cog: 8, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1},
	{h: 8, w: 8, groups: 4, cig: 16, cog: 16, kh: 3, kw: 3, sh: 1, sw: 1, dh: 2, dw: 2, pt: 2, pl: 2, pb: 2, pr: 2},
	{h: 9, w: 6, groups: 3, cig: 17, cog: 5, kh: 5, kw: 1, sh: 2, sw: 1, dh: 1, dw: 1, pt: 2, pl: 0, pb: 1, pr: 0},
	{h: 6, w: 7, groups: 8, cig: 4, cog: 3, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1},                                // in place (lda = C)
	{h: 5, w: 7, groups: 5, cig: 3, cog: 7, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1},                                // 1x1, gathered (K 3 -> 4)
	{h: 9, w: 8, groups: 2, cig: 20, cog: 33, kh: 1, kw: 1, sh: 2, sw: 2, dh: 1, dw: 1},                              // 1x1 stride 2
	{h: 7, w: 6, groups: 16, cig: 2, cog: 24, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1},                              // no padding
	{h: 10, w: 9, groups: 4, cig: 8, cog: 40, kh: 3, kw: 1, sh: 1, sw: 2, dh: 3, dw: 1, pt: 3, pb: 2},                // asymmetric
	{h: 2, w: 3, groups: 6, cig: 2, cog: 1, kh: 5, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, pt: 2, pb: 2},                  // taps past both edges
	{h: 24, w: 24, groups: 2, cig: 64, cog: 8, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1}, // several row blocks
	{h: 7, w: 5, groups: 4, cig: 4, cog: 5, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, mixed: true},
	{h: 10, w: 11, groups: 2, cig: 3, cog: 3, kh: 7, kw: 8, sh: 1, sw: 1, dh: 1, dw: 1, pt: 3, pl: 3, pb: 3, pr: 4}, // > maxGatherTaps
}

// gc8Epilogues are the requantization variants each shape runs with.
var gc8Epilogues = []struct {
	name          string
	bias, res, lo bool
}{
	{"plain", false, false, false}, {"bias_relu", true, false, true}, {"res", false, true, false}, {"bias_res_relu", true, true, true},
}

// gc8Splits are sequences of GroupConv8 calls over [px0, px1) ranges of a
// p-pixel output, split at odd points, some out of order or empty.
func gc8Splits(p int) [][][2]int {
	h := p/2 | 1
	return [][][2]int{
		{{0, p}},
		{{0, 1}, {1, p}},
		{{p - 1, p}, {0, p - 1}},
		{{min(3, p), min(3, p)}, {min(3, p), p}},
		{{h, p}, {0, min(h, p/3)}, {min(h, p/3), h}},
	}
}

// newGC8Data is random input, weights (in the range of the kernel under
// test; mixed: even groups narrow) and a requantization of variant ep.
func newGC8Data(r *rand.Rand, wr w8Range, tc gc8Case, g *ConvGeom, bias, res, lo bool) (in []uint8, w []int8, rq *Requant) {
	in = randU8(r, g.H*g.W*g.C)
	w = make([]int8, g.KH*g.KW*tc.cig*g.Cout)
	for i := range w {
		w[i] = wr.rand(r)
		if co := i % g.Cout; tc.mixed && co/tc.cog%2 == 0 {
			w[i] = int8(min(max(int(w[i]), NarrowLo), NarrowHi))
		}
	}
	rq = &Requant{ZeroA: int32(r.IntN(256)), ZeroOut: int32(r.IntN(256)), Scale: make([]float32, g.Cout)}
	k := float64(g.KH * g.KW * tc.cig)
	for j := range rq.Scale {
		rq.Scale[j] = float32((0.001 + 0.015*r.Float64()) / math.Sqrt(k))
	}
	if bias {
		rq.Bias = make([]int32, g.Cout)
		for j := range rq.Bias {
			rq.Bias[j] = int32(r.IntN(20001) - 10000)
		}
	}
	if res {
		rq.Res, rq.ResZero, rq.ResScale = randU8(r, g.Pixels()*g.Cout), int32(r.IntN(256)), float32(0.3+r.Float64())
		rq.LdRes = 3 // ignored
	}
	if lo {
		rq.Lo = rq.ZeroOut
	}
	return in, w, rq
}

// TestGroupConv8 checks GroupConv8 bit for bit against refGroupConv8 on
// every int8 GEMM this CPU has (and each narrow variant, with 7-bit
// weights), for edge shapes, epilogues, groups per GEMM (one, the
// packer's choice, all) and pixel splits, on an output poisoned with a
// canary: pixels outside the calls' ranges stay untouched.
func TestGroupConv8(t *testing.T) {
	forEachGemm8(t, func(t *testing.T, s *Set, wr w8Range) {
		r := rand.New(rand.NewPCG(8, 17))
		for _, tc := range gc8Cases {
			if tc.mixed && wr.narrow {
				continue // the narrow run's weights are all narrow
			}
			for _, ep := range gc8Epilogues {
				t.Run(tc.String()+"/"+ep.name, func(t *testing.T) {
					g := tc.geom()
					in, w, rq := newGC8Data(r, wr, tc, &g, ep.bias, ep.res, ep.lo)
					want := refGroupConv8(&g, tc.groups, in, w, rq)
					for _, pw := range gc8Packings(s, &g, tc.groups, w) {
						for i := range pw.B {
							wr.checkPacked(t, s, &pw.B[i])
						}
						if tc.mixed && s.gemm8.narrow != nil && pw.PerGemm == 1 && !strings.Contains(pw.Kernel(), "+") {
							t.Fatalf("mixed weights packed for one kernel %q", pw.Kernel())
						}
						checkGC8Splits(t, &g, &pw, in, rq, want)
					}
					if distinct(want) < min(len(want)/8, 16) {
						t.Errorf("only %d distinct outputs: a weak test", distinct(want))
					}
				})
			}
		}
	})
}

// gc8Packings are w packed by PackGrouped8 and with one group and all
// groups per matrix.
func gc8Packings(s *Set, g *ConvGeom, groups int, w []int8) []GroupedB8 {
	pw := s.PackGrouped8(g, groups, w)
	out := []GroupedB8{pw}
	seen := map[int]bool{pw.PerGemm: true}
	for _, per := range []int{1, groups} {
		if !seen[per] {
			seen[per] = true
			out = append(out, s.packGrouped8(g, groups, per, w))
		}
	}
	return out
}

// checkGC8Splits runs every sequence of gc8Splits on a poisoned output and
// compares each pixel computed so far with want; the others, and a tail
// past the output, must keep the canary.
func checkGC8Splits(t *testing.T, g *ConvGeom, pw *GroupedB8, in []uint8, rq *Requant, want []uint8) {
	t.Helper()
	n := g.Pixels() * g.Cout
	scratch := make([]byte, GroupConv8Scratch(g, pw))
	for _, seq := range gc8Splits(g.Pixels()) {
		out := make([]uint8, n+16)
		fill(out, canary8)
		done := make([]bool, g.Pixels())
		for _, c := range seq {
			GroupConv8(g, pw, in, out[:n], rq, c[0], c[1], scratch)
			for p := c[0]; p < c[1]; p++ {
				done[p] = true
			}
			for i, v := range out {
				p := i / g.Cout
				if p < g.Pixels() && done[p] && v != want[i] {
					t.Fatalf("%d per GEMM, calls %v: pixel %d channel %d = %d, want %d", pw.PerGemm, seq, p, i%g.Cout, v, want[i])
				}
				if (p >= g.Pixels() || !done[p]) && v != canary8 {
					t.Fatalf("calls %v: byte %d (pixel %d) written outside the calls' pixels", seq, i, p)
				}
			}
		}
	}
}

func distinct(v []uint8) int {
	var seen [256]bool
	n := 0
	for _, x := range v {
		if !seen[x] {
			seen[x] = true
			n++
		}
	}
	return n
}

// TestGroupConv8NoAllocs: GroupConv8 allocates nothing, gathered or in
// place, with a residual.
func TestGroupConv8NoAllocs(t *testing.T) {
	forEachGemm8(t, func(t *testing.T, s *Set, wr w8Range) {
		r := rand.New(rand.NewPCG(2, 3))
		for _, tc := range []gc8Case{gc8Cases[2], gc8Cases[6]} {
			g := tc.geom()
			in, w, rq := newGC8Data(r, wr, tc, &g, true, true, true)
			pw := s.PackGrouped8(&g, tc.groups, w)
			out := make([]uint8, g.Pixels()*g.Cout)
			scratch := make([]byte, GroupConv8Scratch(&g, &pw))
			if a := testing.AllocsPerRun(10, func() { GroupConv8(&g, &pw, in, out, rq, 1, g.Pixels(), scratch) }); a != 0 {
				t.Errorf("%v: GroupConv8 allocates %v times per call", tc, a)
			}
		}
	})
}

// TestGroupConv8Args: arguments that disagree panic with a message naming
// the function, before anything is written.
func TestGroupConv8Args(t *testing.T) {
	tc := gc8Cases[2]
	g := tc.geom()
	in, w, rq := newGC8Data(rand.New(rand.NewPCG(1, 1)), fullW8, tc, &g, true, true, false)
	pw := Best().PackGrouped8(&g, tc.groups, w)
	px := g.Pixels()
	tests := []struct {
		name string
		f    func(g *ConvGeom, pw *GroupedB8, in, out []uint8, rq *Requant, scratch []byte) (px0, px1 int)
	}{
		{"other geometry", func(g *ConvGeom, _ *GroupedB8, _, _ []uint8, _ *Requant, _ []byte) (int, int) { g.C *= 2; return 0, px }},
		{"other filter", func(g *ConvGeom, _ *GroupedB8, _, _ []uint8, _ *Requant, _ []byte) (int, int) { g.KW = 1; return 0, px }},
		{"stride 0", func(g *ConvGeom, _ *GroupedB8, _, _ []uint8, _ *Requant, _ []byte) (int, int) {
			g.StrideH = 0
			return 0, px
		}},
		{"short input", func(_ *ConvGeom, _ *GroupedB8, in, _ []uint8, _ *Requant, _ []byte) (int, int) { return 0, px }},
		{"pixels past the end", func(*ConvGeom, *GroupedB8, []uint8, []uint8, *Requant, []byte) (int, int) { return 0, px + 1 }},
		{"negative pixel", func(*ConvGeom, *GroupedB8, []uint8, []uint8, *Requant, []byte) (int, int) { return -1, 1 }},
		{"short scale", func(_ *ConvGeom, _ *GroupedB8, _, _ []uint8, rq *Requant, _ []byte) (int, int) {
			rq.Scale = rq.Scale[:1]
			return 0, px
		}},
		{"short residual", func(_ *ConvGeom, _ *GroupedB8, _, _ []uint8, rq *Requant, _ []byte) (int, int) {
			rq.Res = rq.Res[:10]
			return 0, px
		}},
		{"zero point", func(_ *ConvGeom, _ *GroupedB8, _, _ []uint8, rq *Requant, _ []byte) (int, int) {
			rq.ZeroA = 256
			return 0, px
		}},
		{"groups", func(_ *ConvGeom, pw *GroupedB8, _, _ []uint8, _ *Requant, _ []byte) (int, int) {
			pw.B = pw.B[:1]
			return 0, px
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gg, pp, rr := g, pw, *rq
			inn := in
			if tt.name == "short input" {
				inn = in[:len(in)-1]
			}
			out := make([]uint8, px*g.Cout)
			fill(out, canary8)
			px0, px1 := tt.f(&gg, &pp, inn, out, &rr, nil)
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, "kernels.GroupConv8: bad arguments") {
					t.Fatalf("panic %q", msg)
				}
				if distinct(out) != 1 {
					t.Fatal("output written before the panic")
				}
			}()
			GroupConv8(&gg, &pp, inn, out, &rr, px0, px1, make([]byte, GroupConv8Scratch(&g, &pw)))
		})
	}
}

// TestPackGrouped8Args: weights that do not fit the geometry panic.
func TestPackGrouped8Args(t *testing.T) {
	g := gc8Cases[2].geom()
	for _, tt := range []struct {
		name   string
		groups int
		n      int
	}{{"short", 32, 9*4*128 - 1}, {"groups 0", 0, 9 * 4 * 128}, {"groups 3", 3, 9 * 4 * 128}} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if msg, _ := recover().(string); !strings.HasPrefix(msg, "kernels.PackGrouped8:") {
					t.Fatalf("panic %q", msg)
				}
			}()
			Best().PackGrouped8(&g, tt.groups, make([]int8, tt.n))
		})
	}
}

// BenchmarkGroupConv8 times GroupConv8 on ResNeXt-50 32x4d's grouped
// convolutions (bias + ReLU, one thread) on every int8 GEMM here (wide
// and narrow weights), interleaved with the same layer in float32 on
// GroupConvDirect under that path, reporting GOP/s (2 operations per
// multiply-add of OH*OW*Cout*9*C/G) from the fastest call of each.
// -benchtime=20x or so.
func BenchmarkGroupConv8(b *testing.B) {
	b.Logf("cpu: %s", CPU())
	for _, ks := range Sets() {
		for _, s := range gcBenchShapes {
			b.Run(fmt.Sprintf("%s/%v", ks, s), func(b *testing.B) { benchGroupConv8(b, ks, s) })
		}
	}
}

func benchGroupConv8(b *testing.B, ks *Set, s gcBenchShape) {
	g := gcBenchGeom(s)
	r := rand.New(rand.NewPCG(1, 1))
	in := randU8(r, g.H*g.W*g.C)
	w := make([]int8, 9*g.C/s.groups*g.Cout)
	for i := range w {
		w[i] = int8(r.IntN(255) - 127)
	}
	rq := &Requant{ZeroA: 3, ZeroOut: 5, Lo: 5, Scale: make([]float32, g.Cout), Bias: make([]int32, g.Cout)}
	for j := range rq.Scale {
		rq.Scale[j] = 1e-3
	}
	out := make([]uint8, g.Pixels()*g.Cout)
	wide := ks.PackGrouped8(&g, s.groups, w)
	scratch := make([]byte, GroupConv8Scratch(&g, &wide))
	f32 := gcBenchFloat(ks, &g, s.groups, r)
	runs := []gcBenchRun{{"int8-" + wide.Kernel(), func() { GroupConv8(&g, &wide, in, out, rq, 0, g.Pixels(), scratch) }}, f32}
	if ks.gemm8.narrow != nil {
		for i := range w {
			w[i] /= 2
		}
		narrow := ks.PackGrouped8(&g, s.groups, w)
		nscratch := make([]byte, GroupConv8Scratch(&g, &narrow))
		runs = append(runs, gcBenchRun{"int8-" + narrow.Kernel(), func() { GroupConv8(&g, &narrow, in, out, rq, 0, g.Pixels(), nscratch) }})
	}
	reportBestRates(b, runs, 2*float64(g.Pixels()*g.Cout*9*g.C/s.groups), "-GOP/s")
}

// gcBenchFloat is the float32 GroupConvDirect of the layer (bias, ReLU).
func gcBenchFloat(ks *Set, g *ConvGeom, groups int, r *rand.Rand) gcBenchRun {
	in, w := randSlice(r, g.H*g.W*g.C), randSlice(r, 9*g.C/groups*g.Cout)
	out := make([]float32, g.Pixels()*g.Cout)
	dw := ks.PackGroupDirect(g, groups, w)
	sc := make([]float32, GroupConvDirectScratch(g, &dw))
	ep := &GroupEpilogue{Bias: randSlice(r, g.Cout), Act: ReLU()}
	return gcBenchRun{"fp32-direct", func() { GroupConvDirect(g, &dw, in, out, ep, 0, g.OH, sc) }}
}
