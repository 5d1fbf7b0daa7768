package firmware

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// TestFormat12 checks what format 1.2 adds: images with a batch, the new
// ops or grouped convolutions are 1.2 and list "grouped_conv" in
// "requires" when they have one (so a 1.1 reader, which would ignore the
// group and misread the weights, refuses them as ErrVersion), while images
// without them keep their minor version.
func TestFormat12(t *testing.T) {
	minor := func(img []byte) uint16 { return binary.LittleEndian.Uint16(img[10:]) }
	if m := minor(mustEncode(t, allOpsModel())); m != 0 {
		t.Errorf("allOpsModel: format 1.%d, want 1.0", m)
	}
	img := mustEncode(t, allOpsModel12())
	if m := minor(img); m != 2 {
		t.Errorf("allOpsModel12: format 1.%d, want 1.2", m)
	}
	if !strings.Contains(string(img), `"requires":["grouped_conv"]`) {
		t.Error(`allOpsModel12: "requires" does not list grouped_conv`)
	}
	bothParsers(t, func(t *testing.T) {
		err := decodeErr(t, editManifest(t, img, func(m map[string]any) { delete(m, "requires") }))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `"grouped_conv"`) {
			t.Errorf("grouped conv without its feature: %v", err)
		}
		err = decodeErr(t, editManifest(t, img, func(m map[string]any) { m["graph"].(map[string]any)["batch"] = -1 }))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "batch") {
			t.Errorf("negative batch: %v", err)
		}
		err = decodeErr(t, editManifest(t, img, func(m map[string]any) { m["requires"] = []any{"grouped_conv", "winograd_v9"} }))
		if !errors.Is(err, ErrVersion) {
			t.Errorf("unknown feature: %v", err)
		}
	})
}
