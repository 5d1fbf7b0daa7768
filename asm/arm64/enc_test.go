package main

import (
	"bufio"
	"bytes"
	"fmt"
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

// generatedWords is every distinct WORD of the generated file, GNU
// spelling -> bits.
func generatedWords(t *testing.T) map[string]uint32 {
	words := map[string]uint32{}
	sc := bufio.NewScanner(bytes.NewReader(generate()))
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
func TestWordsAgainstAssembler(t *testing.T) {
	words := generatedWords(t)
	var names []string
	for s := range words {
		names = append(names, s)
	}
	slices.Sort(names)
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
	if out, err := exec.Command("aarch64-linux-gnu-as", in, "-o", obj).CombinedOutput(); err != nil {
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
	cmd := exec.Command("llvm-mc", "-triple=aarch64", "-show-encoding")
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
