#include "textflag.h"

// AVX-512F routines of the 8x32 kernel (avx512Kernel).

// One k step of the 8x32 tile: B row (32 floats) in Z16:Z17, each A value
// broadcast and multiplied into two accumulators. Each accumulator is the
// same FMA chain over k as in the AVX2 kernel, so the sums are identical.
#define STEP(ao, bo) \
	VMOVUPS      bo(DI), Z16; \
	VMOVUPS      bo+64(DI), Z17; \
	VBROADCASTSS ao(SI), Z18; \
	VFMADD231PS  Z16, Z18, Z0; \
	VFMADD231PS  Z17, Z18, Z1; \
	VBROADCASTSS ao+4(SI), Z19; \
	VFMADD231PS  Z16, Z19, Z2; \
	VFMADD231PS  Z17, Z19, Z3; \
	VBROADCASTSS ao+8(SI), Z20; \
	VFMADD231PS  Z16, Z20, Z4; \
	VFMADD231PS  Z17, Z20, Z5; \
	VBROADCASTSS ao+12(SI), Z21; \
	VFMADD231PS  Z16, Z21, Z6; \
	VFMADD231PS  Z17, Z21, Z7; \
	VBROADCASTSS ao+16(SI), Z22; \
	VFMADD231PS  Z16, Z22, Z8; \
	VFMADD231PS  Z17, Z22, Z9; \
	VBROADCASTSS ao+20(SI), Z23; \
	VFMADD231PS  Z16, Z23, Z10; \
	VFMADD231PS  Z17, Z23, Z11; \
	VBROADCASTSS ao+24(SI), Z24; \
	VFMADD231PS  Z16, Z24, Z12; \
	VFMADD231PS  Z17, Z24, Z13; \
	VBROADCASTSS ao+28(SI), Z25; \
	VFMADD231PS  Z16, Z25, Z14; \
	VFMADD231PS  Z17, Z25, Z15

// Row of C: c = acc*alpha (done) + beta*c, store, stop after the last row.
#define ROWBETA(r0, r1) \
	VFMADD231PS (DX), Z17, r0; \
	VFMADD231PS 64(DX), Z17, r1; \
	VMOVUPS     r0, (DX); \
	VMOVUPS     r1, 64(DX); \
	ADDQ        R8, DX; \
	DECQ        R10; \
	JZ          done

#define ROWSTORE(r0, r1) \
	VMOVUPS r0, (DX); \
	VMOVUPS r1, 64(DX); \
	ADDQ    R8, DX; \
	DECQ    R10; \
	JZ      done

// Prefetch one row of C (128 bytes, perhaps over three cache lines).
#define PREFETCHROW \
	PREFETCHT0 (DX); \
	PREFETCHT0 64(DX); \
	PREFETCHT0 127(DX); \
	ADDQ       R8, DX

#define PREFETCHTILE(reg) \
	MOVQ reg, DX; \
	PREFETCHROW; \
	PREFETCHROW; \
	PREFETCHROW; \
	PREFETCHROW; \
	PREFETCHROW; \
	PREFETCHROW; \
	PREFETCHROW; \
	PREFETCHROW

// Zero the 16 accumulators.
#define ZEROACC \
	VPXORD Z0, Z0, Z0; \
	VPXORD Z1, Z1, Z1; \
	VPXORD Z2, Z2, Z2; \
	VPXORD Z3, Z3, Z3; \
	VPXORD Z4, Z4, Z4; \
	VPXORD Z5, Z5, Z5; \
	VPXORD Z6, Z6, Z6; \
	VPXORD Z7, Z7, Z7; \
	VPXORD Z8, Z8, Z8; \
	VPXORD Z9, Z9, Z9; \
	VPXORD Z10, Z10, Z10; \
	VPXORD Z11, Z11, Z11; \
	VPXORD Z12, Z12, Z12; \
	VPXORD Z13, Z13, Z13; \
	VPXORD Z14, Z14, Z14; \
	VPXORD Z15, Z15, Z15

// The tile's k loop: R13 steps from the A panel at SI and the B panel at
// DI, four at a time, then one at a time; SI ends at the next A panel.
#define KLOOP \
	MOVQ  R13, CX; \
	MOVQ  CX, BX; \
	SHRQ  $2, BX; \
	ANDQ  $3, CX; \
	TESTQ BX, BX; \
	JZ    tail; \
