//go:build gc && !purego

#include "textflag.h"

// The 1-D Winograd transforms of winograd_generic.go on 8 channels per
// step with AVX2 and FMA. Each function has the Go signature
//	func(dst *float32, ds int, src *float32, ss int, n int)
// with strides in float32s and n a positive multiple of 8; vector j is at
// src + j*ss, result i at dst + i*ds. The arithmetic is that of the Go
// twins with multiply-adds fused.

// Constants, float32 bits.
DATA winoK<>+0(SB)/4, $0x40a80000  // 5.25
DATA winoK<>+4(SB)/4, $0x40880000  // 4.25
DATA winoK<>+8(SB)/4, $0x3e800000  // 0.25
DATA winoK<>+12(SB)/4, $0x3fa00000 // 1.25
DATA winoK<>+16(SB)/4, $0x3f000000 // 0.5
DATA winoK<>+20(SB)/4, $0x40200000 // 2.5
DATA winoK<>+24(SB)/4, $0x40800000 // 4
DATA winoK<>+28(SB)/4, $0x40a00000 // 5
DATA winoK<>+32(SB)/4, $0x40000000 // 2
DATA winoK<>+36(SB)/4, $0x41000000 // 8
DATA winoK<>+40(SB)/4, $0x41800000 // 16
DATA winoK<>+44(SB)/4, $0x42000000 // 32
DATA winoK<>+48(SB)/4, $0x3e000000 // 0.125
DATA winoK<>+52(SB)/4, $0x3d800000 // 0.0625
DATA winoK<>+56(SB)/4, $0x3d000000 // 0.03125
GLOBL winoK<>(SB), RODATA|NOPTR, $60

// SETUP loads the arguments: DI dst, R12 ds, R13 3ds, R14 5ds, BX 7ds,
// SI src, R8 ss, R9 3ss, R10 5ss, R11 7ss (all in bytes), CX = n/8.
#define SETUP \
	MOVQ dst+0(FP), DI \
	MOVQ ds+8(FP), R12 \
	SHLQ $2, R12 \
	LEAQ (R12)(R12*2), R13 \
	LEAQ (R12)(R12*4), R14 \
	LEAQ (R13)(R12*4), BX \
	MOVQ src+16(FP), SI \
	MOVQ ss+24(FP), R8 \
	SHLQ $2, R8 \
	LEAQ (R8)(R8*2), R9 \
	LEAQ (R8)(R8*4), R10 \
	LEAQ (R9)(R8*4), R11 \
	MOVQ n+32(FP), CX \
	SHRQ $3, CX

#define NEXT(loop) \
	ADDQ $32, SI \
	ADDQ $32, DI \
	DECQ CX \
	JNZ  loop \
	VZEROUPPER \
	RET

// func winoIn4AVX2(dst *float32, ds int, src *float32, ss int, n int)
TEXT ·winoIn4AVX2(SB), NOSPLIT, $0-40
	SETUP
in4:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (SI)(R9*1), Y3
	VSUBPS  Y2, Y0, Y4
	VADDPS  Y2, Y1, Y5
	VSUBPS  Y1, Y2, Y6
	VSUBPS  Y3, Y1, Y7
	VMOVUPS Y4, (DI)
	VMOVUPS Y5, (DI)(R12*1)
	VMOVUPS Y6, (DI)(R12*2)
	VMOVUPS Y7, (DI)(R13*1)
	NEXT(in4)

// func winoOut2AVX2(dst *float32, ds int, src *float32, ss int, n int)
TEXT ·winoOut2AVX2(SB), NOSPLIT, $0-40
	SETUP
out2:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (SI)(R9*1), Y3
	VADDPS  Y1, Y0, Y4
	VADDPS  Y2, Y4, Y4
	VSUBPS  Y2, Y1, Y5
	VSUBPS  Y3, Y5, Y5
	VMOVUPS Y4, (DI)
	VMOVUPS Y5, (DI)(R12*1)
	NEXT(out2)

// func winoIn6AVX2(dst *float32, ds int, src *float32, ss int, n int)
TEXT ·winoIn6AVX2(SB), NOSPLIT, $0-40
	SETUP
	VBROADCASTSS winoK<>+24(SB), Y14 // 4
	VBROADCASTSS winoK<>+28(SB), Y15 // 5
	VBROADCASTSS winoK<>+32(SB), Y13 // 2
