package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const generatedFileGC = "../../kernels/groupconv_arm64.s"

// TestGroupConvGeneratedUpToDate fails on any difference between the
// generator's output and the committed kernels/groupconv_arm64.s.
func TestGroupConvGeneratedUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "groupconv_arm64.s")
	if err := os.WriteFile(out, generateGroupConv(), 0o644); err != nil {
		t.Fatal(err)
	}
	compareGenerated(t, out, generatedFileGC)
}

// TestGroupConvWordsAgainstAssembler assembles the GNU spelling of every
// distinct WORD of groupconv_arm64.s (FMLA by element, FADD, FMAX, FMIN)
// with an external assembler when one is installed.
func TestGroupConvWordsAgainstAssembler(t *testing.T) {
	words := map[string]uint32{}
	sc := bufio.NewScanner(bytes.NewReader(generateGroupConv()))
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
			t.Fatalf("%s encoded two ways", m[2])
		}
		words[m[2]] = uint32(v)
	}
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

// TestGroupConvStepFMLA counts the instructions of one step of four input
// channels of the full tiles (4*nv*P FMLA by element, P input and nv
// weight loads) and logs the FMLA share.
func TestGroupConvStepFMLA(t *testing.T) {
	fns := functions(generateGroupConv())
	for nv := 1; nv <= 2; nv++ {
		name := fmt.Sprintf("gcBc%dNEON", nv)
		p := gcNeonP[nv]
		body := fns[name].between(fmt.Sprintf("p%dci4", p), "\tBGE\t", true)
		fmla := 0
		for _, l := range body {
			if isFMLA(l) {
				fmla++
			}
		}
		if fmla != 4*nv*p {
			t.Errorf("%s: %d FMLA per step of 4 channels, want %d", name, fmla, 4*nv*p)
		}
		t.Logf("%s: %d instructions per step of 4 channels and %d pixels, %d FMLA (%.0f%%)",
			name, len(body), p, fmla, 100*float64(fmla)/float64(len(body)))
	}
}
