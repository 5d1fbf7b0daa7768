package main

import "fmt"

// Encodings of the AdvSIMD instructions the Go assembler (as of Go 1.26)
// does not accept: FMLA by element, vector FADD, FMAX, FMIN, FMUL, SCVTF
// and FCVTNS for the fp32 GEMM and the int8 requantization, and for the
// int8 products SDOT by element (ASIMDDP), SMULL/SMULL2 and SADALP, the
// saturating SQADD and the saturating narrows SQXTUN(2) and UQXTN(2). Each follows the field layout
// in the Arm Architecture Reference Manual for A-profile (DDI 0487),
// section C7.2; enc_test.go checks them against known-good words. The Go
// assembler does have VADD, VSUB, VADDP, VDUP, VMOVI, VEOR, VUMAX, VUXTL(2)
// and the VLD1/VST1 forms, which the generator uses natively.

// Enc is one encoded instruction and its GNU assembler spelling.
type Enc struct {
	Bits uint32
	GNU  string
}

func checkV(vs ...V) {
	for _, v := range vs {
		if v < 0 || v > 31 {
			panic(fmt.Sprintf("no register V%d", int(v)))
		}
	}
}

// fmlaElemS4 is FMLA Vd.4S, Vn.4S, Vm.S[lane]: Vd[i] += Vn[i]*Vm[lane],
// fused. Layout: 0 Q 0 01111 1 sz L M Rm(4) 0001 H 0 Rn Rd, where the
// 5-bit register number is M:Rm and the lane is H:L.
func fmlaElemS4(d, n, m V, lane int) Enc {
	checkV(d, n, m)
	if lane < 0 || lane > 3 {
		panic(fmt.Sprintf("no lane %d in a 4S register", lane))
	}
	bits := uint32(0x4f801000) |
		uint32(lane&1)<<21 | // L
		uint32(m)<<16 | // M:Rm
		uint32(lane>>1)<<11 | // H
		uint32(n)<<5 | uint32(d)
	return Enc{bits, fmt.Sprintf("fmla v%d.4s, v%d.4s, v%d.s[%d]", d, n, m, lane)}
}

// threeSame is the "three registers of the same type" FP group:
// 0 Q U 01110 0 sz 1 Rm opcode 1 Rn Rd.
func threeSame(opcode uint32, d, n, m V) uint32 {
	checkV(d, n, m)
	return 0x4e200400 | uint32(m)<<16 | opcode<<11 | uint32(n)<<5 | uint32(d)
}

// faddS4 is FADD Vd.4S, Vn.4S, Vm.4S (opcode 11010).
func faddS4(d, n, m V) Enc {
	return Enc{threeSame(0b11010, d, n, m), fmt.Sprintf("fadd v%d.4s, v%d.4s, v%d.4s", d, n, m)}
}

// fmaxS4 is FMAX Vd.4S, Vn.4S, Vm.4S (opcode 11110): a NaN operand gives
// NaN and max(-0, +0) = +0, which is Go's max.
func fmaxS4(d, n, m V) Enc {
	return Enc{threeSame(0b11110, d, n, m), fmt.Sprintf("fmax v%d.4s, v%d.4s, v%d.4s", d, n, m)}
}

// threeSameFP is a "three same" instruction whose fixed bits (Q=1, U,
// size, opcode) differ from threeSame's: FMIN (size 1:sz), FMUL (U=1),
// SQADD (the integer form, size=10).
func threeSameFP(bits uint32, d, n, m V) uint32 {
	checkV(d, n, m)
	return bits | uint32(m)<<16 | uint32(n)<<5 | uint32(d)
}

// fminS4 is FMIN Vd.4S, Vn.4S, Vm.4S (U=0, size=1:0, opcode 11110): a NaN
// operand gives NaN, as Go's min.
func fminS4(d, n, m V) Enc {
	return Enc{threeSameFP(0x4ea0f400, d, n, m), fmt.Sprintf("fmin v%d.4s, v%d.4s, v%d.4s", d, n, m)}
}

// fmulS4 is FMUL Vd.4S, Vn.4S, Vm.4S (U=1, opcode 11011): one rounding,
// unlike FMLA.
func fmulS4(d, n, m V) Enc {
	return Enc{threeSameFP(0x6e20dc00, d, n, m), fmt.Sprintf("fmul v%d.4s, v%d.4s, v%d.4s", d, n, m)}
}

// twoRegMisc is the "two-register miscellaneous" group,
// 0 Q U 01110 size 10000 opcode 10 Rn Rd, with everything but Rn and Rd in
// bits.
func twoRegMisc(bits uint32, d, n V) uint32 {
	checkV(d, n)
	return bits | uint32(n)<<5 | uint32(d)
}

