package kernels

// elementwise.cu: bias, its gradient, ReLU, axis swap, fill.

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
var BiasGradKernel = &Kernel{Name: "bias_grad_f32", File: "elementwise.cu", Work: "C*chunks",
	Doc: "Backend.BiasGrad, one pass of BiasGradPlan: out[c*chunks+j] = sum of dy[o, c, r] over e = o*inner+r = j (mod chunks), e ascending."}

// BiasGrad launches bias_grad_f32(dy, out, outer, C, inner, chunks): one pass.
func BiasGrad[P any](l Launcher[P], dy, out P, outer, c, inner, chunks int) {
	var a Args[P]
	a.ptr("dy", ConstFloatPtr, dy).ptr("out", FloatPtr, out).i("outer", outer).i("C", c).i("inner", inner).i("chunks", chunks)
	l.Launch(BiasGradKernel, c*chunks, a)
}

// BiasGradPasses launches the passes of steps (from BiasGradPlan(outer, c,
// inner)): each reads dy or scratch and writes scratch or db; scratch(off, n)
// is the caller's scratch buffer from float32 element off on, n elements.
func BiasGradPasses[P any](l Launcher[P], steps []BiasGradStep, dy, db P, c int, scratch func(off, n int) P) {
	for _, s := range steps {
		in, out := dy, db
		if s.In >= 0 {
			in = scratch(s.In, c*s.Inner)
		}
		if s.Out >= 0 {
			out = scratch(s.Out, c*s.Chunks)
		}
		BiasGrad(l, in, out, s.Outer, c, s.Inner, s.Chunks)
	}
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
