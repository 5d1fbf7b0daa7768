package edgeresnet

import (
	"runtime"
	"strings"

	"github.com/klauspost/cpuid/v2"

	"github.com/edge-resnet/edge-resnet/internal/engine"
	"github.com/edge-resnet/edge-resnet/kernels"
)

// CPUInfo describes the processor and the kernels chosen for it, for
// `edge-resnet cpu` and bug reports.
type CPUInfo struct {
	Name       string `json:"name"` // as the CPU reports it
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Cores      int    `json:"logical_cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	// CPUs are those this process may run on, fastest first, with their
	// speeds (cpu_capacity, else the highest clock in kHz, else 1), and
	// Threads the session default that follows (DefaultThreads).
	CPUs       []int       `json:"cpus"`
	Speeds     []int64     `json:"cpu_speeds"`
	Threads    int         `json:"default_threads"`
	Features   []string    `json:"features"`   // the SIMD features kernel selection can use
	Available  []string    `json:"available"`  // kernel paths usable here, best first
	Path       string      `json:"path"`       // the selected path
	Selection  string      `json:"selection"`  // the path, and why when EDGE_RESNET_KERNELS forced it
	Primitives []Primitive `json:"primitives"` // the selected path's implementation of each primitive
	// Error is a refused EDGE_RESNET_KERNELS or EDGE_RESNET_MAX_MEMORY
	// setting ("" if none): loads and sessions fail with it.
	Error string `json:"error,omitempty"`
}

// Primitive names the implementation of one compute primitive.
type Primitive struct {
	Name string `json:"name"`
	Impl string `json:"impl"`
}

// cpuFeatures are the features reported, in this order, when present.
var cpuFeatures = []cpuid.FeatureID{cpuid.SSE2, cpuid.AVX, cpuid.AVX2, cpuid.FMA3, cpuid.AVX512F,
	cpuid.AVX512BW, cpuid.AVX512VL, cpuid.AVX512VNNI, cpuid.AVXVNNI, cpuid.AMXTILE, cpuid.AMXINT8,
	cpuid.AMXBF16, cpuid.ASIMD, cpuid.ASIMDDP}

// CPU describes this processor and the kernel path selected for it.
func CPU() CPUInfo {
	c := CPUInfo{
		Name: strings.TrimSpace(cpuid.CPU.BrandName), OS: runtime.GOOS, Arch: runtime.GOARCH,
		Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Available: kernels.Available(), Path: kernels.Best().Name(), Selection: kernels.Selection(),
	}
	c.CPUs, c.Speeds, _ = engine.CPUSpeeds()
	c.Threads = DefaultThreads()
	for _, f := range cpuFeatures {
		if cpuid.CPU.Supports(f) {
			c.Features = append(c.Features, f.String())
		}
	}
	for _, p := range kernels.Best().Primitives() {
		c.Primitives = append(c.Primitives, Primitive{Name: p.Name, Impl: p.Impl})
	}
	if err := envError(); err != nil {
		c.Error = err.Error()
	}
	return c
}

// CheckEnvironment reports a refused EDGE_RESNET_KERNELS or
// EDGE_RESNET_MAX_MEMORY setting (nil when both are fine), the error every
// load and session would return.
func CheckEnvironment() error { return envError() }
