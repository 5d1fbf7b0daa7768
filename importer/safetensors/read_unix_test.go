//go:build linux || darwin || freebsd

package safetensors

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/firmware"
)

// ReadFile reads devices too, and stops at an impossible header.
func TestReadFileDevices(t *testing.T) {
	defer func(old int64) { firmware.MaxModelBytes = old }(firmware.MaxModelBytes)
	firmware.MaxModelBytes = 1 << 20
	for path, msg := range map[string]string{
		"/dev/zero":    "/dev/zero: corrupt safetensors file: header of 0 bytes in a 8-byte file",
		"/dev/urandom": "/dev/urandom: corrupt safetensors file: header of",
		"/dev/null":    "/dev/null: corrupt safetensors file: 0 bytes, shorter than the header length",
	} {
		if _, _, err := ReadFile(path); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want ErrCorrupt with %q", path, err, msg)
		}
	}
	if _, _, err := ReadFile(t.TempDir() + "/none.safetensors"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
