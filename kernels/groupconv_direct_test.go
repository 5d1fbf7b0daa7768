package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// refGroupDirect is the definition of GroupConvDirect in float64 (exact
// sums of the float32 products) and, per output, the sum of the
// magnitudes of its terms for the error bound.
func refGroupDirect(g *ConvGeom, groups int, in, w []float32, ep *GroupEpilogue) (out, mag []float64) {
	cig, cog := g.C/groups, g.Cout/groups
	out = make([]float64, g.Pixels()*g.Cout)
	mag = make([]float64, len(out))
	for oy := range g.OH {
		for ox := range g.OW {
			for co := range g.Cout {
				gr := co / cog
				var s, m float64
				if ep.Bias != nil {
					s, m = float64(ep.Bias[co]), math.Abs(float64(ep.Bias[co]))
				}
				for kh := range g.KH {
					for kw := range g.KW {
						ih, iw := oy*g.StrideH-g.PadTop+kh*g.DilH, ox*g.StrideW-g.PadLeft+kw*g.DilW
						if ih < 0 || ih >= g.H || iw < 0 || iw >= g.W {
							continue
						}
						for ci := range cig {
							p := float64(in[(ih*g.W+iw)*g.C+gr*cig+ci]) * float64(w[((kh*g.KW+kw)*cig+ci)*g.Cout+co])
							s += p
							m += math.Abs(p)
						}
					}
				}
				i := (oy*g.OW+ox)*g.Cout + co
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

// groupConvSets are the available Sets, one per GroupConvDirect
// implementation, generic first.
func groupConvSets() []*Set {
	var out []*Set
	seen := map[*groupConvImpl]bool{}
	for _, s := range slices.Backward(Sets()) {
		if s.groupconv == nil && s.Name() != levelGeneric {
			continue
		}
		if !seen[s.groupconv] {
			seen[s.groupconv] = true
			out = append(out, s)
		}
	}
	return out
}

// gcCase is one GroupConvDirect test: data and the generic Set's output,
// checked against the exact sums.
type gcCase struct {
	g       ConvGeom
	groups  int
	in, w   []float32
	ep      GroupEpilogue
	epName  string
	inputs  [][]float32 // everything read, to check it is left unchanged
	saved   [][]float32
	want    []float32
	padB    int
	padR    int
	withRes bool
}

func (tc *gcCase) String() string {
	g := &tc.g
	return fmt.Sprintf("%dx%dx%d->%d_g%d_k%dx%d_s%dx%d_d%dx%d_p%d,%d,%d,%d_%s", g.H, g.W, g.C, g.Cout, tc.groups, g.KH, g.KW,
		g.StrideH, g.StrideW, g.DilH, g.DilW, g.PadTop, g.PadLeft, tc.padB, tc.padR, tc.epName)
}

// gcGeom is the geometry of a test, nil if the output would be empty.
func gcGeom(h, w, c, cout, kh, kw, sh, sw, dh, dw int, pad [4]int) *ConvGeom {
	g := &ConvGeom{H: h, W: w, C: c, Cout: cout, KH: kh, KW: kw, StrideH: sh, StrideW: sw, DilH: dh, DilW: dw,
		PadTop: pad[0], PadLeft: pad[1]}
	g.OH = dwOut(h, kh, sh, dh, pad[0], pad[2])
	g.OW = dwOut(w, kw, sw, dw, pad[1], pad[3])
	if g.OH < 1 || g.OW < 1 {
		return nil
	}
	return g
}

// newGcCase makes random data (the input ends on an inaccessible page;
// weights, bias and residual are surrounded by NaN) and the generic
// Set's output, checked against the float64 definition.
func newGcCase(t *testing.T, r *rand.Rand, g *ConvGeom, groups int, pad [4]int, epi int) *gcCase {
	t.Helper()
	tc := &gcCase{g: *g, groups: groups, padB: pad[2], padR: pad[3]}
	e := dwEpilogues[epi%len(dwEpilogues)]
	tc.epName = e.name
	tc.in = newGuardedEnd(t, g.H*g.W*g.C).tail(g.H * g.W * g.C)
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
	tc.w = poisoned(g.KH * g.KW * g.C / groups * g.Cout)
	tc.ep.Act = e.act
	if e.bias {
		tc.ep.Bias = poisoned(g.Cout)
		tc.ep.Bias[r.IntN(g.Cout)] = float32(math.Copysign(0, -1))
	}
	if e.res {
		tc.ep.Res = poisoned(g.Pixels() * g.Cout)
	}
	tc.inputs = [][]float32{tc.in, tc.w, tc.ep.Bias, tc.ep.Res}
	for _, s := range tc.inputs {
		tc.saved = append(tc.saved, slices.Clone(s))
	}
	tc.want = make([]float32, g.Pixels()*g.Cout)
	pw := genericSet().PackGroupDirect(&tc.g, groups, tc.w)
	GroupConvDirect(&tc.g, &pw, tc.in, tc.want, &tc.ep, 0, g.OH, nil)
	ref, mag := refGroupDirect(&tc.g, groups, tc.in, tc.w, &tc.ep)
	taps := g.KH * g.KW * g.C / groups
	for i := range ref {
		if d := math.Abs(float64(tc.want[i]) - ref[i]); !(d <= dwTol(taps, mag[i])) {
			t.Fatalf("%v: Go out[%d] = %v, exact %v (error %.3g > %.3g)", tc, i, tc.want[i], ref[i], d, dwTol(taps, mag[i]))
		}
	}
	return tc
}

// run checks GroupConvDirect on s bit for bit against the generic Set:
// all rows in one call, row by row out of order, two uneven parts, the
// residual in place, one group per block; canaries around the output and
// the inputs unchanged.
func (tc *gcCase) run(t *testing.T, s *Set, r *rand.Rand) {
	t.Helper()
	g := &tc.g
	n := g.Pixels() * g.Cout
	pw := s.PackGroupDirect(g, tc.groups, tc.w)
	ns := GroupConvDirectScratch(g, &pw)
	scratch := newGuardedEnd(t, ns).tail(ns)
	check := func(how string, full, out []float32) {
		t.Helper()
		checkCanaries(t, full, n)
		for i := range tc.want {
			if math.Float32bits(out[i]) != math.Float32bits(tc.want[i]) {
				t.Fatalf("%v %s on %s (kind %d): out[%d] (pixel %d, channel %d) = %v, want %v (Go)", tc, how, s,
					pw.kind, i, i/g.Cout, i%g.Cout, out[i], tc.want[i])
			}
		}
		for k, in := range tc.inputs {
			if !slices.EqualFunc(in, tc.saved[k], func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
				t.Fatalf("%v %s: input %d modified", tc, how, k)
			}
		}
	}
	full, out := guarded(n)
	GroupConvDirect(g, &pw, tc.in, out, &tc.ep, 0, g.OH, scratch)
	check("rows [0, OH)", full, out)

	full, out = guarded(n)
	for y := g.OH - 1; y >= 0; y-- {
		GroupConvDirect(g, &pw, tc.in, out, &tc.ep, y, y+1, scratch)
	}
	check("row by row", full, out)

	if g.OH > 2 {
		full, out = guarded(n)
		a := 1 + r.IntN(g.OH-1)
		GroupConvDirect(g, &pw, tc.in, out, &tc.ep, a, g.OH, scratch)
		GroupConvDirect(g, &pw, tc.in, out, &tc.ep, 0, a, scratch)
		check(fmt.Sprintf("rows [%d, OH) then [0, %d)", a, a), full, out)
	}
	if tc.ep.Res != nil {
		full, out = guarded(n)
		copy(out, tc.ep.Res)
		ep := tc.ep
		ep.Res = out
		GroupConvDirect(g, &pw, tc.in, out, &ep, 0, g.OH, scratch)
		check("residual in place", full, out)
	}
	if pw.gb < tc.groups || pw.kind != gcBc {
		return
	}
	// Blocks of one group at a time, as for groups with big weights: what
	// packing with gcBlockBytes = 1 gives, without changing that package
	// variable under the other Sets' runs.
	pw.gb = 1
	full, out = guarded(n)
	GroupConvDirect(g, &pw, tc.in, out, &tc.ep, 0, g.OH, scratch)
	check("one group per block", full, out)
}

// runGcCases runs the cases on every GroupConvDirect implementation, in
// parallel.
func runGcCases(t *testing.T, cases []*gcCase) {
	t.Logf("%d cases", len(cases))
	for _, s := range Sets() {
		if s.Name() != levelGeneric && s.groupconv == nil {
			t.Errorf("path %s has no grouped conv kernels", s)
		}
	}
	runCasesOnSets(t, groupConvSets(), 4, cases)
}

// TestGroupConvDirect3x3 is the battery of the 3x3 shapes (both kernel
// families): channels per group 1 to 33 (in = out, and a few in != out),
// channel counts with and without a vector tail, odd sizes, strides 1 and
// 2 (and mixed), the padding variants, the epilogues in turn.
func TestGroupConvDirect3x3(t *testing.T) {
	type gc struct{ cig, cog, groups int }
	shapes := []gc{{1, 1, 8}, {1, 1, 17}, {2, 2, 4}, {2, 2, 9}, {4, 4, 4}, {4, 4, 8}, {4, 4, 5}, {4, 4, 32},
		{8, 8, 2}, {8, 8, 4}, {8, 8, 3}, {16, 16, 2}, {32, 32, 2}, {3, 3, 5}, {5, 5, 3}, {7, 7, 2}, {9, 9, 2},
		{17, 17, 1}, {33, 33, 2}, {24, 24, 2}, {4, 8, 3}, {8, 4, 4}, {3, 17, 2}, {16, 48, 1}, {64, 64, 1}, {2, 3, 7}}
	sizes := [][2]int{{1, 1}, {3, 5}, {7, 7}, {5, 16}, {4, 29}}
	strides := [][2]int{{1, 1}, {2, 2}, {2, 1}, {1, 2}}
	if testing.Short() {
		sizes = [][2]int{{1, 1}, {7, 7}, {4, 29}}
	}
	r := rand.New(rand.NewPCG(3, 3))
	var cases []*gcCase
	i := 0
	for _, s := range shapes {
		for _, hw := range sizes {
			for si, st := range strides {
				for pi, p := range dw3x3Pads {
					if si >= 2 && pi != 1 || pi >= 2 && (si != 0 || hw[0] > 5) { // mixed strides and odd pads: a sample
						continue
					}
					g := gcGeom(hw[0], hw[1], s.cig*s.groups, s.cog*s.groups, 3, 3, st[0], st[1], 1, 1, p)
					if g == nil {
						continue
					}
					i++
					cases = append(cases, newGcCase(t, r, g, s.groups, p, i))
				}
			}
		}
	}
	runGcCases(t, cases)
}

// TestGroupConvDirectGeneral covers the other filters (broadcast family):
// 1x1, 5x5, 1x3, 3x1, 2x2, dilations, strides up to 3, padding up to and
// beyond the filter (windows wholly in the padding).
func TestGroupConvDirectGeneral(t *testing.T) {
	type k struct{ kh, kw, dh, dw int }
	filters := []k{{1, 1, 1, 1}, {5, 5, 1, 1}, {1, 3, 1, 1}, {3, 1, 1, 1}, {2, 2, 1, 1}, {3, 3, 2, 2}, {3, 3, 2, 1},
		{3, 3, 1, 3}}
	type gc struct{ cig, cog, groups int }
	shapes := []gc{{4, 4, 4}, {1, 1, 3}, {8, 8, 2}, {16, 16, 2}, {3, 5, 3}, {32, 32, 1}, {17, 9, 2}}
	r := rand.New(rand.NewPCG(5, 5))
	var cases []*gcCase
	i := 0
	for _, f := range filters {
		for _, s := range shapes {
			for _, hw := range [][2]int{{1, 1}, {5, 4}, {9, 11}, {6, 17}} {
				for _, st := range [][2]int{{1, 1}, {2, 2}, {3, 1}} {
					i++
					pad := [4]int{r.IntN(f.kh + 1), r.IntN(f.kw + 1), r.IntN(f.kh + 1), r.IntN(f.kw + 1)}
					if i%5 == 0 {
						pad = [4]int{f.kh * f.dh, 0, 0, f.kw * f.dw}
					}
					g := gcGeom(hw[0], hw[1], s.cig*s.groups, s.cog*s.groups, f.kh, f.kw, st[0], st[1], f.dh, f.dw, pad)
					if g == nil {
						continue
					}
					cases = append(cases, newGcCase(t, r, g, s.groups, pad, i))
				}
			}
		}
	}
	runGcCases(t, cases)
}

// TestGroupConvDirectAllocs checks that GroupConvDirect allocates nothing
// on the ResNeXt shapes (a smaller one for the slow Go code), on every
// path, and that the runtime prefers it on them wherever it has kernels.
func TestGroupConvDirectAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for _, set := range groupConvSets() {
		shapes := gcBenchShapes
		if set.groupconv == nil {
			shapes = []gcBenchShape{{8, 9, 64, 16, 1}, {9, 8, 64, 8, 2}}
		}
		for _, s := range shapes {
			g := gcBenchGeom(s)
			if set.GroupConvPrefersDirect(&g, s.groups) != (set.groupconv != nil) {
				t.Errorf("%s %v: GroupConvPrefersDirect = %v", set, s, !(set.groupconv != nil))
			}
			in, w := randSlice(r, g.H*g.W*g.C), randSlice(r, 9*g.C/s.groups*g.Cout)
			out := make([]float32, g.Pixels()*g.Cout)
			pw := set.PackGroupDirect(&g, s.groups, w)
			if (pw.kind == gcGo) != (set.groupconv == nil) {
				t.Errorf("%s %v: kernel family %d", set, s, pw.kind)
			}
			scratch := make([]float32, GroupConvDirectScratch(&g, &pw))
			ep := &GroupEpilogue{Bias: randSlice(r, g.Cout), Res: randSlice(r, len(out)), Act: ReLU()}
			if n := testing.AllocsPerRun(3, func() { GroupConvDirect(&g, &pw, in, out, ep, 0, g.OH, scratch) }); n != 0 {
				t.Errorf("%s %v: %v allocations", set, s, n)
			}
		}
	}
}
