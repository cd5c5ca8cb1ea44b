#include "textflag.h"

// AVX2+FMA tile transforms of Winograd F(4x4, 3x3) and F(2x2, 3x3)
// (declared in winograd_amd64.go; what each computes is in
// winograd_kernels.go). Each works on 8 lanes (8 images) at a time, nv/8
// times: a first pass transforms the columns of the tile into a scratch
// tile on the stack, a second the rows of that into the destination. The
// matrices' zeros are skipped and their common subexpressions shared, with
// fused multiply-adds. Strides are in floats.

// BT6 computes o = B^T d for F(4x4): d in Y0..Y5, Y13 = 4, Y14 = 5, Y15 = 2;
// o0..o5 in Y6, Y9, Y10, Y8, Y12, Y7.
//   o0 = 4d0 - 5d2 + d4          o1 = (d3 + d4) - 4(d1 + d2)
//   o2 = (d4 - d3) + 4(d1 - d2)  o3 = (d4 - d2) + 2(d3 - d1)
//   o4 = (d4 - d2) - 2(d3 - d1)  o5 = 4d1 - 5d3 + d5
#define BT6 \
	VMOVAPS      Y4, Y6; \
	VFMADD231PS  Y13, Y0, Y6; \
	VFNMADD231PS Y14, Y2, Y6; \
	VMOVAPS      Y5, Y7; \
	VFMADD231PS  Y13, Y1, Y7; \
	VFNMADD231PS Y14, Y3, Y7; \
	VADDPS       Y2, Y1, Y8; \
	VADDPS       Y4, Y3, Y9; \
	VFNMADD231PS Y13, Y8, Y9; \
	VSUBPS       Y2, Y1, Y8; \
	VSUBPS       Y3, Y4, Y10; \
	VFMADD231PS  Y13, Y8, Y10; \
	VSUBPS       Y1, Y3, Y11; \
	VSUBPS       Y2, Y4, Y8; \
	VMOVAPS      Y8, Y12; \
	VFMADD231PS  Y15, Y11, Y8; \
	VFNMADD231PS Y15, Y11, Y12

// AT6 computes y = A^T m for F(4x4): m in Y0..Y5, Y13 = 2, Y14 = 4,
// Y15 = 8; y0..y3 in Y10, Y11, Y12, Y7.
//   a = m1+m2, b = m1-m2, c = m3+m4, d = m3-m4
//   y0 = m0 + a + c, y1 = b + 2d, y2 = a + 4c, y3 = b + 8d + m5
#define AT6 \
	VADDPS      Y2, Y1, Y6; \
	VSUBPS      Y2, Y1, Y7; \
	VADDPS      Y4, Y3, Y8; \
	VSUBPS      Y4, Y3, Y9; \
	VADDPS      Y6, Y0, Y10; \
	VADDPS      Y8, Y10, Y10; \
	VMOVAPS     Y7, Y11; \
	VFMADD231PS Y13, Y9, Y11; \
	VMOVAPS     Y6, Y12; \
	VFMADD231PS Y14, Y8, Y12; \
	VADDPS      Y5, Y7, Y7; \
	VFMADD231PS Y15, Y9, Y7

// A4 computes r = A q for F(4x4) (A = (A^T)^T, 6x4): q in Y0..Y3, Y13 = 2,
// Y14 = 4, Y15 = 8; r0..r5 in Y0, Y6, Y7, Y10, Y11, Y3.
//   e1 = q0+q2, o1 = q1+q3: r1 = e1+o1, r2 = e1-o1
//   e2 = q0+4q2, o2 = 2q1+8q3: r3 = e2+o2, r4 = e2-o2
#define A4 \
	VADDPS      Y2, Y0, Y4; \
	VADDPS      Y3, Y1, Y5; \
	VADDPS      Y5, Y4, Y6; \
	VSUBPS      Y5, Y4, Y7; \
	VMOVAPS     Y0, Y8; \
	VFMADD231PS Y14, Y2, Y8; \
	VMULPS      Y13, Y1, Y9; \
	VFMADD231PS Y15, Y3, Y9; \
	VADDPS      Y9, Y8, Y10; \
	VSUBPS      Y9, Y8, Y11

