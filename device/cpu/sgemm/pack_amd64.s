#include "textflag.h"

// Load 8 floats from each of the 8 row pointers into Y0..Y7 and advance them.
#define LOADROWS \
	PREFETCHT0 512(AX); \
	PREFETCHT0 512(BX); \
	PREFETCHT0 512(DX); \
	PREFETCHT0 512(R8); \
	PREFETCHT0 512(R9); \
	PREFETCHT0 512(R10); \
	PREFETCHT0 512(R11); \
	PREFETCHT0 512(R12); \
	VMOVUPS (AX), Y0; \
	VMOVUPS (BX), Y1; \
	VMOVUPS (DX), Y2; \
	VMOVUPS (R8), Y3; \
	VMOVUPS (R9), Y4; \
	VMOVUPS (R10), Y5; \
	VMOVUPS (R11), Y6; \
	VMOVUPS (R12), Y7; \
	ADDQ    $32, AX; \
	ADDQ    $32, BX; \
	ADDQ    $32, DX; \
	ADDQ    $32, R8; \
	ADDQ    $32, R9; \
	ADDQ    $32, R10; \
	ADDQ    $32, R11; \
	ADDQ    $32, R12

// Transpose the 8x8 block in Y0..Y7 (row r in Yr) into Y8..Y15 (column q in Y8+q).
#define TRANSPOSE8 \
	VUNPCKLPS  Y1, Y0, Y8; \
	VUNPCKHPS  Y1, Y0, Y9; \
	VUNPCKLPS  Y3, Y2, Y10; \
	VUNPCKHPS  Y3, Y2, Y11; \
	VUNPCKLPS  Y5, Y4, Y12; \
	VUNPCKHPS  Y5, Y4, Y13; \
	VUNPCKLPS  Y7, Y6, Y14; \
	VUNPCKHPS  Y7, Y6, Y15; \
	VSHUFPS    $0x44, Y10, Y8, Y0; \
	VSHUFPS    $0xEE, Y10, Y8, Y1; \
	VSHUFPS    $0x44, Y11, Y9, Y2; \
	VSHUFPS    $0xEE, Y11, Y9, Y3; \
	VSHUFPS    $0x44, Y14, Y12, Y4; \
	VSHUFPS    $0xEE, Y14, Y12, Y5; \
	VSHUFPS    $0x44, Y15, Y13, Y6; \
	VSHUFPS    $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8; \
	VPERM2F128 $0x20, Y5, Y1, Y9; \
	VPERM2F128 $0x20, Y6, Y2, Y10; \
	VPERM2F128 $0x20, Y7, Y3, Y11; \
	VPERM2F128 $0x31, Y4, Y0, Y12; \
	VPERM2F128 $0x31, Y5, Y1, Y13; \
	VPERM2F128 $0x31, Y6, Y2, Y14; \
	VPERM2F128 $0x31, Y7, Y3, Y15

#define LOADPTRS \
	MOVQ rows+8(FP), SI; \
	MOVQ 0(SI), AX; \
	MOVQ 8(SI), BX; \
	MOVQ 16(SI), DX; \
	MOVQ 24(SI), R8; \
	MOVQ 32(SI), R9; \
	MOVQ 40(SI), R10; \
	MOVQ 48(SI), R11; \
	MOVQ 56(SI), R12

// Store rows 0..5 of column Yq (6 floats) at off(DI).
#define STORE6(yq, xq, off) \
	VMOVUPS      xq, off(DI); \
	VEXTRACTF128 $1, yq, X0; \
	VMOVQ        X0, off+16(DI)

// func copy16rows(kc, np int, src *float32, ld int, dst *float32, dstride int)
// dst[q*dstride+p*16+j] = src[p*ld+q*16+j] for p < kc, q < np, j < 16: np
// panels of 16 columns, reading the source row by row.
TEXT ·copy16rows(SB), NOSPLIT, $0-48
	MOVQ  kc+0(FP), CX
	MOVQ  np+8(FP), DX
	MOVQ  src+16(FP), SI
	MOVQ  ld+24(FP), R8
	SHLQ  $2, R8
	MOVQ  dst+32(FP), DI
	MOVQ  dstride+40(FP), R9
	SHLQ  $2, R9
	LEAQ  (R8)(R8*2), R12 // prefetch 3 rows ahead
	TESTQ CX, CX
	JZ    donerows
	TESTQ DX, DX
	JZ    donerows

