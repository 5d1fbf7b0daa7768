//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// rssSupported: the suite measures the child's peak RSS and watches it live.
const rssSupported = true

// peakRSSKiB is a finished child's peak resident set (rusage ru_maxrss,
// KiB on Linux).
func peakRSSKiB(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return int64(ru.Maxrss) // int32 on 32-bit platforms
	}
	return 0
}

// liveRSSKiB is a running process's resident set, from /proc/PID/statm.
func liveRSSKiB(pid int) (int64, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()) / 1024, true
}

// dieWithParent makes the CLI die with its launcher (a launcher killed on
// its own deadline leaves no CLI behind).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