// BCAST(bits, reg) broadcasts the float32 with the given bits.
#define BCAST(bits, reg) \
	MOVL         bits, AX; \
	VMOVD        AX, X12; \
	VBROADCASTSS X12, reg

// func winoIn4AVX2(src *float32, rs, cs int, dst *float32, ds, nv int)
// Scratch: 6x6 vectors, [o][c] at (o*6+c)*32.
TEXT ·winoIn4AVX2(SB), 0, $1152-48
	MOVQ src+0(FP), SI
	MOVQ rs+8(FP), R8
	MOVQ cs+16(FP), R9
	MOVQ dst+24(FP), DI
	MOVQ ds+32(FP), R10
	MOVQ nv+40(FP), CX
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, R10
	SHRQ $3, CX
	LEAQ (R10)(R10*2), R13
	SHLQ $1, R13             // 6*ds bytes
	BCAST($0x40800000, Y13)  // 4
	BCAST($0x40a00000, Y14)  // 5
	BCAST($0x40000000, Y15)  // 2

in4lanes:
	MOVQ SI, AX
	LEAQ 0(SP), R12
	MOVQ $6, R11

in4cols:
	LEAQ    (AX)(R8*1), BX
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R8*1), Y1
	VMOVUPS (AX)(R8*2), Y2
	VMOVUPS (BX)(R8*2), Y3
	VMOVUPS (AX)(R8*4), Y4
	VMOVUPS (BX)(R8*4), Y5
	BT6
	VMOVUPS Y6, 0(R12)
	VMOVUPS Y9, 192(R12)
	VMOVUPS Y10, 384(R12)
	VMOVUPS Y8, 576(R12)
	VMOVUPS Y12, 768(R12)
	VMOVUPS Y7, 960(R12)
	ADDQ    R9, AX
	ADDQ    $32, R12
	DECQ    R11
	JNZ     in4cols

	LEAQ 0(SP), R12
	MOVQ DI, DX
	MOVQ $6, R11

in4rows:
	VMOVUPS 0(R12), Y0
	VMOVUPS 32(R12), Y1
	VMOVUPS 64(R12), Y2
	VMOVUPS 96(R12), Y3
	VMOVUPS 128(R12), Y4
	VMOVUPS 160(R12), Y5
	BT6
	LEAQ    (DX)(R10*1), BX
	VMOVUPS Y6, (DX)
	VMOVUPS Y9, (DX)(R10*1)
	VMOVUPS Y10, (DX)(R10*2)
	VMOVUPS Y8, (BX)(R10*2)
	VMOVUPS Y12, (DX)(R10*4)
	VMOVUPS Y7, (BX)(R10*4)
	ADDQ    R13, DX
	ADDQ    $192, R12
	DECQ    R11
	JNZ     in4rows

	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  in4lanes
	VZEROUPPER
	RET

// func winoOut4AVX2(src *float32, ss int, dst *float32, rs, cs, nv int)
// Scratch: 4x6 vectors, [r][k] at (r*6+k)*32.
TEXT ·winoOut4AVX2(SB), 0, $768-48
	MOVQ src+0(FP), SI
	MOVQ ss+8(FP), R8
	MOVQ dst+16(FP), DI
	MOVQ rs+24(FP), R9
	MOVQ cs+32(FP), R10
	MOVQ nv+40(FP), CX
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, R10
	SHRQ $3, CX
	MOVQ R8, R13             // ss bytes: next column
	LEAQ (R8)(R8*2), R8
	SHLQ $1, R8              // 6*ss bytes: next row
	BCAST($0x40000000, Y13)  // 2
	BCAST($0x40800000, Y14)  // 4
	BCAST($0x41000000, Y15)  // 8

out4lanes:
	MOVQ SI, AX
	LEAQ 0(SP), R12
	MOVQ $6, R11

