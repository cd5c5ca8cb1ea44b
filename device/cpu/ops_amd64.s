#include "textflag.h"

// AVX2 kernels of the non-GEMM ops (declared in ops_amd64.go, wrapped in
// kernels.go). Each computes what its pure Go twin in kernels.go computes,
// bit for bit: the same IEEE operations on the same operands in the same
// order, no FMA, comparisons with the same NaN behaviour (ordered, quiet:
// false when either side is NaN), the first operand of an add the same (it
// decides which NaN an add of two NaNs returns, as far as the Go compiler
// keeps its own operand order).

// iota2 is 0, 2, 4, ..., 14: the offset of the first column of each of 8
// consecutive 2x2 windows in their first input row.
DATA iota2<>+0(SB)/4, $0
DATA iota2<>+4(SB)/4, $2
DATA iota2<>+8(SB)/4, $4
DATA iota2<>+12(SB)/4, $6
DATA iota2<>+16(SB)/4, $8
DATA iota2<>+20(SB)/4, $10
DATA iota2<>+24(SB)/4, $12
DATA iota2<>+28(SB)/4, $14
GLOBL iota2<>(SB), RODATA|NOPTR, $32

// Max pooling, 2x2 windows, stride 2, one plane at a time. Registers:
//   SI  input row 2*oy       R8  input row stride in bytes (4*w)
//   DI  output row oy        DX  argmax row oy
//   R12 index of input row 2*oy (2*oy*w)
//   Y12 iota2, Y13 int32 1, Y14 int32 w, Y15 int32 w+1
// Each window follows the scalar code: best = top-left, then top-right,
// bottom-left, bottom-right replace it when strictly greater (v > best is
// false when either is NaN, so is GT_OQ; VMAXPS a, b returns a > b ? a : b
// exactly). sel is the winner's offset in the window: 0, 1, w or w+1.

// MAXPOOL8(ox): the 8 windows starting at output column ox (a register).
// VSHUFPS splits each pair of loads into even and odd columns, with the
// 64-bit quarters in the order 0, 2, 1, 3; VPERMPD/VPERMQ $0xd8 undo that.
#define MAXPOOL8(ox) \
	LEAQ      (SI)(ox*8), R13; \
	VMOVUPS   (R13), Y2; \
	VMOVUPS   32(R13), Y3; \
	VMOVUPS   (R13)(R8*1), Y4; \
	VMOVUPS   32(R13)(R8*1), Y5; \
	VSHUFPS   $0x88, Y3, Y2, Y6; \
	VSHUFPS   $0xdd, Y3, Y2, Y7; \
	VSHUFPS   $0x88, Y5, Y4, Y8; \
	VSHUFPS   $0xdd, Y5, Y4, Y9; \
	VCMPPS    $0x1e, Y6, Y7, Y10; \
	VMAXPS    Y6, Y7, Y6; \
	VANDPS    Y13, Y10, Y11; \
	VCMPPS    $0x1e, Y6, Y8, Y10; \
	VMAXPS    Y6, Y8, Y6; \
	VBLENDVPS Y10, Y14, Y11, Y11; \
	VCMPPS    $0x1e, Y6, Y9, Y10; \
	VMAXPS    Y6, Y9, Y6; \
	VBLENDVPS Y10, Y15, Y11, Y11; \
	VPERMPD   $0xd8, Y6, Y6; \
	VPERMQ    $0xd8, Y11, Y11; \
	LEAQ      (R12)(ox*2), CX; \
	VMOVD     CX, X10; \
	VPBROADCASTD X10, Y10; \
	VPADDD    Y12, Y10, Y10; \
	VPADDD    Y10, Y11, Y11; \
	VMOVUPS   Y6, (DI)(ox*4); \
	VMOVDQU   Y11, (DX)(ox*4)