in6:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (SI)(R9*1), Y3
	VMOVUPS (SI)(R8*4), Y4
	VMOVUPS (SI)(R10*1), Y5

	// d0 = 4x0 - 5x2 + x4
	VMOVAPS      Y4, Y6
	VFMADD231PS  Y14, Y0, Y6
	VFNMADD231PS Y15, Y2, Y6
	VMOVUPS      Y6, (DI)

	// d5 = 4x1 - 5x3 + x5
	VMOVAPS      Y5, Y6
	VFMADD231PS  Y14, Y1, Y6
	VFNMADD231PS Y15, Y3, Y6
	VMOVUPS      Y6, (DI)(R14*1)

	// d1 = (x3+x4) - 4(x1+x2), d2 = (x4-x3) + 4(x1-x2)
	VADDPS       Y2, Y1, Y7
	VADDPS       Y4, Y3, Y6
	VFNMADD231PS Y14, Y7, Y6
	VMOVUPS      Y6, (DI)(R12*1)
	VSUBPS       Y2, Y1, Y7
	VSUBPS       Y3, Y4, Y6
	VFMADD231PS  Y14, Y7, Y6
	VMOVUPS      Y6, (DI)(R12*2)

	// d3 = (x4-x2) + 2(x3-x1), d4 = (x4-x2) - 2(x3-x1)
	VSUBPS  Y2, Y4, Y6
	VSUBPS  Y1, Y3, Y7
	VMULPS  Y13, Y7, Y7
	VADDPS  Y7, Y6, Y8
	VSUBPS  Y7, Y6, Y9
	VMOVUPS Y8, (DI)(R13*1)
	VMOVUPS Y9, (DI)(R12*4)
	NEXT(in6)

// func winoOut4AVX2(dst *float32, ds int, src *float32, ss int, n int)
TEXT ·winoOut4AVX2(SB), NOSPLIT, $0-40
	SETUP
	VBROADCASTSS winoK<>+24(SB), Y14 // 4
	VBROADCASTSS winoK<>+32(SB), Y13 // 2
	VBROADCASTSS winoK<>+36(SB), Y15 // 8
out4:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (SI)(R9*1), Y3
	VMOVUPS (SI)(R8*4), Y4
	VMOVUPS (SI)(R10*1), Y5
	VADDPS  Y2, Y1, Y6 // a
	VSUBPS  Y2, Y1, Y7 // b
	VADDPS  Y4, Y3, Y8 // p
	VSUBPS  Y4, Y3, Y9 // q

	// d0 = x0 + a + p
	VADDPS  Y6, Y0, Y10
	VADDPS  Y8, Y10, Y10
	VMOVUPS Y10, (DI)

	// d1 = b + 2q
	VMOVAPS     Y7, Y10
	VFMADD231PS Y13, Y9, Y10
	VMOVUPS     Y10, (DI)(R12*1)

	// d2 = a + 4p
	VFMADD231PS Y14, Y8, Y6
	VMOVUPS     Y6, (DI)(R12*2)

	// d3 = b + 8q + x5
	VFMADD231PS Y15, Y9, Y7
	VADDPS      Y5, Y7, Y7
	VMOVUPS     Y7, (DI)(R13*1)
	NEXT(out4)

// func winoIn8AVX2(dst *float32, ds int, src *float32, ss int, n int)
TEXT ·winoIn8AVX2(SB), NOSPLIT, $0-40
	SETUP
	VBROADCASTSS winoK<>+0(SB), Y15  // 5.25
	VBROADCASTSS winoK<>+4(SB), Y14  // 4.25
	VBROADCASTSS winoK<>+20(SB), Y13 // 2.5
	VBROADCASTSS winoK<>+16(SB), Y12 // 0.5
