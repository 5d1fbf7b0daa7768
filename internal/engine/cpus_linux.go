//go:build linux

package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// pinningSupported: Linux binds threads to CPUs (sched_setaffinity).
const pinningSupported = true

// sysCPU is where Linux describes the CPUs; tests point it at a fake tree.
var sysCPU = "/sys/devices/system/cpu"

// CPUSpeeds returns the CPUs this process may run on, fastest first, with
// each one's relative speed: on big.LITTLE boards (Raspberry Pi's
// neighbours: RK3588's Cortex-A76 + A55, Amlogic S922X's A73 + A53) the
// kernel's cpu_capacity (1024 for the biggest core), else the highest
// clock cpufreq reports, else 1 for every CPU. Ties keep CPU number order.
func CPUSpeeds() (cpus []int, speed []int64, err error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, nil, fmt.Errorf("the CPUs this process may use: %w", err)
	}
	for c := range 1024 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	cpus, speed = rankCPUs(cpus)
	return cpus, speed, nil
}

// rankCPUs sorts cpus fastest first (cpuSpeed; ties in the given order)
// and returns their speeds.
func rankCPUs(cpus []int) ([]int, []int64) {
	cpus = slices.Clone(cpus)
	speeds := map[int]int64{}
	for _, c := range cpus {
		speeds[c] = cpuSpeed(c)
	}
	slices.SortStableFunc(cpus, func(a, b int) int { return int(speeds[b] - speeds[a]) })
	speed := make([]int64, len(cpus))
	for i, c := range cpus {
		speed[i] = speeds[c]
	}
	return cpus, speed
}

// cpuSpeed is CPU c's cpu_capacity, else its cpuinfo_max_freq (kHz), else 1.
func cpuSpeed(c int) int64 {
	dir := filepath.Join(sysCPU, fmt.Sprintf("cpu%d", c))
	for _, f := range []string{"cpu_capacity", "cpufreq/cpuinfo_max_freq"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 {
			return v
		}
	}
	return 1
}

// pinThread binds the calling goroutine to its OS thread and that thread
// to CPU cpu, returning what undoes both (the thread's previous CPU set).
func pinThread(cpu int) (undo func(), err error) {
	runtime.LockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("pinning a worker thread to CPU %d: %w", cpu, err)
	}
	return func() {
		unix.SchedSetaffinity(0, &old) // back to what it was; nothing to do if that fails
		runtime.UnlockOSThread()
	}, nil
}

// threadCPUs is the CPU set of the calling thread, for tests.
func threadCPUs() []int {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) != nil {
		return nil
	}
	var out []int
	for c := range 1024 {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}
