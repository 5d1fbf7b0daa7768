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

// Registers of gemmU8_32x32_AMX (rA, rLda, rM as in tiles.go). The
// requantization of a block runs while the tiles compute the next one
// (amxPendingRows in the K loop): the pending block's registers are
// separate from the K loop's.
var (
	amxStride = reg.RAX // 128: the row stride of B tiles and of the scratch
	amxB      = reg.RBX // B cursor in the K loop
	amxA0     = reg.R8  // A rows 0-15 cursor
	amxA1     = reg.R9  // A rows 16-31 cursor
	amxN      = reg.R10 // K chunks; the configuration's address
	amxCur    = reg.R14 // the scratch half the current block's tiles go to
	amxPScr   = reg.RDI // the pending block's next scratch row
	amxPRows  = reg.RCX // the pending block's rows left (0: none)
	amxPC     = reg.R11 // the pending block's next output row
	amxPRes   = reg.R12 // the pending block's next residual row (nil: none)
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

// amxPipeRows is how many rows of the pending block each K step
// requantizes.
const amxPipeRows = 4

const amxSignature = "func(m, n, k int, a *uint8, lda int, b *int8, c *uint8, ldc int, res *uint8, ldres int, ep *int32, cfg *uint8, scr *int32)"

// amxGemm8 emits gemmU8_32x32_AMX.
func amxGemm8(c *build.Context) {
	const name = "gemmU8_32x32_AMX"
	l := func(s string) string { return name + "_" + s }
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr(amxSignature)
	c.Comment("Rows [0, m) of one 32-column int8 panel in 32-row blocks: TDPBUSD on a",
		"2x2 block of int32 tiles, stored to one half of scr and requantized from",
		"there while the tiles compute the next block into the other half.",
		"Requires AVX512F, AVX512BW, AMX-TILE, AMX-INT8 and tile permission.")
	c.Load(c.Param("a"), rA)
	c.Load(c.Param("lda"), rLda)
	c.Load(c.Param("c"), amxPC)
	c.Load(c.Param("res"), amxPRes)
	c.Load(c.Param("m"), rM)
	c.Load(c.Param("scr"), amxCur)
	columnMasks(c, 2)
	amxConsts(c)
	c.XORQ(amxPRows, amxPRows)
	amxConfig(c, 0, false)

	c.Label(l("block"))
	c.CMPQ(rM, operand.U32(32))
	c.JAE(operand.LabelRef(l("full")))
	amxConfig(c, 0, true) // the last, partial block: fewer rows
	c.Label(l("full"))
	amxBlock(c, l)
	amxPendingRows(c, l("finish"), 0)
	// This block is pending; its tiles' half of the scratch is now the
	// other half's turn.
	c.MOVQ(amxCur, amxPScr)
	c.MOVQ(rM, amxPRows)
	c.CMPQ(amxPRows, operand.U32(32))
	c.JBE(operand.LabelRef(l("rows")))
	c.MOVQ(operand.U32(32), amxPRows)
	c.Label(l("rows"))
	amxToggle(c, l)
	c.SUBQ(operand.U32(32), rM)
	c.JLE(operand.LabelRef(l("done")))
	c.MOVQ(rLda, reg.RAX)
	c.SHLQ(operand.U8(5), reg.RAX)
	c.ADDQ(reg.RAX, rA)
	c.JMP(operand.LabelRef(l("block")))
	c.Label(l("done"))
	amxPendingRows(c, l("last"), 0)
	rawInst(c, "tilerelease", tilerelease())
	c.VZEROUPPER()
	c.RET()
}

// amxToggle points amxCur at the other half of the scratch (through AX).
func amxToggle(c *build.Context, l func(string) string) {
	c.Load(c.Param("scr"), reg.RAX)
	c.CMPQ(amxCur, reg.RAX)
	c.JNE(operand.LabelRef(l("half0")))
	c.ADDQ(operand.U32(32*128), amxCur)
	c.JMP(operand.LabelRef(l("halves")))
	c.Label(l("half0"))
	c.MOVQ(reg.RAX, amxCur)
	c.Label(l("halves"))
}

// amxConfig loads the tile configuration at cfg + off, or cfg + 128 + off
// for the last, partial block (rM < 32; tail: rM is known to be < 32),
// through amxN.
func amxConfig(c *build.Context, off int, tail bool) {
	c.Load(c.Param("cfg"), amxN)
	if tail {
		off += 2 * 64
	}
	emitLdtilecfg(c, amxN, off)
}

// amxConsts loads the epilogue's constants from ep (through amxN).
func amxConsts(c *build.Context) {
	ep := amxN
	c.Load(c.Param("ep"), ep)
	em := func(off int) operand.Mem { return operand.Mem{Base: ep, Disp: off} }
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
// rows of tmm4, and the epilogue reads only rows < rM) into the scratch
// half amxCur: the K loop over whole 64-byte chunks of K, each step also
// requantizing amxPipeRows rows of the pending block, then the last k%64
// bytes under the configuration at cfg+64, whose A tiles are that many
// bytes wide and B tiles that many K groups high, so no byte of A or B
// past K is read.
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
	amxPendingRows(c, l("pipe"), amxPipeRows)
	c.DECQ(amxN)
	c.JNZ(operand.LabelRef(l("kloop")))
	c.Label(l("ktail"))
	amxStoreC(c)
	c.Load(c.Param("k"), amxN)
	c.ANDQ(operand.U32(63), amxN)
	c.JZ(operand.LabelRef(l("kdone")))
	amxTailConfigs(c, l, 64)
	for t := 0; t < 4; t++ {
		emitTileloadd(c, t, amxCur, amxStride, amxScrOff(t))
	}
	amxStep(c)
	amxStoreC(c)
	amxTailConfigs(c, l, 0)
	c.Label(l("kdone"))
}

// amxTailConfigs loads the configuration at off of the block: of the
// partial block if rM < 32.
func amxTailConfigs(c *build.Context, l func(string) string, off int) {
	lbl := l(fmt.Sprintf("cfg%d", off))
	c.CMPQ(rM, operand.U32(32))
	c.JAE(operand.LabelRef(lbl + "full"))
	amxConfig(c, off, true)
	c.JMP(operand.LabelRef(lbl + "done"))
	c.Label(lbl + "full")
	amxConfig(c, off, false)
	c.Label(lbl + "done")
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
		emitTilestored(c, amxCur, amxStride, amxScrOff(t), t)
	}
}

