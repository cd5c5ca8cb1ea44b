package kernels

// elementwise.cu: bias, its gradient (with a ReLU's backward), ReLU, axis
// swap, fill.

// BiasActKernel is bias_act_f32.
var BiasActKernel = &Kernel{Name: "bias_act_f32", File: "elementwise.cu", Work: "outer*C*inner",
	Doc: "Backend.AddBias and BiasAct: z[o, c, i] += bias[c], y = act(z) (0 none, 1 ReLU, 2 GELU) in one pass; y may be z."}

// BiasAct launches bias_act_f32(z, y, bias, outer, C, inner, act): act is a
// device.Act's number (0 none, 1 ReLU, 2 GELU).
func BiasAct[P any](l Launcher[P], z, y, bias P, outer, c, inner, act int) {
	var a Args[P]
	a.ptr("z", FloatPtr, z).ptr("y", FloatPtr, y).ptr("bias", ConstFloatPtr, bias).i("outer", outer).i("C", c).i("inner", inner).i("act", act)
	l.Launch(BiasActKernel, outer*c*inner, a)
}

// BiasGradKernel is bias_grad_f32.
var BiasGradKernel = &Kernel{Name: "bias_grad_f32", File: "elementwise.cu", Work: "C*units*256",
	Doc: "Backend.BiasGrad and ActBiasGrad in one pass: db[c] = sum of dy[o, c, r] (after an activation's backward, written back, when act != 0); one 256-lane block per unit of a channel, the unit sums added by the channel's last block."}

// BiasGradLanes is the lanes of a unit of bias_grad_f32 (BIAS_LANES).
const BiasGradLanes = 256

// BiasGradUnits is the number of units bias_grad_f32 splits each channel
// of L = outer*inner elements into: ceil(L/4096) (16 elements a lane), at
// least 1 and at most 4096. The sum's order, and so its bits, depends on
// the shape only.
func BiasGradUnits(outer, inner int) int {
	return min(max((outer*inner+16*BiasGradLanes-1)/(16*BiasGradLanes), 1), 4096)
}

// BiasGrad launches bias_grad_f32(dy, a, db, part, count, outer, C, inner,
// units, act) with units = BiasGradUnits(outer, inner): act is a
// device.Act's number, 0 for none (a may then be the null pointer), a the
// ReLU's output or the GELU's input; part (c*units floats) and count (c
// ints, zero) are the caller's scratch, unused when units is 1.
func BiasGrad[P any](l Launcher[P], dy, a, db, part, count P, outer, c, inner, act int) {
	units := BiasGradUnits(outer, inner)
	var args Args[P]
	args.ptr("dy", FloatPtr, dy).ptr("a", ConstFloatPtr, a).ptr("db", FloatPtr, db).ptr("part", FloatPtr, part).ptr("count", IntPtr, count)
	args.i("outer", outer).i("C", c).i("inner", inner).i("units", units).i("act", act)
	l.Launch(BiasGradKernel, min(c*units, MaxGrid)*BiasGradLanes, args)
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
