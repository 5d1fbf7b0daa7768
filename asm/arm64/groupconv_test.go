package main

import (
	"fmt"
	"os"
	"path/filepath"
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
	checkAgainstAssembler(t, wordsOf(t, generateGroupConv()))
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
