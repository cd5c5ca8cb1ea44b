package sgemm

import "unsafe"

// genericKernel is the portable micro-kernel: a 4x4 tile in scalar Go.
var genericKernel = kernel{
	name: "generic 4x4",
	mr:   4, nr: 4,
	mc: 128, kc: 256, nc: 256,
	fn:    kernel4x4,
	packA: packA, packB: packB,
}

func kernel4x4(kc, mr int, a, b, c *float32, ldc int, alpha, beta float32) {
	for ; mr > 0; mr -= 4 {
		ap, bp := unsafe.Pointer(a), unsafe.Pointer(b)
		var c00, c01, c02, c03 float32
		var c10, c11, c12, c13 float32
		var c20, c21, c22, c23 float32
		var c30, c31, c32, c33 float32
		// Pointer offsets instead of slices: no bounds checks in the loop; the
		// caller guarantees 4*kc floats at a and b.
		for p := 0; p < kc; p++ {
			av := (*[4]float32)(unsafe.Add(ap, 16*p))
			bv := (*[4]float32)(unsafe.Add(bp, 16*p))
			b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
			a0 := av[0]
			c00 += a0 * b0
			c01 += a0 * b1
			c02 += a0 * b2
			c03 += a0 * b3
			a1 := av[1]
			c10 += a1 * b0
			c11 += a1 * b1
			c12 += a1 * b2
			c13 += a1 * b3
			a2 := av[2]
			c20 += a2 * b0
			c21 += a2 * b1
			c22 += a2 * b2
			c23 += a2 * b3
			a3 := av[3]
			c30 += a3 * b0
			c31 += a3 * b1
			c32 += a3 * b2
			c33 += a3 * b3
		}
		rows := min(mr, 4)
		cs := unsafe.Slice(c, (rows-1)*ldc+4)
		store4(cs[0:4], c00, c01, c02, c03, alpha, beta)
		if rows > 1 {
			store4(cs[ldc:ldc+4], c10, c11, c12, c13, alpha, beta)
		}
		if rows > 2 {
			store4(cs[2*ldc:2*ldc+4], c20, c21, c22, c23, alpha, beta)
		}
		if rows > 3 {
			store4(cs[3*ldc:3*ldc+4], c30, c31, c32, c33, alpha, beta)
		}
		if mr > 4 {
			a = (*float32)(unsafe.Add(unsafe.Pointer(a), 16*kc))
			c = (*float32)(unsafe.Add(unsafe.Pointer(c), 16*ldc))
		}
	}
}

func store4(c []float32, v0, v1, v2, v3, alpha, beta float32) {
	c = c[:4]
	if beta == 0 {
		c[0], c[1], c[2], c[3] = alpha*v0, alpha*v1, alpha*v2, alpha*v3
		return
	}
	c[0] = alpha*v0 + beta*c[0]
	c[1] = alpha*v1 + beta*c[1]
	c[2] = alpha*v2 + beta*c[2]
	c[3] = alpha*v3 + beta*c[3]
}
