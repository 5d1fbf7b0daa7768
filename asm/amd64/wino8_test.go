package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInnerLoopMultiplyShare checks that the full-tile K loop of each int16
// GEMM of winograd8_amd64.s is mostly multiply-accumulates: per row of the
// tile one broadcast and NV products (VNNI) or NV (VPMADDWD, VPADDD)
// pairs, plus the B loads and the loop overhead.
func TestInnerLoopMultiplyShare(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "kernels", "winograd8_amd64.s"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range gemms16 {
		label := k.name + fmt.Sprintf("_m%d_loop:", k.mr)
		i := strings.Index(string(src), label)
		if i < 0 {
			t.Fatalf("%s: no main loop %q", k.name, label)
		}
		body := string(src[i+len(label):])
		body = body[:strings.Index(body, "JNZ")]
		total, mul := 0, 0
		for _, line := range strings.Split(body, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			total++
			if f[0] == "VPDPWSSD" || f[0] == "VPMADDWD" {
				mul++
			}
		}
		want := k.mr * k.nv * k.unroll
		if mul != want {
			t.Errorf("%s: %d multiply instructions in the main loop, want %d", k.name, mul, want)
		}
		t.Logf("%s: %d of %d instructions multiply (%.0f%%)", k.name, mul, total+1, 100*float64(mul)/float64(total+1))
	}
}