out4cols:
	LEAQ    (AX)(R8*1), BX
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R8*1), Y1
	VMOVUPS (AX)(R8*2), Y2
	VMOVUPS (BX)(R8*2), Y3
	VMOVUPS (AX)(R8*4), Y4
	VMOVUPS (BX)(R8*4), Y5
	AT6
	VMOVUPS Y10, 0(R12)
	VMOVUPS Y11, 192(R12)
	VMOVUPS Y12, 384(R12)
	VMOVUPS Y7, 576(R12)
	ADDQ    R13, AX
	ADDQ    $32, R12
	DECQ    R11
	JNZ     out4cols

	LEAQ 0(SP), R12
	MOVQ DI, DX
	MOVQ $4, R11

out4rows:
	VMOVUPS 0(R12), Y0
	VMOVUPS 32(R12), Y1
	VMOVUPS 64(R12), Y2
	VMOVUPS 96(R12), Y3
	VMOVUPS 128(R12), Y4
	VMOVUPS 160(R12), Y5
	AT6
	LEAQ    (DX)(R10*1), BX
	VMOVUPS Y10, (DX)
	VMOVUPS Y11, (DX)(R10*1)
	VMOVUPS Y12, (DX)(R10*2)
	VMOVUPS Y7, (BX)(R10*2)
	ADDQ    R9, DX
	ADDQ    $192, R12
	DECQ    R11
	JNZ     out4rows

	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  out4lanes
	VZEROUPPER
	RET

// func winoDy4AVX2(src *float32, rs, cs int, dst *float32, ds, nv int)
// Scratch: 6x4 vectors, [a][c] at (a*4+c)*32.
TEXT ·winoDy4AVX2(SB), 0, $768-48
	MOVQ src+0(FP), SI
	MOVQ rs+8(FP), R8
	MOVQ cs+16(FP), R9
	MOVQ dst+24(FP), DI
	MOVQ ds+32(FP), R10
	MOVQ nv+40(FP), CX
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, R10
	SHRQ $3, CX
	LEAQ (R10)(R10*2), R13
	SHLQ $1, R13             // 6*ds bytes
	BCAST($0x40000000, Y13)  // 2
	BCAST($0x40800000, Y14)  // 4
	BCAST($0x41000000, Y15)  // 8

dy4lanes:
	MOVQ SI, AX
	LEAQ 0(SP), R12
	MOVQ $4, R11

dy4cols:
	LEAQ    (AX)(R8*1), BX
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R8*1), Y1
	VMOVUPS (AX)(R8*2), Y2
	VMOVUPS (BX)(R8*2), Y3
	A4
	VMOVUPS Y0, 0(R12)
	VMOVUPS Y6, 128(R12)
	VMOVUPS Y7, 256(R12)
	VMOVUPS Y10, 384(R12)
	VMOVUPS Y11, 512(R12)
	VMOVUPS Y3, 640(R12)
	ADDQ    R9, AX
	ADDQ    $32, R12
	DECQ    R11
	JNZ     dy4cols

	LEAQ 0(SP), R12
	MOVQ DI, DX
	MOVQ $6, R11

dy4rows:
	VMOVUPS 0(R12), Y0
	VMOVUPS 32(R12), Y1
	VMOVUPS 64(R12), Y2
	VMOVUPS 96(R12), Y3
	A4
	LEAQ    (DX)(R10*1), BX
	VMOVUPS Y0, (DX)
	VMOVUPS Y6, (DX)(R10*1)
	VMOVUPS Y7, (DX)(R10*2)
	VMOVUPS Y10, (BX)(R10*2)
	VMOVUPS Y11, (DX)(R10*4)
	VMOVUPS Y3, (BX)(R10*4)
	ADDQ    R13, DX
	ADDQ    $128, R12
	DECQ    R11
	JNZ     dy4rows

	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  dy4lanes
	VZEROUPPER
	RET

// F(2x2): B^T d: o0 = d0-d2, o1 = d1+d2, o2 = d2-d1, o3 = d1-d3, d in
// Y0..Y3, o in Y4..Y7.
#define BT4 \
	VSUBPS Y2, Y0, Y4; \
	VADDPS Y2, Y1, Y5; \
	VSUBPS Y1, Y2, Y6; \
	VSUBPS Y3, Y1, Y7

