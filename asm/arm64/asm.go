package main

import (
	"bytes"
	"fmt"
	"strings"
)

// A small Plan 9 assembly writer for arm64, in the spirit of Go's
// math/big/internal/asmgen: typed registers, one method per instruction
// form, and the instructions the Go assembler does not know emitted as
// WORD with their GNU spelling in a comment (see enc.go).

// V is a SIMD&FP register V0..V31.
type V int

// S4 is the register as four float32 lanes.
func (v V) S4() string { return fmt.Sprintf("V%d.S4", int(v)) }

// B16 is the register as sixteen bytes (for bitwise ops).
func (v V) B16() string { return fmt.Sprintf("V%d.B16", int(v)) }

// R is a general-purpose register. Go reserves R18 (platform), R26
// (closure context), R27 (assembler temporary), R28 (g), R29 and R30.
type R int

func (r R) String() string { return fmt.Sprintf("R%d", int(r)) }

// list is a register list of consecutive S4 registers, as VLD1/VST1 take.
func list(first V, n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = (first + V(i)).S4()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// Asm accumulates one assembly file.
type Asm struct {
	out bytes.Buffer
}

func (a *Asm) printf(format string, args ...any) { fmt.Fprintf(&a.out, format, args...) }

// Comment writes a comment line.
func (a *Asm) Comment(format string, args ...any) {
	a.printf("\t// "+format+"\n", args...)
}

// Label defines a (function-scoped) label.
func (a *Asm) Label(name string) { a.printf("%s:\n", name) }

// op writes one native instruction.
func (a *Asm) op(name string, args ...string) {
	if len(args) == 0 {
		a.printf("\t%s\n", name)
		return
	}
	a.printf("\t%s\t%s\n", name, strings.Join(args, ", "))
}

// word writes one instruction the assembler lacks, encoded.
func (a *Asm) word(e Enc) { a.printf("\tWORD\t$0x%08x // %s\n", e.Bits, e.GNU) }

// Text starts a function with the given frame and argument sizes.
func (a *Asm) Text(name string, frame, args int) {
	a.printf("\n// func %s\nTEXT ·%s(SB), NOSPLIT|NOFRAME, $%d-%d\n", name, name, frame, args)
}

func (a *Asm) Raw(s string) { a.out.WriteString(s) }

// Native instructions.

func (a *Asm) MOVD(src, dst string) { a.op("MOVD", src, dst) }
func (a *Asm) ADD(src, src2, dst R) { a.op("ADD", src.String(), src2.String(), dst.String()) }
func (a *Asm) SUB(src, src2, dst R) { a.op("SUB", src.String(), src2.String(), dst.String()) }
func (a *Asm) MUL(src, src2, dst R) { a.op("MUL", src.String(), src2.String(), dst.String()) }
func (a *Asm) LSLconst(sh int, src, dst R) {
	a.op("LSL", fmt.Sprintf("$%d", sh), src.String(), dst.String())
}
func (a *Asm) LSRconst(sh int, src, dst R) {
	a.op("LSR", fmt.Sprintf("$%d", sh), src.String(), dst.String())
}
func (a *Asm) ANDconst(c int, src, dst R) {
	a.op("AND", fmt.Sprintf("$%d", c), src.String(), dst.String())
}
func (a *Asm) SUBSconst(c int, src, dst R) {
	a.op("SUBS", fmt.Sprintf("$%d", c), src.String(), dst.String())
}
func (a *Asm) CBZ(r R, label string)       { a.op("CBZ", r.String(), label) }
func (a *Asm) BNE(label string)            { a.op("BNE", label) }
func (a *Asm) RET()                        { a.op("RET") }
func (a *Asm) VEOR(v V)                    { a.op("VEOR", v.B16(), v.B16(), v.B16()) }
func (a *Asm) VLD1(base R, first V, n int) { a.op("VLD1", fmt.Sprintf("(%s)", base), list(first, n)) }
func (a *Asm) VST1(base R, first V, n int) { a.op("VST1", list(first, n), fmt.Sprintf("(%s)", base)) }
func (a *Asm) VLD1post(base R, first V, n int) {
	a.op("VLD1.P", fmt.Sprintf("%d(%s)", 16*n, base), list(first, n))
}
func (a *Asm) VLD1Rpost(base R, v V)                { a.op("VLD1R.P", fmt.Sprintf("4(%s)", base), "["+v.S4()+"]") }
func (a *Asm) VFMLA(m, n, d V)                      { a.op("VFMLA", m.S4(), n.S4(), d.S4()) } // d += n*m
func (a *Asm) FMLAelem(d, n, m V, lane int)         { a.word(fmlaElemS4(d, n, m, lane)) }
func (a *Asm) FADD(d, n, m V)                       { a.word(faddS4(d, n, m)) }
func (a *Asm) FMAX(d, n, m V)                       { a.word(fmaxS4(d, n, m)) }
func (a *Asm) field(strct, f string, base R) string { return fmt.Sprintf("%s_%s(%s)", strct, f, base) }

// Forms used by the int8 kernels (gemm8.go).

// B8, H4, H8 are the register as 8 bytes, 4 or 8 halfwords.
func (v V) B8() string { return fmt.Sprintf("V%d.B8", int(v)) }
func (v V) H4() string { return fmt.Sprintf("V%d.H4", int(v)) }
func (v V) H8() string { return fmt.Sprintf("V%d.H8", int(v)) }

// listB16 is a register list of consecutive B16 registers.
func listB16(first V, n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = (first + V(i)).B16()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func (a *Asm) VLD1Bpost(base R, first V, n int) {
	a.op("VLD1.P", fmt.Sprintf("%d(%s)", 16*n, base), listB16(first, n))
}
func (a *Asm) VST1B(base R, v V)        { a.op("VST1", listB16(v, 1), fmt.Sprintf("(%s)", base)) }
func (a *Asm) VEOR3(m, n, d V)          { a.op("VEOR", m.B16(), n.B16(), d.B16()) } // d = n ^ m
func (a *Asm) VMOVIB(imm int, v V)      { a.op("VMOVI", fmt.Sprintf("$%d", imm), v.B16()) }
func (a *Asm) CBNZ(r R, label string)   { a.op("CBNZ", r.String(), label) }
func (a *Asm) VDUPS(r R, v V)           { a.op("VDUP", r.String(), v.S4()) }
func (a *Asm) VDUPB(r R, v V)           { a.op("VDUP", r.String(), v.B16()) }
func (a *Asm) VADDS(m, n, d V)          { a.op("VADD", m.S4(), n.S4(), d.S4()) }  // d = n + m
func (a *Asm) VSUBS(m, n, d V)          { a.op("VSUB", m.S4(), n.S4(), d.S4()) }  // d = n - m
func (a *Asm) VADDPS(m, n, d V)         { a.op("VADDP", m.S4(), n.S4(), d.S4()) } // d = pairwise sums of n, then of m
func (a *Asm) VUMAXB(m, n, d V)         { a.op("VUMAX", m.B16(), n.B16(), d.B16()) }
func (a *Asm) UXTLbh(src, dst V)        { a.op("VUXTL", src.B8(), dst.H8()) }   // low 8 bytes -> halfwords
func (a *Asm) UXTL2bh(src, dst V)       { a.op("VUXTL2", src.B16(), dst.H8()) } // high 8 bytes
func (a *Asm) UXTLhs(src, dst V)        { a.op("VUXTL", src.H4(), dst.S4()) }   // low 4 halfwords -> words
func (a *Asm) UXTL2hs(src, dst V)       { a.op("VUXTL2", src.H8(), dst.S4()) }  // high 4 halfwords
func (a *Asm) MOVW(src, dst string)     { a.op("MOVW", src, dst) }
func (a *Asm) SDOT(d, n, m V, lane int) { a.word(sdotElem(d, n, m, lane)) }
func (a *Asm) SMULL(d, n, m V)          { a.word(smull(d, n, m, false)) }
func (a *Asm) SMULL2(d, n, m V)         { a.word(smull(d, n, m, true)) }
func (a *Asm) SADALP(d, n V)            { a.word(sadalp8H(d, n)) }
func (a *Asm) SCVTF(d, n V)             { a.word(scvtfS4(d, n)) }
func (a *Asm) FCVTNS(d, n V)            { a.word(fcvtnsS4(d, n)) }
func (a *Asm) FMUL(d, n, m V)           { a.word(fmulS4(d, n, m)) }
func (a *Asm) SQADD(d, n, m V)          { a.word(sqaddS4(d, n, m)) }
func (a *Asm) FMIN(d, n, m V)           { a.word(fminS4(d, n, m)) }
func (a *Asm) SQXTUN(d, n V)            { a.word(sqxtun(d, n, false)) }
func (a *Asm) SQXTUN2(d, n V)           { a.word(sqxtun(d, n, true)) }
func (a *Asm) UQXTN(d, n V)             { a.word(uqxtn(d, n, false)) }
func (a *Asm) UQXTN2(d, n V)            { a.word(uqxtn(d, n, true)) }