loop4: \
	PREFETCHT0 512(SI); \
	STEP(0, 0); \
	STEP(32, 128); \
	PREFETCHT0 576(SI); \
	STEP(64, 256); \
	STEP(96, 384); \
	ADDQ $128, SI; \
	ADDQ $512, DI; \
	DECQ BX; \
	JNZ  loop4; \
tail: \
	TESTQ CX, CX; \
	JZ    kdone; \
loop1: \
	STEP(0, 0); \
	ADDQ $32, SI; \
	ADDQ $128, DI; \
	DECQ CX; \
	JNZ  loop1; \
kdone:

// Multiply the accumulators by alpha.
#define SCALEALPHA \
	VBROADCASTSS alpha+48(FP), Z16; \
	VMULPS       Z16, Z0, Z0; \
	VMULPS       Z16, Z1, Z1; \
	VMULPS       Z16, Z2, Z2; \
	VMULPS       Z16, Z3, Z3; \
	VMULPS       Z16, Z4, Z4; \
	VMULPS       Z16, Z5, Z5; \
	VMULPS       Z16, Z6, Z6; \
	VMULPS       Z16, Z7, Z7; \
	VMULPS       Z16, Z8, Z8; \
	VMULPS       Z16, Z9, Z9; \
	VMULPS       Z16, Z10, Z10; \
	VMULPS       Z16, Z11, Z11; \
	VMULPS       Z16, Z12, Z12; \
	VMULPS       Z16, Z13, Z13; \
	VMULPS       Z16, Z14, Z14; \
	VMULPS       Z16, Z15, Z15

#define KERNELARGS \
	MOVQ kc+0(FP), R13; \
	MOVQ mr+8(FP), R10; \
	MOVQ a+16(FP), SI; \
	MOVQ b+24(FP), R11; \
	MOVQ c+32(FP), R9; \
	MOVQ ldc+40(FP), R8; \
	SHLQ $2, R8; \
	MOVQ R8, R12; \
	SHLQ $3, R12 // 8 rows of C in bytes

// func kernel8x32(kc, mr int, a, b, c *float32, ldc int, alpha, beta float32)
//
// For each of the ceil(mr/8) packed A panels (8 x kc each, consecutive from
// a) times the packed B panel b (kc x 32): the 8x32 tile T, then
// c[i*ldc+j] = alpha*T + beta*c for the tile's rows below mr (C not read
// when beta is 0), rounded as in kernel6x16: alpha*T, then one fused
// multiply-add. Successive tiles go 8 rows further down C.
TEXT ·kernel8x32(SB), NOSPLIT, $0-56
	KERNELARGS
	TESTQ R10, R10
	JLE   done
	PREFETCHTILE(R9)

tile:
	// Prefetch the next tile of C while this one is computed.
	LEAQ (R9)(R12*1), AX
	PREFETCHTILE(AX)
	MOVQ R11, DI
	ZEROACC
	KLOOP
	MOVQ R9, DX
	SCALEALPHA

	// beta == 0 (or -0): C is not read.
	MOVL beta+52(FP), AX
	ANDL $0x7fffffff, AX
	JZ   nobeta

	VBROADCASTSS beta+52(FP), Z17
	ROWBETA(Z0, Z1)
	ROWBETA(Z2, Z3)
	ROWBETA(Z4, Z5)
	ROWBETA(Z6, Z7)
	ROWBETA(Z8, Z9)
	ROWBETA(Z10, Z11)
	ROWBETA(Z12, Z13)
	ROWBETA(Z14, Z15)
	ADDQ R12, R9
	JMP  tile

nobeta:
	ROWSTORE(Z0, Z1)
	ROWSTORE(Z2, Z3)
	ROWSTORE(Z4, Z5)
	ROWSTORE(Z6, Z7)
	ROWSTORE(Z8, Z9)
	ROWSTORE(Z10, Z11)
	ROWSTORE(Z12, Z13)
	ROWSTORE(Z14, Z15)
	ADDQ R12, R9
	JMP  tile

done:
	VZEROUPPER
	RET

#define ROWSTORENT(r0, r1) \
	VMOVNTPS r0, (DX); \
	VMOVNTPS r1, 64(DX); \
	ADDQ     R8, DX; \
	DECQ     R10; \
	JZ       done

