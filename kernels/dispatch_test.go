package kernels

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// genericSet is the Set of the generic path: the Go code of every
// primitive, the reference of the bit-exactness tests.
func genericSet() *Set {
	s, err := ForPath(levelGeneric)
	if err != nil {
		panic(err) // every build defines it and every CPU runs it
	}
	return s
}

// oldPaths are the paths as the path table before Sets defined them (a
// struct literal per path, the Winograd transforms from winoByPath and
// wino8ByPath): the implementations each must still resolve to. ISA test
// files add theirs from init.
var oldPaths = map[string]*Set{
	levelGeneric: {gemm: gemmGeneric, gemm8: gemm8Generic, wino: winoGeneric, wino8: wino8Generic},
}

// resolution lists what s runs for each primitive, comparably: the
// implementations held by pointer by name and address, the func-valued
// ones by their code and lane count.
func resolution(s *Set) []string {
	return []string{
		"gemm " + implID(s.gemm, func(g *gemmImpl) string { return g.name }),
		"int8 gemm " + implID(s.gemm8, func(g *gemm8Impl) string { return g.name }),
		"winograd " + implID(s.wino, func(w *winoImpl) string { return w.name }),
		"int8 winograd " + implID(s.wino8, func(w *wino8Impl) string { return w.name }),
		"max pool " + funcID(s.maxPool.window, s.maxPool.lanes),
		"epilogue " + funcID(s.epilogue.apply, s.epilogue.lanes),
		"epilogue rows " + funcID(s.epilogue.rows, s.epilogue.lanes),
		"int8 max pool " + funcID(s.maxPool8.window, s.maxPool8.lanes),
		"quantize " + funcID(s.quant.quantize, s.quant.lanes),
		"dequantize " + funcID(s.quant.dequantize, s.quant.lanes),
		"int8 add " + funcID(s.add8.add, s.add8.lanes),
		"depthwise " + implID(s.depthwise, func(d *depthwiseImpl) string { return d.name }),
		"grouped conv " + implID(s.groupconv, func(g *groupConvImpl) string { return g.name }),
		"clamp " + implID(s.clamp, func(c *clampImpl) string { return fmt.Sprintf("%d lanes", c.lanes) }),
	}
}

func implID[T any](p *T, name func(*T) string) string {
	if p == nil {
		return "Go"
	}
	return fmt.Sprintf("%s (%p)", name(p), p)
}

// funcID names a func-valued implementation: its code, and the lanes,
// which tell apart closures that share their code.
func funcID(f any, lanes int) string {
	v := reflect.ValueOf(f)
	if v.IsNil() {
		return fmt.Sprintf("Go (%d lanes)", lanes)
	}
	return fmt.Sprintf("%s, %d lanes", runtime.FuncForPC(v.Pointer()).Name(), lanes)
}

// sameResolution fails if got does not run what want runs.
func sameResolution(t *testing.T, what string, got, want *Set) {
	t.Helper()
	g, w := resolution(got), resolution(want)
	for i := range g {
		if g[i] != w[i] {
			t.Errorf("%s: %s, want %s", what, g[i], w[i])
		}
	}
}

// TestRegistryPick checks the resolution rule on a registry of its own:
// the first level of the order that has an implementation this CPU runs
// wins, the first such implementation within a level, the zero value if
// none; usable lists the runnable ones in registration order.
func TestRegistryPick(t *testing.T) {
	no := func() bool { return false }
	var r registry[string]
	r.add(levelGeneric, always, "go")
	r.add("a", always, "a1")
	r.add("b", no, "b-unusable")
	r.add("b", always, "b2")
	r.add("b", always, "b3")
	r.add("c", no, "c")
	for _, tc := range []struct {
		order []string
		want  string
	}{
		{[]string{"a", "b", levelGeneric}, "a1"},
		{[]string{"b", "a", levelGeneric}, "b2"},
		{[]string{"c", "b", levelGeneric}, "b2"},
		{[]string{"c", levelGeneric}, "go"},
		{[]string{"c"}, ""},
		{nil, ""},
	} {
		if got := r.pick(tc.order); got != tc.want {
			t.Errorf("pick(%q) = %q, want %q", tc.order, got, tc.want)
		}
	}
	if got := r.usable(); !slices.Equal(got, []string{"go", "a1", "b2", "b3"}) {
		t.Errorf("usable() = %q", got)
	}
}