// MAXPOOL4(ox): the same for 4 windows in XMM registers (no lane crossing,
// so no permutation).
#define MAXPOOL4(ox) \
	LEAQ      (SI)(ox*8), R13; \
	VMOVUPS   (R13), X2; \
	VMOVUPS   16(R13), X3; \
	VMOVUPS   (R13)(R8*1), X4; \
	VMOVUPS   16(R13)(R8*1), X5; \
	VSHUFPS   $0x88, X3, X2, X6; \
	VSHUFPS   $0xdd, X3, X2, X7; \
	VSHUFPS   $0x88, X5, X4, X8; \
	VSHUFPS   $0xdd, X5, X4, X9; \
	VCMPPS    $0x1e, X6, X7, X10; \
	VMAXPS    X6, X7, X6; \
	VANDPS    X13, X10, X11; \
	VCMPPS    $0x1e, X6, X8, X10; \
	VMAXPS    X6, X8, X6; \
	VBLENDVPS X10, X14, X11, X11; \
	VCMPPS    $0x1e, X6, X9, X10; \
	VMAXPS    X6, X9, X6; \
	VBLENDVPS X10, X15, X11, X11; \
	LEAQ      (R12)(ox*2), CX; \
	VMOVD     CX, X10; \
	VPBROADCASTD X10, X10; \
	VPADDD    X12, X10, X10; \
	VPADDD    X10, X11, X11; \
	VMOVUPS   X6, (DI)(ox*4); \
	VMOVDQU   X11, (DX)(ox*4)

// MAXPOOLBWD8(ox): the backward pass of the 8 windows starting at output
// column ox (a register), in maxPool2x2BwdAVX2. d = argmax - (index of the
// window's top-left) must be 0, 1, w or w+1; a lane matching none makes the
// function return false at once. The window's four inputs get dy+0 (so -0
// becomes +0, as 0 + dy does) where d points, 0 elsewhere; VUNPCKL/HPS and
// VPERM2F128 interleave the four vectors into two rows of 16. Registers as
// for MAXPOOL8, except Y1 zero, SI the dy row and DI dx row 2*oy.
#define MAXPOOLBWD8(ox) \
	LEAQ      (R12)(ox*2), CX; \
	VMOVD     CX, X10; \
	VPBROADCASTD X10, Y10; \
	VPADDD    Y12, Y10, Y10; \
	VMOVDQU   (DX)(ox*4), Y11; \
	VPSUBD    Y10, Y11, Y11; \
	VPCMPEQD  Y1, Y11, Y2; \
	VPCMPEQD  Y13, Y11, Y3; \
	VPCMPEQD  Y14, Y11, Y4; \
	VPCMPEQD  Y15, Y11, Y5; \
	VPOR      Y2, Y3, Y6; \
	VPOR      Y4, Y5, Y7; \
	VPOR      Y6, Y7, Y6; \
	VMOVMSKPS Y6, CX; \
	CMPL      CX, $0xff; \
	JEQ       3(PC); \
	MOVB      $0, ret+56(FP); \
	JMP       mpb_done; \
	VADDPS    (SI)(ox*4), Y1, Y0; \
	VANDPS    Y0, Y2, Y2; \
	VANDPS    Y0, Y3, Y3; \
	VANDPS    Y0, Y4, Y4; \
	VANDPS    Y0, Y5, Y5; \
	VUNPCKLPS Y3, Y2, Y6; \
	VUNPCKHPS Y3, Y2, Y7; \
	VUNPCKLPS Y5, Y4, Y8; \
	VUNPCKHPS Y5, Y4, Y9; \
	LEAQ      (DI)(ox*8), R13; \
	VPERM2F128 $0x20, Y7, Y6, Y2; \
	VPERM2F128 $0x31, Y7, Y6, Y3; \
	VPERM2F128 $0x20, Y9, Y8, Y4; \
	VPERM2F128 $0x31, Y9, Y8, Y5; \
	VMOVUPS   Y2, (R13); \
	VMOVUPS   Y3, 32(R13); \
	VMOVUPS   Y4, (R13)(R8*1); \
	VMOVUPS   Y5, 32(R13)(R8*1)

// func biasReluAVX2(y *float32, n int, b float32)
// y[i] = y[i]+b, or 0 where y[i]+b < 0, for i < n&^7.
TEXT ·biasReluAVX2(SB), NOSPLIT, $0-20
	MOVQ         y+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS b+16(FP), Y0
	VXORPS       Y1, Y1, Y1
	SHRQ         $3, CX

