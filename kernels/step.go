package kernels

// step.cu: the step counters and the ops that read their per-step values
// from device memory, for captured steps (CUDA graphs).

// StepBeginKernel is step_begin_i32.
var StepBeginKernel = &Kernel{Name: "step_begin_i32", File: "step.cu", Work: "max(cnt, k)",
	Doc: "Graph step prologue: idx[j] = perm[ctr[0]*stride + j] (j < cnt) and cur[i] = table[(ctr[1]-ctr[2])*k + i] (i < k)."}

// StepBegin launches step_begin_i32(ctr, perm, stride, cnt, idx, table, k, cur).
func StepBegin[P any](l Launcher[P], ctr, perm P, stride, cnt int, idx, table P, k int, cur P) {
	var a Args[P]
	a.ptr("ctr", ConstIntPtr, ctr).ptr("perm", ConstIntPtr, perm).i("stride", stride).i("cnt", cnt).ptr("idx", IntPtr, idx).
		ptr("table", ConstFloatPtr, table).i("k", k).ptr("cur", FloatPtr, cur)
	l.Launch(StepBeginKernel, max(cnt, k), a)
}

// StepEndKernel is step_end_i32.
var StepEndKernel = &Kernel{Name: "step_end_i32", File: "step.cu", Work: "1",
	Doc: "Graph step epilogue: ctr[0] = ctr[0]+1, or 0 at wrap; ctr[1] += 1 (one thread)."}

// StepEnd launches step_end_i32(ctr, wrap).
func StepEnd[P any](l Launcher[P], ctr P, wrap int) {
	var a Args[P]
	a.ptr("ctr", IntPtr, ctr).i("wrap", wrap)
	l.Launch(StepEndKernel, 1, a)
}

// AdamAtKernel is adam_at_f32.
var AdamAtKernel = &Kernel{Name: "adam_at_f32", File: "step.cu", Work: "n",
	Doc: "Backend.AdamAt: adam_f32 with lrT, eps, decay read from s[0], s[1], s[2] when it runs."}

// AdamAt launches adam_at_f32(p, g, m, v, n, s, beta1, beta2, l2).
func AdamAt[P any](l Launcher[P], p, g, m, v P, n int, s P, beta1, beta2, l2 float32) {
	var a Args[P]
	a.ptr("p", FloatPtr, p).ptr("g", ConstFloatPtr, g).ptr("m", FloatPtr, m).ptr("v", FloatPtr, v).i("n", n).
		ptr("s", ConstFloatPtr, s).f("beta1", beta1).f("beta2", beta2).f("l2", l2)
	l.Launch(AdamAtKernel, n, a)
}

// SGDAtKernel is sgd_at_f32.
var SGDAtKernel = &Kernel{Name: "sgd_at_f32", File: "step.cu", Work: "n",
	Doc: "Backend.SGDAt: sgd_f32 with the learning rate read from lr[0] when it runs."}

// SGDAt launches sgd_at_f32(p, g, buf, n, lr, momentum, l2, nesterov).
func SGDAt[P any](l Launcher[P], p, g, buf P, n int, lr P, momentum, l2 float32, nesterov bool) {
	var a Args[P]
	a.ptr("p", FloatPtr, p).ptr("g", ConstFloatPtr, g).ptr("buf", FloatPtr, buf).i("n", n).
		ptr("lr", ConstFloatPtr, lr).f("momentum", momentum).f("l2", l2).i("nesterov", b2i(nesterov))
	l.Launch(SGDAtKernel, n, a)
}

// RMSpropAtKernel is rmsprop_at_f32.
var RMSpropAtKernel = &Kernel{Name: "rmsprop_at_f32", File: "step.cu", Work: "n",
	Doc: "Backend.RMSpropAt: rmsprop_f32 with the learning rate read from lr[0] when it runs."}

// RMSpropAt launches rmsprop_at_f32(p, g, sq, buf, n, lr, alpha, eps, l2, momentum).
func RMSpropAt[P any](l Launcher[P], p, g, sq, buf P, n int, lr P, alpha, eps, l2, momentum float32) {
	var a Args[P]
	a.ptr("p", FloatPtr, p).ptr("g", ConstFloatPtr, g).ptr("sq", FloatPtr, sq).ptr("buf", FloatPtr, buf).i("n", n).
		ptr("lr", ConstFloatPtr, lr).f("alpha", alpha).f("eps", eps).f("l2", l2).f("momentum", momentum)
	l.Launch(RMSpropAtKernel, n, a)
}

// AxpbyAtKernel is axpby_at_f32.
var AxpbyAtKernel = &Kernel{Name: "axpby_at_f32", File: "step.cu", Work: "n",
	Doc: "Backend.AxpbyAt: axpby_f32 with alpha, beta read from s[0], s[1] when it runs; nothing when s[2] == 0."}

// AxpbyAt launches axpby_at_f32(x, y, n, s).
func AxpbyAt[P any](l Launcher[P], x, y P, n int, s P) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("y", FloatPtr, y).i("n", n).ptr("s", ConstFloatPtr, s)
	l.Launch(AxpbyAtKernel, n, a)
}

// AugmentAtKernel is augment_at_f32.
var AugmentAtKernel = &Kernel{Name: "augment_at_f32", File: "step.cu", Work: "C*N*H*W",
	Doc: "Backend.AugmentAt: augment_f32 with the step number read from step[0] when it runs."}

// AugmentAt launches augment_at_f32(src, dst, C, N, H, W, pad, reflect,
// noFlip, seed, step).
func AugmentAt[P any](l Launcher[P], src, dst P, c, n, h, w, pad int, reflect, noFlip bool, seed uint64, step P) {
	var a Args[P]
	a.ptr("src", ConstFloatPtr, src).ptr("dst", FloatPtr, dst).i("C", c).i("N", n).i("H", h).i("W", w).i("pad", pad).
		i("reflect", b2i(reflect)).i("noFlip", b2i(noFlip)).u64("seed", seed).ptr("step", ConstIntPtr, step)
	l.Launch(AugmentAtKernel, c*n*h*w, a)
}

// DropoutAtKernel is dropout_at_f32.
var DropoutAtKernel = &Kernel{Name: "dropout_at_f32", File: "step.cu", Work: "n",
	Doc: "Backend.DropoutAt: dropout_f32 with the step number read from step[0] when it runs."}

// DropoutAt launches dropout_at_f32(x, y, n, p, scale, seed, step).
func DropoutAt[P any](l Launcher[P], x, y P, n int, p, scale float32, seed uint64, step P) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("y", FloatPtr, y).i("n", n).f("p", p).f("scale", scale).u64("seed", seed).
		ptr("step", ConstIntPtr, step)
	l.Launch(DropoutAtKernel, n, a)
}
