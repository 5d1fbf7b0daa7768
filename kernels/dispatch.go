package kernels

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// EnvKernels forces a kernel path, e.g. EDGE_RESNET_KERNELS=generic, for
// tests and bug reports: generic, avx2, avxvnni, avx512, avx512vnni (amd64),
// neon, neondot (arm64). An unknown name, or a path this CPU or build lacks,
// is an error (EnvError) that the library returns from every model load and
// session: running on another path than the one asked for would make a
// forced test or benchmark silently measure the wrong thing.
const EnvKernels = "EDGE_RESNET_KERNELS"

// A path is one coherent set of implementations for one ISA level
// ("generic", "avx2", "avxvnni", "avx512", "avx512vnni", "neon"): every
// primitive the plan calls. The VNNI paths differ from the path below them
// only in the int8 GEMM.
// ISA files register their paths from package-level variable initializers
// (var _ = registerPath(...)), which run before init functions, so the
// choice in init below sees all of them.
type path struct {
	name      string
	rank      int         // higher is preferred
	available func() bool // the CPU can run it
	gemm      *gemmImpl
	gemm8     *gemm8Impl // int8 GEMM; nil means the generic one
	// maxWindow, if set, does max pooling of one output pixel over whole
	// vectors of maxLanes channels (see maxWindowGo for the contract).
	maxWindow func(dst, src *float32, n, kh, kw, rowStride, pixStride int)
	maxLanes  int
	// epilogue, if set, applies bias/residual/ReLU to whole vectors of
	// epiLanes values (see epilogueGo for the contract; flags as gemmFlag*).
	epilogue func(v, bias, res *float32, n, flags int)
	epiLanes int
	// maxWindow8 is maxWindow on uint8 (see maxWindow8Go), for whole
	// vectors of max8Lanes channels.
	maxWindow8 func(dst, src *uint8, n, kh, kw, rowStride, pixStride int)
	max8Lanes  int
	// quantize and dequantize, if set, do Quantize and Dequantize for n a
	// multiple of quantLanes (see quantizeGo, dequantizeGo); quantize
	// requires |zero| <= 2^24.
	quantize   func(dst *uint8, src *float32, n int, scale float32, zero int32)
	dequantize func(dst *float32, src *uint8, n int, scale float32, zero int32)
	quantLanes int
	// add8, if set, does Add8 for n a multiple of quantLanes (see add8Go;
	// p is an *Add8Params, finite scales <= 2^90, |ZeroOut| <= 2^24).
	add8 func(dst, a, b *uint8, n int, p *Add8Params)
	// depthwise, if set, runs DepthwiseConv on whole vectors of its lanes
	// channels (see depthwiseImpl); nil: the Go code does every channel.
	depthwise *depthwiseImpl
	// groupconv, if set, runs GroupConvDirect (see groupConvImpl); nil:
	// the Go code.
	groupconv *groupConvImpl
}

var (
	paths    []*path // available paths, best first
	selected *path
)

var genericPath = registerPath(&path{name: "generic", rank: 0, available: func() bool { return true },
	gemm: gemmGeneric, gemm8: gemm8Generic})

// allPathNames are the names of every path of this GOARCH and build,
// available or not, for error messages.
var allPathNames []string

func registerPath(p *path) *path {
	allPathNames = append(allPathNames, p.name)
	if p.available() {
		paths = append(paths, p)
		slices.SortStableFunc(paths, func(a, b *path) int { return b.rank - a.rank })
	}
	return p
}

func use(p *path) {
	selected = p
	gemm = p.gemm
	gemm8 = p.gemm8
	if gemm8 == nil {
		gemm8 = gemm8Generic
	}
}

// gemmImpls returns the GEMM implementations usable on this CPU, best first.
func gemmImpls() []*gemmImpl {
	var out []*gemmImpl
	for _, p := range paths {
		out = append(out, p.gemm)
	}
	return out
}

var (
	selectionNote string
	envErr        error
)

func init() { selectionNote, envErr = selectFromEnv() }