brelu32:
	CMPQ    CX, $4
	JB      brelu8
	VMOVUPS (DI), Y2
	VMOVUPS 32(DI), Y3
	VMOVUPS 64(DI), Y4
	VMOVUPS 96(DI), Y5
	VADDPS  Y0, Y2, Y2
	VADDPS  Y0, Y3, Y3
	VADDPS  Y0, Y4, Y4
	VADDPS  Y0, Y5, Y5
	VCMPPS  $0x11, Y1, Y2, Y6 // y+b < 0 (LT_OQ)
	VCMPPS  $0x11, Y1, Y3, Y7
	VCMPPS  $0x11, Y1, Y4, Y8
	VCMPPS  $0x11, Y1, Y5, Y9
	VANDNPS Y2, Y6, Y2
	VANDNPS Y3, Y7, Y3
	VANDNPS Y4, Y8, Y4
	VANDNPS Y5, Y9, Y5
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, 32(DI)
	VMOVUPS Y4, 64(DI)
	VMOVUPS Y5, 96(DI)
	ADDQ    $128, DI
	SUBQ    $4, CX
	JMP     brelu32

brelu8:
	TESTQ   CX, CX
	JZ      brelu_done
	VMOVUPS (DI), Y2
	VADDPS  Y0, Y2, Y2
	VCMPPS  $0x11, Y1, Y2, Y6
	VANDNPS Y2, Y6, Y2
	VMOVUPS Y2, (DI)
	ADDQ    $32, DI
	DECQ    CX
	JMP     brelu8

brelu_done:
	VZEROUPPER
	RET

// func biasAddAVX2(y *float32, n int, b float32)
// y[i] += b for i < n&^7.
TEXT ·biasAddAVX2(SB), NOSPLIT, $0-20
	MOVQ         y+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS b+16(FP), Y0
	SHRQ         $3, CX

badd32:
	CMPQ    CX, $4
	JB      badd8
	VMOVUPS (DI), Y2
	VMOVUPS 32(DI), Y3
	VMOVUPS 64(DI), Y4
	VMOVUPS 96(DI), Y5
	VADDPS  Y0, Y2, Y2
	VADDPS  Y0, Y3, Y3
	VADDPS  Y0, Y4, Y4
	VADDPS  Y0, Y5, Y5
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, 32(DI)
	VMOVUPS Y4, 64(DI)
	VMOVUPS Y5, 96(DI)
	ADDQ    $128, DI
	SUBQ    $4, CX
	JMP     badd32

badd8:
	TESTQ   CX, CX
	JZ      badd_done
	VMOVUPS (DI), Y2
	VADDPS  Y0, Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ    $32, DI
	DECQ    CX
	JMP     badd8

badd_done:
	VZEROUPPER
	RET

// func reluBwdAVX2(y, dy, dx *float32, n int)
// dx[i] = dy[i] where y[i] > 0, else +0, for i < n&^7. dx may be dy.
TEXT ·reluBwdAVX2(SB), NOSPLIT, $0-32
	MOVQ   y+0(FP), SI
	MOVQ   dy+8(FP), DX
	MOVQ   dx+16(FP), DI
	MOVQ   n+24(FP), CX
	VXORPS Y0, Y0, Y0
	SHRQ   $3, CX

rb32:
	CMPQ    CX, $4
	JB      rb8
	VCMPPS  $0x11, (SI), Y0, Y2 // 0 < y (LT_OQ)
	VCMPPS  $0x11, 32(SI), Y0, Y3
	VCMPPS  $0x11, 64(SI), Y0, Y4
	VCMPPS  $0x11, 96(SI), Y0, Y5
	VANDPS  (DX), Y2, Y2
	VANDPS  32(DX), Y3, Y3
	VANDPS  64(DX), Y4, Y4
	VANDPS  96(DX), Y5, Y5
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, 32(DI)
	VMOVUPS Y4, 64(DI)
	VMOVUPS Y5, 96(DI)
	ADDQ    $128, SI
	ADDQ    $128, DX
	ADDQ    $128, DI
	SUBQ    $4, CX
	JMP     rb32

rb8:
	TESTQ   CX, CX
	JZ      rb_done
	VCMPPS  $0x11, (SI), Y0, Y2
	VANDPS  (DX), Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JMP     rb8

rb_done:
	VZEROUPPER
	RET

