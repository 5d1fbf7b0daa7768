package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const generatedFileWino = "../../kernels/winograd_arm64.s"

// TestWinoGeneratedUpToDate fails on any difference between the
// generator's output and the committed kernels/winograd_arm64.s.
func TestWinoGeneratedUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "winograd_arm64.s")
	if err := os.WriteFile(out, generateWino(), 0o644); err != nil {
		t.Fatal(err)
	}
	compareGenerated(t, out, generatedFileWino)
}

// TestWinoWordsAgainstAssembler assembles the GNU spelling of every
// distinct WORD of winograd_arm64.s (FADD, FSUB, FMLA/FMLS/FMUL by
// element, FCMLT, BIC) with an external assembler when one is installed.
func TestWinoWordsAgainstAssembler(t *testing.T) {
	checkAgainstAssembler(t, wordsOf(t, generateWino()))
}

// TestWinoKnownEncodings checks the encoders of wino.go and pool.go
// against words from GNU as 2.40 (aarch64-linux-gnu-as, objdump -d).
func TestWinoKnownEncodings(t *testing.T) {
	for _, c := range []struct {
		got  Enc
		want uint32
		gnu  string
	}{
		{fsubS4(1, 2, 3), 0x4ea3d441, "fsub v1.4s, v2.4s, v3.4s"},
		{fmlsElemS4(4, 5, 31, 3), 0x4fbf58a4, "fmls v4.4s, v5.4s, v31.s[3]"},
		{fmulElemS4(6, 7, 28, 1), 0x4fbc90e6, "fmul v6.4s, v7.4s, v28.s[1]"},
		{fcmltZeroS4(8, 9), 0x4ea0e928, "fcmlt v8.4s, v9.4s, #0.0"},
		{bic16B(10, 11, 12), 0x4e6c1d6a, "bic v10.16b, v11.16b, v12.16b"},
		{fcmgtS4(13, 14, 15), 0x6eafe5cd, "fcmgt v13.4s, v14.4s, v15.4s"},
		{bit16B(16, 17, 18), 0x6eb21e30, "bit v16.16b, v17.16b, v18.16b"},
	} {
		if c.got.Bits != c.want || c.got.GNU != c.gnu {
			t.Errorf("%s: got %#08x %q, want %#08x", c.gnu, c.got.Bits, c.got.GNU, c.want)
		}
	}
}

// TestWinoStepCost counts the instructions of each transform's 8-channel
// step (between the labels loop and its BNE) and checks the loads and
// stores: 2 registers per input and per result, one VLD1/VST1 each.
func TestWinoStepCost(t *testing.T) {
	fns := functions(generateWino())
	for _, x := range winoNXforms {
		body := fns[x.name+"NEON"].between("loop", "\tBNE\t", true)
		var ld, st int
		for _, l := range body {
			switch {
			case strings.HasPrefix(l, "\tVLD1.P\t32("):
				ld++
			case strings.HasPrefix(l, "\tVST1.P\t"):
				st++
			}
		}
		if ld != x.cols || st != x.rows {
			t.Errorf("%s: %d loads, %d stores per step, want %d, %d", x.name, ld, st, x.cols, x.rows)
		}
		t.Logf("%s: %d instructions per 8 channels", x.name, len(body))
	}
}
