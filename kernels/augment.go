package kernels

// augment.cu: random crop and flip on the device.

// AugmentKernel is augment_f32.
var AugmentKernel = &Kernel{Name: "augment_f32", File: "augment.cu", Work: "C*N*H*W",
	Doc: "Backend.Augment: random crop of the pad-zero-padded image at (dy, dx), then mirror when flip; dy, dx, flip from device.AugmentDraw(seed, step, j, pad), recomputed per element."}

// Augment launches augment_f32(src, dst, C, N, H, W, pad, seed, step).
func Augment[P any](l Launcher[P], src, dst P, c, n, h, w, pad int, seed, step uint64) {
	var a Args[P]
	a.ptr("src", ConstFloatPtr, src).ptr("dst", FloatPtr, dst).i("C", c).i("N", n).i("H", h).i("W", w).i("pad", pad).
		u64("seed", seed).u64("step", step)
	l.Launch(AugmentKernel, c*n*h*w, a)
}
