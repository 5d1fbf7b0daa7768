//go:build darwin || freebsd

package arena

import "golang.org/x/sys/unix"

func physicalMemory() int64 {
	v, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		if v, err = unix.SysctlUint64("hw.physmem"); err != nil {
			return 0
		}
	}
	return int64(v)
}
