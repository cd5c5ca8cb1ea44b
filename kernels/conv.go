package kernels

// conv.cu: im2col and its adjoint.

// Im2ColKernel is im2col_f32.
var Im2ColKernel = &Kernel{Name: "im2col_f32", File: "conv.cu", Work: "C*N*OH*OW",
	Doc: "Backend.Im2Col: col [C*KH*KW, N*OH*OW] from CNHW x; one work item per (c, n, oy, ox) writes KH*KW rows."}

// Im2Col launches im2col_f32(x, col, geometry).
func Im2Col[P any](l Launcher[P], g Conv, x, col P) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("col", FloatPtr, col).conv(g)
	l.Launch(Im2ColKernel, g.C*g.N*g.OH*g.OW, a)
}

// Im2ColBF16Kernel is im2col_bf16.
var Im2ColBF16Kernel = &Kernel{Name: "im2col_bf16", File: "conv.cu", Work: "C*N*OH*OW",
	Doc: "Backend.Im2Col into a BF16 col: im2col_f32 with each value rounded to bfloat16 (ties to even)."}

// Im2ColBF16 launches im2col_bf16(x, col, geometry).
func Im2ColBF16[P any](l Launcher[P], g Conv, x, col P) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("col", U16Ptr, col).conv(g)
	l.Launch(Im2ColBF16Kernel, g.C*g.N*g.OH*g.OW, a)
}

// Col2ImKernel is col2im_f32.
var Col2ImKernel = &Kernel{Name: "col2im_f32", File: "conv.cu", Work: "C*N*H*W",
	Doc: "Backend.Col2Im: overwrites dx with the adjoint of im2col, gathered per dx element (deterministic, no atomics)."}

// Col2Im launches col2im_f32(col, dx, geometry).
func Col2Im[P any](l Launcher[P], g Conv, col, dx P) {
	var a Args[P]
	a.ptr("col", ConstFloatPtr, col).ptr("dx", FloatPtr, dx).conv(g)
	l.Launch(Col2ImKernel, g.C*g.N*g.H*g.W, a)
}
