//go:build unix

package dataset

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSpecialFiles: pipes and devices, as arguments or inside a folder,
// are refused without being opened (opening a pipe would block).
func TestSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "set", "c", "a.png"), pngBytes(t, 1))
	for _, name := range []string{"set/c/pipe.png", "pipe.zip", "pipe.bin", "pipe-images-idx3-ubyte", "pipe.png"} {
		if err := syscall.Mkfifo(filepath.Join(dir, name), 0o644); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := Open(filepath.Join(dir, "set"), nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		if s.Len() != 2 {
			t.Errorf("%d samples, want 2", s.Len())
			return
		}
		_, err = s.Image(1)
		checkErr(t, "pipe in a folder", err, filepath.Join(dir, "set", "c", "pipe.png"), "a named pipe, not an image file")
		for _, name := range []string{"pipe.zip", "pipe.bin", "pipe-images-idx3-ubyte"} {
			_, err := Open(filepath.Join(dir, name), nil)
			checkErr(t, name, err, filepath.Join(dir, name), "a named pipe, not a regular file")
		}
		_, err = OpenImages(filepath.Join(dir, "pipe.png"))
		checkErr(t, "pipe.png", err, "a named pipe, not a regular file")
		_, err = OpenImages("/dev/zero")
		checkErr(t, "/dev/zero", err, "/dev/zero: a character device, not a regular file")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("blocked on a named pipe")
	}
}
