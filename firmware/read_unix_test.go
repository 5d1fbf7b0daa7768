//go:build linux || darwin || freebsd

package firmware

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fifo makes a named pipe that yields data to its first reader.
func fifo(t *testing.T, data []byte) string {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	go func() {
		w, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer w.Close()
		w.Write(data) // fails with EPIPE once the reader stops: fine
	}()
	return path
}

// Open reads pipes and devices through one buffer, as far as the image
// header says and at most MaxModelBytes.
func TestOpenPipesAndDevices(t *testing.T) {
	img := mustEncode(t, tinyModel())
	long := append(bytes.Clone(img), make([]byte, 1<<20)...)
	cases := []struct {
		name  string
		path  func(t *testing.T) string
		limit int64
		err   error
		msg   string
	}{
		{name: "image through a pipe", path: func(t *testing.T) string { return fifo(t, img) }},
		{name: "/dev/zero", path: func(*testing.T) string { return "/dev/zero" }, err: ErrCorrupt, msg: "/dev/zero: not a model image (bad magic)"},
		{name: "/dev/null", path: func(*testing.T) string { return "/dev/null" }, err: ErrCorrupt, msg: "/dev/null: truncated"},
		{name: "ONNX through a pipe", path: func(t *testing.T) string { return fifo(t, []byte{0x08, 0x07, 0x12, 0x03}) }, err: ErrCorrupt, msg: "bad magic"},
		{name: "image over the limit", path: func(t *testing.T) string { return fifo(t, img) }, limit: 100,
			err: ErrTooLarge, msg: "model too large: the image header declares a blob of"},
		{name: "image with more after it", path: func(t *testing.T) string { return fifo(t, long) }, err: ErrCorrupt, msg: "continues after"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.limit > 0 {
				defer func(old int64) { MaxModelBytes = old }(MaxModelBytes)
				MaxModelBytes = tc.limit
			}
			path := tc.path(t)
			t0 := time.Now()
			f, err := Open(path)
			if d := time.Since(t0); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if tc.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				checkSame(t, tinyModel(), f.Model)
				f.Close()
				return
			}
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "firmware: ") {
				t.Fatalf("err = %v, want %v containing %q", err, tc.err, tc.msg)
			}
		})
	}
}

// ReadCapped reads pipes and devices to the limit, and stops after the
// first bytes where they are not plausible.
func TestReadCappedPipes(t *testing.T) {
	plausible := func(head []byte) bool { return head[0] != 0 }
	read := func(path string, limit int64) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return ReadCapped(f, limit, 4, plausible)
	}
	data := bytes.Repeat([]byte{1, 2, 3}, 1000)
	if got, err := read(fifo(t, data), 1<<20); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	if got, err := read(fifo(t, data[:3]), 1<<20); err != nil || !bytes.Equal(got, data[:3]) {
		t.Fatalf("short stream: %v, %v", got, err)
	}
	if got, err := read("/dev/zero", 1<<20); err != nil || len(got) != 4 {
		t.Fatalf("/dev/zero: %d bytes, %v", len(got), err)
	}
	_, err := read(fifo(t, data), 1000)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 1000 B of data") {
		t.Fatalf("over the limit: %v", err)
	}
}
