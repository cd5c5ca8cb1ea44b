#include "textflag.h"

// One k step of the 6x16 tile: B row (16 floats) in Y12:Y13, each A value
// broadcast and multiplied into two accumulators.
#define STEP(ao, bo) \
	VMOVUPS      bo(DI), Y12; \
	VMOVUPS      bo+32(DI), Y13; \
	VBROADCASTSS ao(SI), Y14; \
	VFMADD231PS  Y12, Y14, Y0; \
	VFMADD231PS  Y13, Y14, Y1; \
	VBROADCASTSS ao+4(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y2; \
	VFMADD231PS  Y13, Y15, Y3; \
	VBROADCASTSS ao+8(SI), Y14; \
	VFMADD231PS  Y12, Y14, Y4; \
	VFMADD231PS  Y13, Y14, Y5; \
	VBROADCASTSS ao+12(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y6; \
	VFMADD231PS  Y13, Y15, Y7; \
	VBROADCASTSS ao+16(SI), Y14; \
	VFMADD231PS  Y12, Y14, Y8; \
	VFMADD231PS  Y13, Y14, Y9; \
	VBROADCASTSS ao+20(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y10; \
	VFMADD231PS  Y13, Y15, Y11

// Row of C: c = acc*alpha (done) + beta*c, store, stop after the last row.
#define ROWBETA(r0, r1) \
	VFMADD231PS (DX), Y13, r0; \
	VFMADD231PS 32(DX), Y13, r1; \
	VMOVUPS     r0, (DX); \
	VMOVUPS     r1, 32(DX); \
	ADDQ        R8, DX; \
	DECQ        R10; \
	JZ          done

#define ROWSTORE(r0, r1) \
	VMOVUPS r0, (DX); \
	VMOVUPS r1, 32(DX); \
	ADDQ    R8, DX; \
	DECQ    R10; \
	JZ      done

#define PREFETCHTILE(reg) \
	MOVQ       reg, DX; \
	PREFETCHT0 (DX); \
	PREFETCHT0 63(DX); \
	ADDQ       R8, DX; \
	PREFETCHT0 (DX); \
	PREFETCHT0 63(DX); \
	ADDQ       R8, DX; \
	PREFETCHT0 (DX); \
	PREFETCHT0 63(DX); \
	ADDQ       R8, DX; \
	PREFETCHT0 (DX); \
	PREFETCHT0 63(DX); \
	ADDQ       R8, DX; \
	PREFETCHT0 (DX); \
	PREFETCHT0 63(DX); \
	ADDQ       R8, DX; \
	PREFETCHT0 (DX); \
	PREFETCHT0 63(DX)

// func kernel6x16(kc, mr int, a, b, c *float32, ldc int, alpha, beta float32)
//
// For each of the ceil(mr/6) packed A panels (6 x kc each, consecutive from
// a) times the packed B panel b (kc x 16): the 6x16 tile T, then
// c[i*ldc+j] = alpha*T + beta*c for the tile's rows below mr (C not read
// when beta is 0). Successive tiles go 6 rows further down C.
TEXT ·kernel6x16(SB), NOSPLIT, $0-56
	MOVQ kc+0(FP), R13
	MOVQ mr+8(FP), R10
	MOVQ a+16(FP), SI
	MOVQ b+24(FP), R11
	MOVQ c+32(FP), R9
	MOVQ ldc+40(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R12
	SHLQ $1, R12         // 6 rows of C in bytes
	TESTQ R10, R10
	JLE   done
	PREFETCHTILE(R9)

tile:
	// Prefetch the next tile of C while this one is computed.
	LEAQ (R9)(R12*1), AX
	PREFETCHTILE(AX)
	MOVQ R11, DI

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

	MOVQ  R13, CX
	MOVQ  CX, BX
	SHRQ  $2, BX
	ANDQ  $3, CX
	TESTQ BX, BX
	JZ    tail

loop4:
	PREFETCHT0 384(SI)
	STEP(0, 0)
	STEP(24, 64)
	PREFETCHT0 448(SI)
	STEP(48, 128)
	STEP(72, 192)
	ADDQ $96, SI
	ADDQ $256, DI
	DECQ BX
	JNZ  loop4

tail:
	TESTQ CX, CX
	JZ    store

loop1:
	STEP(0, 0)
	ADDQ $24, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  loop1

store:
	MOVQ         R9, DX
	VBROADCASTSS alpha+48(FP), Y12
	VMULPS       Y12, Y0, Y0
	VMULPS       Y12, Y1, Y1
	VMULPS       Y12, Y2, Y2
	VMULPS       Y12, Y3, Y3
	VMULPS       Y12, Y4, Y4
	VMULPS       Y12, Y5, Y5
	VMULPS       Y12, Y6, Y6
	VMULPS       Y12, Y7, Y7
	VMULPS       Y12, Y8, Y8
	VMULPS       Y12, Y9, Y9
	VMULPS       Y12, Y10, Y10
	VMULPS       Y12, Y11, Y11

	// beta == 0 (or -0): C is not read.
	MOVL beta+52(FP), AX
	ANDL $0x7fffffff, AX
	JZ   nobeta

	VBROADCASTSS beta+52(FP), Y13
	ROWBETA(Y0, Y1)
	ROWBETA(Y2, Y3)
	ROWBETA(Y4, Y5)
	ROWBETA(Y6, Y7)
	ROWBETA(Y8, Y9)
	ROWBETA(Y10, Y11)
	ADDQ R12, R9
	JMP  tile

nobeta:
	ROWSTORE(Y0, Y1)
	ROWSTORE(Y2, Y3)
	ROWSTORE(Y4, Y5)
	ROWSTORE(Y6, Y7)
	ROWSTORE(Y8, Y9)
	ROWSTORE(Y10, Y11)
	ADDQ R12, R9
	JMP  tile

done:
	VZEROUPPER
	RET
