package kernels

// loss.cu: softmax cross-entropy, its gradient and the batch statistics.

// SoftmaxXentKernel is softmax_xent_f32.
var SoftmaxXentKernel = &Kernel{Name: "softmax_xent_f32", File: "loss.cu", Work: "n",
	Doc: "Backend.SoftmaxXent: one row per work item, label smoothing eps = smoothing; dlogits may be NULL; stats[0] += loss, stats[1] += correct by atomicAdd."}

// SoftmaxXent launches softmax_xent_f32(logits, labels, n, k, gradScale,
// smoothing, dlogits, stats); dlogits may be the null pointer.
func SoftmaxXent[P any](l Launcher[P], logits, labels P, n, k int, gradScale, smoothing float32, dlogits, stats P) {
	var a Args[P]
	a.ptr("logits", ConstFloatPtr, logits).ptr("labels", ConstIntPtr, labels).i("n", n).i("k", k).f("gradScale", gradScale).
		f("smoothing", smoothing).ptr("dlogits", FloatPtr, dlogits).ptr("stats", FloatPtr, stats)
	l.Launch(SoftmaxXentKernel, n, a)
}
