package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGenerated fails if kernels/gemm_amd64.s or kernels/gemm8_amd64.s is
// not exactly what the generator produces now (edited by hand, or generator
// changed without `go generate ./kernels`).
func TestGenerated(t *testing.T) {
	for _, f := range []struct {
		name string
		gen  func() ([]byte, error)
	}{{"gemm_amd64.s", generate}, {"gemm8_amd64.s", generate8}} {
		t.Run(f.name, func(t *testing.T) { checkGenerated(t, f.name, f.gen) })
	}
}

func checkGenerated(t *testing.T, name string, gen func() ([]byte, error)) {
	src, err := gen()
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(tmp, src, 0o644); err != nil {
		t.Fatal(err)
	}
	fresh, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join("..", "..", "kernels", name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		line := 1 + bytes.Count(fresh[:commonPrefix(fresh, committed)], []byte("\n"))
		t.Fatalf("kernels/%s differs from the generator's output from line %d; run `go generate ./kernels`", name, line)
	}
	if !bytes.HasPrefix(committed, []byte("// Code generated ")) || !bytes.Contains(committed[:200], []byte("DO NOT EDIT.")) {
		t.Fatal("generated file lacks the `// Code generated ... DO NOT EDIT.` header")
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
