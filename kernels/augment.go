package kernels

// augment.cu: random crop and flip on the device; a fixed shift for
// test-time augmentation.

// AugmentKernel is augment_f32.
var AugmentKernel = &Kernel{Name: "augment_f32", File: "augment.cu", Work: "C*N*H*W",
	Doc: "Backend.Augment: random crop of the padded image (pad zeros, or the mirrored image when reflect) at (dy, dx), then mirror when flip and not noFlip; dy, dx, flip from device.AugmentDraw(seed, step, j, pad), recomputed per element."}

// Augment launches augment_f32(src, dst, C, N, H, W, pad, reflect, noFlip,
// seed, step).
func Augment[P any](l Launcher[P], src, dst P, c, n, h, w, pad int, reflect, noFlip bool, seed, step uint64) {
	var a Args[P]
	a.ptr("src", ConstFloatPtr, src).ptr("dst", FloatPtr, dst).i("C", c).i("N", n).i("H", h).i("W", w).i("pad", pad).
		i("reflect", b2i(reflect)).i("noFlip", b2i(noFlip)).u64("seed", seed).u64("step", step)
	l.Launch(AugmentKernel, c*n*h*w, a)
}

// TranslateKernel is translate_f32.
var TranslateKernel = &Kernel{Name: "translate_f32", File: "augment.cu", Work: "C*N*H*W",
	Doc: "Backend.Translate: dst[ch, j, y, x] = src[ch, j, Reflect(y+dy, H), Reflect(xs+dx, W)], xs = flip ? W-1-x : x."}

// Translate launches translate_f32(src, dst, C, N, H, W, dy, dx, flip).
func Translate[P any](l Launcher[P], src, dst P, c, n, h, w, dy, dx int, flip bool) {
	var a Args[P]
	a.ptr("src", ConstFloatPtr, src).ptr("dst", FloatPtr, dst).i("C", c).i("N", n).i("H", h).i("W", w).
		i("dy", dy).i("dx", dx).i("flip", b2i(flip))
	l.Launch(TranslateKernel, c*n*h*w, a)
}