// amxPendingRows requantizes up to rows rows of the pending block (all
// that are left if rows is 0, in a loop) into C with the steps of the
// other int8 kernels (requant.go), columns >= n masked off, advancing
// the pending block's pointers: after its last row, amxPC and amxPRes
// point at the next block's first row.
func amxPendingRows(c *build.Context, label string, rows int) {
	q := &requant{resZero: amxRZ, resScale: amxRScl, hi: amxHi, negHi: amxNegHi, zeroOut: amxZeroOut, lo: amxLo, rangeClamp: true}
	ldc, ldres := paramAddr(c, "ldc"), paramAddr(c, "ldres")
	n := rows
	if rows == 0 {
		n = 1
		c.Label(label + "loop")
	}
	for i := 0; i < n; i++ {
		lbl := fmt.Sprintf("%s%d", label, i)
		c.TESTQ(amxPRows, amxPRows)
		c.JZ(operand.LabelRef(label + "end"))
		c.TESTQ(amxPRes, amxPRes)
		c.JZ(operand.LabelRef(lbl + "nores"))
		amxRow(c, q, true)
		c.JMP(operand.LabelRef(lbl + "next"))
		c.Label(lbl + "nores")
		amxRow(c, q, false)
		c.Label(lbl + "next")
		c.ADDQ(operand.U32(128), amxPScr)
		c.ADDQ(ldc, amxPC)
		c.ADDQ(ldres, amxPRes)
		c.DECQ(amxPRows)
	}
	if rows == 0 {
		c.JMP(operand.LabelRef(label + "loop"))
	}
	c.Label(label + "end")
}

// amxRow requantizes the pending block's next row.
func amxRow(c *build.Context, q *requant, res bool) {
	for v := 0; v < 2; v++ {
		x := amxX[v]
		c.VMOVDQU32(operand.Mem{Base: amxPScr, Disp: 64 * v}, x)
		c.VPADDD(amxCorr[v], x, x)
		q.toFloat(c, x, amxScale[v])
		if res {
			t := amxT[v]
			// A masked byte load never touches columns >= n.
			c.VMOVDQU8_Z(operand.Mem{Base: amxPRes, Disp: 16 * v}, masks[v], t.AsX())
			c.VPMOVZXBD(t.AsX(), t)
			q.addRes(c, x, t)
		}
		q.round(c, x)
		c.VPMOVUSDB(x, masks[v], operand.Mem{Base: amxPC, Disp: 16 * v})
	}
}

// amxPeak emits amxPeakTDPBUSD(n int, cfg *uint8): n iterations of four
// TDPBUSD into four independent accumulator tiles (2x2, as in the kernel),
// on zeroed tiles, with no memory traffic: the ceiling the AMX kernel is
// compared with. One iteration is 4·16·16·64 multiply-adds.
func amxPeak(c *build.Context) {
	const name = "amxPeakTDPBUSD"
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(n int, cfg *uint8)")
	c.Comment("n iterations of 4 TDPBUSD. Requires AMX-TILE, AMX-INT8 and tile permission.")
	c.Load(c.Param("n"), reg.RCX)
	c.Load(c.Param("cfg"), reg.RAX)
	emitLdtilecfg(c, reg.RAX, 0)
	for t := 0; t < 8; t++ {
		rawInst(c, fmt.Sprintf("tilezero tmm%d", t), tilezero(t))
	}
	c.TESTQ(reg.RCX, reg.RCX)
	c.JZ(operand.LabelRef(name + "_done"))
	c.Label(name + "_loop")
	emitTdpbusd(c, 0, 4, 6)
	emitTdpbusd(c, 1, 4, 7)
	emitTdpbusd(c, 2, 5, 6)
	emitTdpbusd(c, 3, 5, 7)
	c.DECQ(reg.RCX)
	c.JNZ(operand.LabelRef(name + "_loop"))
	c.Label(name + "_done")
	rawInst(c, "tilerelease", tilerelease())
	c.RET()
}
