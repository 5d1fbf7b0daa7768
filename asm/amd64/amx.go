package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The AMX int8 GEMM kernel gemmU8_32x32_AMX (kernels/gemm8_amx_amd64.go
// has its contract). The Go assembler knows no AMX instruction: each is
// emitted as bytes by the encoders below, with its mnemonic in a comment
// (Intel SDM vol. 2, "LDTILECFG", "TILELOADD", "TDPBUSD", ...; checked
// against GNU as by TestAMXEncodingsAgainstAssembler).
//
// Tiles: tmm0-tmm3 the 2x2 block of 16x16 int32 accumulators (C rows
// 0-15 and 16-31 by columns 0-15 and 16-31), tmm4/tmm5 A rows 0-15 and
// 16-31 by 64 bytes of K, tmm6/tmm7 B columns 0-15 and 16-31 by 16 K
// groups of 4 bytes (the packed layout of PackedB8 with NR = 32, KG = 4:
// one K group is 128 bytes, columns 0-15 in the first 64).

// AMX encodings: VEX three-byte prefix, map 0F38, W0, L0.
const (
	ppNP = 0
	pp66 = 1
	ppF3 = 2
	ppF2 = 3
)

// vexAMX returns the VEX prefix and opcode: r, x, b are the high bits of
// ModRM.reg, SIB.index and ModRM.rm/SIB.base; vvvv the register of
// VEX.vvvv (0 when the instruction has none: VEX stores it inverted, 1111b).
func vexAMX(pp int, opcode byte, r, x, b, vvvv int) []byte {
	b1 := byte(0x02) // map 0F38
	if r == 0 {
		b1 |= 0x80 // R̄, X̄, B̄ are stored inverted
	}
	if x == 0 {
		b1 |= 0x40
	}
	if b == 0 {
		b1 |= 0x20
	}
	b2 := byte((^vvvv&0xf)<<3) | byte(pp) // W0, L0
	return []byte{0xc4, b1, b2, opcode}
}

// amxMem appends ModRM (reg field rg), SIB when there is an index (or the
// base needs one) and the displacement of [base + index*1 + disp]
// (index < 0: none) to enc.
func amxMem(enc []byte, rg, base, index, disp int) []byte {
	mod := byte(0)
	switch {
	case disp != 0 && disp >= -128 && disp <= 127:
		mod = 1
	case disp != 0:
		mod = 2
	case base&7 == 5: // RBP, R13: mod 00 would mean RIP/disp32
		mod = 1
	}
	if index >= 0 || base&7 == 4 {
		idx := 4 // none
		if index >= 0 {
			if index == 4 {
				panic("amxMem: RSP cannot be an index")
			}
			idx = index & 7
		}
		enc = append(enc, mod<<6|byte(rg&7)<<3|4, byte(idx<<3|base&7))
	} else {
		enc = append(enc, mod<<6|byte(rg&7)<<3|byte(base&7))
	}
	switch mod {
	case 1:
		enc = append(enc, byte(int8(disp)))
	case 2:
		enc = append(enc, byte(disp), byte(disp>>8), byte(disp>>16), byte(disp>>24))
	}
	return enc
}

func hiBit(r int) int { return r >> 3 & 1 }

// ldtilecfg encodes LDTILECFG [base+disp]: VEX.128.NP.0F38.W0 49 /0.
func ldtilecfg(base, disp int) []byte {
	return amxMem(vexAMX(ppNP, 0x49, 0, 0, hiBit(base), 0), 0, base, -1, disp)
}

// tileloadd encodes TILELOADD tmm, [base + index*1 + disp]:
// VEX.128.F2.0F38.W0 4B /r, the row stride in index.
func tileloadd(tmm, base, index, disp int) []byte {
	return amxMem(vexAMX(ppF2, 0x4b, 0, hiBit(index), hiBit(base), 0), tmm, base, index, disp)
}

// tilestored encodes TILESTORED [base + index*1 + disp], tmm:
// VEX.128.F3.0F38.W0 4B /r.
func tilestored(base, index, disp, tmm int) []byte {
	return amxMem(vexAMX(ppF3, 0x4b, 0, hiBit(index), hiBit(base), 0), tmm, base, index, disp)
}

// tdpbusd encodes TDPBUSD dst, src1, src2 (dst += u8(src1)·s8(src2)):
// VEX.128.66.0F38.W0 5E /r, dst in ModRM.reg, src1 in ModRM.rm, src2 in
// VEX.vvvv.
func tdpbusd(dst, src1, src2 int) []byte {
	return append(vexAMX(pp66, 0x5e, 0, 0, 0, src2), 0xc0|byte(dst)<<3|byte(src1))
}

// tilezero encodes TILEZERO tmm: VEX.128.F2.0F38.W0 49 11:rrr:000.
func tilezero(tmm int) []byte {
	return append(vexAMX(ppF2, 0x49, 0, 0, 0, 0), 0xc0|byte(tmm)<<3)
}

// tilerelease encodes TILERELEASE: VEX.128.NP.0F38.W0 49 C0.
func tilerelease() []byte { return append(vexAMX(ppNP, 0x49, 0, 0, 0, 0), 0xc0) }

// rawInst emits enc as LONG, WORD and BYTE directives after a comment
// with its mnemonic (Intel syntax, as GNU objdump -M intel prints it).
func rawInst(c *build.Context, mnemonic string, enc []byte) {
	c.Comment(mnemonic)
	for len(enc) > 0 {
		switch {
		case len(enc) >= 4:
			c.Instruction(&ir.Instruction{Opcode: "LONG", Operands: []operand.Op{
				operand.U32(uint32(enc[0]) | uint32(enc[1])<<8 | uint32(enc[2])<<16 | uint32(enc[3])<<24)}})
			enc = enc[4:]
		case len(enc) >= 2:
			c.Instruction(&ir.Instruction{Opcode: "WORD", Operands: []operand.Op{operand.U16(uint16(enc[0]) | uint16(enc[1])<<8)}})
			enc = enc[2:]
		default:
			c.Instruction(&ir.Instruction{Opcode: "BYTE", Operands: []operand.Op{operand.U8(enc[0])}})
			enc = enc[1:]
		}
	}
}

func gpNum(r reg.GPPhysical) int { return int(r.PhysicalIndex()) }

// gpName is the Intel name of a 64-bit register.
func gpName(r reg.GPPhysical) string {
	return []string{"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
		"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"}[gpNum(r)]
}

func memName(base, index reg.GPPhysical, disp int) string {
	s := gpName(base)
	if index != nil {
		s += "+" + gpName(index) + "*1"
	}
	if disp != 0 {
		s += fmt.Sprintf("+0x%x", disp)
	}
	return "[" + s + "]"
}

func emitLdtilecfg(c *build.Context, base reg.GPPhysical, disp int) {
	rawInst(c, "ldtilecfg "+memName(base, nil, disp), ldtilecfg(gpNum(base), disp))
}

func emitTileloadd(c *build.Context, tmm int, base, index reg.GPPhysical, disp int) {
	rawInst(c, fmt.Sprintf("tileloadd tmm%d, %s", tmm, memName(base, index, disp)), tileloadd(tmm, gpNum(base), gpNum(index), disp))
}

func emitTilestored(c *build.Context, base, index reg.GPPhysical, disp, tmm int) {
	rawInst(c, fmt.Sprintf("tilestored %s, tmm%d", memName(base, index, disp), tmm), tilestored(gpNum(base), gpNum(index), disp, tmm))
}

func emitTdpbusd(c *build.Context, dst, src1, src2 int) {
	rawInst(c, fmt.Sprintf("tdpbusd tmm%d, tmm%d, tmm%d", dst, src1, src2), tdpbusd(dst, src1, src2))
}

// Registers of gemmU8_32x32_AMX (rA, rLda, rC, rRes, rM as in tiles.go).
var (
	amxStride = reg.RAX // 128: the row stride of B tiles and of the scratch
	amxB      = reg.RBX // B cursor in the K loop; residual row in the epilogue
	amxCfg    = reg.RCX // the tile configuration of the current block
	amxA0     = reg.R8  // A rows 0-15 cursor; scratch row in the epilogue
	amxA1     = reg.R9  // A rows 16-31 cursor; output row in the epilogue
	amxN      = reg.R10 // K chunks, then rows left in the epilogue
	amxScr    = reg.R14 // the int32 scratch (32 rows of 128 bytes)
	amxEp     = reg.RDI // the gemm8Epi block
)

// The epilogue's vectors: the values (two per row), the residual
// temporaries, then the per-column and broadcast constants kept in
// registers for the whole call.
var (
	amxX                                               = []reg.VecPhysical{reg.Z0, reg.Z1}
	amxT                                               = []reg.VecPhysical{reg.Z2, reg.Z3}
	amxCorr                                            = []reg.VecPhysical{reg.Z4, reg.Z5}
	amxScale                                           = []reg.VecPhysical{reg.Z6, reg.Z7}
	amxHi, amxNegHi, amxZeroOut, amxLo, amxRZ, amxRScl = reg.Z8, reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13
)

const amxSignature = "func(m, n, k int, a *uint8, lda int, b *int8, c *uint8, ldc int, res *uint8, ldres int, ep *int32, cfg *uint8, scr *int32)"

// amxGemm8 emits gemmU8_32x32_AMX.
func amxGemm8(c *build.Context) {
	const name = "gemmU8_32x32_AMX"
	l := func(s string) string { return name + "_" + s }
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr(amxSignature)
	c.Comment("Rows [0, m) of one 32-column int8 panel in 32-row blocks: TDPBUSD on a",
		"2x2 block of int32 tiles, stored to scr and requantized from there.",
		"Requires AVX512F, AVX512BW, AMX-TILE, AMX-INT8 and tile permission.")
	c.Load(c.Param("a"), rA)
	c.Load(c.Param("lda"), rLda)
	c.Load(c.Param("c"), rC)
	c.Load(c.Param("res"), rRes)
	c.Load(c.Param("m"), rM)
	c.Load(c.Param("scr"), amxScr)
	c.Load(c.Param("ep"), amxEp)
	columnMasks(c, 2)
	amxConsts(c)
	c.Load(c.Param("cfg"), amxCfg)
	emitLdtilecfg(c, amxCfg, 0)

	c.Label(l("block"))
	c.CMPQ(rM, operand.U32(32))
	c.JAE(operand.LabelRef(l("full")))
	// The last, partial block: its own configuration (fewer rows).
	c.ADDQ(operand.U32(2*64), amxCfg)
	emitLdtilecfg(c, amxCfg, 0)
	c.Label(l("full"))
	amxBlock(c, l)
	amxEpilogue(c, l)

	c.SUBQ(operand.U32(32), rM)
	c.JLE(operand.LabelRef(l("done")))
	c.MOVQ(rLda, reg.RAX)
	c.SHLQ(operand.U8(5), reg.RAX)
	c.ADDQ(reg.RAX, rA)
	stepParam(c, "ldc", 32, rC)
	stepParam(c, "ldres", 32, rRes)
	c.JMP(operand.LabelRef(l("block")))
	c.Label(l("done"))
	rawInst(c, "tilerelease", tilerelease())
	c.VZEROUPPER()
	c.RET()
}

// amxConsts loads the epilogue's constants from ep.
func amxConsts(c *build.Context) {
	em := func(off int) operand.Mem { return operand.Mem{Base: amxEp, Disp: off} }
	for v := 0; v < 2; v++ {
		c.VMOVDQU32(em(epiCorr+64*v), amxCorr[v])
		c.VMOVUPS(em(epiScale+64*v), amxScale[v])
	}
	for _, x := range []struct {
		off int
		r   reg.VecPhysical
	}{{epiHi, amxHi}, {epiNegHi, amxNegHi}, {epiZeroOut, amxZeroOut}, {epiLo, amxLo}, {epiResZero, amxRZ}, {epiResScale, amxRScl}} {
		c.VMOVDQU32(em(x.off), x.r)
	}
}

// amxBlock computes one block of up to 32 rows (rM rows left; rows 16-31
// are rows 0-15 again when rM <= 16: their tiles are configured with the
// rows of tmm4, and the epilogue reads only rows < rM) into the scratch:
// the K loop over whole 64-byte chunks of K, then the last k%64 bytes
// under the configuration at cfg+64, whose A tiles are that many bytes wide
// and B tiles that many K groups high, so no byte of A or B past K is read.
func amxBlock(c *build.Context, l func(string) string) {
	for t := 0; t < 4; t++ {
		rawInst(c, fmt.Sprintf("tilezero tmm%d", t), tilezero(t))
	}
	c.MOVQ(rA, amxA0)
	c.MOVQ(rA, amxA1)
	c.CMPQ(rM, operand.U32(16))
	c.JBE(operand.LabelRef(l("a1")))
	c.MOVQ(rLda, reg.RAX)
	c.SHLQ(operand.U8(4), reg.RAX)
	c.ADDQ(reg.RAX, amxA1)
	c.Label(l("a1"))
	c.Load(c.Param("b"), amxB)
	c.MOVQ(operand.U32(128), amxStride)
	c.Load(c.Param("k"), amxN)
	c.SHRQ(operand.U8(6), amxN)
	c.JZ(operand.LabelRef(l("ktail")))
	c.Label(l("kloop"))
	amxStep(c)
	c.ADDQ(operand.U32(64), amxA0)
	c.ADDQ(operand.U32(64), amxA1)
	c.ADDQ(operand.U32(16*128), amxB)
	c.DECQ(amxN)
	c.JNZ(operand.LabelRef(l("kloop")))
	c.Label(l("ktail"))
	amxStoreC(c)
	c.Load(c.Param("k"), amxN)
	c.ANDQ(operand.U32(63), amxN)
	c.JZ(operand.LabelRef(l("kdone")))
	emitLdtilecfg(c, amxCfg, 64)
	for t := 0; t < 4; t++ {
		emitTileloadd(c, t, amxScr, amxStride, amxScrOff(t))
	}
	amxStep(c)
	amxStoreC(c)
	emitLdtilecfg(c, amxCfg, 0)
	c.Label(l("kdone"))
}

// amxScrOff is the offset of C tile t in the scratch (row stride 128).
func amxScrOff(t int) int { return t/2*16*128 + t%2*64 }

// amxStep multiplies one chunk of K into the 2x2 accumulator tiles.
func amxStep(c *build.Context) {
	emitTileloadd(c, 4, amxA0, rLda, 0)
	emitTileloadd(c, 6, amxB, amxStride, 0)
	emitTileloadd(c, 7, amxB, amxStride, 64)
	emitTdpbusd(c, 0, 4, 6)
	emitTdpbusd(c, 1, 4, 7)
	emitTileloadd(c, 5, amxA1, rLda, 0)
	emitTdpbusd(c, 2, 5, 6)
	emitTdpbusd(c, 3, 5, 7)
}

func amxStoreC(c *build.Context) {
	for t := 0; t < 4; t++ {
		emitTilestored(c, amxScr, amxStride, amxScrOff(t), t)
	}
}

// amxEpilogue requantizes min(rM, 32) rows of the scratch into C with the
// steps of the other int8 kernels (requant.go), columns >= n masked off;
// one loop with the residual and one without.
func amxEpilogue(c *build.Context, l func(string) string) {
	c.MOVQ(rM, amxN)
	c.CMPQ(amxN, operand.U32(32))
	c.JBE(operand.LabelRef(l("rows")))
	c.MOVQ(operand.U32(32), amxN)
	c.Label(l("rows"))
	c.MOVQ(amxScr, amxA0)
	c.MOVQ(rC, amxA1)
	c.MOVQ(rRes, amxB)
	c.Load(c.Param("ldc"), reg.RAX)
	c.Load(c.Param("ldres"), reg.RDX) // rLda: restored below
	q := &requant{resZero: amxRZ, resScale: amxRScl, hi: amxHi, negHi: amxNegHi, zeroOut: amxZeroOut, lo: amxLo}
	c.TESTQ(rRes, rRes)
	c.JZ(operand.LabelRef(l("nores")))
	amxRowLoop(c, l("res"), q, true)
	c.JMP(operand.LabelRef(l("stored")))
	c.Label(l("nores"))
	amxRowLoop(c, l("nores_row"), q, false)
	c.Label(l("stored"))
	c.Load(c.Param("lda"), rLda)
}

// amxRowLoop requantizes amxN rows: scratch at amxA0, output at amxA1
// (stride RAX), residual at amxB (stride RDX).
func amxRowLoop(c *build.Context, label string, q *requant, res bool) {
	c.Label(label)
	for v := 0; v < 2; v++ {
		x := amxX[v]
		c.VMOVDQU32(operand.Mem{Base: amxA0, Disp: 64 * v}, x)
		c.VPADDD(amxCorr[v], x, x)
		q.toFloat(c, x, amxScale[v])
		if res {
			t := amxT[v]
			// A masked byte load never touches columns >= n.
			c.VMOVDQU8_Z(operand.Mem{Base: amxB, Disp: 16 * v}, masks[v], t.AsX())
			c.VPMOVZXBD(t.AsX(), t)
			q.addRes(c, x, t)
		}
		q.round(c, x)
		c.VPMOVUSDB(x, masks[v], operand.Mem{Base: amxA1, Disp: 16 * v})
	}
	c.ADDQ(operand.U32(128), amxA0)
	c.ADDQ(reg.RAX, amxA1)
	if res {
		c.ADDQ(reg.RDX, amxB)
	}
	c.DECQ(amxN)
	c.JNZ(operand.LabelRef(label))
}
