package main

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Known-good words, worked out from the field layouts in the Arm ARM
// (DDI 0487, C7.2) and confirmed with GNU as 2.40
// (binutils-aarch64-linux-gnu) and llvm-mc 14. They cover every field at
// both ends (register 0 and 31, the M bit of Rm, all four lanes).
var knownEncodings = []struct {
	got  Enc
	want uint32
	gnu  string
}{
	{fmlaElemS4(0, 0, 0, 0), 0x4f801000, "fmla v0.4s, v0.4s, v0.s[0]"},
	{fmlaElemS4(31, 31, 31, 3), 0x4fbf1bff, "fmla v31.4s, v31.4s, v31.s[3]"},
	{fmlaElemS4(8, 6, 0, 0), 0x4f8010c8, "fmla v8.4s, v6.4s, v0.s[0]"},
	{fmlaElemS4(12, 7, 5, 1), 0x4fa510ec, "fmla v12.4s, v7.4s, v5.s[1]"},
	{fmlaElemS4(28, 5, 16, 2), 0x4f9018bc, "fmla v28.4s, v5.4s, v16.s[2]"},
	{fmlaElemS4(1, 17, 15, 3), 0x4faf1a21, "fmla v1.4s, v17.4s, v15.s[3]"},
	{faddS4(0, 0, 0), 0x4e20d400, "fadd v0.4s, v0.4s, v0.4s"},
	{faddS4(31, 31, 31), 0x4e3fd7ff, "fadd v31.4s, v31.4s, v31.4s"},
	{faddS4(8, 8, 0), 0x4e20d508, "fadd v8.4s, v8.4s, v0.4s"},
	{faddS4(29, 3, 17), 0x4e31d47d, "fadd v29.4s, v3.4s, v17.4s"},
	{fmaxS4(0, 0, 0), 0x4e20f400, "fmax v0.4s, v0.4s, v0.4s"},
	{fmaxS4(31, 31, 31), 0x4e3ff7ff, "fmax v31.4s, v31.4s, v31.4s"},
	{fmaxS4(8, 8, 4), 0x4e24f508, "fmax v8.4s, v8.4s, v4.4s"},
	{fmaxS4(18, 9, 20), 0x4e34f532, "fmax v18.4s, v9.4s, v20.4s"},
	// The int8 kernels' words, from the same manual sections and checked
	// with GNU as 2.40 (-march=armv8.2-a+dotprod) and llvm-mc 14
	// (-mattr=+dotprod).
	{sdotElem(0, 0, 0, 0), 0x4f80e000, "sdot v0.4s, v0.16b, v0.4b[0]"},
	{sdotElem(31, 31, 31, 3), 0x4fbfebff, "sdot v31.4s, v31.16b, v31.4b[3]"},
	{sdotElem(8, 6, 0, 1), 0x4fa0e0c8, "sdot v8.4s, v6.16b, v0.4b[1]"},
	{sdotElem(17, 7, 21, 2), 0x4f95e8f1, "sdot v17.4s, v7.16b, v21.4b[2]"},
	{smull(0, 0, 0, false), 0x0e20c000, "smull v0.8h, v0.8b, v0.8b"},
	{smull(31, 31, 31, false), 0x0e3fc3ff, "smull v31.8h, v31.8b, v31.8b"},
	{smull(6, 1, 4, false), 0x0e24c026, "smull v6.8h, v1.8b, v4.8b"},
	{smull(0, 0, 0, true), 0x4e20c000, "smull2 v0.8h, v0.16b, v0.16b"},
	{smull(31, 31, 31, true), 0x4e3fc3ff, "smull2 v31.8h, v31.16b, v31.16b"},
	{smull(7, 3, 4, true), 0x4e24c067, "smull2 v7.8h, v3.16b, v4.16b"},
	{sadalp8H(0, 0), 0x4e606800, "sadalp v0.4s, v0.8h"},
	{sadalp8H(31, 31), 0x4e606bff, "sadalp v31.4s, v31.8h"},
	{sadalp8H(9, 7), 0x4e6068e9, "sadalp v9.4s, v7.8h"},
	{scvtfS4(0, 0), 0x4e21d800, "scvtf v0.4s, v0.4s"},
	{scvtfS4(31, 31), 0x4e21dbff, "scvtf v31.4s, v31.4s"},
	{scvtfS4(12, 5), 0x4e21d8ac, "scvtf v12.4s, v5.4s"},
	{fcvtnsS4(0, 0), 0x4e21a800, "fcvtns v0.4s, v0.4s"},
	{fcvtnsS4(31, 31), 0x4e21abff, "fcvtns v31.4s, v31.4s"},
	{fcvtnsS4(20, 3), 0x4e21a874, "fcvtns v20.4s, v3.4s"},
	{fmulS4(0, 0, 0), 0x6e20dc00, "fmul v0.4s, v0.4s, v0.4s"},
	{fmulS4(31, 31, 31), 0x6e3fdfff, "fmul v31.4s, v31.4s, v31.4s"},
	{fmulS4(8, 8, 2), 0x6e22dd08, "fmul v8.4s, v8.4s, v2.4s"},
	{fminS4(0, 0, 0), 0x4ea0f400, "fmin v0.4s, v0.4s, v0.4s"},
	{fminS4(31, 31, 31), 0x4ebff7ff, "fmin v31.4s, v31.4s, v31.4s"},
	{fminS4(10, 10, 1), 0x4ea1f54a, "fmin v10.4s, v10.4s, v1.4s"},
	{sqxtun(0, 0, false), 0x2e612800, "sqxtun v0.4h, v0.4s"},
	{sqxtun(31, 31, false), 0x2e612bff, "sqxtun v31.4h, v31.4s"},
	{sqxtun(4, 8, false), 0x2e612904, "sqxtun v4.4h, v8.4s"},
	{sqxtun(0, 0, true), 0x6e612800, "sqxtun2 v0.8h, v0.4s"},
	{sqxtun(31, 31, true), 0x6e612bff, "sqxtun2 v31.8h, v31.4s"},
	{sqxtun(4, 9, true), 0x6e612924, "sqxtun2 v4.8h, v9.4s"},
	{uqxtn(0, 0, false), 0x2e214800, "uqxtn v0.8b, v0.8h"},
	{uqxtn(31, 31, false), 0x2e214bff, "uqxtn v31.8b, v31.8h"},
	{uqxtn(6, 4, false), 0x2e214886, "uqxtn v6.8b, v4.8h"},
	{uqxtn(0, 0, true), 0x6e214800, "uqxtn2 v0.16b, v0.8h"},
	{uqxtn(31, 31, true), 0x6e214bff, "uqxtn2 v31.16b, v31.8h"},
	{uqxtn(6, 5, true), 0x6e2148a6, "uqxtn2 v6.16b, v5.8h"},
	{sqaddS4(0, 0, 0), 0x4ea00c00, "sqadd v0.4s, v0.4s, v0.4s"},
	{sqaddS4(31, 31, 31), 0x4ebf0fff, "sqadd v31.4s, v31.4s, v31.4s"},
	{sqaddS4(8, 8, 2), 0x4ea20d08, "sqadd v8.4s, v8.4s, v2.4s"},
	// FDIV of the Quantize kernel (elem8.go): U=1, opcode 11111.
	{fdivS4(0, 0, 0), 0x6e20fc00, "fdiv v0.4s, v0.4s, v0.4s"},
	{fdivS4(31, 31, 31), 0x6e3fffff, "fdiv v31.4s, v31.4s, v31.4s"},
	{fdivS4(2, 2, 16), 0x6e30fc42, "fdiv v2.4s, v2.4s, v16.4s"},
}

