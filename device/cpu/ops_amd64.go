package cpu

import "golang.org/x/sys/cpu"

// useAVX2 selects the AVX2 kernels of ops_amd64.s over the pure Go ones
// (kernels.go). Both compute the same bits; it is a variable so that tests
// can run either.
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasAVX

// The AVX2 kernels; see ops_amd64.s for what each computes. Callers check
// every pointer and length: the assembly does not.

//go:noescape
func biasReluAVX2(y *float32, n int, b float32)

//go:noescape
func biasAddAVX2(y *float32, n int, b float32)

//go:noescape
func reluBwdAVX2(y, dy, dx *float32, n int)

//go:noescape
func maxPool2x2AVX2(x, y *float32, am *int32, oh, ow, w int)

//go:noescape
func maxPool2x2BwdAVX2(dy *float32, am *int32, dx *float32, oh, ow, h, w int) bool

//go:noescape
func sumLanesAVX2(x *float32, n int, acc *[8]float64)

//go:noescape
func adamAVX2(p, grad, m, v *float32, n int, lrT, b1, b2, eps, c1, c2 float32)

//go:noescape
func copyBlocksAVX2(dst *float32, ds, dps int, src *float32, ss, sps, planes, rows, width int)

//go:noescape
func addBlocksAVX2(dst *float32, ds, dps int, src *float32, ss, sps, planes, rows, width int)
