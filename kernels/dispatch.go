package kernels

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// EnvKernels forces a kernel path, e.g. EDGE_RESNET_KERNELS=generic, for
// tests and bug reports: generic, avx2, avxvnni, avx512, avx512vnni, amx (amd64),
// neon, neondot (arm64). An unknown name, or a path this CPU or build lacks,
// is an error (EnvError) that the library returns from every model load and
// session: running on another path than the one asked for would make a
// forced test or benchmark silently measure the wrong thing.
const EnvKernels = "EDGE_RESNET_KERNELS"

// Kernel selection has three parts:
//   - a registry per primitive (registry.go) holds every implementation
//     built into this binary, each tagged with its ISA level ("avx2",
//     "avx512vnni", "neon", ...) and what it needs from the CPU;
//   - a path is a named preference order of ISA levels ("avx512vnni" =
//     avx512vnni, then avx512, avx2, generic), defined by the ISA files;
//   - a Set is a path resolved against the registries once, at init: for
//     each primitive the first implementation, in the path's order, that
//     this CPU can run. Sets are immutable and are passed explicitly: weights
//     are packed by a Set and remember their kernel, plans hold the Set they
//     were compiled with, so sessions on different paths run side by side.
//
// Which shapes an implementation prefers (Winograd8 against the int8 GEMM,
// the direct grouped kernel against per-group GEMMs, the narrow int8
// kernel) is part of the implementation, asked through the Set
// (Winograd8Preferred, GroupConvPrefersDirect, Gemm8UsesNarrow).

// Set is one resolved kernel path: an implementation of every primitive.
// A nil pointer or zero value for a vector primitive means the Go code.
type Set struct {
	name      string
	rank      int
	gemm      *gemmImpl
	gemm8     *gemm8Impl
	wino      *winoImpl
	wino8     *wino8Impl
	maxPool   maxPoolImpl
	epilogue  epilogueImpl
	maxPool8  maxPool8Impl
	quant     quantImpl
	add8      add8Impl
	depthwise *depthwiseImpl
	groupconv *groupConvImpl
	clamp     *clampImpl
	batchnorm *batchNormImpl
	reluMask  *reluMaskImpl
}

// maxPoolImpl does max pooling of one output pixel over whole vectors of
// lanes channels (see maxWindowGo for the contract).
type maxPoolImpl struct {
	window func(dst, src *float32, n, kh, kw, rowStride, pixStride int)
	lanes  int
}

// epilogueImpl applies bias/residual/ReLU to whole vectors of lanes values
// (see epilogueGo for the contract; flags as gemmFlag*). rows, if not nil,
// does the same on rows runs of n values at v + r*ld and res + r*ld with
// the same bias (n a multiple of lanes, rows >= 1, ld in elements).
type epilogueImpl struct {
	apply func(v, bias, res *float32, n, flags int)
	lanes int
	rows  func(v, bias, res *float32, n, rows, ld, flags int)
}

// maxPool8Impl is maxPoolImpl on uint8 (see maxWindow8Go).
type maxPool8Impl struct {
	window func(dst, src *uint8, n, kh, kw, rowStride, pixStride int)
	lanes  int
}

// quantImpl does Quantize and Dequantize for n a multiple of lanes (see
// quantizeGo, dequantizeGo); quantize requires |zero| <= 2^24.
type quantImpl struct {
	quantize   func(dst *uint8, src *float32, n int, scale float32, zero int32)
	dequantize func(dst *float32, src *uint8, n int, scale float32, zero int32)
	lanes      int
}

// add8Impl does Add8 for n a multiple of lanes (see add8Go; p is an
// *Add8Params, finite scales <= 2^90, |ZeroOut| <= 2^24).
type add8Impl struct {
	add   func(dst, a, b *uint8, n int, p *Add8Params)
	lanes int
}

