package main

import (
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

const generatedFileDW8 = "../../kernels/depthwise8_arm64.s"

// TestDepthwise8GeneratedUpToDate fails on any difference between the
// generator's output and the committed kernels/depthwise8_arm64.s.
func TestDepthwise8GeneratedUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "depthwise8_arm64.s")
	if err := os.WriteFile(out, generateDepthwise8(), 0o644); err != nil {
		t.Fatal(err)
	}
	compareGenerated(t, out, generatedFileDW8)
}

// TestDepthwise8KnownEncodings checks the encoders of depthwise8.go
// against words from GNU as 2.40 (binutils-aarch64-linux-gnu), registers
// 0 and 31 in every field.
func TestDepthwise8KnownEncodings(t *testing.T) {
	for _, c := range []struct {
		got  Enc
		want uint32
		gnu  string
	}{
		{sxtl8H(0, 0), 0x0f08a400, "sxtl v0.8h, v0.8b"},
		{sxtl8H(31, 31), 0x0f08a7ff, "sxtl v31.8h, v31.8b"},
		{sxtl8H(16, 16), 0x0f08a610, "sxtl v16.8h, v16.8b"},
		{usubl8H(0, 0, 0), 0x2e202000, "usubl v0.8h, v0.8b, v0.8b"},
		{usubl8H(31, 31, 31), 0x2e3f23ff, "usubl v31.8h, v31.8b, v31.8b"},
		{usubl8H(25, 25, 27), 0x2e3b2339, "usubl v25.8h, v25.8b, v27.8b"},
		{smlal4S(0, 0, 0, false), 0x0e608000, "smlal v0.4s, v0.4h, v0.4h"},
		{smlal4S(31, 31, 31, false), 0x0e7f83ff, "smlal v31.4s, v31.4h, v31.4h"},
		{smlal4S(0, 0, 0, true), 0x4e608000, "smlal2 v0.4s, v0.8h, v0.8h"},
		{smlal4S(3, 25, 17, true), 0x4e718323, "smlal2 v3.4s, v25.8h, v17.8h"},
	} {
		if c.got.Bits != c.want || c.got.GNU != c.gnu {
			t.Errorf("%s: got %#08x %q, want %#08x", c.gnu, c.got.Bits, c.got.GNU, c.want)
		}
	}
	for _, f := range []func(){
		func() { sxtl8H(32, 0) },
		func() { usubl8H(0, -1, 0) },
		func() { smlal4S(0, 0, 32, true) },
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

// TestDepthwise8WordsAgainstAssembler assembles the GNU spelling of every
// distinct WORD of depthwise8_arm64.s with an external assembler when one
// is installed and compares.
func TestDepthwise8WordsAgainstAssembler(t *testing.T) {
	checkAgainstAssembler(t, wordsOf(t, generateDepthwise8()))
}

// TestDepthwise8ChunkSMLAL counts, per 8 channels of a full chunk of the
// int8 row kernels (three filter rows, no residual), the SMLAL/SMLAL2
// (2 per tap and output) and the other instructions, and logs the share;
// with llvm-mca installed, it logs the cycles per chunk on the Cortex-A72
// and Neoverse-N1 models.
func TestDepthwise8ChunkSMLAL(t *testing.T) {
	fns := functions(generateDepthwise8())
	for _, stride := range []int{1, 2} {
		name := "dw8s" + strconv.Itoa(stride) + "NEON"
		f, ok := fns[name]
		if !ok {
			t.Fatalf("%s missing", name)
		}
		start, end := slices.Index(f, "c8vec:"), slices.Index(f, "\tBLT\tc8vec")
		body := dw8Path(f[start+1 : end+1])
		mac := 0
		for _, l := range body {
			if strings.Contains(l, "// smlal") {
				mac++
			}
		}
		if mac != 2*9*dw8P {
			t.Errorf("%s: %d SMLAL/SMLAL2 per chunk and 8 channels, want %d", name, mac, 2*9*dw8P)
		}
		t.Logf("%s: %d instructions per chunk of %d outputs and 8 channels (%d MACs), %d SMLAL/SMLAL2 (%.0f%%)",
			name, len(body), dw8P, 9*8*dw8P, mac, 100*float64(mac)/float64(len(body)))
		if !haveTool("llvm-mca") {
			continue
		}
		for _, cpu := range []string{"cortex-a72", "neoverse-n1"} {
			c := mcaCycles(t, cpu, dw8GNU(t, body))
			t.Logf("  %s (llvm-mca model, steady state): %.0f cycles per chunk, %.2f MACs/cycle", cpu, c, float64(9*8*dw8P)/c)
		}
	}
}

// dw8Path is the straight-line path of a chunk body with all three filter
// rows, a bias, no residual and no clamp: the branches that the flags and
// rows take are followed, the code they skip dropped.
func dw8Path(body []string) []string {
	var out []string
	skip := ""
	for _, l := range body {
		if skip != "" {
			if strings.TrimSpace(l) == skip+":" {
				skip = ""
			}
			continue
		}
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
		case f[0] == "TBZ" && (strings.HasSuffix(l, "nores") || strings.HasSuffix(l, "round")):
			skip = f[len(f)-1]
		case f[0] == "B" || f[0] == "TBZ" || f[0] == "BLE" || f[0] == "CMP" && strings.HasPrefix(f[1], "$"):
			if f[0] == "B" {
				skip = f[1]
			}
		case strings.HasSuffix(l, ":"):
		default:
			out = append(out, l)
		}
	}
	return out
}

// dw8GNU translates the instructions of a chunk body to GNU syntax for
// llvm-mca.
func dw8GNU(t *testing.T, body []string) string {
	var (
		word   = regexp.MustCompile(`^\tWORD\t\$0x[0-9a-f]{8} // (.*)$`)
		ld8    = regexp.MustCompile(`^\tVLD1\.P\t\(R(\d+)\)\(R(\d+)\), \[V(\d+)\.B8\]$`)
		st8    = regexp.MustCompile(`^\tVST1\.P\t\[V(\d+)\.B8\], \(R(\d+)\)\(R(\d+)\)$`)
		ld2    = regexp.MustCompile(`^\tVLD1\t\(R(\d+)\), \[V(\d+)\.S4, V(\d+)\.S4\]$`)
		vmov   = regexp.MustCompile(`^\tVMOV\tV(\d+)\.B16, V(\d+)\.B16$`)
		bytes3 = regexp.MustCompile(`^\tVU(MAX|MIN)\tV(\d+)\.B8, V(\d+)\.B8, V(\d+)\.B8$`)
		add    = regexp.MustCompile(`^\tADD\tR(\d+)(<<\d+)?, R(\d+), R(\d+)$`)
		movr   = regexp.MustCompile(`^\tMOVD\tR(\d+), R(\d+)$`)
		addc   = regexp.MustCompile(`^\tADD\t\$(\d+), R(\d+), R(\d+)$`)
		cmp    = regexp.MustCompile(`^\tCMP\tR(\d+), R(\d+)$`)
	)
	var out []string
	for _, l := range body {
		var m []string
		switch {
		case word.MatchString(l):
			out = append(out, word.FindStringSubmatch(l)[1])
		case ld8.MatchString(l):
			m = ld8.FindStringSubmatch(l)
			out = append(out, fmt.Sprintf("ld1 {v%s.8b}, [x%s], x%s", m[3], m[1], m[2]))
		case st8.MatchString(l):
			m = st8.FindStringSubmatch(l)
			out = append(out, fmt.Sprintf("st1 {v%s.8b}, [x%s], x%s", m[1], m[2], m[3]))
		case ld2.MatchString(l):
			m = ld2.FindStringSubmatch(l)
			out = append(out, fmt.Sprintf("ld1 {v%s.4s, v%s.4s}, [x%s]", m[2], m[3], m[1]))
		case vmov.MatchString(l):
			m = vmov.FindStringSubmatch(l)
			out = append(out, fmt.Sprintf("mov v%s.16b, v%s.16b", m[2], m[1]))
		case bytes3.MatchString(l):
			m = bytes3.FindStringSubmatch(l)
			out = append(out, fmt.Sprintf("u%s v%s.8b, v%s.8b, v%s.8b", strings.ToLower(m[1]), m[4], m[3], m[2]))
		case add.MatchString(l):
			m = add.FindStringSubmatch(l)
			sh := ""
			if m[2] != "" {
				sh = ", lsl #" + m[2][2:]
			}
			out = append(out, fmt.Sprintf("add x%s, x%s, x%s%s", m[4], m[3], m[1], sh))
		case movr.MatchString(l):
			m = movr.FindStringSubmatch(l)
			out = append(out, fmt.Sprintf("mov x%s, x%s", m[2], m[1]))
		case addc.MatchString(l):
			m = addc.FindStringSubmatch(l)
			out = append(out, fmt.Sprintf("add x%s, x%s, #%s", m[3], m[2], m[1]))
		case cmp.MatchString(l):
			m = cmp.FindStringSubmatch(l)
			out = append(out, fmt.Sprintf("cmp x%s, x%s", m[2], m[1]))
		case strings.HasPrefix(l, "\tBLT\t"):
			out = append(out, "b.lt 0")
		default:
			t.Fatalf("no GNU translation for %q", l)
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// mcaCycles runs llvm-mca on src as a loop and returns the cycles per
// iteration.
func mcaCycles(t *testing.T, cpu, src string) float64 {
	const iters = 100
	cmd := exec.Command("llvm-mca", "-mtriple=aarch64", "-mcpu="+cpu, fmt.Sprintf("-iterations=%d", iters))
	cmd.Stdin = strings.NewReader(src)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("llvm-mca: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^Total Cycles:\s+(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("llvm-mca output without Total Cycles:\n%s", out)
	}
	c, _ := strconv.Atoi(string(m[1]))
	return float64(c) / iters
}
