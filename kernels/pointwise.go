package kernels

// pointwise.cu: GELU, Add, Axpby, Dropout.

// GELUFwdKernel is gelu_fwd_f32.
var GELUFwdKernel = &Kernel{Name: "gelu_fwd_f32", File: "pointwise.cu", Work: "n",
	Doc: "Backend.GELUForward: y = 0.5f*x*(1 + erff(x/sqrt(2))) in float32 (y may be x)."}

// GELUFwd launches gelu_fwd_f32(x, y, n).
func GELUFwd[P any](l Launcher[P], x, y P, n int) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("y", FloatPtr, y).i("n", n)
	l.Launch(GELUFwdKernel, n, a)
}

// GELUBwdKernel is gelu_bwd_f32.
var GELUBwdKernel = &Kernel{Name: "gelu_bwd_f32", File: "pointwise.cu", Work: "n",
	Doc: "Backend.GELUBackward: dx = dy*(Phi(x) + x*phi(x)) in float32, x the GELU's input (dx may be dy)."}

// GELUBwd launches gelu_bwd_f32(x, dy, dx, n).
func GELUBwd[P any](l Launcher[P], x, dy, dx P, n int) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("dy", ConstFloatPtr, dy).ptr("dx", FloatPtr, dx).i("n", n)
	l.Launch(GELUBwdKernel, n, a)
}

// AddKernel is add_f32.
var AddKernel = &Kernel{Name: "add_f32", File: "pointwise.cu", Work: "n",
	Doc: "Backend.Add: y = a + b, then y < 0 ? 0 : y when relu != 0 (y may be a or b)."}

// Add launches add_f32(a, b, y, n, relu).
func Add[P any](l Launcher[P], x, b, y P, n int, relu bool) {
	var a Args[P]
	a.ptr("a", ConstFloatPtr, x).ptr("b", ConstFloatPtr, b).ptr("y", FloatPtr, y).i("n", n).i("relu", b2i(relu))
	l.Launch(AddKernel, n, a)
}

// AxpbyKernel is axpby_f32.
var AxpbyKernel = &Kernel{Name: "axpby_f32", File: "pointwise.cu", Work: "n",
	Doc: "Backend.Axpby: y = alpha*x + beta*y, or alpha*x when beta == 0 (y not read)."}

// Axpby launches axpby_f32(x, y, n, alpha, beta).
func Axpby[P any](l Launcher[P], x, y P, n int, alpha, beta float32) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("y", FloatPtr, y).i("n", n).f("alpha", alpha).f("beta", beta)
	l.Launch(AxpbyKernel, n, a)
}

// DropoutKernel is dropout_f32.
var DropoutKernel = &Kernel{Name: "dropout_f32", File: "pointwise.cu", Work: "n",
	Doc: "Backend.Dropout: y = x*scale where device.DropoutKeep(seed, step, i, p) (x itself when scale == 1), else 0; scale = DropoutScale(p) from the host."}

// Dropout launches dropout_f32(x, y, n, p, scale, seed, step). Pass scale =
// DropoutScale(p), the factor the CPU backend uses.
func Dropout[P any](l Launcher[P], x, y P, n int, p, scale float32, seed, step uint64) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("y", FloatPtr, y).i("n", n).f("p", p).f("scale", scale).
		u64("seed", seed).u64("step", step)
	l.Launch(DropoutKernel, n, a)
}

// DropoutScale is the factor dropout_f32 multiplies kept elements by:
// float32(1/(1-float64(p))), the quotient in float64 (1-p is exact there)
// rounded once to float32. It is computed once on the host, so the GPU and
// the CPU backend (which uses the same formula) multiply by the same
// float32 and their outputs agree bit for bit. p 0 gives exactly 1 (a
// copy), p 1 +Inf (nothing is kept, so it is never used).
func DropoutScale(p float32) float32 { return float32(1 / (1 - float64(p))) }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
