//go:build gc && !purego

package kernels

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Linux keeps the AMX tile data (XFEATURE_XTILEDATA, 8 KiB of register
// state) off until a process asks for it; an AMX instruction without the
// permission raises SIGILL.
const (
	archReqXcompPerm  = 0x1023 // ARCH_REQ_XCOMP_PERM
	xfeatureXtiledata = 18     // XFEATURE_XTILEDATA
)

// amxRequest asks the kernel for the tile state of this process (every
// thread, present and future): arch_prctl(ARCH_REQ_XCOMP_PERM,
// XFEATURE_XTILEDATA). Kernels before 5.16 and VMs without AMX refuse.
func amxRequest() error {
	if _, _, e := unix.Syscall(unix.SYS_ARCH_PRCTL, archReqXcompPerm, xfeatureXtiledata, 0); e != 0 {
		return fmt.Errorf("arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): %w", e)
	}
	return nil
}
