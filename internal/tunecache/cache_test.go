package tunecache

import (
	"os"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/internal/engine"
)

var key = Key{CPU: "Test CPU [AVX2]", Path: "avx2", Threads: 2}

func result(choice string) engine.TuneResult {
	return engine.TuneResult{Choice: choice, Ms: map[string]float64{choice: 1, "other": 2}}
}

// TestRoundTrip saves measurements and reads them back; a Save with
// nothing new writes nothing.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	c, warn := Open(dir, key)
	if warn != nil || c.Len() != 0 {
		t.Fatalf("new cache: %v, %d layers", warn, c.Len())
	}
	c.Put("a", result("gemm"))
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(c.Path())
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if st2, _ := os.Stat(c.Path()); !st2.ModTime().Equal(st.ModTime()) {
		t.Error("a Save with nothing new rewrote the file")
	}
	c2, warn := Open(dir, key)
	if r, ok := c2.Get("a"); warn != nil || !ok || r.Choice != "gemm" || r.Ms["other"] != 2 {
		t.Errorf("read back: %+v %v %v", r, ok, warn)
	}
}

// TestSaveKeepsOthers checks that two caches of one key saving in turn
// (two processes) keep both's layers.
func TestSaveKeepsOthers(t *testing.T) {
	dir := t.TempDir()
	a, _ := Open(dir, key)
	b, _ := Open(dir, key)
	a.Put("a", result("gemm"))
	b.Put("b", result("winograd4"))
	if err := a.Save(); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(); err != nil {
		t.Fatal(err)
	}
	c, _ := Open(dir, key)
	if _, ok := c.Get("a"); !ok || c.Len() != 2 {
		t.Errorf("after two saves: %d layers", c.Len())
	}
}

// TestUnusableFiles checks that a corrupt, foreign, older, incomplete or
// oversized file is not used, with a warning naming the file and why,
// and is replaced by the next Save.
func TestUnusableFiles(t *testing.T) {
	cases := []struct{ name, data, why string }{
		{"truncated", `{"version": 1, "key": {"cpu": `, "corrupt"},
		{"not json", "\x00\x01garbage", "corrupt"},
		{"another CPU", `{"version": 1, "key": {"cpu": "Another CPU", "path": "avx2", "threads": 2}, "layers": {"a": {"choice": "gemm", "ms": {"gemm": 1}}}}`, "written for"},
		{"older format", `{"version": 0, "key": {"cpu": "Test CPU [AVX2]", "path": "avx2", "threads": 2}, "layers": {}}`, "format 0"},
		{"no choice", `{"version": 1, "key": {"cpu": "Test CPU [AVX2]", "path": "avx2", "threads": 2}, "layers": {"a": {"ms": {"gemm": 1}}}}`, "no choice"},
		{"oversized", strings.Repeat(" ", maxFileBytes+1), "more than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c, _ := Open(dir, key)
			if err := os.WriteFile(c.Path(), []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			c, warn := Open(dir, key)
			if warn == nil || !strings.Contains(warn.Error(), tc.why) || !strings.Contains(warn.Error(), c.Path()) || c.Len() != 0 {
				t.Fatalf("warning %v, %d layers", warn, c.Len())
			}
			c.Put("b", result("gemm"))
			if err := c.Save(); err != nil {
				t.Fatal(err)
			}
			if c, warn := Open(dir, key); warn != nil || c.Len() != 1 {
				t.Errorf("after Save: %v, %d layers", warn, c.Len())
			}
		})
	}
}