// TestSetResolution checks that each Set is its path resolved against
// the registries (for every primitive the first implementation, in the
// path's preference order, that this CPU runs), that Sets and Available
// list exactly the paths whose needs this CPU meets, best first, and that
// ForPath returns those Sets and refuses the others with ErrPath.
func TestSetResolution(t *testing.T) {
	var usable []string
	for i := range pathDefs {
		d := &pathDefs[i]
		if d.order[len(d.order)-1] != levelGeneric {
			t.Errorf("path %s: order %q does not end with the Go code", d.name, d.order)
		}
		s, err := ForPath(d.name)
		if !d.needs() {
			if !errors.Is(err, ErrPath) {
				t.Errorf("path %s, which this CPU lacks: ForPath gave %v, %v", d.name, s, err)
			}
			continue
		}
		usable = append(usable, d.name)
		if err != nil {
			t.Errorf("path %s: %v", d.name, err)
			continue
		}
		sameResolution(t, "path "+d.name, s, d.resolve())
		if s.Name() != d.name || s.rank != d.rank {
			t.Errorf("path %s: Set %s of rank %d, want rank %d", d.name, s.Name(), s.rank, d.rank)
		}
	}
	all := Sets()
	if !slices.IsSortedFunc(all, func(a, b *Set) int { return b.rank - a.rank }) {
		t.Errorf("Sets() %v not best first", all)
	}
	names := Available()
	if len(all) != len(names) || !slices.ContainsFunc(all, func(s *Set) bool { return s.Name() == levelGeneric }) {
		t.Errorf("Sets() %v, Available() %v", all, names)
	}
	for i, s := range all {
		if i < len(names) && names[i] != s.Name() {
			t.Errorf("Available()[%d] = %s, Sets()[%d] = %s", i, names[i], i, s.Name())
		}
	}
	if slices.Sort(usable); !slices.Equal(usable, slices.Sorted(slices.Values(names))) {
		t.Errorf("usable paths %v, Available() %v", usable, names)
	}
	if _, err := ForPath("no-such-path"); !errors.Is(err, ErrPath) || !strings.Contains(err.Error(), "paths are") {
		t.Errorf("ForPath of an unknown name: %v", err)
	}
}

// TestPathsAsBefore checks that every path resolves, primitive by
// primitive, to what the path table before Sets gave it.
func TestPathsAsBefore(t *testing.T) {
	for _, d := range pathDefs {
		if oldPaths[d.name] == nil {
			t.Errorf("path %s has no expectation", d.name)
		}
	}
	for name := range oldPaths {
		if !slices.ContainsFunc(pathDefs, func(d pathDef) bool { return d.name == name }) {
			t.Errorf("expectation for path %s, which this build does not define", name)
		}
	}
	for _, s := range Sets() {
		if want := oldPaths[s.Name()]; want != nil {
			sameResolution(t, "path "+s.Name(), s, want)
		}
	}
}

// envResolution is what a setting of EDGE_RESNET_KERNELS gives the
// process: init's own rule.
func envResolution(env string) (*Set, error) {
	s, _, err := defaultSet(env)
	return s, err
}

// envCase is a setting of EDGE_RESNET_KERNELS and the path, GEMM and int8
// GEMM it must give, and whether it is refused (the best path stays).
type envCase struct {
	env, path, gemm, gemm8 string
	refused                bool
}