// func winoIn2AVX2(src *float32, rs, cs int, dst *float32, ds, nv int)
// Scratch: 4x4 vectors, [o][c] at (o*4+c)*32.
TEXT ·winoIn2AVX2(SB), NOSPLIT, $512-48
	MOVQ src+0(FP), SI
	MOVQ rs+8(FP), R8
	MOVQ cs+16(FP), R9
	MOVQ dst+24(FP), DI
	MOVQ ds+32(FP), R10
	MOVQ nv+40(FP), CX
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, R10
	SHRQ $3, CX
	MOVQ R10, R13
	SHLQ $2, R13             // 4*ds bytes

in2lanes:
	MOVQ SI, AX
	LEAQ 0(SP), R12
	MOVQ $4, R11

in2cols:
	LEAQ    (AX)(R8*1), BX
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R8*1), Y1
	VMOVUPS (AX)(R8*2), Y2
	VMOVUPS (BX)(R8*2), Y3
	BT4
	VMOVUPS Y4, 0(R12)
	VMOVUPS Y5, 128(R12)
	VMOVUPS Y6, 256(R12)
	VMOVUPS Y7, 384(R12)
	ADDQ    R9, AX
	ADDQ    $32, R12
	DECQ    R11
	JNZ     in2cols

	LEAQ 0(SP), R12
	MOVQ DI, DX
	MOVQ $4, R11

in2rows:
	VMOVUPS 0(R12), Y0
	VMOVUPS 32(R12), Y1
	VMOVUPS 64(R12), Y2
	VMOVUPS 96(R12), Y3
	BT4
	LEAQ    (DX)(R10*1), BX
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, (DX)(R10*1)
	VMOVUPS Y6, (DX)(R10*2)
	VMOVUPS Y7, (BX)(R10*2)
	ADDQ    R13, DX
	ADDQ    $128, R12
	DECQ    R11
	JNZ     in2rows

	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  in2lanes
	VZEROUPPER
	RET

// F(2x2): A^T m: y0 = m0+m1+m2, y1 = m1-m2-m3; m in Y0..Y3, y in Y4, Y5.
#define AT4 \
	VADDPS Y1, Y0, Y4; \
	VADDPS Y2, Y4, Y4; \
	VSUBPS Y2, Y1, Y5; \
	VSUBPS Y3, Y5, Y5

// func winoOut2AVX2(src *float32, ss int, dst *float32, rs, cs, nv int)
// Scratch: 2x4 vectors, [r][k] at (r*4+k)*32.
TEXT ·winoOut2AVX2(SB), NOSPLIT, $256-48
	MOVQ src+0(FP), SI
	MOVQ ss+8(FP), R8
	MOVQ dst+16(FP), DI
	MOVQ rs+24(FP), R9
	MOVQ cs+32(FP), R10
	MOVQ nv+40(FP), CX
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, R10
	SHRQ $3, CX
	MOVQ R8, R13             // ss bytes: next column
	SHLQ $2, R8              // 4*ss bytes: next row

out2lanes:
	MOVQ SI, AX
	LEAQ 0(SP), R12
	MOVQ $4, R11

out2cols:
	LEAQ    (AX)(R8*1), BX
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R8*1), Y1
	VMOVUPS (AX)(R8*2), Y2
	VMOVUPS (BX)(R8*2), Y3
	AT4
	VMOVUPS Y4, 0(R12)
	VMOVUPS Y5, 128(R12)
	ADDQ    R13, AX
	ADDQ    $32, R12
	DECQ    R11
	JNZ     out2cols

	LEAQ 0(SP), R12
	MOVQ DI, DX
	MOVQ $2, R11

out2rows:
	VMOVUPS 0(R12), Y0
	VMOVUPS 32(R12), Y1
	VMOVUPS 64(R12), Y2
	VMOVUPS 96(R12), Y3
	AT4
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, (DX)(R10*1)
	ADDQ    R9, DX
	ADDQ    $128, R12
	DECQ    R11
	JNZ     out2rows

	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  out2lanes
	VZEROUPPER
	RET

