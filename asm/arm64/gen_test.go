package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const (
	generatedFile  = "../../kernels/gemm_arm64.s"
	generatedFile8 = "../../kernels/gemm8_arm64.s"
)

// TestGeneratedUpToDate runs the generator into a temporary directory and
// fails on any difference with the committed kernels/gemm_arm64.s and
// kernels/gemm8_arm64.s.
func TestGeneratedUpToDate(t *testing.T) {
	dir := t.TempDir()
	out, out8 := filepath.Join(dir, "gemm_arm64.s"), filepath.Join(dir, "gemm8_arm64.s")
	cmd := exec.Command("go", "run", ".", "-out", out, "-out8", out8)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run: %v\n%s", err, msg)
	}
	compareGenerated(t, out, generatedFile)
	compareGenerated(t, out8, generatedFile8)
}

func compareGenerated(t *testing.T, out, generatedFile string) {
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

// TestInnerLoopInt8Share counts, in the generated int8 kernels, the share
// of the multiply instructions in each main loop (16 k steps): SDOT for
// the NEONDOT kernels, SMULL/SMULL2 and their SADALP accumulations for the
// NEON ones. The full-tile kernels must reach 75% SDOT (6x16) and 80%
// SMULL/SMULL2/SADALP (2x16). It also logs instructions per MAC of whole
// tiles, epilogue included.
func TestInnerLoopInt8Share(t *testing.T) {
	src, err := os.ReadFile(generatedFile8)
	if err != nil {
		t.Fatal(err)
	}
	fns := functions(src)
	count := func(loop []string, gnu ...string) int {
		n := 0
		for _, l := range loop {
			for _, g := range gnu {
				if strings.Contains(l, "// "+g+" ") {
					n++
				}
			}
		}
		return n
	}
	for rows := dotMR; rows >= 1; rows-- {
		name := dotName(rows)
		f, ok := fns[name]
		if !ok {
			t.Fatalf("%s missing", name)
		}
		loop := f.between("loop16", "\tBNE\tloop16", true)
		sdot := count(loop, "sdot")
		share := float64(sdot) / float64(len(loop))
		t.Logf("%s: main loop (16 k) %d instructions, %d SDOT = %.1f%%", name, len(loop), sdot, 100*share)
		if want := 16 * rows; sdot != want { // 4 lanes x rows x 4 column blocks
			t.Errorf("%s: %d SDOT per 16 k, want %d", name, sdot, want)
		}
		if rows == dotMR {
			if share < 0.75 {
				t.Errorf("%s: main loop is %.1f%% SDOT, want >= 75%%", name, 100*share)
			}
			logTileCost8(t, f, rows)
		}
	}
	for rows := neon8MR; rows >= 1; rows-- {
		name := neon8Name(rows)
		f, ok := fns[name]
		if !ok {
			t.Fatalf("%s missing", name)
		}
		loop := f.between("loop16", "\tBNE\tloop16", true)
		mul := count(loop, "smull", "smull2")
		acc := count(loop, "sadalp")
		share := float64(mul+acc) / float64(len(loop))
		t.Logf("%s: main loop (16 k) %d instructions, %d SMULL/SMULL2 (%.1f%%) + %d SADALP = %.1f%%",
			name, len(loop), mul, 100*float64(mul)/float64(len(loop)), acc, 100*share)
		if want := 32 * rows; mul != want || acc != want { // 4 groups x rows x 4 blocks x 2
			t.Errorf("%s: %d SMULL and %d SADALP per 16 k, want %d each", name, mul, acc, want)
		}
		if rows == neon8MR {
			if share < 0.80 {
				t.Errorf("%s: main loop is %.1f%% SMULL/SMULL2/SADALP, want >= 80%%", name, 100*share)
			}
			logTileCost8(t, f, rows)
		}
	}
}

// logTileCost8 logs instructions per MAC of one full int8 tile with the
// residual on, counted statically from the code's blocks.
func logTileCost8(t *testing.T, f function, rows int) {
	setup := len(f.between("", "tile:", false))
	head := len(f.between("tile", "loop16:", false))
	loop16 := len(f.between("loop16", "\tBNE\tloop16", true))
	loop4 := len(f.between("loop4", "\tBNE\tloop4", true))
	epi := len(f.between("epilogue", "\tRET", true))
	for _, k := range []int{64, 148, 576, 4608} {
		n := head + k/16*loop16 + 2 + epi // + MOVD/CBZ of rem
		if k%16 != 0 {
			n += k % 16 / 4 * loop4
		}
		macs := rows * gemm8NR * k
		t.Logf("  k=%4d: %6d instructions per %d MACs (one tile, setup %d aside) = %.4f per MAC", k, n, macs, setup, float64(n)/float64(macs))
	}
}

// gnuLoop translates the instructions of a generated int8 main loop to
// GNU syntax for llvm-mca: the WORDs carry their GNU spelling, and the
// few native forms the loops use are rewritten here.
func gnuLoop(t *testing.T, loop []string) string {
	var (
		ld1   = regexp.MustCompile(`^\tVLD1\.P\t(\d+)\(R(\d+)\), \[(.*)\]$`)
		ld1r  = regexp.MustCompile(`^\tVLD1R\.P\t(\d+)\(R(\d+)\), \[V(\d+)\.S4\]$`)
		eor   = regexp.MustCompile(`^\tVEOR\tV(\d+)\.B16, V(\d+)\.B16, V(\d+)\.B16$`)
		movi  = regexp.MustCompile(`^\tVMOVI\t\$(\d+), V(\d+)\.B16$`)
		subs  = regexp.MustCompile(`^\tSUBS\t\$(\d+), R(\d+), R(\d+)$`)
		word  = regexp.MustCompile(`^\tWORD\t\$0x[0-9a-f]{8} // (.*)$`)
		vlist = strings.NewReplacer("V", "v", ".B16", ".16b")
	)
	var out []string
	for _, l := range loop {
		var m []string
		switch {
		case word.MatchString(l):
			out = append(out, word.FindStringSubmatch(l)[1])
		case ld1.MatchString(l):
			m = ld1.FindStringSubmatch(l)
			out = append(out, fmt.Sprintf("ld1 {%s}, [x%s], #%s", vlist.Replace(m[3]), m[2], m[1]))
		case ld1r.MatchString(l):
			m = ld1r.FindStringSubmatch(l)
			out = append(out, fmt.Sprintf("ld1r {v%s.4s}, [x%s], #%s", m[3], m[2], m[1]))
		case eor.MatchString(l):
			m = eor.FindStringSubmatch(l)
			out = append(out, fmt.Sprintf("eor v%s.16b, v%s.16b, v%s.16b", m[3], m[2], m[1]))
		case movi.MatchString(l):
			m = movi.FindStringSubmatch(l)
			out = append(out, fmt.Sprintf("movi v%s.16b, #%s", m[2], m[1]))
		case subs.MatchString(l):
			m = subs.FindStringSubmatch(l)
			out = append(out, fmt.Sprintf("subs x%s, x%s, #%s", m[3], m[2], m[1]))
		case strings.HasPrefix(l, "\tBNE\t"):
			out = append(out, "b.ne 0")
		default:
			t.Fatalf("no GNU translation for %q", l)
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// TestInt8Schedule estimates, with llvm-mca's scheduling models (LLVM 14:
// in-order Cortex-A53 and A55, out-of-order A72; its cortex-a76 is the
// A57-family model, without A76's own SDOT figures), the MACs per cycle
// of each full-tile int8 main loop in a steady state, and fails if one
// drops below the floor recorded in docs/INT8.md. Skipped without
// llvm-mca (apt llvm-14).
func TestInt8Schedule(t *testing.T) {
	if !haveTool("llvm-mca") {
		t.Skip("llvm-mca not installed")
	}
	src, err := os.ReadFile(generatedFile8)
	if err != nil {
		t.Fatal(err)
	}
	fns := functions(src)
	for _, c := range []struct {
		name  string
		macs  int // per main-loop iteration
		cpu   string
		floor float64
	}{
		{neon8Name(neon8MR), neon8MR * gemm8NR * 16, "cortex-a72", 6.5},
		{neon8Name(neon8MR), neon8MR * gemm8NR * 16, "cortex-a53", 2.0},
		{neon8Name(neon8MR), neon8MR * gemm8NR * 16, "cortex-a55", 2.0},
		{dotName(dotMR), dotMR * gemm8NR * 16, "cortex-a76", 24},
		{dotName(dotMR), dotMR * gemm8NR * 16, "cortex-a55", 8},
	} {
		loop := fns[c.name].between("loop16", "\tBNE\tloop16", true)
		const iters = 200
		cmd := exec.Command("llvm-mca", "-mtriple=aarch64", "-mcpu="+c.cpu, "-mattr=+dotprod", fmt.Sprintf("-iterations=%d", iters))
		cmd.Stdin = strings.NewReader(gnuLoop(t, loop))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("llvm-mca: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`(?m)^Total Cycles:\s+(\d+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("llvm-mca output without Total Cycles:\n%s", out)
		}
		cycles, _ := strconv.Atoi(string(m[1]))
		perIter := float64(cycles) / iters
		rate := float64(c.macs) / perIter
		t.Logf("%s on %s (llvm-mca model): %.1f cycles per 16 k, %.2f MACs/cycle", c.name, c.cpu, perIter, rate)
		if rate < c.floor {
			t.Errorf("%s on %s: %.2f MACs/cycle, want >= %.1f", c.name, c.cpu, rate, c.floor)
		}
	}
}
