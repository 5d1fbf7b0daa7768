package main

import (
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writePNG writes a 28x28 gray image (the built-in model's input size).
func writePNG(t *testing.T, p string, v uint8) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range img.Pix {
		img.Pix[i] = v + uint8(i)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// TestNumericFlagRanges: numeric flags of eval and quantize out of range
// are one-line errors naming the flag and the value, before any work.
func TestNumericFlagRanges(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"eval", "--limit", "-5", "nowhere"}, "--limit -5: must be >= 0 (0: all)"},
		{[]string{"eval", "--threads", "-1", "nowhere"}, "--threads -1: must be 0 to 1024 (0: one per CPU)"},
		{[]string{"quantize", "--calib", "nowhere", "-o", "x.ern", "-n", "-1"}, "-n -1: must be >= 0 (0: all)"},
		{[]string{"quantize", "--calib", "nowhere", "-o", "x.ern", "--threads", "-2"}, "--threads -2: must be 0 to 1024 (0: one per CPU)"},
		{[]string{"eval", "--threads", "100000", "nowhere"}, "--threads 100000: must be 0 to 1024 (0: one per CPU)"},
		{[]string{"classify", "--threads", "2000", "x.png"}, "--threads 2000: must be 0 to 1024 (0: one per CPU)"},
		{[]string{"classify", "-k", "0", "x.png"}, "-k 0: must be >= 1 (classes per input)"},
		{[]string{"bench", "--runs", "0"}, "--runs 0: must be 1 to 1000000 (timed runs)"},
		{[]string{"bench", "--warmup", "-1"}, "--warmup -1: must be 0 to 1000000 (untimed runs)"},
		{[]string{"bench", "--arch", "resnet18", "--height", "-3"}, "--height -3: must be >= 0 (0: the default)"},
		{[]string{"inspect", "--threads", "0"}, "--threads 0: must be 1 to 1024 (the scratch of that many workers)"},
	}
	for _, c := range cases {
		_, _, err := run(t, c.args...)
		if err == nil || err.Error() != c.want {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}

// TestEvalNamesBadImages: eval reports each unreadable image on one line
// naming it, goes on, and exits with a failure status; a symbolic link to
// the set works.
func TestEvalNamesBadImages(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "set", "0", "a.png"), 10)
	writePNG(t, filepath.Join(dir, "set", "9", "b.png"), 20)
	os.WriteFile(filepath.Join(dir, "set", "9", "c.png"), []byte("\x89PNG\r\n\x1a\ntruncated"), 0o644)
	data := filepath.Join(dir, "set")
	if err := os.Symlink("set", filepath.Join(dir, "link")); err == nil {
		data = filepath.Join(dir, "link")
	}
	out, stderr, err := run(t, "eval", "--json", "--threads", "2", data)
	if !errors.Is(err, errReported) {
		t.Fatalf("want a failure status, got %v", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	bad := filepath.Join(data, "9", "c.png")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "edge-resnet: ") || !strings.Contains(lines[0], bad) {
		t.Errorf("stderr %q, want one line naming %s", stderr, bad)
	}
	var r struct{ Images, Failed int }
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Images != 3 || r.Failed != 1 {
		t.Errorf("%v: %s", err, out)
	}
}

// TestQuantizeSkipsBadImages: quantize warns about each unreadable
// calibration image and counts it, and fails when fewer than half remain.
func TestQuantizeSkipsBadImages(t *testing.T) {
	dir := t.TempDir()
	calib := filepath.Join(dir, "calib")
	for i, name := range []string{"a.png", "b.png", "c.png", "d.png"} {
		writePNG(t, filepath.Join(calib, name), uint8(40*i))
	}
	bad := filepath.Join(calib, "e.png")
	os.WriteFile(bad, []byte("not an image"), 0o644)
	out := filepath.Join(dir, "q.ern")
	stdout, stderr, err := run(t, "quantize", "--calib", calib, "-o", out, "--json")
	if err != nil {
		t.Logf("quantize: %v", err) // writing may fail elsewhere; the report comes first
	}
	want := "edge-resnet: warning: skipping calibration image " + bad + ": "
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], want) ||
		strings.Count(lines[0], bad) != 1 {
		t.Errorf("stderr %q, want one line starting %q", stderr, want)
	}
	var rep struct {
		Images        int `json:"images"`
		Skipped       int `json:"skipped"`
		SkippedImages []struct {
			Name, Reason string
		} `json:"skipped_images"`
	}
	line, _, _ := strings.Cut(stdout, "\n")
	if err := json.Unmarshal([]byte(line), &rep); err != nil || rep.Images != 4 || rep.Skipped != 1 ||
		len(rep.SkippedImages) != 1 || rep.SkippedImages[0].Name != bad || rep.SkippedImages[0].Reason == "" {
		t.Errorf("report %+v (%v)\n%s", rep, err, stdout)
	}

	// Three bad of five: fewer than half remain.
	for _, name := range []string{"a.png", "b.png"} {
		os.WriteFile(filepath.Join(calib, name), nil, 0o644)
	}
	_, stderr, err = run(t, "quantize", "--calib", calib, "-o", out)
	if err == nil || !strings.Contains(err.Error(), "only 2 of the 5 calibration images examined are readable") || stderr != "" {
		t.Errorf("three bad of five: %v\n%s", err, stderr)
	}
}