// func maxPool2x2AVX2(x, y *float32, am *int32, oh, ow, w int)
// One plane: x holds at least 2*oh rows of w, y and am are [oh][ow];
// 4 <= ow, 2*ow <= w. Blocks of 8 (or 4) windows; the last block of a row is moved
// back to end at ow and overlaps the one before, recomputing the same
// values.
TEXT ·maxPool2x2AVX2(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ am+16(FP), DX
	MOVQ oh+24(FP), R9
	MOVQ ow+32(FP), R10
	MOVQ w+40(FP), R11
	TESTQ R9, R9
	JZ   mp_done
	MOVQ R11, R8
	SHLQ $2, R8
	MOVL $1, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	MOVL R11, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	INCL AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VMOVDQU iota2<>(SB), Y12
	XORQ R12, R12

mp_row:
	XORQ BX, BX
	CMPQ R10, $8
	JB   mp_narrow

mp_wide:
	LEAQ 8(BX), AX
	CMPQ AX, R10
	JA   mp_widetail
	MAXPOOL8(BX)
	MOVQ AX, BX
	JMP  mp_wide

mp_widetail:
	CMPQ BX, R10
	JAE  mp_next
	LEAQ -8(R10), BX
	MAXPOOL8(BX)
	JMP  mp_next

mp_narrow:
	MAXPOOL4(BX)
	LEAQ -4(R10), BX
	MAXPOOL4(BX)

mp_next:
	LEAQ (SI)(R8*2), SI
	LEAQ (DI)(R10*4), DI
	LEAQ (DX)(R10*4), DX
	LEAQ (R12)(R11*2), R12
	DECQ R9
	JNZ  mp_row

mp_done:
	VZEROUPPER
	RET

// func maxPool2x2BwdAVX2(dy *float32, am *int32, dx *float32, oh, ow, h, w int) bool
// One plane, the adjoint of maxPool2x2AVX2 when every argmax lies in its
// window: writes all of dx (h x w, 2*oh <= h, 8 <= 2*ow <= w), zeros outside
// the windows. Reports false, having written part of dx, when an argmax
// lies outside its window.
TEXT ·maxPool2x2BwdAVX2(SB), NOSPLIT, $0-57
	MOVQ dy+0(FP), SI
	MOVQ am+8(FP), DX
	MOVQ dx+16(FP), DI
	MOVQ oh+24(FP), R9
	MOVQ ow+32(FP), R10
	MOVQ w+48(FP), R11
	MOVB $1, ret+56(FP)
	VPXOR Y1, Y1, Y1
	TESTQ R9, R9
	JZ   mpb_bottom
	MOVQ R11, R8
	SHLQ $2, R8
	MOVL $1, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	MOVL R11, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	INCL AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VMOVDQU iota2<>(SB), Y12
	XORQ R12, R12

mpb_row:
	XORQ BX, BX

mpb_wide:
	LEAQ 8(BX), AX
	CMPQ AX, R10
	JA   mpb_widetail
	MAXPOOLBWD8(BX)
	MOVQ AX, BX
	JMP  mpb_wide

mpb_widetail:
	CMPQ BX, R10
	JAE  mpb_next
	LEAQ -8(R10), BX
	MAXPOOLBWD8(BX)
	JMP  mpb_next

mpb_next:
	// Zero the columns right of the last window in both rows.
	LEAQ (R10)(R10*1), AX
	LEAQ (DI)(R8*1), R13

mpb_col:
	CMPQ AX, R11
	JAE  mpb_coldone
	MOVL $0, (DI)(AX*4)
	MOVL $0, (R13)(AX*4)
	INCQ AX
	JMP  mpb_col

mpb_coldone:
	LEAQ (DI)(R8*2), DI
	LEAQ (SI)(R10*4), SI
	LEAQ (DX)(R10*4), DX
	LEAQ (R12)(R11*2), R12
	DECQ R9
	JNZ  mpb_row

mpb_bottom:
	// Zero rows 2*oh..h-1: (h-2*oh)*w floats from DI.
	MOVQ h+40(FP), AX
	MOVQ oh+24(FP), CX
	SHLQ $1, CX
	SUBQ CX, AX
	IMULQ w+48(FP), AX

mpb_z8:
	CMPQ    AX, $8
	JB      mpb_z1
	VMOVUPS Y1, (DI)
	ADDQ    $32, DI
	SUBQ    $8, AX
	JMP     mpb_z8

mpb_z1:
	TESTQ AX, AX
	JZ    mpb_done
	MOVL  $0, (DI)
	ADDQ  $4, DI
	DECQ  AX
	JMP   mpb_z1

mpb_done:
	VZEROUPPER
	RET

// func sumLanesAVX2(x *float32, n int, acc *[8]float64)
// acc[i%8] += float64(x[i]) for i < n&^7, in order of i.
TEXT ·sumLanesAVX2(SB), NOSPLIT, $0-24
	MOVQ    x+0(FP), SI
	MOVQ    n+8(FP), CX
	MOVQ    acc+16(FP), DI
	VMOVUPD (DI), Y0
	VMOVUPD 32(DI), Y1
	SHRQ    $3, CX

sl8:
	TESTQ     CX, CX
	JZ        sl_done
	VCVTPS2PD (SI), Y2
	VCVTPS2PD 16(SI), Y3
	VADDPD    Y2, Y0, Y0
	VADDPD    Y3, Y1, Y1
	ADDQ      $32, SI
	DECQ      CX
	JMP       sl8

sl_done:
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	VZEROUPPER
	RET

// func adamAVX2(p, grad, m, v *float32, n int, lrT, b1, b2, eps, c1, c2 float32)
// For i < n&^7, with c1 = 1-b1, c2 = 1-b2 (float32):
//   m = b1*m + c1*g; v = b2*v + (c2*g)*g; p = p - (lrT*m)/(sqrt(v)+eps)
TEXT ·adamAVX2(SB), NOSPLIT, $0-64
	MOVQ         p+0(FP), DI
	MOVQ         grad+8(FP), SI
	MOVQ         m+16(FP), DX
	MOVQ         v+24(FP), BX
	MOVQ         n+32(FP), CX
	VBROADCASTSS lrT+40(FP), Y8
	VBROADCASTSS b1+44(FP), Y9
	VBROADCASTSS b2+48(FP), Y10
	VBROADCASTSS eps+52(FP), Y11
	VBROADCASTSS c1+56(FP), Y12
	VBROADCASTSS c2+60(FP), Y13
	SHRQ         $3, CX

adam8:
	TESTQ   CX, CX
	JZ      adam_done
	VMOVUPS (SI), Y0
	VMULPS  (DX), Y9, Y1
	VMULPS  Y0, Y12, Y2
	VADDPS  Y2, Y1, Y1
	VMULPS  (BX), Y10, Y3
	VMULPS  Y0, Y13, Y4
	VMULPS  Y0, Y4, Y4
	VADDPS  Y4, Y3, Y3
	VMOVUPS Y1, (DX)
	VMOVUPS Y3, (BX)
	VSQRTPS Y3, Y5
	VADDPS  Y11, Y5, Y5
	VMULPS  Y1, Y8, Y6
	VDIVPS  Y5, Y6, Y6
	VMOVUPS (DI), Y7
	VSUBPS  Y6, Y7, Y7
	VMOVUPS Y7, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, BX
	DECQ    CX
	JMP     adam8

adam_done:
	VZEROUPPER
	RET

// copyBlocksAVX2 and addBlocksAVX2 work on planes blocks of rows rows of
// width floats (width >= 4). All strides are in floats: rows of a block
// are ds (dst) and ss (src) apart, blocks dps and sps. Registers:
//   DI, SI   current row       AX, DX  current block
//   R8, R9   ds, ss in bytes
//   BX       column            R10 rows left   CX blocks left
//   R12      start of the last 8-block, R13 of the last 4-block

// func copyBlocksAVX2(dst *float32, ds, dps int, src *float32, ss, sps, planes, rows, width int)
// Copies each row in blocks of 8 (or 4) floats, the last block moved back
// to end at width, overlapping the one before with the same values.
TEXT ·copyBlocksAVX2(SB), NOSPLIT, $0-72
	MOVQ dst+0(FP), AX
	MOVQ ds+8(FP), R8
	MOVQ src+24(FP), DX
	MOVQ ss+32(FP), R9
	MOVQ planes+48(FP), CX
	MOVQ width+64(FP), R11
	SHLQ $2, R8
	SHLQ $2, R9
	LEAQ -8(R11), R12
	LEAQ -4(R11), R13
	TESTQ CX, CX
	JZ   cb_done

cb_plane:
	MOVQ rows+56(FP), R10
	TESTQ R10, R10
	JZ   cb_next
	MOVQ AX, DI
	MOVQ DX, SI
	CMPQ R11, $8
	JB   cb_narrow

cb_wide:
	XORQ BX, BX

cb_wblk:
	CMPQ    BX, R12
	JAE     cb_wlast
	VMOVUPS (SI)(BX*4), Y0
	VMOVUPS Y0, (DI)(BX*4)
	ADDQ    $8, BX
	JMP     cb_wblk

cb_wlast:
	VMOVUPS (SI)(R12*4), Y0
	VMOVUPS Y0, (DI)(R12*4)
	ADDQ    R8, DI
	ADDQ    R9, SI
	DECQ    R10
	JNZ     cb_wide
	JMP     cb_next

cb_narrow:
	VMOVUPS (SI), X0
	VMOVUPS (SI)(R13*4), X1
	VMOVUPS X0, (DI)
	VMOVUPS X1, (DI)(R13*4)
	ADDQ    R8, DI
	ADDQ    R9, SI
	DECQ    R10
	JNZ     cb_narrow

cb_next:
	MOVQ dps+16(FP), BX
	LEAQ (AX)(BX*4), AX
	MOVQ sps+40(FP), BX
	LEAQ (DX)(BX*4), DX
	DECQ CX
	JNZ  cb_plane

cb_done:
	VZEROUPPER
	RET

// func addBlocksAVX2(dst *float32, ds, dps int, src *float32, ss, sps, planes, rows, width int)
// dst += src, each element once: the last block of a row, which overlaps
// the one before, is loaded and summed before any store of that row.
TEXT ·addBlocksAVX2(SB), NOSPLIT, $0-72
	MOVQ dst+0(FP), AX
	MOVQ ds+8(FP), R8
	MOVQ src+24(FP), DX
	MOVQ ss+32(FP), R9
	MOVQ planes+48(FP), CX
	MOVQ width+64(FP), R11
	SHLQ $2, R8
	SHLQ $2, R9
	LEAQ -8(R11), R12
	LEAQ -4(R11), R13
	TESTQ CX, CX
	JZ   ab_done

ab_plane:
	MOVQ rows+56(FP), R10
	TESTQ R10, R10
	JZ   ab_next
	MOVQ AX, DI
	MOVQ DX, SI
	CMPQ R11, $8
	JB   ab_narrow

ab_wide:
	VMOVUPS (DI)(R12*4), Y1 // the last block, summed first
	VADDPS  (SI)(R12*4), Y1, Y1
	XORQ    BX, BX

ab_wblk:
	CMPQ    BX, R12
	JAE     ab_wlast
	VMOVUPS (DI)(BX*4), Y0
	VADDPS  (SI)(BX*4), Y0, Y0
	VMOVUPS Y0, (DI)(BX*4)
	ADDQ    $8, BX
	JMP     ab_wblk

ab_wlast:
	VMOVUPS Y1, (DI)(R12*4)
	ADDQ    R8, DI
	ADDQ    R9, SI
	DECQ    R10
	JNZ     ab_wide
	JMP     ab_next

ab_narrow:
	VMOVUPS (DI), X0
	VMOVUPS (DI)(R13*4), X1
	VADDPS  (SI), X0, X0
	VADDPS  (SI)(R13*4), X1, X1
	VMOVUPS X0, (DI)
	VMOVUPS X1, (DI)(R13*4)
	ADDQ    R8, DI
	ADDQ    R9, SI
	DECQ    R10
	JNZ     ab_narrow

ab_next:
	MOVQ dps+16(FP), BX
	LEAQ (AX)(BX*4), AX
	MOVQ sps+40(FP), BX
	LEAQ (DX)(BX*4), DX
	DECQ CX
	JNZ  ab_plane

ab_done:
	VZEROUPPER
	RET
