//go:build !linux

package engine

import "runtime"

// pinningSupported: threads are not bound to CPUs on this OS.
const pinningSupported = false

// CPUSpeeds returns the CPUs 0..GOMAXPROCS-1, all of speed 1: this OS's
// topology is not read.
func CPUSpeeds() (cpus []int, speed []int64, err error) {
	for c := range runtime.GOMAXPROCS(0) {
		cpus, speed = append(cpus, c), append(speed, 1)
	}
	return cpus, speed, nil
}

func pinThread(int) (func(), error) { return nil, errNoPinning }

func threadCPUs() []int { return nil }
