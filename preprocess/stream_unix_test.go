//go:build linux || darwin

package preprocess

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fifo makes a named pipe that a goroutine fills with data (then closes)
// once a reader opens it.
func fifo(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	go func() {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		f.Write(data) // may fail once the reader has stopped: fine
	}()
	return p
}

// within runs f, failing the test if it takes more than 10 s (a read
// without end).
func within(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("did not return within 10 s")
	}
}

func TestDecodeFileStreams(t *testing.T) {
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 5, 3)))
	good := b.Bytes()

	// A pipe holding an image decodes; what it held counts against the
	// budget (in whole 1 MiB chunks).
	p := fifo(t, good)
	within(t, func() {
		img, err := DecodeFile(p)
		if err != nil || img.Bounds().Dx() != 5 {
			t.Errorf("image from a pipe: %v", err)
		}
	})
	p = fifo(t, good)
	setBudget(t, 1<<20)
	within(t, func() {
		_, err := DecodeFile(p)
		if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), "file data held in memory 1048576") {
			t.Errorf("pipe within 1 MiB of budget: %v", err)
		}
	})
	// A pipe that goes on, and /dev/zero, stop at MaxImageFileBytes.
	old := MaxImageFileBytes
	MaxImageFileBytes = 3 << 20
	defer func() { MaxImageFileBytes = old }()
	MaxDecodeBytes = 256 << 20
	p = fifo(t, append(bytes.Clone(good), make([]byte, 5<<20)...))
	within(t, func() {
		_, err := DecodeFile(p)
		if err == nil || !strings.Contains(err.Error(), "reading a named pipe: more than 3145728 bytes (MaxImageFileBytes), stopped reading") {
			t.Errorf("long pipe: %v", err)
		}
	})
	if _, err := os.Stat("/dev/zero"); err == nil {
		within(t, func() {
			_, err := DecodeFile("/dev/zero")
			if err == nil || !strings.Contains(err.Error(), "preprocess: /dev/zero: reading a character device: more than 3145728 bytes (MaxImageFileBytes)") {
				t.Errorf("/dev/zero: %v", err)
			}
		})
	}
	if _, err := DecodeFile(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
}

func TestReadNPYFileStreams(t *testing.T) {
	var b bytes.Buffer
	WriteNPY(&b, []int{1, 2, 3}, []float32{1, 2, 3, 4, 5, 6})
	good := b.Bytes()
	p := fifo(t, good)
	within(t, func() {
		shape, data, err := ReadNPYFile(p)
		if err != nil || len(shape) != 3 || len(data) != 6 || data[5] != 6 {
			t.Errorf("npy from a pipe: %v %v %v", shape, data, err)
		}
	})
	p = fifo(t, append(bytes.Clone(good), 0))
	within(t, func() {
		_, _, err := ReadNPYFile(p)
		if err == nil || !strings.Contains(err.Error(), "data goes on after the array's 6 values") {
			t.Errorf("npy with trailing data from a pipe: %v", err)
		}
	})
	p = fifo(t, good[:len(good)-3])
	within(t, func() {
		_, _, err := ReadNPYFile(p)
		if err == nil || !strings.Contains(err.Error(), "data truncated") {
			t.Errorf("truncated npy from a pipe: %v", err)
		}
	})
	// A header declaring more than the budget, then data without end.
	p = fifo(t, npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000,), }", make([]byte, 1<<20), false))
	within(t, func() {
		_, _, err := ReadNPYFile(p)
		if !errors.Is(err, ErrOverBudget) {
			t.Errorf("npy bomb from a pipe: %v", err)
		}
	})
	if _, err := os.Stat("/dev/zero"); err == nil {
		within(t, func() {
			_, _, err := ReadNPYFile("/dev/zero")
			if err == nil || !strings.Contains(err.Error(), "not a .npy file") {
				t.Errorf("/dev/zero: %v", err)
			}
		})
	}
}
