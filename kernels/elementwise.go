package kernels

// elementwise.cu: bias, its gradient (with a ReLU's backward), ReLU, axis
// swap, fill.

// BiasAddKernel is bias_add_f32.
var BiasAddKernel = &Kernel{Name: "bias_add_f32", File: "elementwise.cu", Work: "outer*C*inner",
	Doc: "Backend.AddBias: y[o, c, i] += bias[c], then max(0, .) when relu != 0 (fused, one pass)."}

// BiasAdd launches bias_add_f32(y, bias, outer, C, inner, relu).
func BiasAdd[P any](l Launcher[P], y, bias P, outer, c, inner int, relu bool) {
	r := 0
	if relu {
		r = 1
	}
	var a Args[P]
	a.ptr("y", FloatPtr, y).ptr("bias", ConstFloatPtr, bias).i("outer", outer).i("C", c).i("inner", inner).i("relu", r)
	l.Launch(BiasAddKernel, outer*c*inner, a)
}

// BiasGradKernel is bias_grad_f32.
var BiasGradKernel = &Kernel{Name: "bias_grad_f32", File: "elementwise.cu", Work: "C*units*256",
	Doc: "Backend.BiasGrad and ReLUBiasGrad in one pass: db[c] = sum of dy[o, c, r] (dy masked by y > 0 and written back when y is not NULL); one 256-lane block per unit of a channel, the unit sums added by the channel's last block."}

// BiasGradLanes is the lanes of a unit of bias_grad_f32 (BIAS_LANES).
const BiasGradLanes = 256

// BiasGradUnits is the number of units bias_grad_f32 splits each channel
// of L = outer*inner elements into: ceil(L/4096) (16 elements a lane), at
// least 1 and at most 4096. The sum's order, and so its bits, depends on
// the shape only.
func BiasGradUnits(outer, inner int) int {
	return min(max((outer*inner+16*BiasGradLanes-1)/(16*BiasGradLanes), 1), 4096)
}

// BiasGrad launches bias_grad_f32(dy, y, db, part, count, outer, C, inner,
// units) with units = BiasGradUnits(outer, inner): y (the ReLU mask) may be
// the null pointer; part (c*units floats) and count (c ints, zero) are the
// caller's scratch, unused when units is 1.
func BiasGrad[P any](l Launcher[P], dy, y, db, part, count P, outer, c, inner int) {
	units := BiasGradUnits(outer, inner)
	var a Args[P]
	a.ptr("dy", FloatPtr, dy).ptr("y", ConstFloatPtr, y).ptr("db", FloatPtr, db).ptr("part", FloatPtr, part).ptr("count", IntPtr, count)
	a.i("outer", outer).i("C", c).i("inner", inner).i("units", units)
	l.Launch(BiasGradKernel, min(c*units, MaxGrid)*BiasGradLanes, a)
}

// ReLUFwdKernel is relu_fwd_f32.
var ReLUFwdKernel = &Kernel{Name: "relu_fwd_f32", File: "elementwise.cu", Work: "n",
	Doc: "Backend.ReLUForward: y = x < 0 ? 0 : x (y may be x)."}

// ReLUFwd launches relu_fwd_f32(x, y, n).
func ReLUFwd[P any](l Launcher[P], x, y P, n int) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("y", FloatPtr, y).i("n", n)
	l.Launch(ReLUFwdKernel, n, a)
}

// ReLUBwdKernel is relu_bwd_f32.
var ReLUBwdKernel = &Kernel{Name: "relu_bwd_f32", File: "elementwise.cu", Work: "n",
	Doc: "Backend.ReLUBackward: dx = y > 0 ? dy : 0 (dx may be dy)."}

// ReLUBwd launches relu_bwd_f32(y, dy, dx, n).
func ReLUBwd[P any](l Launcher[P], y, dy, dx P, n int) {
	var a Args[P]
	a.ptr("y", ConstFloatPtr, y).ptr("dy", ConstFloatPtr, dy).ptr("dx", FloatPtr, dx).i("n", n)
	l.Launch(ReLUBwdKernel, n, a)
}

// SwapAxes01Kernel is swap_axes01_f32.
var SwapAxes01Kernel = &Kernel{Name: "swap_axes01_f32", File: "elementwise.cu", Work: "A*B*inner",
	Doc: "Backend.SwapAxes01: dst[b, a, i] = src[a, b, i]."}

// SwapAxes01 launches swap_axes01_f32(src, dst, A, B, inner).
func SwapAxes01[P any](l Launcher[P], src, dst P, aa, b, inner int) {
	var a Args[P]
	a.ptr("src", ConstFloatPtr, src).ptr("dst", FloatPtr, dst).i("A", aa).i("B", b).i("inner", inner)
	l.Launch(SwapAxes01Kernel, aa*b*inner, a)
}

// FillKernel is fill_f32.
var FillKernel = &Kernel{Name: "fill_f32", File: "elementwise.cu", Work: "n",
	Doc: "Backend.Fill: x[i] = v."}

// Fill launches fill_f32(x, n, v).
func Fill[P any](l Launcher[P], x P, n int, v float32) {
	var a Args[P]
	a.ptr("x", FloatPtr, x).i("n", n).f("v", v)
	l.Launch(FillKernel, n, a)
}
