package arena

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PhysicalMemory is the memory this process may use, in bytes: the
// machine's physical memory, or the control group's limit when that is
// lower (containers, Kubernetes pods, systemd slices). It returns 0 when
// neither can be read.
func PhysicalMemory() int64 {
	phys := physicalMemory()
	if lim := cgroupLimit(); lim > 0 && (phys == 0 || lim < phys) {
		return lim
	}
	return phys
}

// cgroupLimit reads the memory limit of cgroup v2 (memory.max) or v1
// (memory.limit_in_bytes) of the process's own group; 0 when there is none.
func cgroupLimit() int64 {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		// "max", or v1's "no limit" (a huge page-rounded number).
		if err == nil && v > 0 && v < 1<<60 {
			return v
		}
	}
	return 0
}

// FormatBytes prints a byte count for people: "512 B", "1.5 KiB",
// "10.0 GiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for (v >= unit || v <= -unit) && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[i])
}

// ParseBytes reads a byte count: a plain number ("1073741824", "1e9") or
// one with a unit, decimal (kB, MB, GB, TB) or binary (KiB, MiB, GiB, TiB;
// K, M, G, T are binary too), case-insensitive, spaces allowed. Negative,
// non-finite and fractional byte counts are errors.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[unit]
	if mult == 0 && unit != "" {
		// "1e9" ends in a digit but "1e" does not: let ParseFloat judge.
		num, mult = t, 1
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 {
		return 0, fmt.Errorf("%q is not a byte count (want e.g. 512MiB, 2GB, 1e9)", s)
	}
	v *= mult
	if v < 0 || v != v || v >= 1<<63 || v != float64(int64(v)) {
		return 0, fmt.Errorf("%q is not a byte count between 0 and 2^63 bytes", s)
	}
	return int64(v), nil
}