// The registries, one per primitive. ISA files add to them from
// package-level variable initializers, which run before init below.
var (
	gemmReg      = registry[*gemmImpl]{primitive: "gemm"}
	gemm8Reg     = registry[*gemm8Impl]{primitive: "int8 gemm"}
	winoReg      = registry[*winoImpl]{primitive: "winograd transforms"}
	wino8Reg     = registry[*wino8Impl]{primitive: "int8 winograd"}
	maxPoolReg   = registry[maxPoolImpl]{primitive: "max pool"}
	epilogueReg  = registry[epilogueImpl]{primitive: "winograd epilogue"}
	maxPool8Reg  = registry[maxPool8Impl]{primitive: "int8 max pool"}
	quantReg     = registry[quantImpl]{primitive: "quantize, dequantize"}
	add8Reg      = registry[add8Impl]{primitive: "int8 add"}
	depthwiseReg = registry[*depthwiseImpl]{primitive: "depthwise conv"}
	groupConvReg = registry[*groupConvImpl]{primitive: "grouped conv"}
	clampReg     = registry[*clampImpl]{primitive: "clamp"}
)

// The generic level: the Go implementations every path ends with.
var (
	_ = gemmReg.add(levelGeneric, always, gemmGeneric)
	_ = gemm8Reg.add(levelGeneric, always, gemm8Generic)
	_ = winoReg.add(levelGeneric, always, winoGeneric)
	_ = wino8Reg.add(levelGeneric, always, wino8Generic)
	_ = definePath(levelGeneric, 0, always, levelGeneric)
)

const levelGeneric = "generic"

func always() bool { return true }

// resolve builds the Set of one path.
func (d *pathDef) resolve() *Set {
	return &Set{name: d.name, rank: d.rank,
		gemm: gemmReg.pick(d.order), gemm8: gemm8Reg.pick(d.order),
		wino: winoReg.pick(d.order), wino8: wino8Reg.pick(d.order),
		maxPool: maxPoolReg.pick(d.order), epilogue: epilogueReg.pick(d.order),
		maxPool8: maxPool8Reg.pick(d.order), quant: quantReg.pick(d.order), add8: add8Reg.pick(d.order),
		depthwise: depthwiseReg.pick(d.order), groupconv: groupConvReg.pick(d.order), clamp: clampReg.pick(d.order),
		batchnorm: batchNormReg.pick(d.order), reluMask: reluMaskReg.pick(d.order)}
}

var (
	sets          []*Set // the paths this CPU can run, best first
	best          *Set
	selectionNote string
	envErr        error
)

func init() {
	for i := range pathDefs {
		if d := &pathDefs[i]; d.needs() {
			sets = append(sets, d.resolve())
		}
	}
	slices.SortStableFunc(sets, func(a, b *Set) int { return b.rank - a.rank })
	best, selectionNote, envErr = defaultSet(os.Getenv(EnvKernels))
}

// defaultSet is the default Set for a setting of EDGE_RESNET_KERNELS: the
// best path when it is empty, else the path it names, with a note saying
// so; the best path and an error wrapping ErrPath when it names none
// usable here.
func defaultSet(env string) (s *Set, note string, err error) {
	want := strings.TrimSpace(env)
	if want == "" {
		return sets[0], "", nil
	}
	s, err = ForPath(want)
	if err != nil {
		return sets[0], fmt.Sprintf("%s=%q refused", EnvKernels, want), fmt.Errorf("%s=%q: %w", EnvKernels, want, err)
	}
	return s, fmt.Sprintf("forced by %s", EnvKernels), nil
}

// ErrPath is wrapped by errors about a kernel path that does not exist or
// that this CPU or build cannot run.
var ErrPath = errors.New("kernel path not available")

// EnvError is the error of an EDGE_RESNET_KERNELS setting that names no
// path usable here (nil when it is unset or valid). The best path stays
// chosen, but callers should refuse to run: the user asked for another.
func EnvError() error { return envErr }

// Best is the Set this process uses by default: the best path this CPU
// can run, or the one EDGE_RESNET_KERNELS names.
func Best() *Set { return best }

// ForPath is the Set of the named path, or an error wrapping ErrPath when
// this CPU or build cannot run it.
func ForPath(name string) (*Set, error) {
	for _, s := range sets {
		if s.name == name {
			return s, nil
		}
	}
	known := ""
	if !slices.ContainsFunc(pathDefs, func(d pathDef) bool { return d.name == name }) {
		var all []string
		for _, d := range pathDefs {
			all = append(all, d.name)
		}
		known = fmt.Sprintf("; paths are %s", strings.Join(all, ", "))
	}
	return nil, fmt.Errorf("%w: %q on this CPU and build (available: %s%s)", ErrPath, name, strings.Join(Available(), ", "), known)
}

