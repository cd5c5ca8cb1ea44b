package kernels

// adam.cu: the fused Adam update.

// AdamKernel is adam_f32.
var AdamKernel = &Kernel{Name: "adam_f32", File: "adam.cu", Work: "n",
	Doc: "Backend.Adam: fused Keras/TF2 Adam step with the bias-corrected lrT; g += l2*p and p -= decay*p first (each skipped when 0)."}

// AdamSegKernel is adam_seg_f32.
var AdamSegKernel = &Kernel{Name: "adam_seg_f32", File: "adam.cu", Work: "n",
	Doc: "Backend.OptimizerStep for adam and adamw: adam_f32 over every segment of a table (first, end, lr factor, weight decay as doubles) in one launch, each segment's coefficients computed in double as device.OptimStep.Scalars does."}

// AdamSeg launches adam_seg_f32(p, g, m, v, seg, nseg, n, lr, bc2, pb1,
// beta1, beta2, eps, adamw): seg is the table of nseg segments, n the end of
// the last; lr, bc2 and pb1 are float64s (math.Float64bits).
func AdamSeg[P any](l Launcher[P], p, g, m, v, seg P, nseg, n int, lr, bc2, pb1 uint64, beta1, beta2, eps float32, adamw bool) {
	var a Args[P]
	a.ptr("p", FloatPtr, p).ptr("g", ConstFloatPtr, g).ptr("m", FloatPtr, m).ptr("v", FloatPtr, v).ptr("seg", ConstDoublePtr, seg).
		i("nseg", nseg).i("n", n).u64("lr", lr).u64("bc2", bc2).u64("pb1", pb1).f("beta1", beta1).f("beta2", beta2).f("eps", eps).i("adamw", b2i(adamw))
	l.Launch(AdamSegKernel, n, a)
}

// Adam launches adam_f32(p, g, m, v, n, lrT, beta1, beta2, eps, l2, decay).
func Adam[P any](l Launcher[P], p, g, m, v P, n int, lrT, beta1, beta2, eps, l2, decay float32) {
	var a Args[P]
	a.ptr("p", FloatPtr, p).ptr("g", ConstFloatPtr, g).ptr("m", FloatPtr, m).ptr("v", FloatPtr, v).i("n", n).
		f("lrT", lrT).f("beta1", beta1).f("beta2", beta2).f("eps", eps).f("l2", l2).f("decay", decay)
	l.Launch(AdamKernel, n, a)
}
