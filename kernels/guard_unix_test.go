//go:build unix

package kernels

import (
	"os"
	"syscall"
	"testing"
	"unsafe"
)

// guardedEnd is a float32 buffer whose end touches an inaccessible page,
// so that a kernel reading even one value past a slice taken with tail
// crashes the test instead of passing silently.
type guardedEnd struct {
	mem []byte
	f   []float32
}

func newGuardedEnd(t *testing.T, n int) *guardedEnd {
	page := os.Getpagesize()
	size := (n*4+page-1)/page*page + page
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mprotect(mem[size-page:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	usable := (size - page) / 4
	return &guardedEnd{mem: mem, f: unsafe.Slice((*float32)(unsafe.Pointer(&mem[0])), usable)}
}

// tail returns the last n values before the guard page.
func (g *guardedEnd) tail(n int) []float32 {
	if n > len(g.f) {
		panic("guardedEnd too small")
	}
	return g.f[len(g.f)-n:]
}
