//go:build purego || !gc || !(amd64 || arm64)

package kernels

import "runtime"

// Builds without assembly (purego, gccgo, or no kernels for GOARCH) offer
// only the generic path, so no CPU feature matters to them.
func cpuSummary() string { return runtime.GOARCH + " [portable build: no assembly kernels]" }