// scvtfS4 is SCVTF Vd.4S, Vn.4S (signed int32 to float32, rounded by
// FPCR: to nearest, ties to even, under Go). U=0, opcode 11101, sz=0.
func scvtfS4(d, n V) Enc {
	return Enc{twoRegMisc(0x4e21d800, d, n), fmt.Sprintf("scvtf v%d.4s, v%d.4s", d, n)}
}

// fcvtnsS4 is FCVTNS Vd.4S, Vn.4S: float32 to int32, rounding to nearest
// with ties to even whatever FPCR says; NaN gives 0. U=0, opcode 11010.
func fcvtnsS4(d, n V) Enc {
	return Enc{twoRegMisc(0x4e21a800, d, n), fmt.Sprintf("fcvtns v%d.4s, v%d.4s", d, n)}
}

// sadalp8H is SADALP Vd.4S, Vn.8H: Vd[i] += Vn[2i] + Vn[2i+1], the int16
// lanes sign-extended. U=0, size=01, opcode 00110.
func sadalp8H(d, n V) Enc {
	return Enc{twoRegMisc(0x4e606800, d, n), fmt.Sprintf("sadalp v%d.4s, v%d.8h", d, n)}
}

// sqxtun is SQXTUN Vd.4H, Vn.4S (SQXTUN2 Vd.8H, Vn.4S writes the upper
// half, keeping the lower): int32 to uint16, saturating. U=1, size=01,
// opcode 10010; Q selects the upper half.
func sqxtun(d, n V, upper bool) Enc {
	if upper {
		return Enc{twoRegMisc(0x6e612800, d, n), fmt.Sprintf("sqxtun2 v%d.8h, v%d.4s", d, n)}
	}
	return Enc{twoRegMisc(0x2e612800, d, n), fmt.Sprintf("sqxtun v%d.4h, v%d.4s", d, n)}
}

// uqxtn is UQXTN Vd.8B, Vn.8H (UQXTN2 Vd.16B, Vn.8H for the upper half):
// uint16 to uint8, saturating. U=1, size=00, opcode 10100.
func uqxtn(d, n V, upper bool) Enc {
	if upper {
		return Enc{twoRegMisc(0x6e214800, d, n), fmt.Sprintf("uqxtn2 v%d.16b, v%d.8h", d, n)}
	}
	return Enc{twoRegMisc(0x2e214800, d, n), fmt.Sprintf("uqxtn v%d.8b, v%d.8h", d, n)}
}

// smull is SMULL Vd.8H, Vn.8B, Vm.8B (SMULL2 Vd.8H, Vn.16B, Vm.16B for the
// upper halves): int8 x int8 -> int16, exact. "Three registers of
// different types": 0 Q U 01110 size 1 Rm 1100 00 Rn Rd, U=0, size=00.
func smull(d, n, m V, upper bool) Enc {
	checkV(d, n, m)
	bits := uint32(0x0e20c000) | uint32(m)<<16 | uint32(n)<<5 | uint32(d)
	if upper {
		return Enc{bits | 1<<30, fmt.Sprintf("smull2 v%d.8h, v%d.16b, v%d.16b", d, n, m)}
	}
	return Enc{bits, fmt.Sprintf("smull v%d.8h, v%d.8b, v%d.8b", d, n, m)}
}

// sdotElem is SDOT Vd.4S, Vn.16B, Vm.4B[lane] (ASIMDDP, Armv8.2 dotprod):
// Vd[i] += Σ_r Vn.b[4i+r] * Vm.b[4*lane+r], signed bytes. "Vector x
// indexed element": 0 Q U 01111 size L M Rm 1110 H 0 Rn Rd with Q=1, U=0,
// size=10; the register is M:Rm (all 32 allowed) and the lane H:L.
func sdotElem(d, n, m V, lane int) Enc {
	checkV(d, n, m)
	if lane < 0 || lane > 3 {
		panic(fmt.Sprintf("no lane %d in a 4B-element register", lane))
	}
	bits := uint32(0x4f80e000) |
		uint32(lane&1)<<21 | // L
		uint32(m)<<16 | // M:Rm
		uint32(lane>>1)<<11 | // H
		uint32(n)<<5 | uint32(d)
	return Enc{bits, fmt.Sprintf("sdot v%d.4s, v%d.16b, v%d.4b[%d]", d, n, m, lane)}
}

// sqaddS4 is SQADD Vd.4S, Vn.4S, Vm.4S: int32 addition saturating at the
// int32 range. "Three same" integer group, U=0, size=10, opcode 00001.
func sqaddS4(d, n, m V) Enc {
	return Enc{threeSameFP(0x4ea00c00, d, n, m), fmt.Sprintf("sqadd v%d.4s, v%d.4s, v%d.4s", d, n, m)}
}