in8:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (SI)(R9*1), Y3
	VMOVUPS (SI)(R8*4), Y4
	VMOVUPS (SI)(R10*1), Y5
	VMOVUPS (SI)(R9*2), Y6
	VMOVUPS (SI)(R11*1), Y7

	// d0 = x0 - x6 + 5.25(x4 - x2)
	VSUBPS      Y2, Y4, Y8
	VSUBPS      Y6, Y0, Y9
	VFMADD231PS Y15, Y8, Y9
	VMOVUPS     Y9, (DI)

	// d7 = x7 - x1 + 5.25(x3 - x5)
	VSUBPS      Y5, Y3, Y8
	VSUBPS      Y1, Y7, Y9
	VFMADD231PS Y15, Y8, Y9
	VMOVUPS     Y9, (DI)(BX*1)

	// e = x2 + x6 - 4.25x4, o = x1 + x5 - 4.25x3; d1 = e+o, d2 = e-o
	VADDPS       Y6, Y2, Y8
	VFNMADD231PS Y14, Y4, Y8
	VADDPS       Y5, Y1, Y9
	VFNMADD231PS Y14, Y3, Y9
	VADDPS       Y9, Y8, Y10
	VSUBPS       Y9, Y8, Y11
	VMOVUPS      Y10, (DI)(R12*1)
	VMOVUPS      Y11, (DI)(R12*2)

	// e = x6 + 0.25x2 - 1.25x4, o = 0.5x1 - 2.5x3 + 2x5; d3, d4
	VBROADCASTSS winoK<>+8(SB), Y10
	VMOVAPS      Y6, Y8
	VFMADD231PS  Y10, Y2, Y8
	VBROADCASTSS winoK<>+12(SB), Y10
	VFNMADD231PS Y10, Y4, Y8
	VMULPS       Y12, Y1, Y9
	VFNMADD231PS Y13, Y3, Y9
	VADDPS       Y5, Y9, Y9
	VADDPS       Y5, Y9, Y9
	VADDPS       Y9, Y8, Y10
	VSUBPS       Y9, Y8, Y11
	VMOVUPS      Y10, (DI)(R13*1)
	VMOVUPS      Y11, (DI)(R12*4)

	// e = x6 + 4x2 - 5x4, o = 2x1 - 2.5x3 + 0.5x5; d5, d6
	VBROADCASTSS winoK<>+24(SB), Y10
	VMOVAPS      Y6, Y8
	VFMADD231PS  Y10, Y2, Y8
	VBROADCASTSS winoK<>+28(SB), Y10
	VFNMADD231PS Y10, Y4, Y8
	VADDPS       Y1, Y1, Y9
	VFNMADD231PS Y13, Y3, Y9
	VFMADD231PS  Y12, Y5, Y9
	VADDPS       Y9, Y8, Y10
	VSUBPS       Y9, Y8, Y11
	VMOVUPS      Y10, (DI)(R14*1)
	VMOVUPS      Y11, (DI)(R13*2)
	NEXT(in8)

// func winoOut6AVX2(dst *float32, ds int, src *float32, ss int, n int)
TEXT ·winoOut6AVX2(SB), NOSPLIT, $0-40
	SETUP
	VBROADCASTSS winoK<>+32(SB), Y12 // 2
	VBROADCASTSS winoK<>+24(SB), Y13 // 4
	VBROADCASTSS winoK<>+36(SB), Y14 // 8
	VBROADCASTSS winoK<>+16(SB), Y15 // 0.5
out6:
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (SI)(R9*1), Y3
	VMOVUPS (SI)(R8*4), Y4
	VMOVUPS (SI)(R10*1), Y5
	VMOVUPS (SI)(R9*2), Y6
	VADDPS  Y2, Y1, Y7  // a
	VSUBPS  Y2, Y1, Y8  // b
	VADDPS  Y4, Y3, Y9  // p
	VSUBPS  Y4, Y3, Y10 // q
	VADDPS  Y6, Y5, Y11 // r
	VSUBPS  Y6, Y5, Y0  // s

	// d0 = x0 + a + p + r
	VADDPS  (SI), Y7, Y1
	VADDPS  Y9, Y1, Y1
	VADDPS  Y11, Y1, Y1
	VMOVUPS Y1, (DI)

	// d1 = b + 2q + 0.5s
	VMOVAPS     Y8, Y1
	VFMADD231PS Y12, Y10, Y1
	VFMADD231PS Y15, Y0, Y1
	VMOVUPS     Y1, (DI)(R12*1)

	// d2 = a + 4p + 0.25r
	VBROADCASTSS winoK<>+8(SB), Y2
	VMOVAPS      Y7, Y1
	VFMADD231PS  Y13, Y9, Y1
	VFMADD231PS  Y2, Y11, Y1
	VMOVUPS      Y1, (DI)(R12*2)

	// d3 = b + 8q + 0.125s
	VBROADCASTSS winoK<>+48(SB), Y2
	VMOVAPS      Y8, Y1
	VFMADD231PS  Y14, Y10, Y1
	VFMADD231PS  Y2, Y0, Y1
	VMOVUPS      Y1, (DI)(R13*1)

	// d4 = a + 16p + 0.0625r
	VBROADCASTSS winoK<>+40(SB), Y2
	VBROADCASTSS winoK<>+52(SB), Y3
	VFMADD231PS  Y2, Y9, Y7
	VFMADD231PS  Y3, Y11, Y7
	VMOVUPS      Y7, (DI)(R12*4)

	// d5 = b + 32q + 0.03125s + x7
	VBROADCASTSS winoK<>+44(SB), Y2
	VBROADCASTSS winoK<>+56(SB), Y3
	VFMADD231PS  Y2, Y10, Y8
	VFMADD231PS  Y3, Y0, Y8
	VADDPS       (SI)(R11*1), Y8, Y8
	VMOVUPS      Y8, (DI)(R14*1)
	NEXT(out6)
