//go:build linux || darwin || freebsd

package firmware

import (
	"fmt"
	"math"
	"os"

	"golang.org/x/sys/unix"

	"github.com/edge-resnet/edge-resnet/arena"
)

// readFile maps path read-only. Writes through the mapping would fault,
// which is what the model's immutability promises.
func readFile(path string) ([]byte, func([]byte) error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close() // the mapping outlives the descriptor
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		// Pipes and devices cannot be mapped (or have no size).
		return readOpen(f, path)
	}
	size := fi.Size()
	if size > MaxModelBytes {
		// Mapped pages cost no heap, but checking the CRC touches them all.
		return nil, nil, fmt.Errorf("%s: %w", path, tooLarge(MaxModelBytes, "the file is %s", arena.FormatBytes(size)))
	}
	if size < headerSize {
		return nil, nil, fmt.Errorf("%s: %w", path, corruptf("truncated: %d bytes, header needs %d", size, headerSize))
	}
	if size > math.MaxInt {
		return nil, nil, fmt.Errorf("%s: %d bytes do not fit in the address space", path, size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return data, unix.Munmap, nil
}

// syncDir makes a rename durable: on Linux the new directory entry is only
// safe on disk after the directory itself is synced. Best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
