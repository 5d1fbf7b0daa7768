package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const generatedFileDW = "../../kernels/depthwise_arm64.s"

// TestDepthwiseGeneratedUpToDate fails on any difference between the
// generator's output and the committed kernels/depthwise_arm64.s.
func TestDepthwiseGeneratedUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "depthwise_arm64.s")
	if err := os.WriteFile(out, generateDepthwise(), 0o644); err != nil {
		t.Fatal(err)
	}
	compareGenerated(t, out, generatedFileDW)
}

// TestDepthwiseWordsAgainstAssembler assembles the GNU spelling of every
// distinct WORD of depthwise_arm64.s (FADD, FMAX, FMIN, whose encoders
// TestKnownEncodings checks) with an external assembler when one is
// installed, as TestWordsAgainstAssembler does for the GEMM files.
func TestDepthwiseWordsAgainstAssembler(t *testing.T) {
	checkAgainstAssembler(t, wordsOf(t, generateDepthwise()))
}

// TestDepthwiseChunkFMLA counts, per channel vector of a full chunk of the
// row kernels, the FMLAs (9 per output) and the other instructions, and
// logs the FMLA share (all three filter rows inside the input).
func TestDepthwiseChunkFMLA(t *testing.T) {
	fns := functions(generateDepthwise())
	for _, stride := range []int{1, 2} {
		name := "dw3x3s" + strconv.Itoa(stride) + "NEON"
		f, ok := fns[name]
		if !ok {
			t.Fatalf("%s missing", name)
		}
		body := f.between("c8vec", "\tBLT\tc8vec", true)
		fmla, clamp := 0, 0
		for _, l := range body {
			if isFMLA(l) {
				fmla++
			}
			if strings.Contains(l, "// fmax ") || strings.Contains(l, "// fmin ") {
				clamp++
			}
		}
		if fmla != 9*dwP {
			t.Errorf("%s: %d FMLA per chunk and channel vector, want %d", name, fmla, 9*dwP)
		}
		t.Logf("%s: %d instructions per chunk of %d outputs and channel vector, %d FMLA (%.0f%%; %.0f%% with no clamp)",
			name, len(body), dwP, fmla, 100*float64(fmla)/float64(len(body)), 100*float64(fmla)/float64(len(body)-clamp))
	}
}
