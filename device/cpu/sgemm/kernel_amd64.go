package sgemm

import (
	"os"

	"golang.org/x/sys/cpu"
)

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

// avx512Kernel is the AVX-512F micro-kernel of kernel_avx512_amd64.s: an
// 8x32 tile in 16 ZMM accumulators. An 8x256 A panel (8 KiB) and a 256x32
// B panel (32 KiB) fit L1 (48 KiB on the CPUs that have AVX-512); a 144x256
// A block (144 KiB) fits L2. Eight rows divide the channel counts of the
// usual CNNs (16, 32, 64), which a 12- or 14-row tile would waste.
//
// Its results are bit-identical to avx2Kernel's: the same k blocks (kc),
// each element the same chain of fused multiply-adds over k, the same
// rounding when storing, and the 16-column groups of a right-edge tile that
// the AVX2 kernel stores whole are rounded as it rounds them (edgeFMA); the
// dot kernel is shared.
var avx512Kernel = kernel{
	name: "avx512 8x32",
	mr:   8, nr: 32,
	mc: 144, kc: 256, nc: 256,
	fn:    kernel8x32,
	fnNT:  kernel8x32nt,
	packA: packA8, packB: packB32,
	dot:     dot3x4,
	edgeFMA: mergeFMA16,
}

// kernel6x16 is implemented in kernel_amd64.s.
//
//go:noescape
func kernel6x16(kc, mr int, a, b, c *float32, ldc int, alpha, beta float32)

// kernel8x32, kernel8x32nt and mergeFMA16 are implemented in kernel_avx512_amd64.s.
//
//go:noescape
func kernel8x32(kc, mr int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func kernel8x32nt(kc, mr int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func mergeFMA16(rows, n16 int, t *float32, ldt int, c *float32, ldc int, alpha, beta float32)

// EnvNoAVX512 names the environment variable that, set to 1, keeps the
// AVX2 kernel on CPUs with AVX-512 (for tests and comparisons).
const EnvNoAVX512 = "TRAINER_CPU_NOAVX512"

func bestKernel() *kernel {
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX2 && cpu.X86.HasFMA && os.Getenv(EnvNoAVX512) != "1" {
		return &avx512Kernel
	}
	return avx2OrGeneric()
}

// avx2OrGeneric is the AVX2 kernel where the CPU has AVX2 and FMA.
func avx2OrGeneric() *kernel {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		return &avx2Kernel
	}
	return &genericKernel
}
