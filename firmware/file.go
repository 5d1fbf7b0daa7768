package firmware

import (
	"fmt"
	"os"
)

// File is a model image opened from disk. Its Model's weights live in the
// file's memory mapping where the platform has mmap (Linux, macOS, FreeBSD)
// and in one heap buffer elsewhere; either way they are read-only. Loading
// is therefore nearly free in memory: pages come from the page cache and
// are shared between processes that open the same image.
type File struct {
	*Model
	data  []byte
	unmap func([]byte) error // nil when data is an ordinary heap buffer
}

// Open reads and fully checks the image at path (as Decode does). Errors
// name the path. The file must not be modified in place while it is open:
// a truncated mapping faults on access. WriteFile replaces files by rename,
// which is safe.
func Open(path string) (*File, error) {
	data, unmap, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	m, err := decode(data, modeDecode)
	if err != nil {
		if unmap != nil {
			unmap(data)
		}
		return nil, fmt.Errorf("firmware: %s: %w", path, err)
	}
	return &File{Model: m, data: data, unmap: unmap}, nil
}

// Close releases the mapping. The Model and every slice obtained from it
// must not be used afterwards: its weights point into the unmapped memory
// and reading them would crash the process. Close sets f.Model to nil so
// that later use through f fails visibly; it is safe to call twice.
func (f *File) Close() error {
	data, unmap := f.data, f.unmap
	f.Model, f.data, f.unmap = nil, nil, nil
	if unmap == nil || data == nil {
		return nil
	}
	if err := unmap(data); err != nil {
		return fmt.Errorf("firmware: unmap: %w", err)
	}
	return nil
}

// readWhole is the portable loader: one heap buffer. Go allocates large
// buffers page-aligned, so the weights are still used in place.
func readWhole(path string) ([]byte, func([]byte) error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return readOpen(f, path)
}

// readOpen reads an opened file into one heap buffer of at most
// MaxModelBytes; from pipes and devices too, which have no size and
// cannot be opened twice.
func readOpen(f *os.File, path string) ([]byte, func([]byte) error, error) {
	data, err := readModel(f, MaxModelBytes, imageOnly)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil, nil
}
