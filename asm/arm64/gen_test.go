package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const generatedFile = "../../kernels/gemm_arm64.s"

// TestGeneratedUpToDate runs the generator into a temporary directory and
// fails on any difference with the committed kernels/gemm_arm64.s.
func TestGeneratedUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "gemm_arm64.s")
	cmd := exec.Command("go", "run", ".", "-out", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run: %v\n%s", err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(generatedFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s is stale at line %d:\n generated: %q\n committed: %q\nrun go generate ./kernels", generatedFile, i+1, g, w)
			}
		}
	}
	if !bytes.HasPrefix(want, []byte("// Code generated ")) || !bytes.Contains(want[:bytes.IndexByte(want, '\n')], []byte("DO NOT EDIT.")) {
		t.Error("the file does not start with a Code generated ... DO NOT EDIT. line")
	}
}

// function is the instruction lines of one TEXT block, labels kept.
type function []string

func functions(src []byte) map[string]function {
	fns := map[string]function{}
	var cur string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "TEXT ·"); ok {
			cur = rest[:strings.IndexByte(rest, '(')]
			continue
		}
		if cur == "" || line == "" || strings.HasPrefix(line, "\t//") || strings.HasPrefix(line, "//") {
			continue
		}
		fns[cur] = append(fns[cur], line)
	}
	return fns
}

// between returns the instructions from label from (exclusive) to the
// first line with prefix to (inclusive, if incl); from "" is the start.
func (f function) between(from, to string, incl bool) []string {
	start := -1
	if from == "" {
		start = 0
	}
	for i, l := range f {
		if l == from+":" {
			start = i + 1
			continue
		}
		if start >= 0 && strings.HasPrefix(l, to) {
			end := i
			if incl {
				end++
			}
			return instructions(f[start:end])
		}
	}
	panic(fmt.Sprintf("no %s: ... %s", from, to))
}

func instructions(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "\t") {
			out = append(out, l)
		}
	}
	return out
}

func isFMLA(l string) bool {
	return strings.HasPrefix(l, "\tVFMLA\t") || strings.Contains(l, "// fmla ")
}

// TestInnerLoopFMLAShare counts, in the generated code, the FMLA share of
// each GEMM kernel's main loop; the 6x16 kernel (all full tiles) must be
// at least 75% FMLA. It also logs instructions per FLOP for whole tiles.
func TestInnerLoopFMLAShare(t *testing.T) {
	src, err := os.ReadFile(generatedFile)
	if err != nil {
		t.Fatal(err)
	}
	fns := functions(src)
	for rows := gemmMR; rows >= 1; rows-- {
		name := gemmName(rows)
		f, ok := fns[name]
		if !ok {
			t.Fatalf("%s missing", name)
		}
		loop := f.between("loop4", "\tBNE\tloop4", true)
		fmla := 0
		for _, l := range loop {
			if isFMLA(l) {
				fmla++
			}
		}
		share := float64(fmla) / float64(len(loop))
		t.Logf("%s: main loop (4 k steps) %d instructions, %d FMLA = %.1f%%", name, len(loop), fmla, 100*share)
		if want := 4 * rows * gemmNR / 4; fmla != want {
			t.Errorf("%s: %d FMLA per 4 k steps, want %d", name, fmla, want)
		}
		if rows == gemmMR && share < 0.75 {
			t.Errorf("%s: inner loop is %.1f%% FMLA, want >= 75%%", name, 100*share)
		}
		if rows == gemmMR {
			logTileCost(t, f, rows)
		}
	}
}

// logTileCost logs instructions per FLOP of one full tile with every
// epilogue option on, counted statically from the code's blocks.
func logTileCost(t *testing.T, f function, rows int) {
	setup := len(f.between("", "tile:", false))
	head := len(f.between("tile", "loop4:", false))
	loop4 := len(f.between("loop4", "\tBNE\tloop4", true))
	loop1 := len(f.between("loop1", "\tBNE\tloop1", true))
	epi := len(f.between("epilogue", "\tRET", true))
	for _, k := range []int{64, 147, 576, 4608} {
		n := setup + head + k/4*loop4 + 1 + epi
		if k/4 == 0 {
			n--
		}
		if k%4 != 0 {
			n += 1 + k%4*loop1
		}
		perTile := n - setup // later tiles of one call
		flops := 2 * rows * gemmNR * k
		t.Logf("  k=%4d: %6d instructions per %d FLOPs (one call, one tile) = %.3f per FLOP; %.3f per FLOP per further tile in the call",
			k, n, flops, float64(n)/float64(flops), float64(perTile)/float64(flops))
	}
}
