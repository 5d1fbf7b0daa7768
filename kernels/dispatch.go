package kernels

import (
	"fmt"
	"os"
	"strings"
)

// EnvKernels forces a kernel path, e.g. EDGE_RESNET_KERNELS=generic, for
// tests and bug reports. An unknown or unsupported name is reported by
// Selection and the best available path is used.
const EnvKernels = "EDGE_RESNET_KERNELS"

// registry lists the GEMM implementations compiled into this binary that
// the CPU supports, best first. ISA files append to it in init.
var registry = []*gemmImpl{gemmGeneric}

// gemmImpls returns the implementations usable on this CPU, best first.
func gemmImpls() []*gemmImpl { return registry }

var selectionNote string

func init() { selectionNote = selectFromEnv() }

func selectFromEnv() string {
	want := strings.TrimSpace(os.Getenv(EnvKernels))
	gemm = registry[0]
	if want == "" {
		return ""
	}
	if err := Select(want); err != nil {
		return fmt.Sprintf("%s=%q ignored: %v", EnvKernels, want, err)
	}
	return fmt.Sprintf("forced by %s", EnvKernels)
}

// Select chooses the named kernel path for all primitives. It is not safe
// to call while kernels run, and weights packed before must be re-packed.
func Select(name string) error {
	var names []string
	for _, impl := range registry {
		if impl.name == name {
			gemm = impl
			return nil
		}
		names = append(names, impl.name)
	}
	return fmt.Errorf("kernel path %q not available on this CPU/build (have %s)", name, strings.Join(names, ", "))
}

// Available lists the kernel paths usable here, best first.
func Available() []string {
	var names []string
	for _, impl := range registry {
		names = append(names, impl.name)
	}
	return names
}

// Selection describes the chosen path, and why if it was forced.
func Selection() string {
	if selectionNote != "" {
		return gemm.name + " (" + selectionNote + ")"
	}
	return gemm.name
}
