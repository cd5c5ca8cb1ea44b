package kernels

// optim.cu: the fused SGD and RMSprop updates.

// SGDKernel is sgd_f32.
var SGDKernel = &Kernel{Name: "sgd_f32", File: "optim.cu", Work: "n",
	Doc: "Backend.SGD: PyTorch's SGD step (dampening 0) with L2 penalty, momentum and Nesterov; buf may be NULL when momentum is 0."}

// SGD launches sgd_f32(p, g, buf, n, lr, momentum, l2, nesterov); buf may be
// the null pointer when momentum is 0.
func SGD[P any](l Launcher[P], p, g, buf P, n int, lr, momentum, l2 float32, nesterov bool) {
	var a Args[P]
	a.ptr("p", FloatPtr, p).ptr("g", ConstFloatPtr, g).ptr("buf", FloatPtr, buf).i("n", n).
		f("lr", lr).f("momentum", momentum).f("l2", l2).i("nesterov", b2i(nesterov))
	l.Launch(SGDKernel, n, a)
}

// SGDSegKernel is sgd_seg_f32.
var SGDSegKernel = &Kernel{Name: "sgd_seg_f32", File: "optim.cu", Work: "n",
	Doc: "Backend.OptimizerStep for sgd: sgd_f32 over every segment of a table in one launch (see adam_seg_f32)."}

// SGDSeg launches sgd_seg_f32(p, g, buf, seg, nseg, n, lr, momentum,
// nesterov); lr is a float64 (math.Float64bits); buf may be the null
// pointer when momentum is 0.
func SGDSeg[P any](l Launcher[P], p, g, buf, seg P, nseg, n int, lr uint64, momentum float32, nesterov bool) {
	var a Args[P]
	a.ptr("p", FloatPtr, p).ptr("g", ConstFloatPtr, g).ptr("buf", FloatPtr, buf).ptr("seg", ConstDoublePtr, seg).
		i("nseg", nseg).i("n", n).u64("lr", lr).f("momentum", momentum).i("nesterov", b2i(nesterov))
	l.Launch(SGDSegKernel, n, a)
}

// RMSpropSegKernel is rmsprop_seg_f32.
var RMSpropSegKernel = &Kernel{Name: "rmsprop_seg_f32", File: "optim.cu", Work: "n",
	Doc: "Backend.OptimizerStep for rmsprop: rmsprop_f32 over every segment of a table in one launch (see adam_seg_f32)."}

// RMSpropSeg launches rmsprop_seg_f32(p, g, sq, buf, seg, nseg, n, lr,
// alpha, eps, momentum); lr is a float64 (math.Float64bits); buf may be the
// null pointer when momentum is 0.
func RMSpropSeg[P any](l Launcher[P], p, g, sq, buf, seg P, nseg, n int, lr uint64, alpha, eps, momentum float32) {
	var a Args[P]
	a.ptr("p", FloatPtr, p).ptr("g", ConstFloatPtr, g).ptr("sq", FloatPtr, sq).ptr("buf", FloatPtr, buf).ptr("seg", ConstDoublePtr, seg).
		i("nseg", nseg).i("n", n).u64("lr", lr).f("alpha", alpha).f("eps", eps).f("momentum", momentum)
	l.Launch(RMSpropSegKernel, n, a)
}

// RMSpropKernel is rmsprop_f32.
var RMSpropKernel = &Kernel{Name: "rmsprop_f32", File: "optim.cu", Work: "n",
	Doc: "Backend.RMSprop: PyTorch's RMSprop step (centered=False) with L2 penalty and momentum; buf may be NULL when momentum is 0."}

// RMSprop launches rmsprop_f32(p, g, sq, buf, n, lr, alpha, eps, l2,
// momentum); buf may be the null pointer when momentum is 0.
func RMSprop[P any](l Launcher[P], p, g, sq, buf P, n int, lr, alpha, eps, l2, momentum float32) {
	var a Args[P]
	a.ptr("p", FloatPtr, p).ptr("g", ConstFloatPtr, g).ptr("sq", FloatPtr, sq).ptr("buf", FloatPtr, buf).i("n", n).
		f("lr", lr).f("alpha", alpha).f("eps", eps).f("l2", l2).f("momentum", momentum)
	l.Launch(RMSpropKernel, n, a)
}