// F(2x2): A q: r0 = q0, r1 = q0+q1, r2 = q0-q1, r3 = -q1; q in Y0, Y1,
// r in Y0, Y2, Y3, Y4.
#define A2 \
	VADDPS Y1, Y0, Y2; \
	VSUBPS Y1, Y0, Y3; \
	VXORPS Y4, Y4, Y4; \
	VSUBPS Y1, Y4, Y4

// func winoDy2AVX2(src *float32, rs, cs int, dst *float32, ds, nv int)
// Scratch: 4x2 vectors, [a][c] at (a*2+c)*32.
TEXT ·winoDy2AVX2(SB), NOSPLIT, $256-48
	MOVQ src+0(FP), SI
	MOVQ rs+8(FP), R8
	MOVQ cs+16(FP), R9
	MOVQ dst+24(FP), DI
	MOVQ ds+32(FP), R10
	MOVQ nv+40(FP), CX
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, R10
	SHRQ $3, CX
	MOVQ R10, R13
	SHLQ $2, R13             // 4*ds bytes

dy2lanes:
	MOVQ SI, AX
	LEAQ 0(SP), R12
	MOVQ $2, R11

dy2cols:
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R8*1), Y1
	A2
	VMOVUPS Y0, 0(R12)
	VMOVUPS Y2, 64(R12)
	VMOVUPS Y3, 128(R12)
	VMOVUPS Y4, 192(R12)
	ADDQ    R9, AX
	ADDQ    $32, R12
	DECQ    R11
	JNZ     dy2cols

	LEAQ 0(SP), R12
	MOVQ DI, DX
	MOVQ $4, R11

dy2rows:
	VMOVUPS 0(R12), Y0
	VMOVUPS 32(R12), Y1
	A2
	LEAQ    (DX)(R10*1), BX
	VMOVUPS Y0, (DX)
	VMOVUPS Y2, (DX)(R10*1)
	VMOVUPS Y3, (DX)(R10*2)
	VMOVUPS Y4, (BX)(R10*2)
	ADDQ    R13, DX
	ADDQ    $64, R12
	DECQ    R11
	JNZ     dy2rows

	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  dy2lanes
	VZEROUPPER
	RET

// TRANSPOSE8 transposes the 8x8 matrix whose rows are Y0..Y7 into
// Y8..Y15 (row i of the result is column i), Y0..Y7 clobbered.
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

// tailmask: eight -1 then eight 0; tailmask+4*(8-t) is a mask of t lanes.
DATA tailmask<>+0(SB)/4, $-1
DATA tailmask<>+4(SB)/4, $-1
DATA tailmask<>+8(SB)/4, $-1
DATA tailmask<>+12(SB)/4, $-1
DATA tailmask<>+16(SB)/4, $-1
DATA tailmask<>+20(SB)/4, $-1
DATA tailmask<>+24(SB)/4, $-1
DATA tailmask<>+28(SB)/4, $-1
DATA tailmask<>+32(SB)/4, $0
DATA tailmask<>+36(SB)/4, $0
DATA tailmask<>+40(SB)/4, $0
DATA tailmask<>+44(SB)/4, $0
DATA tailmask<>+48(SB)/4, $0
DATA tailmask<>+52(SB)/4, $0
DATA tailmask<>+56(SB)/4, $0
DATA tailmask<>+60(SB)/4, $0
GLOBL tailmask<>(SB), RODATA|NOPTR, $64

// func winoTransInAVX2(src *float32, ss int, dst *float32, ds, cols int)
// For x < cols and j < 8: dst[x*ds+j] = src[j*ss+x], 8 columns at a time;
// the last block reads 8 columns of each row whatever cols is.
TEXT ·winoTransInAVX2(SB), NOSPLIT, $0-40
	MOVQ src+0(FP), SI
	MOVQ ss+8(FP), R8
	MOVQ dst+16(FP), DI
	MOVQ ds+24(FP), R10
	MOVQ cols+32(FP), CX
	SHLQ $2, R8
	SHLQ $2, R10
	LEAQ (R8)(R8*2), R9      // 3*ss
	LEAQ (R10)(R10*2), R11   // 3*ds

