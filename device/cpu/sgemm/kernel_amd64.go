package sgemm

import "golang.org/x/sys/cpu"

// avx2Kernel is the AVX2+FMA micro-kernel of kernel_amd64.s: a 6x16 tile in
// 12 YMM accumulators. A 6x256 A panel (6 KiB) and a 256x16 B panel (16 KiB)
// fit L1; a 144x256 A block (144 KiB) fits L2.
var avx2Kernel = kernel{
	name: "avx2-fma 6x16",
	mr:   6, nr: 16,
	mc: 144, kc: 256, nc: 256,
	fn:    kernel6x16,
	packA: packA6, packB: packB16,
	dot: dot3x4,
}

// kernel6x16 is implemented in kernel_amd64.s.
//
//go:noescape
func kernel6x16(kc, mr int, a, b, c *float32, ldc int, alpha, beta float32)

func bestKernel() *kernel {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		return &avx2Kernel
	}
	return &genericKernel
}