func TestKnownEncodings(t *testing.T) {
	for _, c := range knownEncodings {
		if c.got.Bits != c.want || c.got.GNU != c.gnu {
			t.Errorf("%s: got %#08x %q, want %#08x", c.gnu, c.got.Bits, c.got.GNU, c.want)
		}
	}
}

func TestEncoderRejectsBadOperands(t *testing.T) {
	for _, f := range []func(){
		func() { fmlaElemS4(32, 0, 0, 0) },
		func() { fmlaElemS4(0, 0, 0, 4) },
		func() { faddS4(0, -1, 0) },
		func() { fmaxS4(0, 0, 32) },
		func() { sdotElem(0, 0, 0, 4) },
		func() { sdotElem(0, 32, 0, 0) },
		func() { smull(0, 0, -1, true) },
		func() { sadalp8H(32, 0) },
		func() { scvtfS4(0, 32) },
		func() { fcvtnsS4(-1, 0) },
		func() { fmulS4(0, 0, 32) },
		func() { fminS4(32, 0, 0) },
		func() { sqxtun(0, 32, false) },
		func() { uqxtn(32, 0, true) },
		func() { sqaddS4(0, 32, 0) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("bad operand accepted")
				}
			}()
			f()
		}()
	}
}

var wordLine = regexp.MustCompile(`^\tWORD\t\$0x([0-9a-f]{8}) // (.*)$`)

