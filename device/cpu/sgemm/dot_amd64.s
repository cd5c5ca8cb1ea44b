#include "textflag.h"

// Four dot products of A row Yarow with the B row in Y15, into acc Y(base..base+3) column j.
// func dot3x4(kb int, rows *[7]*float32, out *[12]float32)
// out[i*4+j] = sum over p < kb of rows[i][p] * rows[3+j][p], kb a multiple
// of 8; the sum runs over 8 lanes of p mod 8, then adds lanes pairwise.
TEXT ·dot3x4(SB), NOSPLIT, $0-24
	MOVQ kb+0(FP), CX
	MOVQ rows+8(FP), SI
	MOVQ 0(SI), AX
	MOVQ 8(SI), BX
	MOVQ 16(SI), DX
	MOVQ 24(SI), R8
	MOVQ 32(SI), R9
	MOVQ 40(SI), R10
	MOVQ 48(SI), R11
	MOVQ out+16(FP), DI

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
	XORQ   R12, R12
	SHRQ   $3, CX
	JZ     reduce

loop:
	VMOVUPS     (AX)(R12*1), Y12
	VMOVUPS     (BX)(R12*1), Y13
	VMOVUPS     (DX)(R12*1), Y14
	VMOVUPS     (R8)(R12*1), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS     (R9)(R12*1), Y15
	VFMADD231PS Y15, Y12, Y1
	VFMADD231PS Y15, Y13, Y5
	VFMADD231PS Y15, Y14, Y9
	VMOVUPS     (R10)(R12*1), Y15
	VFMADD231PS Y15, Y12, Y2
	VFMADD231PS Y15, Y13, Y6
	VFMADD231PS Y15, Y14, Y10
	VMOVUPS     (R11)(R12*1), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y11
	ADDQ        $32, R12
	DECQ        CX
	JNZ         loop

reduce:
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVUPS      X0, (DI)
	VHADDPS      Y5, Y4, Y4
	VHADDPS      Y7, Y6, Y6
	VHADDPS      Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VADDPS       X5, X4, X4
	VMOVUPS      X4, 16(DI)
	VHADDPS      Y9, Y8, Y8
	VHADDPS      Y11, Y10, Y10
	VHADDPS      Y10, Y8, Y8
	VEXTRACTF128 $1, Y8, X9
	VADDPS       X9, X8, X8
	VMOVUPS      X8, 32(DI)
	VZEROUPPER
	RET