func selectFromEnv() (string, error) {
	use(paths[0])
	want := strings.TrimSpace(os.Getenv(EnvKernels))
	if want == "" {
		return "", nil
	}
	if err := Select(want); err != nil {
		return fmt.Sprintf("%s=%q refused", EnvKernels, want), fmt.Errorf("%s=%q: %w", EnvKernels, want, err)
	}
	return fmt.Sprintf("forced by %s", EnvKernels), nil
}

// ErrPath is wrapped by errors about a kernel path that does not exist or
// that this CPU or build cannot run.
var ErrPath = errors.New("kernel path not available")

// EnvError is the error of an EDGE_RESNET_KERNELS setting that names no
// path usable here (nil when it is unset or valid). The best path stays
// selected, but callers should refuse to run: the user asked for another.
func EnvError() error { return envErr }

// Select chooses the named kernel path for all primitives. It is not safe
// to call while kernels run, and weights packed before must be re-packed
// (plans record the path they were compiled for and refuse to run on
// another).
func Select(name string) error {
	for _, p := range paths {
		if p.name == name {
			use(p)
			return nil
		}
	}
	known := ""
	if !slices.Contains(allPathNames, name) {
		known = fmt.Sprintf("; paths are %s", strings.Join(allPathNames, ", "))
	}
	return fmt.Errorf("%w: %q on this CPU and build (available: %s%s)", ErrPath, name, strings.Join(Available(), ", "), known)
}

// Available lists the kernel paths usable here, best first.
func Available() []string {
	var names []string
	for _, p := range paths {
		names = append(names, p.name)
	}
	return names
}

// CPU names the processor and the features that kernel selection looks at,
// for `edge-resnet cpu` and bug reports.
func CPU() string { return cpuSummary() }

// Primitive names the implementation the selected path uses for one
// primitive, for `edge-resnet cpu` and bug reports.
type Primitive struct{ Name, Impl string }

// Primitives lists the selected path's implementation of each primitive.
func Primitives() []Primitive {
	lanes := func(set bool, n int, isa string) string {
		if !set {
			return "Go"
		}
		return fmt.Sprintf("%s, %d lanes", isa, n)
	}
	return []Primitive{
		{"gemm (1x1 conv, im2col conv, fc)", fmt.Sprintf("%s (MR=%d, NR=%d)", gemm.name, gemm.mr, gemm.nr)},
		{"int8 gemm", gemm8Desc()},
		{"winograd transforms", winoImplFor(selected.name).name},
		{"max pool", lanes(selected.maxWindow != nil, selected.maxLanes, selected.name)},
		{"winograd epilogue", lanes(selected.epilogue != nil, selected.epiLanes, selected.name)},
		{"int8 max pool", lanes(selected.maxWindow8 != nil, selected.max8Lanes, selected.name)},
		{"quantize, dequantize", lanes(selected.quantize != nil, selected.quantLanes, selected.name)},
		{"int8 add (unfused)", lanes(selected.add8 != nil, selected.quantLanes, selected.name)},
		{"depthwise conv", depthwiseDesc()},
		{"grouped conv (direct)", groupConvDesc()},
		{"im2col, avg pool, softmax, copies", "Go"},
	}
}

// PathName is the selected path's name.
func PathName() string { return selected.name }

// Selection describes the chosen path, and why if it was forced.
func Selection() string {
	if selectionNote != "" {
		return selected.name + " (" + selectionNote + ")"
	}
	return selected.name
}

// gemm8Desc describes the int8 GEMM kernel and its narrow variant.
func gemm8Desc() string {
	d := fmt.Sprintf("%s (MR=%d, NR=%d, K groups of %d)", gemm8.name, gemm8.mr, gemm8.nr, gemm8.kg)
	if nw := gemm8.narrow; nw != nil {
		d += fmt.Sprintf("; weights in [%d, %d]: %s (MR=%d, NR=%d)", NarrowLo, NarrowHi, nw.name, nw.mr, nw.nr)
	}
	return d
}
