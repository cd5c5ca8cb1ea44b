package cpu

import "golang.org/x/sys/cpu"

// winoAsm selects the AVX2+FMA transforms of winograd_amd64.s over the pure
// Go ones; tests switch it to run both.
var winoAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// The assembly transforms; see winograd_kernels.go for what they compute.
// Callers check every length: the assembly does not.

//go:noescape
func winoIn4AVX2(src *float32, rs, cs int, dst *float32, ds, nv int)

//go:noescape
func winoOut4AVX2(src *float32, ss int, dst *float32, rs, cs, nv int)

//go:noescape
func winoDy4AVX2(src *float32, rs, cs int, dst *float32, ds, nv int)

//go:noescape
func winoIn2AVX2(src *float32, rs, cs int, dst *float32, ds, nv int)

//go:noescape
func winoOut2AVX2(src *float32, ss int, dst *float32, rs, cs, nv int)

//go:noescape
func winoDy2AVX2(src *float32, rs, cs int, dst *float32, ds, nv int)

//go:noescape
func winoTransInAVX2(src *float32, ss int, dst *float32, ds, cols int)

//go:noescape
func winoTransOutAVX2(src *float32, ss int, dst *float32, ds, cols int)

func winoInAsm(m int, src *float32, rs, cs int, dst *float32, ds, nv int) {
	if m == 4 {
		winoIn4AVX2(src, rs, cs, dst, ds, nv)
	} else {
		winoIn2AVX2(src, rs, cs, dst, ds, nv)
	}
}

func winoOutAsm(m int, src *float32, ss int, dst *float32, rs, cs, nv int) {
	if m == 4 {
		winoOut4AVX2(src, ss, dst, rs, cs, nv)
	} else {
		winoOut2AVX2(src, ss, dst, rs, cs, nv)
	}
}

func winoDyAsm(m int, src *float32, rs, cs int, dst *float32, ds, nv int) {
	if m == 4 {
		winoDy4AVX2(src, rs, cs, dst, ds, nv)
	} else {
		winoDy2AVX2(src, rs, cs, dst, ds, nv)
	}
}