// Available lists the kernel paths usable here, best first.
func Available() []string {
	var names []string
	for _, s := range sets {
		names = append(names, s.name)
	}
	return names
}

// Sets lists the Sets usable here, best first, for tests and benchmarks
// that run every path.
func Sets() []*Set { return slices.Clone(sets) }

// Name is the path's name.
func (s *Set) Name() string { return s.name }

// String is the path's name.
func (s *Set) String() string { return s.name }

// Selection describes the default path, and why if it was forced.
func Selection() string {
	if selectionNote != "" {
		return best.name + " (" + selectionNote + ")"
	}
	return best.name
}

// CPU names the processor and the features that kernel selection looks at,
// for `edge-resnet cpu` and bug reports.
func CPU() string { return cpuSummary() }

// Primitive names the implementation a path uses for one primitive, for
// `edge-resnet cpu` and bug reports.
type Primitive struct{ Name, Impl string }

// Primitives lists the path's implementation of each primitive.
func (s *Set) Primitives() []Primitive {
	lanes := func(set bool, n int) string {
		if !set {
			return "Go"
		}
		return fmt.Sprintf("%s, %d lanes", s.name, n)
	}
	return []Primitive{
		{"gemm (1x1 conv, im2col conv, fc)", s.gemmDesc()},
		{"int8 gemm", s.gemm8Desc()},
		{"winograd transforms", s.wino.name},
		{"int8 winograd", s.wino8.name},
		{"max pool", lanes(s.maxPool.window != nil, s.maxPool.lanes)},
		{"winograd epilogue", lanes(s.epilogue.apply != nil, s.epilogue.lanes)},
		{"int8 max pool", lanes(s.maxPool8.window != nil, s.maxPool8.lanes)},
		{"quantize, dequantize", lanes(s.quant.quantize != nil, s.quant.lanes)},
		{"int8 add (unfused)", lanes(s.add8.add != nil, s.add8.lanes)},
		{"depthwise conv", s.depthwiseDesc()},
		{"grouped conv (direct)", s.groupConvDesc()},
		{"clamp (Clip, fused ReLU6)", lanes(s.clamp != nil, s.clampLanes())},
		{"batchnorm (training)", lanes(s.batchnorm != nil, s.batchNormLanes())},
		{"relu gradient (training)", lanes(s.reluMask != nil, s.reluMaskLanes())},
		{"im2col, avg pool, softmax, copies", "Go"},
	}
}

func (s *Set) clampLanes() int {
	if s.clamp == nil {
		return 0
	}
	return s.clamp.lanes
}

func (s *Set) batchNormLanes() int {
	if s.batchnorm == nil {
		return 0
	}
	return s.batchnorm.lanes
}

func (s *Set) reluMaskLanes() int {
	if s.reluMask == nil {
		return 0
	}
	return s.reluMask.lanes
}

// gemmDesc describes the fp32 GEMM kernel and its narrow variant.
func (s *Set) gemmDesc() string {
	g := s.gemm
	d := fmt.Sprintf("%s (MR=%d, NR=%d)", g.name, g.mr, g.nr)
	if nw := g.narrow; nw != nil {
		d += fmt.Sprintf("; N <= %d: %s (MR=%d, NR=%d)", nw.nr, nw.name, nw.mr, nw.nr)
	}
	return d
}

// gemm8Desc describes the int8 GEMM kernel and its narrow variant.
func (s *Set) gemm8Desc() string {
	g := s.gemm8
	d := fmt.Sprintf("%s (MR=%d, NR=%d, K groups of %d)", g.name, g.mr, g.nr, g.kg)
	if nw := g.narrow; nw != nil {
		d += fmt.Sprintf("; weights in [%d, %d]: %s (MR=%d, NR=%d)", NarrowLo, NarrowHi, nw.name, nw.mr, nw.nr)
	}
	return d
}
