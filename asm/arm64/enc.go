package main

import "fmt"

// Encodings of the AdvSIMD instructions the Go assembler (as of Go 1.26)
// does not accept: FMLA by element, and vector FADD and FMAX. Each follows
// the field layout in the Arm Architecture Reference Manual for A-profile
// (DDI 0487), section C7.2, for the single-precision 4S arrangement
// (Q=1, sz=0). enc_test.go checks them against known-good words.

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
