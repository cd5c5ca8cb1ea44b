//go:build !amd64

package cpu

// useAVX2 is false off amd64: the pure Go kernels run (kernels.go).
var useAVX2 = false

// Never called (useAVX2 is false); they keep the shared code compiling.

func biasReluAVX2(y *float32, n int, b float32)              { panic("cpu: no AVX2") }
func biasAddAVX2(y *float32, n int, b float32)               { panic("cpu: no AVX2") }
func reluBwdAVX2(y, dy, dx *float32, n int)                  { panic("cpu: no AVX2") }
func maxPool2x2AVX2(x, y *float32, am *int32, oh, ow, w int) { panic("cpu: no AVX2") }
func maxPool2x2BwdAVX2(dy *float32, am *int32, dx *float32, oh, ow, h, w int) bool {
	panic("cpu: no AVX2")
}
func sumLanesAVX2(x *float32, n int, acc *[8]float64)                          { panic("cpu: no AVX2") }
func adamAVX2(p, grad, m, v *float32, n int, lrT, b1, b2, eps, c1, c2 float32) { panic("cpu: no AVX2") }

func copyBlocksAVX2(dst *float32, ds, dps int, src *float32, ss, sps, planes, rows, width int) {
	panic("cpu: no AVX2")
}

func addBlocksAVX2(dst *float32, ds, dps int, src *float32, ss, sps, planes, rows, width int) {
	panic("cpu: no AVX2")
}