// checkEnvCases checks each setting through init's rule.
func checkEnvCases(t *testing.T, cases []envCase) {
	t.Helper()
	for _, c := range cases {
		s, err := envResolution(c.env)
		if s.Name() != c.path || s.GemmName() != c.gemm || s.Gemm8Name() != c.gemm8 || (err != nil) != c.refused {
			t.Errorf("%s=%q: path %s, GEMM %s, int8 GEMM %s (%v), want %s, %s, %s, refused %v",
				EnvKernels, c.env, s, s.GemmName(), s.Gemm8Name(), err, c.path, c.gemm, c.gemm8, c.refused)
		}
		if err != nil && !errors.Is(err, ErrPath) {
			t.Errorf("%s=%q: %v does not wrap ErrPath", EnvKernels, c.env, err)
		}
	}
}

// TestForcedPath checks that this process runs on the path that
// EDGE_RESNET_KERNELS names, or on the best path when it is unset or
// refused, and that Selection and EnvError say which.
func TestForcedPath(t *testing.T) {
	env := strings.TrimSpace(os.Getenv(EnvKernels))
	want, err := envResolution(env)
	wantSel := want.Name()
	switch {
	case env == "":
	case err != nil:
		wantSel = fmt.Sprintf("%s (%s=%q refused)", want.Name(), EnvKernels, env)
	default:
		wantSel = fmt.Sprintf("%s (forced by %s)", want.Name(), EnvKernels)
	}
	if Best() != want || Selection() != wantSel {
		t.Errorf("%s=%q: Best() %s, Selection() %q, want %s, %q", EnvKernels, env, Best(), Selection(), want, wantSel)
	}
	if (err != nil) != (EnvError() != nil) || err != nil && !errors.Is(EnvError(), ErrPath) {
		t.Errorf("%s=%q: EnvError() = %v, ForPath: %v", EnvKernels, env, EnvError(), err)
	}
	t.Logf("%s=%q: %s (available: %v)", EnvKernels, env, Selection(), Available())
}

// indepInputs are the data TestSetsIndependent gives every Set: an fp32
// GEMM with the whole epilogue, an int8 GEMM with bias, residual and
// ReLU, and a Winograd F(4x4) convolution (its transforms and epilogue
// bound from the Set).
type indepInputs struct {
	m, n, k int
	a, b    []float32
	ep      Epilogue
	a8      []uint8
	w8      []int8
	rq      Requant
	g       ConvGeom
	in, w   []float32
}

// indepResult is what one Set computed from indepInputs.
type indepResult struct {
	c   []float32
	c8  []uint8
	wfp []float32
}

func newIndepInputs() *indepInputs {
	r := rand.New(rand.NewPCG(21, 12))
	x := &indepInputs{m: 37, n: 45, k: 300}
	m, n, k := x.m, x.n, x.k
	x.a, x.b = randSlice(r, m*k), randSlice(r, k*n)
	x.ep = Epilogue{Bias: randSlice(r, n), Res: randSlice(r, m*n), LdRes: n, Relu: true}
	x.a8, x.w8 = randU8(r, m*k), make([]int8, k*n)
	for i := range x.w8 {
		x.w8[i] = int8(r.IntN(255) - 127)
	}
	x.rq = Requant{ZeroA: 77, ZeroOut: 19, Lo: 19, Scale: make([]float32, n), Bias: make([]int32, n),
		Res: randU8(r, m*n), LdRes: n, ResZero: 120, ResScale: 0.6}
	for j := range n {
		x.rq.Scale[j] = float32(r.Float64()*3e-4 + 1e-6)
		x.rq.Bias[j] = int32(r.IntN(200001) - 100000)
	}
	x.g = geom3x3(9, 11, 16, 24, 1, 1, 1, 1)
	x.in, x.w = randSlice(r, 9*11*16), heWeights(r, 16, 24)
	return x
}