tinblock:
	LEAQ    (SI)(R8*4), AX   // row 4
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (SI)(R9*1), Y3
	VMOVUPS (AX), Y4
	VMOVUPS (AX)(R8*1), Y5
	VMOVUPS (AX)(R8*2), Y6
	VMOVUPS (AX)(R9*1), Y7
	TRANSPOSE8
	LEAQ    (DI)(R10*4), BX  // column 4
	CMPQ    CX, $8
	JLT     tintail
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, (DI)(R10*1)
	VMOVUPS Y10, (DI)(R10*2)
	VMOVUPS Y11, (DI)(R11*1)
	VMOVUPS Y12, (BX)
	VMOVUPS Y13, (BX)(R10*1)
	VMOVUPS Y14, (BX)(R10*2)
	VMOVUPS Y15, (BX)(R11*1)
	ADDQ    $32, SI
	LEAQ    (DI)(R10*8), DI
	SUBQ    $8, CX
	JNZ     tinblock
	VZEROUPPER
	RET

tintail: // 1 <= CX < 8 columns left
	VMOVUPS Y8, (DI)
	CMPQ    CX, $2
	JLT     tindone
	VMOVUPS Y9, (DI)(R10*1)
	CMPQ    CX, $3
	JLT     tindone
	VMOVUPS Y10, (DI)(R10*2)
	CMPQ    CX, $4
	JLT     tindone
	VMOVUPS Y11, (DI)(R11*1)
	CMPQ    CX, $5
	JLT     tindone
	VMOVUPS Y12, (BX)
	CMPQ    CX, $6
	JLT     tindone
	VMOVUPS Y13, (BX)(R10*1)
	CMPQ    CX, $7
	JLT     tindone
	VMOVUPS Y14, (BX)(R10*2)

tindone:
	VZEROUPPER
	RET

// func winoTransOutAVX2(src *float32, ss int, dst *float32, ds, cols int)
// For x < cols and j < 8: dst[j*ds+x] = src[x*ss+j], 8 columns at a time;
// the last block reads 8 columns of src whatever cols is, and writes only
// cols of each row.
TEXT ·winoTransOutAVX2(SB), NOSPLIT, $0-40
	MOVQ src+0(FP), SI
	MOVQ ss+8(FP), R8
	MOVQ dst+16(FP), DI
	MOVQ ds+24(FP), R10
	MOVQ cols+32(FP), CX
	SHLQ $2, R8
	SHLQ $2, R10
	LEAQ (R8)(R8*2), R9      // 3*ss
	LEAQ (R10)(R10*2), R11   // 3*ds

toutblock:
	LEAQ    (SI)(R8*4), AX
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (SI)(R9*1), Y3
	VMOVUPS (AX), Y4
	VMOVUPS (AX)(R8*1), Y5
	VMOVUPS (AX)(R8*2), Y6
	VMOVUPS (AX)(R9*1), Y7
	TRANSPOSE8
	LEAQ    (DI)(R10*4), BX
	CMPQ    CX, $8
	JLT     touttail
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, (DI)(R10*1)
	VMOVUPS Y10, (DI)(R10*2)
	VMOVUPS Y11, (DI)(R11*1)
	VMOVUPS Y12, (BX)
	VMOVUPS Y13, (BX)(R10*1)
	VMOVUPS Y14, (BX)(R10*2)
	VMOVUPS Y15, (BX)(R11*1)
	LEAQ    (SI)(R8*8), SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     toutblock
	VZEROUPPER
	RET

touttail: // 1 <= CX < 8 columns left: masked stores
	MOVQ       $8, DX
	SUBQ       CX, DX
	LEAQ       tailmask<>(SB), AX
	VMOVUPS    (AX)(DX*4), Y0
	VMASKMOVPS Y8, Y0, (DI)
	VMASKMOVPS Y9, Y0, (DI)(R10*1)
	VMASKMOVPS Y10, Y0, (DI)(R10*2)
	VMASKMOVPS Y11, Y0, (DI)(R11*1)
	VMASKMOVPS Y12, Y0, (BX)
	VMASKMOVPS Y13, Y0, (BX)(R10*1)
	VMASKMOVPS Y14, Y0, (BX)(R10*2)
	VMASKMOVPS Y15, Y0, (BX)(R11*1)
	VZEROUPPER
	RET
