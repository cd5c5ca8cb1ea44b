package kernels

// adam.cu: the fused Adam update.

// AdamKernel is adam_f32.
var AdamKernel = &Kernel{Name: "adam_f32", File: "adam.cu", Work: "n",
	Doc: "Backend.Adam: fused Keras/TF2 Adam step with the bias-corrected lrT; g += l2*p and p -= decay*p first (each skipped when 0)."}

// Adam launches adam_f32(p, g, m, v, n, lrT, beta1, beta2, eps, l2, decay).
func Adam[P any](l Launcher[P], p, g, m, v P, n int, lrT, beta1, beta2, eps, l2, decay float32) {
	var a Args[P]
	a.ptr("p", FloatPtr, p).ptr("g", ConstFloatPtr, g).ptr("m", FloatPtr, m).ptr("v", FloatPtr, v).i("n", n).
		f("lrT", lrT).f("beta1", beta1).f("beta2", beta2).f("eps", eps).f("l2", l2).f("decay", decay)
	l.Launch(AdamKernel, n, a)
}
