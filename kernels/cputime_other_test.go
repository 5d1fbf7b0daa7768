//go:build !linux

package kernels

import "time"

// threadCPU is not measured outside Linux; benchmarks report wall time only.
func threadCPU() (time.Duration, bool) { return 0, false }
