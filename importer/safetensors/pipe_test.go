package safetensors

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/firmware"
)

// pipe returns the read end of a pipe that yields data.
func pipe(t *testing.T, data []byte) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		t.Skip("no pipes here:", err)
	}
	t.Cleanup(func() { r.Close() })
	go func() {
		defer w.Close()
		w.Write(data) // fails once the reader stops: fine
	}()
	return r
}

// Pipes are read to firmware.MaxModelBytes.
func TestReadPipe(t *testing.T) {
	st := file(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, []byte{0, 0, 128, 63})
	ts, _, err := read(pipe(t, st))
	if err != nil || len(ts) != 1 {
		t.Fatalf("%d tensors, %v", len(ts), err)
	}
	defer func(old int64) { firmware.MaxModelBytes = old }(firmware.MaxModelBytes)
	firmware.MaxModelBytes = 1 << 20
	_, _, err = read(pipe(t, file("{}", make([]byte, 2<<20))))
	msg := "model too large: more than 1.0 MiB of data (limit 1.0 MiB, firmware.MaxModelBytes)"
	if !errors.Is(err, firmware.ErrTooLarge) || !strings.Contains(err.Error(), msg) {
		t.Fatalf("%v, want %q", err, msg)
	}
}