// func kernel8x32nt(kc, mr int, a, b, c *float32, ldc int, alpha, beta float32)
//
// kernel8x32 for beta == 0 (beta is ignored), with non-temporal stores that
// bypass the caches: for a C much larger than the caches, it is not read
// for ownership before being written. Every row of C must start on a
// 64-byte boundary.
TEXT ·kernel8x32nt(SB), NOSPLIT, $0-56
	KERNELARGS
	TESTQ R10, R10
	JLE   done

tile:
	MOVQ R11, DI
	ZEROACC
	KLOOP
	MOVQ R9, DX
	SCALEALPHA
	ROWSTORENT(Z0, Z1)
	ROWSTORENT(Z2, Z3)
	ROWSTORENT(Z4, Z5)
	ROWSTORENT(Z6, Z7)
	ROWSTORENT(Z8, Z9)
	ROWSTORENT(Z10, Z11)
	ROWSTORENT(Z12, Z13)
	ROWSTORENT(Z14, Z15)
	ADDQ R12, R9
	JMP  tile

done:
	SFENCE
	VZEROUPPER
	RET

// func mergeFMA16(rows, n16 int, t *float32, ldt int, c *float32, ldc int, alpha, beta float32)
//
// c[i*ldc+j] = alpha*t[i*ldt+j] + beta*c[i*ldc+j] for i < rows, j < 16*n16,
// rounded as the kernels round a whole tile: alpha*t, then one fused
// multiply-add (C not read when beta is 0).
TEXT ·mergeFMA16(SB), NOSPLIT, $0-56
	MOVQ         rows+0(FP), R10
	MOVQ         n16+8(FP), R11
	MOVQ         t+16(FP), SI
	MOVQ         ldt+24(FP), R8
	SHLQ         $2, R8
	MOVQ         c+32(FP), DI
	MOVQ         ldc+40(FP), R9
	SHLQ         $2, R9
	VBROADCASTSS alpha+48(FP), Z16
	VBROADCASTSS beta+52(FP), Z17
	MOVL         beta+52(FP), AX
	ANDL         $0x7fffffff, AX
	TESTQ        R10, R10
	JLE          mdone
	TESTQ        R11, R11
	JLE          mdone

mrow:
	XORQ BX, BX
	MOVQ R11, CX

mcol:
	VMULPS      (SI)(BX*1), Z16, Z0
	TESTL       AX, AX
	JZ          mstore
	VFMADD231PS (DI)(BX*1), Z17, Z0

mstore:
	VMOVUPS Z0, (DI)(BX*1)
	ADDQ    $64, BX
	DECQ    CX
	JNZ     mcol
	ADDQ    R8, SI
	ADDQ    R9, DI
	DECQ    R10
	JNZ     mrow

mdone:
	VZEROUPPER
	RET

// func copy32rows(kc, np int, src *float32, ld int, dst *float32, dstride int)
// dst[q*dstride+p*32+j] = src[p*ld+q*32+j] for p < kc, q < np, j < 32: np
// panels of 32 columns, reading the source row by row.
TEXT ·copy32rows(SB), NOSPLIT, $0-48
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
	PREFETCHT0 64(R10)(R12*1)
	VMOVUPS    (R10), Z0
	VMOVUPS    64(R10), Z1
	VMOVUPS    Z0, (R11)
	VMOVUPS    Z1, 64(R11)
	ADDQ       $128, R10
	ADDQ       R9, R11
	DECQ       BX
	JNZ        looppanels

	ADDQ R8, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  looprows

donerows:
	VZEROUPPER
	RET

// func copy8(kc int, src *float32, ld int, dst *float32)
// dst[p*8+j] = src[p*ld+j] for p < kc, j < 8.
TEXT ·copy8(SB), NOSPLIT, $0-32
	MOVQ  kc+0(FP), CX
	MOVQ  src+8(FP), SI
	MOVQ  ld+16(FP), R8
	SHLQ  $2, R8
	MOVQ  dst+24(FP), DI
	TESTQ CX, CX
	JZ    done8

loop8:
	VMOVUPS (SI), Y0
	VMOVUPS Y0, (DI)
	ADDQ    R8, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     loop8

done8:
	VZEROUPPER
	RET
