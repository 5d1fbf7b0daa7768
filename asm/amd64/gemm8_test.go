package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVEXVPDPBUSDKnown checks the encoder on encodings read off GNU as
// 2.4x (`{vex} vpdpbusd`, objdump -d) and the Intel SDM (VEX.256.66.0F38.W0
// 50 /r): low and high registers in each of the three fields.
func TestVEXVPDPBUSDKnown(t *testing.T) {
	for _, tc := range []struct {
		dst, src1, src2 int
		want            []byte
	}{
		{3, 2, 1, []byte{0xc4, 0xe2, 0x6d, 0x50, 0xd9}},
		{0, 14, 12, []byte{0xc4, 0xc2, 0x0d, 0x50, 0xc4}},
		{9, 2, 15, []byte{0xc4, 0x42, 0x6d, 0x50, 0xcf}},
		{13, 15, 3, []byte{0xc4, 0x62, 0x05, 0x50, 0xeb}},
	} {
		if got := vexVPDPBUSD(tc.dst, tc.src1, tc.src2); !bytes.Equal(got, tc.want) {
			t.Errorf("vpdpbusd ymm%d, ymm%d, ymm%d = % x, want % x", tc.dst, tc.src1, tc.src2, got, tc.want)
		}
	}
}

// TestVEXVPDPBUSDAgainstAssembler encodes every register triple with GNU
// as (binutils) and compares; skipped when as or objdump is missing.
func TestVEXVPDPBUSDAgainstAssembler(t *testing.T) {
	var src []string
	var want [][]byte
	for d := 0; d < 16; d++ {
		for s1 := 0; s1 < 16; s1++ {
			for s2 := 0; s2 < 16; s2++ {
				src = append(src, fmt.Sprintf("{vex} vpdpbusd ymm%d, ymm%d, ymm%d", d, s1, s2))
				want = append(want, vexVPDPBUSD(d, s1, s2))
			}
		}
	}
	got := assembleIntel(t, src)
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s: as % x, encoder % x", src[i], got[i], want[i])
		}
	}
}

// assembleIntel assembles Intel-syntax instructions with GNU as and
// returns each one's bytes as objdump lists them; it skips the test when
// binutils is missing or cannot assemble them (too old).
func assembleIntel(t *testing.T, lines []string) [][]byte {
	t.Helper()
	as, err1 := exec.LookPath("as")
	objdump, err2 := exec.LookPath("objdump")
	if err1 != nil || err2 != nil {
		t.Skip("GNU as/objdump not installed")
	}
	dir := t.TempDir()
	src := ".intel_syntax noprefix\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "v.s"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(as, "-o", filepath.Join(dir, "v.o"), filepath.Join(dir, "v.s")).CombinedOutput(); err != nil {
		t.Skipf("as cannot assemble %s (binutils too old?): %v\n%s", lines[0], err, out)
	}
	out, err := exec.Command(objdump, "-d", "-w", filepath.Join(dir, "v.o")).Output()
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^\s*[0-9a-f]+:\s+((?:[0-9a-f]{2} )+)`)
	var got [][]byte
	for _, m := range line.FindAllStringSubmatch(string(out), -1) {
		var b []byte
		for _, h := range strings.Fields(m[1]) {
			var v byte
			fmt.Sscanf(h, "%02x", &v)
			b = append(b, v)
		}
		got = append(got, b)
	}
	if len(got) != len(lines) {
		t.Fatalf("objdump listed %d instructions, want %d", len(got), len(lines))
	}
	return got
}
