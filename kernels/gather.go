package kernels

// gather.cu: assemble a batch from the uint8 dataset on the device.

// GatherImagesKernel is gather_images_f32.
var GatherImagesKernel = &Kernel{Name: "gather_images_f32", File: "gather.cu", Work: "max(c*n*hw, n)",
	Doc: "Backend.GatherImages: dst[ch, j, p] = src[idx[j]*c*hw + ch*hw + p]*scale; dstLabels[j] = labels[idx[j]] when both are non-NULL."}

// GatherImages launches gather_images_f32(src, idx, n, c, hw, scale, dst,
// labels, dstLabels); labels and dstLabels may be null pointers.
func GatherImages[P any](l Launcher[P], src, idx P, n, c, hw int, scale float32, dst, labels, dstLabels P) {
	var a Args[P]
	a.ptr("src", ConstBytePtr, src).ptr("idx", ConstIntPtr, idx).i("n", n).i("c", c).i("hw", hw).f("scale", scale).
		ptr("dst", FloatPtr, dst).ptr("labels", ConstIntPtr, labels).ptr("dstLabels", IntPtr, dstLabels)
	l.Launch(GatherImagesKernel, max(c*n*hw, n), a)
}