// run packs the weights with s and computes the three results.
func (x *indepInputs) run(s *Set) (res indepResult, kernels string) {
	pb, pb8 := s.PackB(x.b, x.k, x.n), s.PackB8(x.w8, x.k, x.n)
	res.c, res.c8 = make([]float32, x.m*x.n), make([]uint8, x.m*x.n)
	Gemm(x.m, x.a, x.k, &pb, res.c, x.n, &x.ep, 0, pb.Panels())
	GemmU8(x.m, x.a8, x.k, &pb8, res.c8, x.n, &x.rq, 0, pb8.Panels())
	wg, err := s.NewWinograd(&x.g, 4, x.w)
	if err != nil {
		panic(err)
	}
	res.wfp = make([]float32, x.g.Pixels()*x.g.Cout)
	ep := Epilogue{Bias: x.ep.Bias[:x.g.Cout], Relu: true}
	wg.Run(x.in, res.wfp, &ep, 0, wg.Tiles(), 0, wg.Panels(), make([]float32, wg.Scratch()))
	return res, pb.Kernel() + ", " + pb8.Kernel()
}

// check fails if res is not the definition's (int8 exact, fp32 within
// the kernels' bounds).
func (x *indepInputs) check(t *testing.T, s *Set, res indepResult) {
	t.Helper()
	if want := refGemmU8(x.m, x.n, x.k, x.a8, x.k, x.w8, &x.rq); !slices.Equal(res.c8, want) {
		t.Errorf("%s: int8 GEMM differs from the definition", s)
	}
	want := refGemm(x.m, x.n, x.k, x.a, x.k, x.b, &x.ep)
	for i := range want {
		if math.Abs(float64(res.c[i]-want[i])) > gemmTol(s.GemmName(), x.k) {
			t.Fatalf("%s: GEMM c[%d] = %v, want %v", s, i, res.c[i], want[i])
		}
	}
	ep := Epilogue{Bias: x.ep.Bias[:x.g.Cout], Relu: true}
	plain := refConv(&x.g, x.in, x.w, &Epilogue{})
	if e := winoRelErr(res.wfp, refConv(&x.g, x.in, x.w, &ep), maxAbs64(plain)); e > winoTol[4] {
		t.Errorf("%s: Winograd F(4x4) relative error %.3g", s, e)
	}
}

// TestSetsIndependent runs different Sets at the same time on the same
// inputs, from parallel subtests, each packing its own weights again and
// again: every result must have the bits that Set gives alone (which are
// also checked against the definitions). With -race it checks that Sets
// share no mutable state.
func TestSetsIndependent(t *testing.T) {
	sets := []*Set{genericSet()}
	for _, s := range []*Set{Sets()[0], Best()} {
		if !slices.Contains(sets, s) {
			sets = append(sets, s)
		}
	}
	if len(sets) == 1 {
		t.Logf("only the generic path here: it runs beside itself")
		sets = append(sets, genericSet())
	}
	x := newIndepInputs()
	want := make([]indepResult, len(sets))
	for i, s := range sets {
		want[i], _ = x.run(s)
		x.check(t, s, want[i])
	}
	t.Run("concurrent", func(t *testing.T) {
		for i, s := range sets {
			for worker := range 2 {
				t.Run(fmt.Sprintf("%s/%d", s, worker), func(t *testing.T) {
					t.Parallel()
					for round := range 4 {
						got, kernels := x.run(s)
						if !bitsEqual(got.c, want[i].c) || !slices.Equal(got.c8, want[i].c8) || !bitsEqual(got.wfp, want[i].wfp) {
							t.Fatalf("%s (%s), round %d: results differ from the Set's own sequential run", s, kernels, round)
						}
					}
				})
			}
		}
	})
}

// runCasesOnSets runs every case on each Set, the Sets in parallel
// subtests, each with its own generator seeded with seed so that every
// Set sees the same data.
func runCasesOnSets[C interface {
	run(*testing.T, *Set, *rand.Rand)
}](t *testing.T, sets []*Set, seed uint64, cases []C) {
	for _, s := range sets {
		t.Run(s.Name(), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(seed, seed))
			for _, tc := range cases {
				tc.run(t, s, r)
			}
		})
	}
}