looprows:
	MOVQ SI, R10
	MOVQ DI, R11
	MOVQ DX, BX

looppanels:
	PREFETCHT0 (R10)(R12*1)
	VMOVUPS (R10), Y0
	VMOVUPS 32(R10), Y1
	VMOVUPS Y0, (R11)
	VMOVUPS Y1, 32(R11)
	ADDQ    $64, R10
	ADDQ    R9, R11
	DECQ    BX
	JNZ     looppanels

	ADDQ R8, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  looprows

donerows:
	VZEROUPPER
	RET

// func copy6(kc int, src *float32, ld int, dst *float32)
// dst[p*6+j] = src[p*ld+j] for p < kc, j < 6.
TEXT ·copy6(SB), NOSPLIT, $0-32
	MOVQ  kc+0(FP), CX
	MOVQ  src+8(FP), SI
	MOVQ  ld+16(FP), R8
	SHLQ  $2, R8
	MOVQ  dst+24(FP), DI
	TESTQ CX, CX
	JZ    done6

loop6:
	VMOVUPS (SI), X0
	VMOVQ   16(SI), X1
	VMOVUPS X0, (DI)
	VMOVQ   X1, 16(DI)
	ADDQ    R8, SI
	ADDQ    $24, DI
	DECQ    CX
	JNZ     loop6

done6:
	RET

// func transpose8(kc8 int, rows *[8]*float32, dst *float32, ldd int)
// dst[p*ldd+r] = rows[r][p] for r < 8, p < kc8 (a multiple of 8).
TEXT ·transpose8(SB), NOSPLIT, $0-32
	MOVQ kc8+0(FP), CX
	LOADPTRS
	MOVQ dst+16(FP), DI
	MOVQ ldd+24(FP), SI
	SHLQ $2, SI
	SHRQ $3, CX
	JZ   doneT8

loopT8:
	LOADROWS
	TRANSPOSE8
	MOVQ    DI, R13
	VMOVUPS Y8, (R13)
	ADDQ    SI, R13
	VMOVUPS Y9, (R13)
	ADDQ    SI, R13
	VMOVUPS Y10, (R13)
	ADDQ    SI, R13
	VMOVUPS Y11, (R13)
	ADDQ    SI, R13
	VMOVUPS Y12, (R13)
	ADDQ    SI, R13
	VMOVUPS Y13, (R13)
	ADDQ    SI, R13
	VMOVUPS Y14, (R13)
	ADDQ    SI, R13
	VMOVUPS Y15, (R13)
	LEAQ    (DI)(SI*8), DI
	DECQ    CX
	JNZ     loopT8

doneT8:
	VZEROUPPER
	RET

// func transpose6(kc8 int, rows *[8]*float32, dst *float32)
// dst[p*6+r] = rows[r][p] for r < 6, p < kc8 (a multiple of 8); rows[6]
// and rows[7] are read but not stored.
TEXT ·transpose6(SB), NOSPLIT, $0-24
	MOVQ kc8+0(FP), CX
	LOADPTRS
	MOVQ dst+16(FP), DI
	SHRQ $3, CX
	JZ   doneT6

loopT6:
	LOADROWS
	TRANSPOSE8
	STORE6(Y8, X8, 0)
	STORE6(Y9, X9, 24)
	STORE6(Y10, X10, 48)
	STORE6(Y11, X11, 72)
	STORE6(Y12, X12, 96)
	STORE6(Y13, X13, 120)
	STORE6(Y14, X14, 144)
	STORE6(Y15, X15, 168)
	ADDQ $192, DI
	DECQ CX
	JNZ  loopT6

doneT6:
	VZEROUPPER
	RET
