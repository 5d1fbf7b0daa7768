package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"testing"
)

var gp64 = []string{"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"}

// amxCases lists every AMX instruction form the kernel uses, over all
// tile registers, base and index registers and displacement sizes, with
// the encoder's bytes.
func amxCases() (src []string, enc [][]byte) {
	add := func(s string, b []byte) { src, enc = append(src, s), append(enc, b) }
	add("tilerelease", tilerelease())
	mem := func(base, index, disp int) string {
		s := gp64[base]
		if index >= 0 {
			s += "+" + gp64[index] + "*1"
		}
		if disp != 0 {
			s += fmt.Sprintf("%+d", disp)
		}
		return "[" + s + "]"
	}
	for base := 0; base < 16; base++ {
		for _, disp := range []int{0, 64, -8, 2048, 2112} {
			add("ldtilecfg "+mem(base, -1, disp), ldtilecfg(base, disp))
			for index := 0; index < 16; index++ {
				if index == 4 {
					continue
				}
				tmm := (base + index + disp) & 7
				add(fmt.Sprintf("tileloadd tmm%d, %s", tmm, mem(base, index, disp)), tileloadd(tmm, base, index, disp))
				add(fmt.Sprintf("tilestored %s, tmm%d", mem(base, index, disp), tmm), tilestored(base, index, disp, tmm))
			}
		}
	}
	for d := 0; d < 8; d++ {
		add(fmt.Sprintf("tilezero tmm%d", d), tilezero(d))
		for s1 := 0; s1 < 8; s1++ {
			for s2 := 0; s2 < 8; s2++ {
				if d == s1 || d == s2 || s1 == s2 {
					continue // #UD: the three tiles must differ
				}
				add(fmt.Sprintf("tdpbusd tmm%d, tmm%d, tmm%d", d, s1, s2), tdpbusd(d, s1, s2))
			}
		}
	}
	return src, enc
}

// TestAMXKnownEncodings checks the encoders on encodings from the Intel
// SDM (TILERELEASE is C4 E2 78 49 C0) and read off GNU as 2.40.
func TestAMXKnownEncodings(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want []byte
	}{
		{"tilerelease", tilerelease(), []byte{0xc4, 0xe2, 0x78, 0x49, 0xc0}},
		{"ldtilecfg [rcx]", ldtilecfg(1, 0), []byte{0xc4, 0xe2, 0x78, 0x49, 0x01}},
		{"tilezero tmm3", tilezero(3), []byte{0xc4, 0xe2, 0x7b, 0x49, 0xd8}},
		{"tdpbusd tmm0, tmm4, tmm6", tdpbusd(0, 4, 6), []byte{0xc4, 0xe2, 0x49, 0x5e, 0xc4}},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s = % x, want % x", tc.name, tc.got, tc.want)
		}
	}
}

// TestAMXEncodingsAgainstAssembler compares every form of amxCases with
// GNU as (binutils 2.36 or later); skipped without it.
func TestAMXEncodingsAgainstAssembler(t *testing.T) {
	src, want := amxCases()
	got := assembleIntel(t, src)
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s: as % x, encoder % x", src[i], got[i], want[i])
		}
	}
}

// TestAMXComments assembles, with GNU as, the mnemonic in the comment
// before each AMX instruction of the generated files and compares the
// bytes that follow it, so that a reader of the .s can trust the comment;
// skipped without binutils.
func TestAMXComments(t *testing.T) {
	var s []byte
	for _, f := range []string{"gemm8_amd64.s", "kernelbench_amd64.s"} {
		b, err := os.ReadFile("../../kernels/" + f)
		if err != nil {
			t.Fatal(err)
		}
		s = append(s, b...)
	}
	re := regexp.MustCompile(`(?m)^\t// ((?:tile|tdp|ldtile)[^\n]*)\n((?:\t(?:LONG|WORD|BYTE) \$0x[0-9a-f]+\n)+)`)
	word := regexp.MustCompile(`(LONG|WORD|BYTE) \$0x([0-9a-f]+)`)
	var src []string
	var want [][]byte
	for _, m := range re.FindAllStringSubmatch(string(s), -1) {
		var b []byte
		for _, f := range word.FindAllStringSubmatch(m[2], -1) {
			var v uint64
			fmt.Sscanf(f[2], "%x", &v)
			for i := 0; i < map[string]int{"LONG": 4, "WORD": 2, "BYTE": 1}[f[1]]; i++ {
				b = append(b, byte(v>>(8*i)))
			}
		}
		src, want = append(src, m[1]), append(want, b)
	}
	if len(src) < 20 {
		t.Fatalf("found %d AMX instructions in gemm8_amd64.s", len(src))
	}
	got := assembleIntel(t, src)
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s: as % x, file % x", src[i], got[i], want[i])
		}
	}
}