// generatedWords is every distinct WORD of the generated files, GNU
// spelling -> bits.
func generatedWords(t *testing.T) map[string]uint32 {
	return wordsOf(t, slices.Concat(generate(), generate8()))
}

// wordsOf maps the GNU spelling of every WORD in generated assembly to its
// encoding, failing if one is encoded two ways or there is none.
func wordsOf(t *testing.T, src []byte) map[string]uint32 {
	t.Helper()
	words := map[string]uint32{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		m := wordLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseUint(m[1], 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		if old, ok := words[m[2]]; ok && old != uint32(v) {
			t.Fatalf("%s encoded two ways: %#08x and %#08x", m[2], old, v)
		}
		words[m[2]] = uint32(v)
	}
	if len(words) == 0 {
		t.Fatal("no WORD in the generated file")
	}
	return words
}

// TestWordsAgainstAssembler assembles the GNU spelling of every WORD the
// generator emits with an external assembler, when one is installed
// (aarch64-linux-gnu-as from binutils-aarch64-linux-gnu, or llvm-mc), and
// compares. TestKnownEncodings is the check that always runs.
func TestWordsAgainstAssembler(t *testing.T) { checkAgainstAssembler(t, generatedWords(t)) }

// checkAgainstAssembler assembles every spelling in words with an external
// assembler, when one is installed, and compares the encodings.
func checkAgainstAssembler(t *testing.T, words map[string]uint32) {
	t.Helper()
	names := slices.Sorted(maps.Keys(words))
	src := strings.Join(names, "\n") + "\n"
	var got []uint32
	switch {
	case haveTool("aarch64-linux-gnu-as") && haveTool("aarch64-linux-gnu-objdump"):
		got = gnuAssemble(t, src)
	case haveTool("llvm-mc"):
		got = llvmAssemble(t, src)
	default:
		t.Skip("no aarch64 assembler installed (apt-get install binutils-aarch64-linux-gnu)")
	}
	if len(got) != len(names) {
		t.Fatalf("assembler gave %d words for %d instructions", len(got), len(names))
	}
	for i, s := range names {
		if got[i] != words[s] {
			t.Errorf("%s: generator %#08x, assembler %#08x", s, words[s], got[i])
		}
	}
	t.Logf("%d distinct encodings agree with the assembler", len(names))
}

func haveTool(name string) bool { _, err := exec.LookPath(name); return err == nil }

func gnuAssemble(t *testing.T, src string) []uint32 {
	dir := t.TempDir()
	in, obj := filepath.Join(dir, "w.s"), filepath.Join(dir, "w.o")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// SDOT is an Armv8.2 dot-product instruction: name the extension.
	if out, err := exec.Command("aarch64-linux-gnu-as", "-march=armv8.2-a+dotprod", in, "-o", obj).CombinedOutput(); err != nil {
		t.Fatalf("as: %v\n%s", err, out)
	}
	out, err := exec.Command("aarch64-linux-gnu-objdump", "-d", obj).Output()
	if err != nil {
		t.Fatal(err)
	}
	// Lines look like "   4:\t4fbf1bff \tfmla\t...".
	re := regexp.MustCompile(`(?m)^\s*[0-9a-f]+:\s+([0-9a-f]{8})\s`)
	return parseHexWords(t, re.FindAllStringSubmatch(string(out), -1), 16)
}

func llvmAssemble(t *testing.T, src string) []uint32 {
	cmd := exec.Command("llvm-mc", "-triple=aarch64", "-mattr=+dotprod", "-show-encoding")
	cmd.Stdin = strings.NewReader(src)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("llvm-mc: %v\n%s", err, out)
	}
	// "encoding: [0xc8,0x10,0x80,0x4f]", little-endian bytes.
	re := regexp.MustCompile(`encoding: \[0x(..),0x(..),0x(..),0x(..)\]`)
	var words []uint32
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		v, err := strconv.ParseUint(m[4]+m[3]+m[2]+m[1], 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		words = append(words, uint32(v))
	}
	return words
}

func parseHexWords(t *testing.T, ms [][]string, base int) []uint32 {
	var words []uint32
	for _, m := range ms {
		v, err := strconv.ParseUint(m[1], base, 32)
		if err != nil {
			t.Fatal(fmt.Errorf("objdump word %q: %w", m[1], err))
		}
		words = append(words, uint32(v))
	}
	return words
}
